import { memoryFixture } from './fixtures.ts';
import { readStoreSuite } from './suite.ts';

readStoreSuite('memory', memoryFixture, 25);
