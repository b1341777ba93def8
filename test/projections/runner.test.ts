/**
 * Runner behaviour that does not depend on the read store (memory store here).
 */
import { describe, expect, it } from 'vitest';
import { createMemoryEventStore } from '../../adapters/store/memory.ts';
import { ProjectionError } from '../../projections/errors.ts';
import { readModelProjection } from '../../projections/read-model.ts';
import type { Projection, ReadStore } from '../../projections/read-store.ts';
import { createProjectionRunner, headPosition, rebuild } from '../../projections/runner.ts';
import { createMemoryReadStore } from '../../projections/stores/memory.ts';
import { createWorld } from './fixtures.ts';
import { scenario } from './suite.ts';

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
    const r = createProjectionRunner({ store: events, readStore: createMemoryReadStore(), onError: (e) => seen.push(e) }).start();
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
});
