import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { VaultError } from '../../../domain/ports.ts';
import { createEnvelopeVault, createMemoryKeyStore, type KeyStore } from '../../../adapters/vault/envelope.ts';
import { loadMasterKey, parseMasterKey, pendingRotationKey, rotateKeyFile } from '../../../adapters/vault/master-key.ts';
import { createPostgresKeyStore } from '../../../adapters/vault/postgres.ts';
import { createSqliteKeyStore } from '../../../adapters/vault/sqlite.ts';
import { createTestDatabase } from '../../support/postgres.ts';

const id = () => {
  const h = randomBytes(16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20)}`;
};

const vaultError = async (p: Promise<unknown>): Promise<VaultError> => {
  try {
    await p;
  } catch (e) {
    if (e instanceof VaultError) return e;
    throw e;
  }
  throw new Error('expected a VaultError');
};

/**
 * One suite, run against each key store. `fresh()` makes a new, empty key store and returns
 * an opener: each call of the opener gives a store over that same data (a reopening).
 */
const describeKeyStore = (name: string, setup: () => Promise<{ fresh: () => () => KeyStore; cleanup: () => Promise<void> }>) =>
  describe(`vault on the ${name} key store`, () => {
    let fresh: () => () => KeyStore;
    let cleanup: () => Promise<void>;
    const opened: KeyStore[] = [];
    let open: () => KeyStore;
    const store = () => {
      const s = open();
      opened.push(s);
      return s;
    };
    beforeAll(async () => ({ fresh, cleanup } = await setup()));
    beforeEach(() => {
      open = fresh();
    });
    afterAll(async () => {
      for (const s of opened) await s.close().catch(() => {});
      await cleanup();
    });

    it('seals and opens a secret; the sealed form holds none of its bytes', async () => {
      const vault = createEnvelopeVault(store(), randomBytes(32));
      const d = id();
      await vault.createDeviceKey(d);
      const secret = randomBytes(20);
      const sealed = await vault.seal(d, secret);
      expect(sealed).toMatch(/^v1\./);
      expect(Buffer.from(sealed).includes(secret)).toBe(false);
      expect(Buffer.from(await vault.open(d, sealed))).toEqual(secret);
    });

    it('keeps keys across reopening with the same master key, and digests are stable', async () => {
      const master = randomBytes(32);
      const d = id();
      const first = createEnvelopeVault(store(), master);
      await first.createDeviceKey(d);
      const sealed = await first.seal(d, Buffer.from('payload'));
      const digest = (await first.digester(d))('123456');
      const second = createEnvelopeVault(store(), master);
      expect(Buffer.from(await second.open(d, sealed)).toString()).toBe('payload');
      expect((await second.digester(d))('123456')).toBe(digest);
      expect((await second.digester(d))('123457')).not.toBe(digest);
    });

    it('refuses a wrong master key with a clear error and touches nothing', async () => {
      const master = randomBytes(32);
      const d = id();
      const v = createEnvelopeVault(store(), master);
      await v.createDeviceKey(d);
      const sealed = await v.seal(d, Buffer.from('x'));
      const wrong = createEnvelopeVault(store(), randomBytes(32));
      const e = await vaultError(wrong.ready());
      expect(e.code).toBe('wrong-master-key');
      expect((await vaultError(wrong.open(d, sealed))).code).toBe('wrong-master-key');
      // The right key still works afterwards.
      expect(Buffer.from(await createEnvelopeVault(store(), master).open(d, sealed)).toString()).toBe('x');
    });

    it('detects tampered and truncated ciphertext', async () => {
      const v = createEnvelopeVault(store(), randomBytes(32));
      const d = id();
      await v.createDeviceKey(d);
      const sealed = await v.seal(d, randomBytes(20));
      const [ver, iv, ct, tag] = sealed.split('.') as [string, string, string, string];
      const flipped = Buffer.from(ct, 'base64url');
      flipped[0]! ^= 1;
      for (const bad of [
        `${ver}.${iv}.${flipped.toString('base64url')}.${tag}`,
        `${ver}.${iv}.${ct.slice(0, -4)}.${tag}`,
        `${ver}.${iv}.${ct}`,
        'garbage',
      ]) {
        const e = await vaultError(v.open(d, bad));
        expect(e.code).toBe('tampered');
      }
      // A value sealed for one device does not open for another.
      const other = id();
      await v.createDeviceKey(other);
      expect((await vaultError(v.open(other, sealed))).code).toBe('tampered');
    });

    it('shreds a key for good: later opens fail with key-shredded, also after reopening', async () => {
      const master = randomBytes(32);
      const v = createEnvelopeVault(store(), master);
      const d = id();
      await v.createDeviceKey(d);
      const sealed = await v.seal(d, Buffer.from('secret'));
      await v.shred(d);
      expect((await vaultError(v.open(d, sealed))).code).toBe('key-shredded');
      const again = createEnvelopeVault(store(), master);
      expect((await vaultError(again.open(d, sealed))).code).toBe('key-shredded');
      expect((await vaultError(again.createDeviceKey(d))).code).toBe('key-shredded');
      expect((await vaultError(again.open(id(), sealed))).code).toBe('no-key');
    });

    it('rotates the master key: every data key re-wrapped, sealed values unchanged and still open', async () => {
      const oldKey = randomBytes(32);
      const v = createEnvelopeVault(store(), oldKey);
      const devices = [id(), id(), id()];
      const sealed: string[] = [];
      for (const d of devices) {
        await v.createDeviceKey(d);
        sealed.push(await v.seal(d, Buffer.from(d)));
      }
      const newKey = randomBytes(32);
      expect(await v.rotateMaster(newKey)).toBeGreaterThanOrEqual(3);
      const after = createEnvelopeVault(store(), newKey);
      for (const [i, d] of devices.entries()) expect(Buffer.from(await after.open(d, sealed[i]!)).toString()).toBe(d);
      expect((await vaultError(createEnvelopeVault(store(), oldKey).ready())).code).toBe('wrong-master-key');
    });

    it('signs events under a key derived from the master key; a rotation keeps the old key verifiable', async () => {
      const oldKey = randomBytes(32);
      const v = createEnvelopeVault(store(), oldKey);
      const before = await v.eventSigner();
      expect(before.keyId).toMatch(/^[0-9a-f]{16}$/);
      const mac = before.mac('an event');
      expect(mac).toMatch(/^[A-Za-z0-9_-]{43}$/);
      // Derived: the same master key gives the same key after a reopening; another gives another.
      expect((await createEnvelopeVault(store(), oldKey).eventSigner()).mac('an event')).toBe(mac);
      const other = await createEnvelopeVault(createMemoryKeyStore(), randomBytes(32)).eventSigner();
      expect(other.keyId).not.toBe(before.keyId);
      expect(other.mac('an event')).not.toBe(mac);
      expect(mac).not.toContain(Buffer.from(oldKey).toString('base64url').slice(0, 12));

      const newKey = randomBytes(32);
      await v.rotateMaster(newKey);
      const after = createEnvelopeVault(store(), newKey);
      const now = await after.eventSigner();
      expect(now.keyId).not.toBe(before.keyId);
      // The events signed before the rotation still verify, through the key store alone.
      const old = await after.eventVerifier(before.keyId);
      expect(old?.mac('an event')).toBe(mac);
      expect((await after.eventVerifier(now.keyId))?.mac('x')).toBe(now.mac('x'));
      expect(await after.eventVerifier('0123456789abcdef')).toBeNull();
      expect(await after.eventVerifier('not an id')).toBeNull();
    });
  });

describeKeyStore('memory', async () => ({
  fresh: () => {
    const shared = createMemoryKeyStore();
    return () => ({ ...shared, close: async () => {} });
  },
  cleanup: async () => {},
}));

describeKeyStore('SQLite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fs-vault-'));
  let n = 0;
  return {
    fresh: () => {
      const path = join(dir, `keys-${n++}.db`);
      return () => createSqliteKeyStore(path);
    },
    cleanup: async () => {},
  };
});

describeKeyStore('PostgreSQL', async () => {
  const db = await createTestDatabase('fs_vault');
  let n = 0;
  return {
    fresh: () => {
      const schema = `vault_${n++}`;
      return () => createPostgresKeyStore({ connectionString: db.url, schema });
    },
    cleanup: async () => {
      await db.drop();
    },
  };
});

describe('PostgreSQL key store and its connections', () => {
  it('outlives connections the server terminates (an idle one must not end the process)', async () => {
    const db = await createTestDatabase('fs_vault_kill');
    const keys = createPostgresKeyStore({ connectionString: db.url, schema: 'killed' });
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      const vault = createEnvelopeVault(keys, randomBytes(32));
      await vault.ready();
      await vault.createDeviceKey('dev-1');
      const killed = await admin.query(
        'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
      );
      expect(killed.rows.length).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 100)); // the idle connections hear of it
      // The next writes and reads go to the database on new connections.
      await vault.createDeviceKey('dev-2');
      const sealed = await vault.seal('dev-2', new TextEncoder().encode('a secret'));
      expect(new TextDecoder().decode(await vault.open('dev-2', sealed))).toBe('a secret');
      expect(typeof (await keys.get('dev-2'))).toBe('string');
    } finally {
      await admin.end();
      await keys.close();
      await db.drop();
    }
  });
});

describe('master key', () => {
  it('comes from FACTORSTREAM_MASTER_KEY as hex or base64', () => {
    const key = randomBytes(32);
    expect(Buffer.from(loadMasterKey({ env: { FACTORSTREAM_MASTER_KEY: key.toString('hex') } }).key)).toEqual(key);
    expect(Buffer.from(loadMasterKey({ env: { FACTORSTREAM_MASTER_KEY: key.toString('base64') } }).key)).toEqual(key);
  });

  it('rejects a key of the wrong size without echoing it', () => {
    const text = randomBytes(16).toString('hex');
    let message = '';
    try {
      parseMasterKey(text, 'FACTORSTREAM_MASTER_KEY');
    } catch (e) {
      message = (e as Error).message;
      expect((e as VaultError).code).toBe('wrong-master-key');
    }
    expect(message).toContain('16 bytes');
    expect(message).not.toContain(text);
  });

  it('creates a key file with mode 0600 on first use, then reads it back', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'fs-key-')), 'factorstream.db.key');
    const created = loadMasterKey({ env: {}, defaultFile: path, create: true });
    expect(created.created).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const read = loadMasterKey({ env: {}, defaultFile: path });
    expect(read.created).toBe(false);
    expect(Buffer.from(read.key)).toEqual(Buffer.from(created.key));
  });

  it('reports a missing key file clearly when it may not create one', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'fs-key-')), 'absent.key');
    expect(() => loadMasterKey({ env: {}, defaultFile: path })).toThrow(/absent\.key does not exist/);
  });

  it('rotates a key file crash-safely: the new key waits in <file>.new until the re-wrap commits', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'fs-key-')), 'k.key');
    const oldKey = loadMasterKey({ env: {}, defaultFile: path, create: true }).key;
    const newKey = randomBytes(32);
    await expect(
      rotateKeyFile(path, newKey, async () => {
        throw new Error('crash during re-wrap');
      }),
    ).rejects.toThrow('crash');
    // Interrupted: the old file is intact and the new key is pending beside it.
    expect(parseMasterKey(readFileSync(path, 'utf8'), 'k')).toEqual(Buffer.from(oldKey));
    expect(Buffer.from(pendingRotationKey(path)!)).toEqual(newKey);
    await rotateKeyFile(path, newKey, async () => {});
    expect(parseMasterKey(readFileSync(path, 'utf8'), 'k')).toEqual(newKey);
    expect(pendingRotationKey(path)).toBeNull();
  });
});
