/**
 * In-memory vault: per-device data keys wrapped by a master key, held in process memory.
 * Good for tests and short-lived processes; the keys die with the process, and so do the
 * secrets sealed under them. adapters/vault/sqlite.ts and postgres.ts keep keys durably.
 */
import { randomBytes } from 'node:crypto';
import { createEnvelopeVault, createMemoryKeyStore, type EnvelopeVault } from './envelope.ts';

export type MemoryVault = EnvelopeVault;

export const createMemoryVault = (options: { masterKey?: Uint8Array } = {}): MemoryVault =>
  createEnvelopeVault(createMemoryKeyStore(), options.masterKey ?? randomBytes(32));
