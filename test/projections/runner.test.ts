/**
 * Runner behaviour that does not depend on the read store (memory store here).
 */
import { describe, expect, it } from 'vitest';
import { createMemoryEventStore } from '../../adapters/store/memory.ts';
import { StoreError, type EventStore } from '../../domain/ports.ts';
import { isTransient, ProjectionError } from '../../projections/errors.ts';
import { readModelProjection } from '../../projections/read-model.ts';
import type { Projection, ReadStore } from '../../projections/read-store.ts';
import { createProjectionRunner, headPosition, rebuild } from '../../projections/runner.ts';
import { createMemoryReadStore } from '../../projections/stores/memory.ts';
import { createWorld } from './fixtures.ts';
import { countingProjection, scenario } from './suite.ts';

describe('projection runner', () => {
  it('reports lag in events and in seconds behind the head of the log', async () => {
    let t = 1_000_000;
    const world = createWorld(41, createMemoryEventStore({ now: () => t }));
    await world.run(scenario.slice(0, 3));
    t += 7_500;
    await world.run(scenario.slice(3));
    const total = (await world.events.readAll()).events.length;
    const r = createProjectionRunner({ store: world.events, readStore: createMemoryReadStore(), now: () => t + 2_500 });
    expect(await r.lag()).toMatchObject({ events: total, exact: true, seconds: 10, checkpoint: null });
    r.start();
    await r.whenCaughtUp();
    expect(await r.lag()).toMatchObject({ events: 0, seconds: 0, checkpoint: await headPosition(world.events) });
    await r.close();
  });

  it('tells onError once, and a runner that stopped cannot be started again', async () => {
    const events = createMemoryEventStore();
    await events.appendToStream('otpuser-u', [{ eventId: 'x', type: 'Nope', data: {}, metadata: {} }], 0);
    const seen: ProjectionError[] = [];
    const r = createProjectionRunner({ store: events, readStore: createMemoryReadStore(), undecodable: 'stop', onError: (e) => seen.push(e) }).start();
    const error = await r.stopped();
    expect(seen).toEqual([error]);
    expect(() => r.start()).toThrow(ProjectionError);
    await r.close();
    expect(r.state()).toBe('failed');
  });

  it('stops with a clear error when the event store goes away', async () => {
    const world = createWorld(42);
    await world.run(scenario.slice(0, 2));
    const r = createProjectionRunner({ store: world.events, readStore: createMemoryReadStore() }).start();
    await r.whenCaughtUp();
    await world.events.close();
    const error = await r.stopped();
    expect(error?.code).toBe('event-store-failed');
    expect(error?.message).toMatch(/closed/);
  });

  it('rebuild waits for the active instance, then reports progress up to the total', async () => {
    const world = createWorld(43);
    await world.run(scenario);
    const readStore = createMemoryReadStore();
    const active = createProjectionRunner({ store: world.events, readStore, standbyPollMs: 5 }).start();
    await active.whenCaughtUp();
    const r = createProjectionRunner({ store: world.events, readStore, standbyPollMs: 5, batchSize: 10 });
    await expect(rebuild(r, { timeoutMs: 30 })).rejects.toMatchObject({ code: 'timeout' });
    const r2 = createProjectionRunner({ store: world.events, readStore, standbyPollMs: 5, batchSize: 10 });
    const progress: number[] = [];
    const rebuilt = rebuild(r2, { total: 3, onProgress: (done, total) => progress.push(done, total) });
    await active.close();
    const result = await rebuilt;
    const total = (await world.events.readAll()).events.length;
    expect(result.events).toBe(total);
    expect(progress.slice(0, 2)).toEqual([0, 3]);
    expect(progress.slice(-2)).toEqual([total, total]);
    // The rebuilt runner can go on following the log.
    r2.start();
    await world.run([{ op: 'verify', device: 0, right: false }]);
    await r2.whenCaughtUp();
    await r2.close();
  });

  it('marks a rebuild\'s batches and tells the store when the rebuild ends, also when it fails; live batches are not marked', async () => {
    const world = createWorld(44);
    await world.run(scenario);
    const seen: string[] = [];
    const spied = (store: ReadStore): ReadStore => ({
      ...store,
      claim: (name, o) => {
        const c = store.claim(name, o);
        return {
          ...c,
          commit: (req) => {
            seen.push(req.rebuild ? 'rebuild' : 'live');
            return c.commit(req);
          },
          finishRebuild: async () => void seen.push('finish'),
        };
      },
    });
    const readStore = spied(createMemoryReadStore());
    await rebuild(createProjectionRunner({ store: world.events, readStore, rebuildBatchSize: 10 }));
    expect(seen.length).toBeGreaterThan(3);
    expect(seen.slice(0, -1).every((x) => x === 'rebuild')).toBe(true);
    expect(seen.at(-1)).toBe('finish');

    seen.length = 0;
    let applied = 0;
    const flaky: Projection = {
      ...readModelProjection,
      apply: (tx, e) => {
        if (++applied > 15) throw new Error('boom');
        readModelProjection.apply(tx, e);
      },
    };
    await expect(rebuild(createProjectionRunner({ store: world.events, readStore, projection: flaky, rebuildBatchSize: 10 }))).rejects.toMatchObject({
      code: 'handler-failed',
    });
    expect(seen.filter((x) => x === 'finish')).toEqual(['finish']);
    expect(seen.at(-1)).toBe('finish');

    seen.length = 0;
    const live = createProjectionRunner({ store: world.events, readStore, batchSize: 10 }).start();
    await live.whenCaughtUp();
    await live.close();
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((x) => x === 'live')).toBe(true);
  });

  describe('after a failure that may pass by itself', () => {
    const unavailable = () => new StoreError('unavailable', 'the database is restarting');

    it('waits, doubling up to the limit, then goes on from its checkpoint: every event applied once', async () => {
      const world = createWorld(44);
      await world.run(scenario);
      let failures = 4;
      const events: EventStore = {
        ...world.events,
        readAll: async (o) => {
          if (failures > 0) {
            failures--;
            throw unavailable();
          }
          return world.events.readAll(o);
        },
      };
      const readStore = createMemoryReadStore();
      const waits: number[] = [];
      const states: string[] = [];
      const r = createProjectionRunner({
        store: events,
        readStore,
        projection: countingProjection,
        batchSize: 5,
        retry: { initialMs: 2, maxMs: 8 },
        onRetry: (e, ms) => {
          expect(e.code).toBe('event-store-failed');
          waits.push(ms);
          states.push(r.state());
        },
      }).start();
      await r.waitForPosition(await headPosition(world.events)); // whenCaughtUp would read through the failing store
      expect(waits).toEqual([2, 4, 8, 8]);
      expect(states.every((s) => s === 'retrying')).toBe(true);
      const counts = await readStore.counters('applied');
      const ids = (await world.events.readAll()).events.map((e) => e.eventId);
      expect([...counts.keys()].sort()).toEqual([...ids].sort());
      expect([...counts.values()].every((n) => n === 1)).toBe(true);
      expect(['catching-up', 'live']).toContain(r.state());
      await r.close();
      expect(await r.stopped()).toBeNull();
    });

    it('a read store whose connection is cut mid-run: the batch is applied once, after the wait', async () => {
      const world = createWorld(45);
      await world.run(scenario);
      const inner = createMemoryReadStore();
      let cut = 2; // the 2nd commit fails as a cut connection does
      const readStore: ReadStore = {
        ...inner,
        claim: (projection, c) => {
          const claim = inner.claim(projection, c);
          return {
            ...claim,
            commit: async (req) => {
              if (--cut === 0) throw new ProjectionError('read-store-failed', 'could not commit', null, { cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }) });
              return claim.commit(req);
            },
          };
        },
      };
      const waits: number[] = [];
      const r = createProjectionRunner({ store: world.events, readStore, projection: countingProjection, batchSize: 5, retry: { initialMs: 1 }, onRetry: (_, ms) => waits.push(ms) }).start();
      await r.whenCaughtUp();
      expect(waits).toEqual([1]);
      const counts = await inner.counters('applied');
      expect(counts.size).toBe((await world.events.readAll()).events.length);
      expect([...counts.values()].every((n) => n === 1)).toBe(true);
      await r.close();
    });

    it('close() ends the wait at once; a failure that will not pass by itself still stops the runner', async () => {
      const world = createWorld(46);
      await world.run(scenario.slice(0, 2));
      const down: EventStore = { ...world.events, readAll: async () => Promise.reject(unavailable()) };
      const waiting = createProjectionRunner({ store: down, readStore: createMemoryReadStore(), retry: { initialMs: 60_000 } }).start();
      while (waiting.state() !== 'retrying') await new Promise((res) => setTimeout(res, 2));
      const t = Date.now();
      await waiting.close();
      expect(Date.now() - t).toBeLessThan(5_000);
      expect(await waiting.stopped()).toBeNull();

      const closed: EventStore = { ...world.events, readAll: async () => Promise.reject(new StoreError('closed', 'the event store is closed')) };
      const retried: unknown[] = [];
      const stops = createProjectionRunner({ store: closed, readStore: createMemoryReadStore(), onRetry: (e) => retried.push(e) }).start();
      expect(await stops.stopped()).toMatchObject({ code: 'event-store-failed' });
      expect(retried).toEqual([]);
    });
  });

  it('tells failures that may pass by themselves from the others', () => {
    const wrap = (code: 'read-store-failed' | 'event-store-failed' | 'handler-failed', cause: unknown) => new ProjectionError(code, 'x', null, { cause });
    const pg = (sqlstate: string) => Object.assign(new Error('pg'), { code: sqlstate });
    for (const e of [
      wrap('event-store-failed', new StoreError('unavailable', 'down')),
      wrap('read-store-failed', pg('57P01')),
      wrap('read-store-failed', pg('08006')),
      wrap('read-store-failed', wrap('read-store-failed', pg('ECONNREFUSED'))),
      wrap('read-store-failed', Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' })),
      wrap('read-store-failed', new Error('Connection terminated unexpectedly')),
    ])
      expect(isTransient(e)).toBe(true);
    for (const e of [
      wrap('event-store-failed', new StoreError('closed', 'closed')),
      wrap('event-store-failed', new StoreError('corrupt', 'bad row')),
      wrap('read-store-failed', pg('42P01')), // undefined table
      wrap('read-store-failed', pg('23505')),
      wrap('handler-failed', pg('57P01')),
      wrap('read-store-failed', new Error('something else')),
    ])
      expect(isTransient(e)).toBe(false);
  });
});

