/**
 * Real parallelism against one code: several OS processes on one SQLite file, and 16
 * connections on PostgreSQL, all verifying the same valid TOTP code. Exactly one succeeds,
 * because every attempt appends at the version it read and the losers decide again.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresEventStore } from '../../adapters/store/postgres.ts';
import { createSqliteEventStore } from '../../adapters/store/sqlite.ts';
import { createMemoryVault } from '../../adapters/vault/memory.ts';
import { createSqliteVault } from '../../adapters/vault/sqlite.ts';
import { createEngine, type VerifyOutcome } from '../../app/engine.ts';
import { fold } from '../../domain/device.ts';
import { decodeEvent, type DeviceEvent } from '../../domain/events.ts';
import { deviceStream } from '../../domain/ids.ts';
import { hotpCode } from '../../domain/kinds/oath.ts';
import type { EventStore } from '../../domain/ports.ts';
import { createTestDatabase } from '../support/postgres.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const KEY = Buffer.from('12345678901234567890');
const NOW = 1_800_000_000_000;
const CODE = hotpCode(KEY, Math.floor(NOW / 30_000), 6);
const random = { bytes: (n: number) => randomBytes(n) };

const outcomes = (rs: readonly VerifyOutcome[]) => ({
  accepted: rs.filter((r) => r.ok).length,
  reasons: rs.filter((r): r is Extract<VerifyOutcome, { ok: false }> => !r.ok).map((r) => r.reason),
});

const streamTypes = async (store: EventStore, deviceId: string) => {
  const read = await store.readStream(deviceStream(deviceId));
  return read.events.map((e) => e.type);
};

describe('one TOTP code verified in parallel', () => {
  it('several OS processes on one SQLite file: exactly one succeeds', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fs-parallel-'));
    const path = join(dir, 'fs.db');
    const master = randomBytes(32);
    const store = createSqliteEventStore({ path });
    const vault = createSqliteVault(path, master);
    // Throttling off, so every loser is judged on the code itself (a replay), not refused.
    const engine = createEngine({ store, vault, random, clock: { now: () => NOW }, policy: { throttle: { totp: { factor: 0 } } } });
    const reg = await engine.register({ kind: 'totp', userId: 'alice', secret: KEY, confirmed: true })();
    if (reg._tag === 'Left') throw new Error(reg.left.message);
    await vault.close();
    await store.close();

    const workers = Array.from({ length: 6 }, () =>
      spawn(process.execPath, ['--import', 'tsx', join(here, 'fixtures/verify-worker.ts'), path, reg.right.deviceId, CODE, String(NOW)], {
        cwd: root,
        env: { ...process.env, FACTORSTREAM_MASTER_KEY: master.toString('hex') },
      }),
    );
    const outputs = workers.map(
      (w) =>
        new Promise<string[]>((resolveLines, reject) => {
          let out = '';
          let err = '';
          w.stdout.on('data', (d: Buffer) => {
            out += d.toString();
            // Release everyone together once all are ready.
            if (out.startsWith('ready\n') && !(w as unknown as { ready?: boolean }).ready) {
              (w as unknown as { ready?: boolean }).ready = true;
              readyCount++;
              if (readyCount === workers.length) for (const x of workers) x.stdin.write('go\n');
            }
          });
          w.stderr.on('data', (d: Buffer) => (err += d.toString()));
          w.on('exit', (code) => (code === 0 ? resolveLines(out.trim().split('\n')) : reject(new Error(`worker exited ${code}: ${err}`))));
        }),
    );
    let readyCount = 0;
    const results = (await Promise.all(outputs)).map((lines) => {
      const r = JSON.parse(lines[lines.length - 1]!) as { _tag: string; right: VerifyOutcome };
      expect(r._tag).toBe('Right');
      return r.right;
    });
    const { accepted, reasons } = outcomes(results);
    expect(accepted).toBe(1);
    expect(reasons).toEqual(Array(5).fill('replay'));

    const reopened = createSqliteEventStore({ path });
    const types = await streamTypes(reopened, reg.right.deviceId);
    expect(types.filter((t) => t === 'TokenVerified')).toHaveLength(1);
    expect(types.filter((t) => t === 'VerificationFailed')).toHaveLength(5);
    await reopened.close();
  }, 120_000);

  describe('16 connections on PostgreSQL', () => {
    let db: Awaited<ReturnType<typeof createTestDatabase>>;
    beforeAll(async () => {
      db = await createTestDatabase('fs_parallel');
    });
    afterAll(async () => {
      await db?.drop();
    });

    it('exactly one succeeds, and the stream holds exactly what happened', async () => {
      const vault = createMemoryVault();
      const stores = await Promise.all(
        Array.from({ length: 16 }, () => createPostgresEventStore({ connectionString: db.url, schema: 'parallel', max: 1 })),
      );
      try {
        const engines = stores.map((store) =>
          createEngine({ store, vault, random, clock: { now: () => NOW }, policy: { throttle: { totp: { factor: 0 } } } }),
        );
        const reg = await engines[0]!.register({ kind: 'totp', userId: 'bob', secret: KEY, confirmed: true })();
        if (reg._tag === 'Left') throw new Error(reg.left.message);
        const results = await Promise.all(engines.map((e) => e.verify(reg.right.deviceId, CODE)()));
        const { accepted, reasons } = outcomes(
          results.map((r) => {
            if (r._tag === 'Left') throw new Error(r.left.message);
            return r.right;
          }),
        );
        expect(accepted).toBe(1);
        expect(reasons).toEqual(Array(15).fill('replay'));

        const read = await stores[0]!.readStream(deviceStream(reg.right.deviceId));
        const events = read.events.map((e) => {
          const d = decodeEvent(e.type, e.data);
          if (d._tag === 'Left') throw new Error(d.left);
          return d.right as DeviceEvent;
        });
        expect(events.filter((e) => e.type === 'TokenVerified')).toHaveLength(1);
        expect(events.filter((e) => e.type === 'VerificationFailed')).toHaveLength(15);
        const state = fold(events);
        expect(state.status === 'registered' && state.throttle.failureCount).toBe(15);
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
    }, 120_000);
  });
});
