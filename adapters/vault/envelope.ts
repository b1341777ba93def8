/**
 * A Vault over any key store: per-device data keys, wrapped by a master key, kept in a
 * KeyStore (memory, SQLite or PostgreSQL). Opened data keys are cached in memory.
 *
 * Events are signed under a MAC key derived from the master key. Each MAC key is also kept in
 * the key store, wrapped like a data key under the row `event-mac:<key id>`, so that a master
 * key rotation (which re-wraps every row) keeps the events signed before it verifiable.
 *
 * The key store also keeps a check value sealed under the master key, so that a wrong
 * master key is reported as such at once instead of as tampering on every device.
 */
import { VaultError, type Digester, type EventSigner, type Vault } from '../../domain/ports.ts';
import { checkMasterKey, digesterFor, eventMacKeyOf, newDataKey, openWith, sealWith, signerFor } from './crypto.ts';

export interface KeyStore {
  /** The wrapped data key; null when it was shredded; undefined when there never was one. */
  get(deviceId: string): Promise<string | null | undefined>;
  /** Stores a wrapped key unless the device already has a row (live or shredded). */
  insert(deviceId: string, wrapped: string): Promise<void>;
  /** Destroys the wrapped key, leaving a tombstone. */
  shred(deviceId: string): Promise<void>;
  /** Every live (device id, wrapped key). */
  list(): Promise<Array<readonly [string, string]>>;
  /** Replaces wrapped keys and the check value in one transaction (master key rotation). */
  rewrap(entries: ReadonlyArray<readonly [string, string]>, check: string): Promise<void>;
  getCheck(): Promise<string | null>;
  /** Sets the check value if there is none; returns the one in force. */
  initCheck(check: string): Promise<string>;
  close(): Promise<void>;
}

export interface EnvelopeVault extends Vault {
  /** Resolves once the master key has been checked against the key store; rejects if it is wrong. */
  ready(): Promise<void>;
  /** Re-wraps every data key (and event MAC key) under a new master key; returns how many data keys were re-wrapped. */
  rotateMaster(newMasterKey: Uint8Array): Promise<number>;
  close(): Promise<void>;
}

const CHECK_PLAINTEXT = Buffer.from('factorstream master key check v1');
const CHECK_AAD = 'master-check';
const keyAad = (deviceId: string) => `datakey:${deviceId}`;
const macRow = (keyId: string) => `event-mac:${keyId}`;

const verifyCheck = (master: Uint8Array, check: string): void => {
  try {
    openWith(master, check, CHECK_AAD, 'the master key check');
  } catch {
    throw new VaultError('wrong-master-key', 'the master key does not match the one this key store was created with');
  }
};

export const createEnvelopeVault = (keys: KeyStore, masterKey: Uint8Array): EnvelopeVault => {
  checkMasterKey(masterKey);
  let master = masterKey;
  const checked = keys.initCheck(sealWith(master, CHECK_PLAINTEXT, CHECK_AAD)).then((c) => verifyCheck(master, c));
  checked.catch(() => {}); // reported to whoever awaits it, not as an unhandled rejection
  const opened = new Map<string, { key: Uint8Array; digest: Digester }>();

  const dataKey = async (deviceId: string) => {
    await checked;
    const cached = opened.get(deviceId);
    if (cached) return cached;
    const wrapped = await keys.get(deviceId);
    if (wrapped === null) throw new VaultError('key-shredded', `the key of device ${deviceId} was destroyed when the device was removed`);
    if (wrapped === undefined) throw new VaultError('no-key', `the vault holds no key for device ${deviceId}`);
    const key = openWith(master, wrapped, keyAad(deviceId), `the data key of device ${deviceId}`);
    const entry = { key, digest: digesterFor(key) };
    opened.set(deviceId, entry);
    return entry;
  };

  const verifiers = new Map<string, EventSigner>();
  let current: Promise<EventSigner> | null = null;
  /** The signer of the master key in force, recorded in the key store before its first use. */
  const eventSigner = (): Promise<EventSigner> =>
    (current ??= (async () => {
      await checked;
      const key = eventMacKeyOf(master);
      const signer = signerFor(key);
      await keys.insert(macRow(signer.keyId), sealWith(master, key, keyAad(macRow(signer.keyId))));
      verifiers.set(signer.keyId, signer);
      return signer;
    })().catch((e: unknown) => {
      current = null;
      throw e;
    }));

  return {
    ready: () => checked,
    eventSigner,
    eventVerifier: async (keyId) => {
      await checked;
      const known = verifiers.get(keyId);
      if (known) return known;
      const wrapped = typeof keyId === 'string' && /^[0-9a-f]{16}$/.test(keyId) ? await keys.get(macRow(keyId)) : undefined;
      if (wrapped === null || wrapped === undefined) return null;
      const signer = signerFor(openWith(master, wrapped, keyAad(macRow(keyId)), `the event MAC key ${keyId}`));
      if (signer.keyId !== keyId) throw new VaultError('tampered', `the event MAC key stored as ${keyId} is another key`);
      verifiers.set(keyId, signer);
      return signer;
    },
    createDeviceKey: async (deviceId) => {
      await checked;
      const existing = await keys.get(deviceId);
      if (existing === null) throw new VaultError('key-shredded', `device ${deviceId} was removed; its key cannot be recreated`);
      if (existing === undefined) await keys.insert(deviceId, sealWith(master, newDataKey(), keyAad(deviceId)));
    },
    seal: async (deviceId, plaintext) => sealWith((await dataKey(deviceId)).key, plaintext, `device:${deviceId}`),
    open: async (deviceId, sealed) =>
      openWith((await dataKey(deviceId)).key, sealed, `device:${deviceId}`, `a sealed value of device ${deviceId}`),
    digester: async (deviceId) => (await dataKey(deviceId)).digest,
    shred: async (deviceId) => {
      opened.delete(deviceId);
      await keys.shred(deviceId);
    },
    rotateMaster: async (newMasterKey) => {
      await checked;
      checkMasterKey(newMasterKey);
      const live = await keys.list();
      const rewrapped = live.map(([id, w]) => {
        const key = openWith(master, w, keyAad(id), `the data key of device ${id}`);
        return [id, sealWith(newMasterKey, key, keyAad(id))] as const;
      });
      await keys.rewrap(rewrapped, sealWith(newMasterKey, CHECK_PLAINTEXT, CHECK_AAD));
      master = newMasterKey;
      current = null; // the next event is signed under the new master key's MAC key
      return rewrapped.filter(([id]) => !id.startsWith('event-mac:')).length;
    },
    close: () => keys.close(),
  };
};

/** A key store in process memory. */
export const createMemoryKeyStore = (): KeyStore => {
  const rows = new Map<string, string | null>();
  let check: string | null = null;
  return {
    get: async (id) => rows.get(id),
    insert: async (id, wrapped) => {
      if (!rows.has(id)) rows.set(id, wrapped);
    },
    shred: async (id) => {
      rows.set(id, null);
    },
    list: async () => [...rows].filter((r): r is [string, string] => r[1] !== null),
    rewrap: async (entries, c) => {
      for (const [id, w] of entries) rows.set(id, w);
      check = c;
    },
    getCheck: async () => check,
    initCheck: async (c) => (check ??= c),
    close: async () => {},
  };
};
