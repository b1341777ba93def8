/**
 * The hostile-input rules and issue 14's import and metadata changes on PostgreSQL (a database
 * of this file's own): a refused enrolment leaves nothing; the django-otp import keeps the
 * pending e-mail code and its valid_until to the millisecond; a claimed actor is kept apart as
 * onBehalfOf; a wrong admin token is an AdminTokenRefused event. Run in-process (runMain).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryVault } from '../../adapters/vault/memory.ts';
import { systemRandom } from '../../adapters/system.ts';
import { openEventStore } from '../../adapters/store/factory.ts';
import { createEngine } from '../../app/engine.ts';
import { accessStreamOf } from '../../app/factor-streams.ts';
import type { EventStore } from '../../domain/ports.ts';
import { createTestDatabase } from '../support/postgres.ts';
import { runMain } from './run-main.ts';

const T = Date.UTC(2026, 0, 15, 12);
const at = (ms: number) => `@${ms / 1000}`;
let db: { url: string; drop: () => Promise<void> };
let dir: string;
const savedKey = process.env.FACTORSTREAM_MASTER_KEY;

beforeAll(async () => {
  db = await createTestDatabase('fs_hostile');
  dir = mkdtempSync(join(tmpdir(), 'fs-hostile-pg-'));
  // A PostgreSQL key store has no key file beside it: the master key comes from the environment.
  process.env.FACTORSTREAM_MASTER_KEY = randomBytes(32).toString('hex');
}, 60_000);
afterAll(async () => {
  if (savedKey === undefined) delete process.env.FACTORSTREAM_MASTER_KEY;
  else process.env.FACTORSTREAM_MASTER_KEY = savedKey;
  rmSync(dir, { recursive: true, force: true });
  await db.drop();
});

const count = async (sql: string, values: unknown[] = []): Promise<number> => {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    const tables = await c.query<{ schema: string }>("SELECT table_schema AS schema FROM information_schema.tables WHERE table_name = 'events' AND table_schema NOT LIKE 'pg_%' LIMIT 1");
    const schema = tables.rows[0]?.schema;
    if (schema === undefined) throw new Error('no events table in the test database');
    return Number((await c.query<{ n: string }>(sql.replace('$schema', `"${schema}"`), values)).rows[0]!.n);
  } finally {
    await c.end();
  }
};

describe('on PostgreSQL', () => {
  it('a refused enrolment (bad name, address, secret, config) leaves no device', async () => {
    const config = join(dir, 'bad.json');
    writeFileSync(config, JSON.stringify({ cooldownSeconds: 1e308 }));
    for (const args of [
      ['enroll', 'totp', '--user', 'pg-a', '--name', 'n'.repeat(5 * 1024 * 1024)],
      ['enroll', 'email', '--user', 'pg-a', '--to', 'a\u0000b@example.com'],
      ['enroll', 'totp', '--user', 'pg-a', '--secret', 'zz'],
      ['--config', config, 'enroll', 'email', '--user', 'pg-a', '--to', 'a@example.com'],
      ['--now', '@8639999999999', 'enroll', 'totp', '--user', 'pg-a'],
    ]) {
      const r = await runMain(['--store', db.url, ...args]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(await count(`SELECT count(*) AS n FROM $schema.events WHERE type = 'DeviceRegistered' AND data::text LIKE '%pg-a%'`)).toBe(0);
  }, 60_000);

  it('the django-otp import keeps the pending e-mail code, valid strictly before valid_until (rounded down to the ms)', async () => {
    const file = join(dir, 'dump.json');
    writeFileSync(
      file,
      JSON.stringify([
        { model: 'auth.user', pk: 1, fields: { username: 'pat', email: 'pat@example.com' } },
        ...[1, 2, 3].map((pk) => ({
          model: 'otp_email.emaildevice',
          pk,
          fields: { user: 1, name: 'Mail', confirmed: true, email: null, token: '864209', valid_until: '2026-01-15T12:02:00.250999Z', throttling_failure_count: 0, throttling_failure_timestamp: null },
        })),
        { model: 'otp_totp.totpdevice', pk: 1, fields: { user: 1, name: 'Phone', confirmed: true, key: '3132333435363738393031323334353637383930', throttling_failure_count: 1, throttling_failure_timestamp: '2026-01-15T11:59:59.000001Z' } },
      ]),
    );
    const r = await runMain(['--store', db.url, '--now', at(T), 'import', 'django-otp', file, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const ids = Object.fromEntries((r.json!.devices as { reference: string; deviceId: string }[]).map((d) => [d.reference, d.deviceId]));
    const validUntil = Date.UTC(2026, 0, 15, 12, 2, 0, 250);
    const verify = (ref: string, ms: number, token = '864209') => runMain(['--store', db.url, '--now', at(ms), 'verify', '--device', ids[ref]!, '--token', token, '--json']);
    expect((await verify('otp_email.emaildevice/1', validUntil - 1)).json).toMatchObject({ ok: true });
    expect((await verify('otp_email.emaildevice/2', validUntil)).json).toMatchObject({ ok: false, reason: 'expired' });
    expect((await verify('otp_email.emaildevice/3', validUntil + 1)).json).toMatchObject({ ok: false, reason: 'expired' });
    // The TOTP lock (1 failure, factor 1: 1 s) started at .000001: it ends at 12:00:00.001, not before.
    const shown = await runMain(['--store', db.url, '--now', at(T), 'show', '--device', ids['otp_totp.totpdevice/1']!, '--json']);
    expect(shown.json!.device.throttle.lockedUntil).toBe('2026-01-15T12:00:00.001Z');
    expect(await count(`SELECT count(*) AS n FROM $schema.events WHERE data::text LIKE '%864209%'`)).toBe(0);
    expect(await count(`SELECT count(*) AS n FROM $schema.events WHERE data::text LIKE '%pendingCode%'`)).toBe(3);
  }, 60_000);

  describe('event metadata', () => {
    let store: EventStore;
    beforeAll(async () => {
      store = await openEventStore(db.url);
    });
    afterAll(() => store.close());

    it('onBehalfOf is stored apart from the actor, the admin: form refused; AdminTokenRefused is appended and read back', async () => {
      const engine = createEngine({ store, vault: createMemoryVault(), sender: { send: async () => ({ ok: true }) }, clock: { now: () => T }, random: systemRandom });
      const reg = await engine.register({ kind: 'totp', userId: 'pg-b', confirmed: true })();
      if (reg._tag === 'Left') throw new Error(reg.left.message);
      const id = reg.right.deviceId;
      const renamed = await engine.rename(id, 'Work phone', { actor: 'admin:0123456789ab', onBehalfOf: 'helpdesk:erin' })();
      expect(renamed._tag).toBe('Right');
      const forged = await engine.rename(id, 'x', { actor: 'admin:0123456789ab', onBehalfOf: 'Admin:someone-else' })();
      expect(forged._tag === 'Left' && forged.left.code).toBe('invalid-command');
      const history = await engine.history(id)();
      if (history._tag === 'Left') throw new Error(history.left.message);
      expect(history.right.at(-1)!.metadata).toMatchObject({ actor: 'admin:0123456789ab', onBehalfOf: 'helpdesk:erin' });
      expect(history.right[0]!.metadata).not.toHaveProperty('onBehalfOf');

      const recorded = await engine.recordAdminTokenRefused({ address: '2001:db8::1', failureCount: 3, delayMs: 2000 }, { actor: 'dashboard' })();
      expect(recorded._tag).toBe('Right');
      const read = await store.readStream(accessStreamOf('2001:db8::1'));
      expect(read.events.map((e) => [e.type, e.data])).toEqual([['AdminTokenRefused', { address: '2001:db8::1', failureCount: 3, delayMs: 2000, at: T }]]);
      const verify = await runMain(['--store', db.url, 'audit', 'verify']);
      expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    }, 60_000);
  });
});
