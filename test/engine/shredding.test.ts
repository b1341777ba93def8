/**
 * Crypto-shredding on PostgreSQL: after a user's erasure, a pg_dump of the whole database
 * holds none of the secret's bytes (raw, hex, base32), the backup codes or the address, the
 * events are all still there and still replay, and the sealed values can never be opened
 * again. (The same check on a raw SQLite file: test/cli/read-side.test.ts.)
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base32 } from '@otplib/plugin-base32-scure';
import { createPostgresEventStore } from '../../adapters/store/postgres.ts';
import { createPostgresVault } from '../../adapters/vault/postgres.ts';
import { createEngine } from '../../app/engine.ts';
import { fold } from '../../domain/device.ts';
import { decodeEvent, type DeviceEvent } from '../../domain/events.ts';
import { deviceStream } from '../../domain/ids.ts';
import { VaultError } from '../../domain/ports.ts';
import { createTestDatabase } from '../support/postgres.ts';

const T = 1_800_000_000_000;

describe('crypto-shredding on PostgreSQL', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    db = await createTestDatabase('fs_shred');
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('leaves no secret, code or address in a dump, and the history intact', async () => {
    const store = await createPostgresEventStore({ connectionString: db.url });
    const vault = createPostgresVault({ connectionString: db.url, schema: 'vault' }, randomBytes(32));
    const engine = createEngine({ store, vault, clock: { now: () => T }, random: { bytes: (n) => randomBytes(n) } });
    try {
      const key = randomBytes(20);
      const totp = await engine.register({ kind: 'totp', userId: 'erin', secret: key, confirmed: true })();
      const email = await engine.register({ kind: 'email', userId: 'erin', destination: 'erin.private@example.net', confirmed: true })();
      const backup = await engine.issueBackupCodes({ userId: 'erin' })();
      if (totp._tag === 'Left' || email._tag === 'Left' || backup._tag === 'Left') throw new Error('setup failed');
      const sealed = (await store.readStream(deviceStream(totp.right.deviceId))).events[0]!.data as { config: { secret: string } };
      const before = (await store.readAll()).events.length;

      const erased = await engine.eraseUser('erin', 'erasure request')();
      expect(erased).toMatchObject({ _tag: 'Right', right: { removed: expect.arrayContaining([totp.right.deviceId, email.right.deviceId]) } });

      const dump = execFileSync('pg_dump', ['--no-owner', '--data-only', db.url], { maxBuffer: 64 * 1024 * 1024 });
      expect(dump.length).toBeGreaterThan(1000);
      const needles = [
        key,
        Buffer.from(key.toString('hex')),
        Buffer.from(base32.encode(key).replace(/=+$/, '')),
        Buffer.from('erin.private@example.net'),
        ...backup.right.codes.map((c) => Buffer.from(c)),
      ];
      for (const n of needles) expect(dump.includes(n), `found ${n.toString('hex').slice(0, 12)}… in the dump`).toBe(false);

      // Nothing was deleted from the log; the device still replays, as removed.
      const after = await store.readAll();
      expect(after.events.length).toBe(before + 3);
      const events = (await store.readStream(deviceStream(totp.right.deviceId))).events.map((e) => {
        const d = decodeEvent(e.type, e.data);
        if (d._tag === 'Left') throw new Error(d.left);
        return d.right as DeviceEvent;
      });
      expect(fold(events)).toMatchObject({ status: 'registered', removed: true, userId: 'erin' });
      // The sealed secret is still in the event, and can never be opened again.
      await expect(vault.open(totp.right.deviceId, sealed.config.secret)).rejects.toSatisfy(
        (e: unknown) => e instanceof VaultError && e.code === 'key-shredded',
      );
    } finally {
      await vault.close();
      await store.close();
    }
  }, 60_000);
});
