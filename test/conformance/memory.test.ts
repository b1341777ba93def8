import { createMemoryEventStore } from '../../adapters/store/memory.ts';
import { describeEventStoreConformance } from './suite.ts';

describeEventStoreConformance('memory', async () => {
  const store = createMemoryEventStore();
  return { store, cleanup: () => store.close() };
}, { tailOnConflict: true });
