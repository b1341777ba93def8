/**
 * The engine's state cache (domain/stream-cache.ts) under concurrent writers: several engines,
 * each with its own cache, on one store; races forced between a cached engine's read and its
 * append; idempotent retries whose stored events are another attempt's; a store that cannot
 * read a stream's tail or say whether it wrote; a stream that went back (a restored backup).
 * In every case the outcome is the one an engine without a cache gives, and the hash chain holds.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { isLeft } from 'fp-ts/lib/Either.js';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createMemoryEventStore } from '../../adapters/store/memory.ts';
import { createPostgresEventStore } from '../../adapters/store/postgres.ts';
import { createSqliteEventStore } from '../../adapters/store/sqlite.ts';
import { createMemoryVault } from '../../adapters/vault/memory.ts';
import { createEngine, type Engine, type VerifyOutcome } from '../../app/engine.ts';
import { deviceStream } from '../../domain/ids.ts';
import { parseOtpauthUri } from '../../domain/kinds/uri.ts';
import type { AppendResult, EventStore, Vault } from '../../domain/ports.ts';
import { ClockCache, CommandIndex } from '../../domain/stream-cache.ts';
import { createTestDatabase } from '../support/postgres.ts';
import { ko, ok, seededRandom, T0, totpAt } from './harness.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const keyOf = (uri: string | undefined): Uint8Array => {
  const p = parseOtpauthUri(uri ?? '');
  if (isLeft(p)) throw new Error(p.left);
  return p.right.key;
};

/** Several engines on one store and one vault (as several processes would share them), one clock. */
const world = (
  store: EventStore,
  n: number,
  o: { cacheSize?: number; optimistic?: boolean; policy?: Parameters<typeof createEngine>[0]['policy'] } = {},
) => {
  let t = T0;
  const clock = { now: () => t };
  const vault: Vault = createMemoryVault();
  const engines = Array.from({ length: n }, (_, i) =>
    createEngine({
      store,
      vault,
      clock,
      random: seededRandom(`engine-${i}`),
      optimisticCache: o.optimistic ?? false,
      ...(o.cacheSize === undefined ? {} : { cacheSize: o.cacheSize }),
      ...(o.policy ? { policy: o.policy } : {}),
    }),
  );
  /** An engine without a cache: the reference every cached engine must agree with. */
  const fresh = () => createEngine({ store, vault, clock, random: seededRandom('fresh'), cacheSize: 0, ...(o.policy ? { policy: o.policy } : {}) });
  /** One more engine, on another connection to the same database. */
  const on = (other: EventStore, seed: string) => createEngine({ store: other, vault, clock, random: seededRandom(seed), optimisticCache: o.optimistic ?? false });
  return {
    engines,
    fresh,
    on,
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
  };
};

const register = async (e: Engine, userId: string) => {
  const r = await ok(e.register({ kind: 'totp', userId, confirmed: true }));
  return { deviceId: r.deviceId, key: keyOf(r.otpauthUri) };
};

const chainHolds = async (e: Engine, deviceId: string) => (await ok(e.verifyChain({ device: deviceId }))).broken;

/** A store whose readStreamFrom (or readStream) runs `before` once, before it reads. */
const pausing = (inner: EventStore) => {
  let hook: (() => Promise<void>) | null = null;
  const once = async () => {
    const h = hook;
    hook = null;
    if (h) await h();
  };
  const store: EventStore = {
    ...inner,
    readStream: async (name) => {
      const r = await inner.readStream(name);
      await once();
      return r;
    },
    ...(inner.readStreamFrom
      ? {
          readStreamFrom: async (name: string, after: number) => {
            const r = await inner.readStreamFrom!(name, after);
            await once();
            return r;
          },
        }
      : {}),
  };
  return { store, afterNextRead: (f: () => Promise<void>) => void (hook = f) };
};

const stores: { name: string; make: () => EventStore | { a: EventStore; b: EventStore } }[] = [
  { name: 'memory', make: () => createMemoryEventStore({ now: () => T0 }) },
  {
    name: 'SQLite, two connections to one file',
    make: () => {
      const dir = mkdtempSync(join(tmpdir(), 'factorstream-cache-'));
      dirs.push(dir);
      const path = join(dir, 'events.db');
      return { a: createSqliteEventStore({ path, synchronous: 'NORMAL' }), b: createSqliteEventStore({ path, synchronous: 'NORMAL' }) };
    },
  },
];

const cases = stores.flatMap((s) => [
  { ...s, optimistic: false, mode: 'checked' },
  { ...s, optimistic: true, mode: 'optimistic' },
]);

describe.each(cases)('state cache on $name ($mode)', ({ make, optimistic }) => {
  /** Engine A and engine B: on one store object, or (SQLite) on two connections, like two processes. */
  const twoEngines = (o: { policy?: Parameters<typeof createEngine>[0]['policy'] } = {}) => {
    const made = make();
    const [sa, sb] = 'a' in made ? [made.a, made.b] : [made, made];
    let t = T0;
    const clock = { now: () => t };
    const vault = createMemoryVault();
    const mk = (store: EventStore, seed: string, cacheSize?: number) =>
      createEngine({
        store,
        vault,
        clock,
        random: seededRandom(seed),
        optimisticCache: optimistic,
        ...(cacheSize === undefined ? {} : { cacheSize }),
        ...(o.policy ? { policy: o.policy } : {}),
      });
    return {
      a: mk(sa, 'a'),
      b: mk(sb, 'b'),
      fresh: mk(sa, 'fresh', 0),
      now: () => t,
      advance: (ms: number) => void (t += ms),
      close: async () => {
        await sa.close();
        if (sb !== sa) await sb.close();
      },
    };
  };

  it("each engine sees the other's writes: a code used on one is a replay on the other, failures count across both", async () => {
    const w = twoEngines({ policy: { throttle: { totp: { factor: 0 } } } });
    try {
      const { deviceId, key } = await register(w.a, 'alice');
      // Both engines have the device cached before either writes again.
      await ok(w.a.device(deviceId));
      await ok(w.b.device(deviceId));
      w.advance(30_000);
      expect(await ok(w.a.verify(deviceId, totpAt(key, w.now())))).toMatchObject({ ok: true });
      expect(await ok(w.b.verify(deviceId, totpAt(key, w.now())))).toMatchObject({ ok: false, reason: 'replay' });
      expect(await ok(w.a.verify(deviceId, '000000'))).toMatchObject({ ok: false, reason: 'invalid' });
      expect((await ok(w.b.device(deviceId))).throttle.failureCount).toBe(2);
      w.advance(30_000);
      expect(await ok(w.b.verify(deviceId, totpAt(key, w.now())))).toMatchObject({ ok: true });
      expect(await ok(w.a.verify(deviceId, totpAt(key, w.now())))).toMatchObject({ ok: false, reason: 'replay' });
      const va = await ok(w.a.device(deviceId));
      const vb = await ok(w.b.device(deviceId));
      const vf = await ok(w.fresh.device(deviceId));
      expect(va).toEqual(vf);
      expect(vb).toEqual(vf);
      expect(vf.version).toBe(6);
      expect(await chainHolds(w.fresh, deviceId)).toBeNull();
    } finally {
      await w.close();
    }
  });

  it('a write between a cached read and the append costs a conflict and a reload, never a wrong outcome', async ({ skip }) => {
    if (optimistic) return skip(); // no read before the first append: the first test covers it
    const made = make();
    const [sa, sb] = 'a' in made ? [made.a, made.b] : [made, made];
    const p = pausing(sa);
    let t = T0;
    const clock = { now: () => t };
    const vault = createMemoryVault();
    const checked = { optimisticCache: false, policy: { throttle: { totp: { factor: 0 } } } };
    const a = createEngine({ store: p.store, vault, clock, random: seededRandom('a'), ...checked });
    const b = createEngine({ store: sb, vault, clock, random: seededRandom('b'), ...checked });
    const fresh = createEngine({ store: sb, vault, clock, random: seededRandom('f'), cacheSize: 0 });
    try {
      const { deviceId, key } = await register(a, 'bob');
      t += 30_000;
      const code = totpAt(key, t);
      // A reads the device (from its cache, checked against the store), then B verifies the
      // very same code before A appends.
      let bOutcome: VerifyOutcome | null = null;
      p.afterNextRead(async () => {
        bOutcome = await ok(b.verify(deviceId, code));
      });
      const aOutcome = await ok(a.verify(deviceId, code));
      expect(bOutcome).toMatchObject({ ok: true });
      expect(aOutcome).toMatchObject({ ok: false, reason: 'replay' });
      // A's cache moved on to what the store holds: its next decisions are right.
      t += 30_000;
      expect(await ok(a.verify(deviceId, totpAt(key, t)))).toMatchObject({ ok: true });
      expect(await ok(a.device(deviceId))).toEqual(await ok(fresh.device(deviceId)));
      expect(await chainHolds(fresh, deviceId)).toBeNull();
    } finally {
      await sa.close();
      if (sb !== sa) await sb.close();
    }
  });

  it('two attempts of one command id at different instants: the stored one wins, the cache follows it, the chain holds', async ({ skip }) => {
    if (optimistic) return skip();
    const made = make();
    const [sa, sb] = 'a' in made ? [made.a, made.b] : [made, made];
    const p = pausing(sa);
    let t = T0;
    const clock = { now: () => t };
    const vault = createMemoryVault();
    const a = createEngine({ store: p.store, vault, clock, random: seededRandom('a'), optimisticCache: false });
    const b = createEngine({ store: sb, vault, clock, random: seededRandom('b'), optimisticCache: false });
    const fresh = createEngine({ store: sb, vault, clock, random: seededRandom('f'), cacheSize: 0 });
    try {
      const { deviceId, key } = await register(a, 'carol');
      t += 30_000;
      const code = totpAt(key, t);
      // B's attempt of the command lands while A's is between its read and its append: A's
      // append is then an idempotent retry whose stored events are B's (another `at`).
      p.afterNextRead(async () => {
        await ok(b.verify(deviceId, code, { commandId: 'login-1', now: t + 7 }));
      });
      expect(await ok(a.verify(deviceId, code, { commandId: 'login-1', now: t + 3 }))).toMatchObject({ ok: true });
      const history = await ok(fresh.history(deviceId));
      expect(history.map((h) => h.event.type)).toEqual(['DeviceRegistered', 'TokenVerified']);
      expect(history[1]!.event.data.at).toBe(t + 7);
      // Had A cached its own version of that event, its next event would link to a hash that
      // is not the stored event's.
      t += 30_000;
      expect(await ok(a.verify(deviceId, totpAt(key, t)))).toMatchObject({ ok: true });
      expect(await ok(a.device(deviceId))).toEqual(await ok(fresh.device(deviceId)));
      expect((await ok(a.device(deviceId))).lastUsedAt).toBe(t);
      expect(await chainHolds(fresh, deviceId)).toBeNull();
    } finally {
      await sa.close();
      if (sb !== sa) await sb.close();
    }
  });

  it('random interleavings of commands from three engines agree with an engine without a cache', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            engine: fc.integer({ min: 0, max: 2 }),
            device: fc.integer({ min: 0, max: 2 }),
            action: fc.constantFrom('good', 'bad', 'replay', 'rename', 'reset', 'view', 'advance'),
            concurrent: fc.boolean(),
          }),
          { minLength: 5, maxLength: 40 },
        ),
        async (steps) => {
          const made = make();
          const [sa, sb] = 'a' in made ? [made.a, made.b] : [made, made];
          const w = world(sa, 2, { cacheSize: 2, optimistic }); // a cache smaller than the devices: entries come and go
          const engines = [w.engines[0]!, w.engines[1]!, w.on(sb, 'c')];
          try {
            const devices = [];
            for (let i = 0; i < 3; i++) devices.push(await register(engines[i]!, `user-${i}`));
            const lastGood = new Map<number, string>();
            let pending: Promise<unknown>[] = [];
            for (const s of steps) {
              const d = devices[s.device]!;
              const e = engines[s.engine]!;
              const run = async () => {
                switch (s.action) {
                  case 'good': {
                    const code = totpAt(d.key, w.now());
                    lastGood.set(s.device, code);
                    return ok(e.verify(d.deviceId, code));
                  }
                  case 'bad':
                    return ok(e.verify(d.deviceId, '000000'));
                  case 'replay':
                    return ok(e.verify(d.deviceId, lastGood.get(s.device) ?? totpAt(d.key, w.now())));
                  case 'rename':
                    return ok(e.rename(d.deviceId, `name ${w.now()}`));
                  case 'reset':
                    return ok(e.resetThrottle(d.deviceId, 'support call'));
                  case 'view':
                    return ok(e.device(d.deviceId));
                  case 'advance':
                    w.advance(30_000);
                    return null;
                }
              };
              if (s.concurrent) pending.push(run());
              else {
                await Promise.all(pending);
                pending = [];
                await run();
              }
            }
            await Promise.all(pending);
            const ref = w.fresh();
            for (const d of devices) {
              const expected = await ok(ref.device(d.deviceId));
              for (const e of engines) expect(await ok(e.device(d.deviceId))).toEqual(expected);
              expect(await chainHolds(ref, d.deviceId)).toBeNull();
            }
          } finally {
            await sa.close();
            if (sb !== sa) await sb.close();
          }
        },
      ),
      { numRuns: 25 },
    );
  });
});

describe('state cache: stores that offer less', () => {
  it('without readStreamFrom or the written flag, two engines still agree and the chain holds', async () => {
    const inner = createMemoryEventStore({ now: () => T0 });
    // Neither the tail read nor `written`: every load reads the stream, and own appends are
    // read back instead of trusted.
    const plain: EventStore = {
      readStream: (n) => inner.readStream(n),
      appendToStream: async (n, ev, v): Promise<AppendResult> => {
        const r = await inner.appendToStream(n, ev, v);
        return r.ok ? { ok: true, version: r.version, position: r.position } : r;
      },
      readAll: (o) => inner.readAll(o),
      subscribe: (o) => inner.subscribe(o),
      close: () => inner.close(),
    };
    const w = world(plain, 2, { policy: { throttle: { totp: { factor: 0 } } } });
    const [a, b] = w.engines as [Engine, Engine];
    const { deviceId, key } = await register(a, 'dave');
    for (let i = 0; i < 6; i++) {
      w.advance(30_000);
      const code = totpAt(key, w.now());
      const [x, y] = await Promise.all([ok((i % 2 ? a : b).verify(deviceId, code)), ok((i % 2 ? b : a).verify(deviceId, code))]);
      expect([x.ok, y.ok].filter(Boolean)).toHaveLength(1);
    }
    const ref = w.fresh();
    expect(await ok(a.device(deviceId))).toEqual(await ok(ref.device(deviceId)));
    expect(await ok(b.device(deviceId))).toEqual(await ok(ref.device(deviceId)));
    expect(await chainHolds(ref, deviceId)).toBeNull();
  });

  it('a stream that went back (a restored backup) is read again in full, and new events chain onto what is stored', async () => {
    let inner = createMemoryEventStore({ now: () => T0 });
    const swap: EventStore = {
      readStream: (n) => inner.readStream(n),
      readStreamFrom: (n, v) => inner.readStreamFrom!(n, v),
      appendToStream: (n, ev, v) => inner.appendToStream(n, ev, v),
      readAll: (o) => inner.readAll(o),
      subscribe: (o) => inner.subscribe(o),
      close: () => inner.close(),
    };
    const w = world(swap, 1, { policy: { throttle: { totp: { factor: 0 } } } });
    const e = w.engines[0]!;
    const { deviceId, key } = await register(e, 'erin');
    // The backup: a copy of the store as it is now (DeviceAttached, DeviceRegistered).
    const backup = createMemoryEventStore({ now: () => T0 });
    for (const ev of inner.all()) await backup.appendToStream(ev.streamName, [ev], ev.version - 1);
    for (let i = 0; i < 3; i++) {
      w.advance(30_000);
      await ok(e.verify(deviceId, totpAt(key, w.now())));
    }
    expect((await ok(e.device(deviceId))).version).toBe(4);
    inner = backup; // restored: the engine's cache is 3 events ahead of the store
    expect((await ok(e.device(deviceId))).version).toBe(1);
    w.advance(30_000);
    expect(await ok(e.verify(deviceId, totpAt(key, w.now())))).toMatchObject({ ok: true });
    expect((await inner.readStream(deviceStream(deviceId))).version).toBe(2);
    expect(await chainHolds(w.fresh(), deviceId)).toBeNull();
  });

  it('keeps no key of a removed device, and a removed device stays removed for a cached engine', async () => {
    const store = createMemoryEventStore({ now: () => T0 });
    const w = world(store, 2);
    const [a, b] = w.engines as [Engine, Engine];
    const { deviceId, key } = await register(a, 'frank');
    w.advance(30_000);
    await ok(a.verify(deviceId, totpAt(key, w.now())));
    await ok(b.device(deviceId));
    await ok(b.remove(deviceId, 'lost phone'));
    w.advance(30_000);
    expect(await ko(a.verify(deviceId, totpAt(key, w.now())))).toMatchObject({ code: 'device-removed' });
    expect(await ko(b.verify(deviceId, totpAt(key, w.now())))).toMatchObject({ code: 'device-removed' });
  });

  it.each([false, true])('a device removed by another engine is removed for an optimistic engine too (key opened before: %s)', async (opened) => {
    const store = createMemoryEventStore({ now: () => T0 });
    const w = world(store, 2, { optimistic: true });
    const [a, b] = w.engines as [Engine, Engine];
    const { deviceId, key } = await register(a, 'gina');
    w.advance(30_000);
    if (opened) await ok(a.verify(deviceId, totpAt(key, w.now())));
    else await ok(a.device(deviceId)); // cached, key not opened
    await ok(b.remove(deviceId, 'lost phone')); // the key is shredded
    w.advance(30_000);
    expect(await ko(a.verify(deviceId, totpAt(key, w.now())))).toMatchObject({ code: 'device-removed' });
    expect(await chainHolds(w.fresh(), deviceId)).toBeNull();
  });

  it('refuses a cache size that is not a whole number ≥ 0', () => {
    const store = createMemoryEventStore();
    const base = { store, vault: createMemoryVault(), clock: { now: () => T0 }, random: seededRandom(1) };
    expect(() => createEngine({ ...base, cacheSize: -1 })).toThrow(/cacheSize/);
    expect(() => createEngine({ ...base, cacheSize: 1.5 })).toThrow(/cacheSize/);
    expect(() => createEngine({ ...base, cacheSize: 0 })).not.toThrow();
  });
});

/** A store that counts the calls the engine makes to it. */
const counting = (inner: EventStore) => {
  const calls = { reads: 0, appends: 0, refused: 0, tails: 0 };
  const store: EventStore = {
    ...inner,
    readStream: async (name) => {
      calls.reads++;
      return inner.readStream(name);
    },
    ...(inner.readStreamFrom
      ? {
          readStreamFrom: async (name: string, after: number) => {
            calls.reads++;
            return inner.readStreamFrom!(name, after);
          },
        }
      : {}),
    appendToStream: async (name, events, expected) => {
      calls.appends++;
      const r = await inner.appendToStream(name, events, expected);
      if (!r.ok) calls.refused++;
      if (!r.ok && r.tail) calls.tails++;
      return r;
    },
  };
  const reset = () => Object.assign(calls, { reads: 0, appends: 0, refused: 0, tails: 0 });
  return { store, calls, reset };
};

let pgDatabase: Awaited<ReturnType<typeof createTestDatabase>> | null = null;
afterAll(async () => {
  await pgDatabase?.drop();
});
const tailStores: { name: string; make: () => Promise<EventStore | { a: EventStore; b: EventStore }> }[] = [
  ...stores.map((s) => ({ name: s.name, make: async () => s.make() })),
  {
    name: 'PostgreSQL, two pools on one schema',
    make: async () => {
      pgDatabase ??= await createTestDatabase('fs_tail');
      const schema = `tail_${randomUUID().replaceAll('-', '')}`;
      const a = await createPostgresEventStore({ connectionString: pgDatabase.url, schema, max: 2 });
      return { a, b: await createPostgresEventStore({ connectionString: pgDatabase.url, schema, max: 2 }) };
    },
  },
];

describe.each(tailStores)('a store that reports what a refused append missed ($name)', ({ make }) => {
  const twoEngines = async () => {
    const made = await make();
    const [sa, sb] = 'a' in made ? [made.a, made.b] : [made, made];
    const c = counting(sa);
    let t = T0;
    const clock = { now: () => t };
    const vault = createMemoryVault();
    // Default options: the store's tailOnConflict makes both engines optimistic.
    const a = createEngine({ store: c.store, vault, clock, random: seededRandom('a') });
    const b = createEngine({ store: sb, vault, clock, random: seededRandom('b') });
    const fresh = createEngine({ store: sb, vault, clock, random: seededRandom('f'), cacheSize: 0 });
    return {
      a, b, fresh, c,
      advance: () => (t += 30_000),
      now: () => t,
      close: async () => {
        await sa.close();
        if (sb !== sa) await sb.close();
      },
    };
  };

  /** Runs `f` on a fresh pair of engines, and closes their stores after. */
  const withTwoEngines = async (f: (w: Awaited<ReturnType<typeof twoEngines>>) => Promise<void>) => {
    const w = await twoEngines();
    try {
      await f(w);
    } finally {
      await w.close();
    }
  };

  it('a current cache: one append per command, no read', () =>
    withTwoEngines(async (w) => {
      const { deviceId, key } = await register(w.a, 'hal');
      w.advance();
      await ok(w.a.verify(deviceId, totpAt(key, w.now())));
      w.c.reset();
      for (let i = 0; i < 5; i++) {
        w.advance();
        expect(await ok(w.a.verify(deviceId, totpAt(key, w.now())))).toMatchObject({ ok: true });
      }
      expect(w.c.calls).toEqual({ reads: 0, appends: 5, refused: 0, tails: 0 });
      expect(await ok(w.a.device(deviceId))).toEqual(await ok(w.fresh.device(deviceId)));
    }));

  it('a stale cache: the refused append brings the missed events, the command is decided again on them without a read', () =>
    withTwoEngines(async (w) => {
      const { deviceId, key } = await register(w.a, 'ida');
      w.advance();
      const code = totpAt(key, w.now());
      await ok(w.a.device(deviceId)); // cached by A
      expect(await ok(w.b.verify(deviceId, code))).toMatchObject({ ok: true }); // unknown to A
      w.c.reset();
      // A decides on its stale state (the code looks unused), is refused, learns B's event from
      // the refusal and decides again: the code was used.
      expect(await ok(w.a.verify(deviceId, code))).toMatchObject({ ok: false, reason: 'replay' });
      expect(w.c.calls).toEqual({ reads: 0, appends: 2, refused: 1, tails: 1 });
      // Stale again, this time with a wrong code of B's: A's good code still passes.
      await ok(w.b.verify(deviceId, '000000'));
      w.advance();
      w.c.reset();
      expect(await ok(w.a.verify(deviceId, totpAt(key, w.now())))).toMatchObject({ ok: true });
      expect(w.c.calls).toEqual({ reads: 0, appends: 2, refused: 1, tails: 1 });
      expect(await ok(w.a.device(deviceId))).toEqual(await ok(w.fresh.device(deviceId)));
      expect(await ok(w.a.history(deviceId))).toEqual(await ok(w.fresh.history(deviceId)));
      expect(await chainHolds(w.fresh, deviceId)).toBeNull();
    }));

  it('a device removed behind a stale cache is reported removed, from the refusal alone', () =>
    withTwoEngines(async (w) => {
      const { deviceId, key } = await register(w.a, 'jon');
      w.advance();
      await ok(w.a.verify(deviceId, totpAt(key, w.now()))); // A's key is open and its cache current
      await ok(w.b.remove(deviceId, 'lost phone'));
      w.advance();
      w.c.reset();
      expect(await ko(w.a.verify(deviceId, totpAt(key, w.now())))).toMatchObject({ code: 'device-removed' });
      expect(w.c.calls).toEqual({ reads: 0, appends: 1, refused: 1, tails: 1 });
      expect(await chainHolds(w.fresh, deviceId)).toBeNull();
    }));
});

describe('stream-cache building blocks', () => {
  it('ClockCache holds at most its capacity, spares entries read since it last looked, and holds nothing at 0', () => {
    const c = new ClockCache<number>(3);
    c.set('a', 1);
    c.set('b', 2);
    c.set('c', 3);
    c.set('d', 4); // all were fresh: each loses its mark once, then the oldest (a) goes
    expect([c.peek('a'), c.size]).toEqual([undefined, 3]);
    expect(c.get('b')).toBe(2); // b is marked again; c and d are not
    c.set('e', 5); // c is the oldest unmarked entry
    expect([c.peek('b'), c.peek('c'), c.peek('d'), c.peek('e')]).toEqual([2, undefined, 4, 5]);
    c.set('e', 6); // an update is not an insertion
    expect([c.get('e'), c.size]).toEqual([6, 3]);
    c.delete('e');
    expect([c.peek('e'), c.size]).toEqual([undefined, 2]);
    for (let i = 0; i < 100; i++) {
      c.set(`k${i}`, i);
      expect(c.size).toBeLessThanOrEqual(3);
      expect(c.peek(`k${i}`)).toBe(i); // a new entry is never the one evicted
    }
    const none = new ClockCache<number>(0);
    none.set('a', 1);
    expect([none.get('a'), none.size]).toEqual([undefined, 0]);
  });

  it('CommandIndex answers for a version and ignores versions it already has', () => {
    const i = new CommandIndex<string>();
    i.add('c1', 1, 'e1');
    i.add('c2', 2, 'e2');
    i.add('c2', 3, 'e3');
    i.add('c9', 3, 'dup'); // version 3 is indexed already
    expect(i.eventsOf('c2', 3)).toEqual(['e2', 'e3']);
    expect(i.eventsOf('c2', 2)).toEqual(['e2']);
    expect(i.eventsOf('c1', 0)).toEqual([]);
    expect(i.eventsOf('c9', 3)).toEqual([]);
    expect(i.version).toBe(3);
  });
});
