/**
 * The system's clock and randomness, for createEngine's Clock and Random ports. (domain/
 * reads neither itself: time and random bytes arrive through these ports.)
 */
import { randomBytes } from 'node:crypto';
import type { Clock, Random } from '../domain/ports.ts';

export const systemClock: Clock = { now: () => Date.now() };

export const systemRandom: Random = { bytes: (n) => new Uint8Array(randomBytes(n)) };
