/**
 * Group commit in the SQLite store: appends issued in one turn of the event loop share one
 * BEGIN IMMEDIATE … COMMIT (one fsync), each with its own expected-version check and result;
 * an append that fails is rolled back alone; nothing is acknowledged before the COMMIT; a
 * group that cannot commit fails as a whole. And through the engine: concurrent verifications
 * from one process share commits and each gets the outcome it would get alone.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSqliteEventStore } from '../../../adapters/store/sqlite.ts';
import { createMemoryVault } from '../../../adapters/vault/memory.ts';
import { createEngine } from '../../../app/engine.ts';
import { deviceStream } from '../../../domain/ids.ts';
import { parseOtpauthUri } from '../../../domain/kinds/uri.ts';
import type { NewEvent, RecordedEvent } from '../../../domain/ports.ts';
import { ok, seededRandom, T0, totpAt } from '../../engine/harness.ts';

const event = (data: Record<string, unknown> = {}): NewEvent => {
  const eventId = randomUUID();
  return { eventId, type: 'Tested', data, metadata: { eventId } };
};

let dir: string;
let path: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'factorstream-group-'));
  path = join(dir, 'events.db');
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('SQLite group commit', () => {
  it('writes appends issued together in one commit, each with its own result', async () => {
    const store = createSqliteEventStore({ path });
    try {
      const before = store.stats();
      const streams = Array.from({ length: 40 }, (_, i) => `group-${i}`);
      const results = await Promise.all(streams.map((s) => store.appendToStream(s, [event({ s })], 0)));
      expect(results.every((r) => r.ok && r.version === 1 && r.written === true)).toBe(true);
      const after = store.stats();
      expect(after.commits - before.commits).toBe(1);
      expect(after.appends - before.appends).toBe(40);
      for (const s of streams) expect((await store.readStream(s)).version).toBe(1);
      // Positions follow the order the appends were issued in.
      const positions = results.map((r) => (r.ok ? r.position : ''));
      expect([...positions].sort()).toEqual(positions);
    } finally {
      await store.close();
    }
  });

  it('a conflict, a repeated event id and an idempotent retry in the group fail or succeed alone', async () => {
    const store = createSqliteEventStore({ path });
    const seen: RecordedEvent[] = [];
    const sub = store.subscribe({ onEvents: async (events) => void seen.push(...events) });
    try {
      const a = [event({ n: 'a1' })];
      const d = [event({ n: 'd1' }), event({ n: 'd2' }), event({ n: 'd3' })];
      const before = store.stats().commits;
      const settled = await Promise.allSettled([
        store.appendToStream('s-a', a, 0), // writes version 1
        store.appendToStream('s-a', [event()], 0), // same stream, same expected version: conflict
        store.appendToStream('s-b', [event()], 5), // wrong expected version: conflict
        store.appendToStream('s-c', [event(), a[0]!], 0), // reuses a's event id: refused, rolled back alone
        store.appendToStream('s-a', a, 0), // the first append again: an idempotent retry
        store.appendToStream('s-d', d, 0), // three events
      ]);
      expect(store.stats().commits - before).toBe(1);
      const [r1, r2, r3, r4, r5, r6] = settled;
      expect(r1).toMatchObject({ status: 'fulfilled', value: { ok: true, version: 1 } });
      expect(r1.status === 'fulfilled' && r1.value.ok && r1.value.written).toBe(true);
      // The conflict reports what it missed: a's event, written earlier in the same group.
      expect(r2).toMatchObject({ status: 'fulfilled', value: { ok: false, expectedVersion: 0, actualVersion: 1 } });
      expect(r2.status === 'fulfilled' && !r2.value.ok && r2.value.tail?.map((e) => e.eventId)).toEqual([a[0]!.eventId]);
      expect(r3).toEqual({ status: 'fulfilled', value: { ok: false, expectedVersion: 5, actualVersion: 0 } });
      expect(r4).toMatchObject({ status: 'rejected', reason: { name: 'StoreError', code: 'invalid' } });
      expect(r5.status === 'fulfilled' && r1.status === 'fulfilled' && r5.value).toEqual(r1.status === 'fulfilled' && r1.value);
      expect(r5.status === 'fulfilled' && r5.value.ok && r5.value.written).toBe(false);
      expect(r6).toMatchObject({ status: 'fulfilled', value: { ok: true, version: 3 } });

      expect((await store.readStream('s-a')).events.map((e) => e.eventId)).toEqual([a[0]!.eventId]);
      expect((await store.readStream('s-b')).version).toBe(0);
      expect((await store.readStream('s-c')).version).toBe(0); // not even its first event
      expect((await store.readStream('s-d')).events.map((e) => e.eventId)).toEqual(d.map((e) => e.eventId));
      // Subscribers hear of the group's events.
      const deadline = Date.now() + 5000;
      while (seen.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      expect(seen.map((e) => e.streamName)).toEqual(['s-a', 's-d', 's-d', 's-d']);
    } finally {
      await sub.close();
      await store.close();
    }
  });

  it('acknowledges nothing before the commit, and a group that cannot commit fails whole, writing nothing', async () => {
    const store = createSqliteEventStore({ path, busyTimeoutMs: 50 });
    const other = new Database(path);
    try {
      // Another connection holds the write lock: BEGIN IMMEDIATE of the group cannot start.
      other.exec('BEGIN IMMEDIATE');
      let acknowledged = 0;
      const pending = ['x', 'y', 'z'].map((s) =>
        store.appendToStream(s, [event()], 0).then(
          (r) => {
            acknowledged++;
            return r;
          },
          (e: unknown) => e,
        ),
      );
      const outcomes = await Promise.all(pending);
      expect(acknowledged).toBe(0);
      for (const o of outcomes) expect(o).toMatchObject({ name: 'StoreError', code: 'unavailable' });
      other.exec('ROLLBACK');
      for (const s of ['x', 'y', 'z']) expect((await store.readStream(s)).version).toBe(0);

      // Once the lock is free, the same appends go through; a reader on another connection sees
      // them when, and not before, they are acknowledged.
      const appends = ['x', 'y', 'z'].map((s) => store.appendToStream(s, [event()], 0));
      expect((other.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n).toBe(0);
      const results = await Promise.all(appends);
      expect(results.every((r) => r.ok)).toBe(true);
      expect((other.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n).toBe(3);
    } finally {
      other.close();
      await store.close();
    }
  });

  it('writes appends still queued when the store is closed, then refuses new ones', async () => {
    const store = createSqliteEventStore({ path });
    const queued = store.appendToStream('late', [event()], 0);
    await store.close();
    expect(await queued).toMatchObject({ ok: true, version: 1 });
    await expect(store.appendToStream('late', [event()], 1)).rejects.toMatchObject({ code: 'closed' });
    const again = createSqliteEventStore({ path });
    expect((await again.readStream('late')).version).toBe(1);
    await again.close();
  });

  it('splits a queue longer than maxGroupSize over several commits', async () => {
    const store = createSqliteEventStore({ path, maxGroupSize: 8 });
    try {
      const before = store.stats().commits;
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.appendToStream(`split-${i}`, [event()], 0)));
      expect(results.every((r) => r.ok)).toBe(true);
      expect(store.stats().commits - before).toBe(3);
    } finally {
      await store.close();
    }
  });

  it('without group commit, every append is its own commit', async () => {
    const store = createSqliteEventStore({ path, groupCommit: false });
    try {
      const before = store.stats().commits;
      await Promise.all(Array.from({ length: 5 }, (_, i) => store.appendToStream(`solo-${i}`, [event()], 0)));
      expect(store.stats().commits - before).toBe(5);
    } finally {
      await store.close();
    }
  });
});

describe('SQLite group commit through the engine', () => {
  it('concurrent verifications share commits; each gets its own outcome; one code works once', async () => {
    const store = createSqliteEventStore({ path });
    let t = T0;
    const engine = createEngine({
      store,
      vault: createMemoryVault(),
      clock: { now: () => t },
      random: seededRandom('group'),
      policy: { throttle: { totp: { factor: 0 } } },
    });
    try {
      const devices = [];
      for (let i = 0; i < 8; i++) {
        const r = await ok(engine.register({ kind: 'totp', userId: `user-${i}`, confirmed: true }));
        const p = parseOtpauthUri(r.otpauthUri!);
        if (p._tag === 'Left') throw new Error(p.left);
        devices.push({ deviceId: r.deviceId, key: p.right.key });
      }
      const rounds = 5;
      const before = store.stats();
      for (let round = 0; round < rounds; round++) {
        t += 30_000;
        // Per device: its right code, a wrong code, and (device 0) its right code a second time.
        const calls = devices.flatMap((d, i) => [
          { i, expect: 'ok', run: engine.verify(d.deviceId, totpAt(d.key, t)) },
          { i, expect: 'invalid', run: engine.verify(d.deviceId, '000000') },
          ...(i === 0 ? [{ i, expect: 'second', run: engine.verify(d.deviceId, totpAt(d.key, t)) }] : []),
        ]);
        const outcomes = await Promise.all(calls.map((c) => ok(c.run)));
        calls.forEach((c, k) => {
          const o = outcomes[k]!;
          if (c.expect === 'invalid') expect(o).toMatchObject({ ok: false, reason: 'invalid' });
        });
        // Device 0's code was tried twice at once: exactly one of the two attempts succeeded.
        const zero = calls.map((c, k) => ({ c, o: outcomes[k]! })).filter((x) => x.c.i === 0 && x.c.expect !== 'invalid');
        expect(zero.filter((x) => x.o.ok)).toHaveLength(1);
        expect(zero.filter((x) => !x.o.ok && x.o.reason === 'replay')).toHaveLength(1);
        for (const x of calls.map((c, k) => ({ c, o: outcomes[k]! })).filter((x) => x.c.i !== 0 && x.c.expect === 'ok'))
          expect(x.o).toMatchObject({ ok: true });
      }
      const after = store.stats();
      const appends = after.appends - before.appends;
      const commits = after.commits - before.commits;
      expect(appends).toBeGreaterThanOrEqual(rounds * 17);
      // Shared: far fewer commits than appends (a conflict and its retry may take another).
      expect(commits).toBeLessThan(appends / 3);
      for (const d of devices) {
        const read = await store.readStream(deviceStream(d.deviceId));
        expect(read.version).toBe(1 + rounds * (d === devices[0] ? 3 : 2));
        expect((await ok(engine.verifyChain({ device: d.deviceId }))).broken).toBeNull();
      }
    } finally {
      await store.close();
    }
  });
});
