/**
 * In-memory vault: per-device data keys wrapped by a master key, held in process memory.
 * Good for tests and for a library user who keeps keys elsewhere; the keys die with the
 * process, so sealed secrets do too. Durable key stores sit beside it in adapters/vault/.
 */
import { randomBytes } from 'node:crypto';
import { VaultError, type Digester, type Vault } from '../../domain/ports.ts';
import { checkMasterKey, digesterFor, newDataKey, openWith, sealWith } from './crypto.ts';

export interface MemoryVault extends Vault {
  /** Re-wraps every data key under a new master key; returns how many were re-wrapped. */
  rotateMaster(newMasterKey: Uint8Array): Promise<number>;
}

export const createMemoryVault = (options: { masterKey?: Uint8Array } = {}): MemoryVault => {
  let master = options.masterKey ?? randomBytes(32);
  checkMasterKey(master);
  const wrapped = new Map<string, string>();
  const shredded = new Set<string>();
  const opened = new Map<string, { key: Uint8Array; digest: Digester }>();

  const dataKey = (deviceId: string) => {
    const cached = opened.get(deviceId);
    if (cached) return cached;
    const w = wrapped.get(deviceId);
    if (w === undefined) {
      if (shredded.has(deviceId)) throw new VaultError('key-shredded', `the key of device ${deviceId} was destroyed when it was removed`);
      throw new VaultError('no-key', `the vault holds no key for device ${deviceId}`);
    }
    const key = openWith(master, w, `datakey:${deviceId}`, `the data key of device ${deviceId}`);
    const entry = { key, digest: digesterFor(key) };
    opened.set(deviceId, entry);
    return entry;
  };

  return {
    createDeviceKey: async (deviceId) => {
      if (wrapped.has(deviceId)) return;
      if (shredded.has(deviceId)) throw new VaultError('key-shredded', `device ${deviceId} was removed; its key cannot be recreated`);
      wrapped.set(deviceId, sealWith(master, newDataKey(), `datakey:${deviceId}`));
    },
    seal: async (deviceId, plaintext) => sealWith(dataKey(deviceId).key, plaintext, `device:${deviceId}`),
    open: async (deviceId, sealed) => openWith(dataKey(deviceId).key, sealed, `device:${deviceId}`, `a sealed value of device ${deviceId}`),
    digester: async (deviceId) => dataKey(deviceId).digest,
    shred: async (deviceId) => {
      wrapped.delete(deviceId);
      opened.delete(deviceId);
      shredded.add(deviceId);
    },
    rotateMaster: async (newMasterKey) => {
      checkMasterKey(newMasterKey);
      const rewrapped = new Map<string, string>();
      for (const [id, w] of wrapped) {
        const key = openWith(master, w, `datakey:${id}`, `the data key of device ${id}`);
        rewrapped.set(id, sealWith(newMasterKey, key, `datakey:${id}`));
      }
      for (const [id, w] of rewrapped) wrapped.set(id, w);
      master = newMasterKey;
      return rewrapped.size;
    },
  };
};
