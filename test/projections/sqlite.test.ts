import { afterAll, describe, expect, it } from 'vitest';
import { createProjectionRunner, rebuild } from '../../projections/runner.ts';
import { createSqliteReadStore } from '../../projections/stores/sqlite.ts';
import { createWorld, leaks, normalized, sqliteFixtureIn, sqliteText, tempDir } from './fixtures.ts';
import { readStoreSuite, referenceDump, scenario } from './suite.ts';

const tmp = tempDir();
afterAll(() => tmp.remove());

readStoreSuite('SQLite', sqliteFixtureIn(tmp.dir), 10);

describe('SQLite read store beside the SQLite event store, in one file', () => {
  it('follows the event store, rebuilds to the same read model, and holds no secret', async () => {
    // Imported here: the adapter is written alongside, and a problem in it should fail this test only.
    const { createSqliteEventStore } = await import('../../adapters/store/sqlite.ts');
    const path = `${tmp.dir}/shared.db`;
    const events = createSqliteEventStore({ path, pollIntervalMs: 10 });
    const world = createWorld(11, events);
    const readStore = createSqliteReadStore({ path });
    const live = createProjectionRunner({ store: events, readStore, batchSize: 8 }).start();
    try {
      await world.run(scenario);
      await live.whenCaughtUp();
      await live.close();
      const liveDump = normalized(await readStore.dump());
      expect(liveDump).toEqual(await referenceDump(events));
      await rebuild(createProjectionRunner({ store: events, readStore }));
      expect(normalized(await readStore.dump())).toEqual(liveDump);
      expect(leaks(sqliteText(path), world.secrets)).toEqual([]);
    } finally {
      await live.close();
      await readStore.close();
      await events.close();
    }
  });
});

describe('SQLite lease', () => {
  it('an instance whose lease expired (it hung or died) is replaced, and its late batch does not commit', async () => {
    const path = `${tmp.dir}/lease.db`;
    let skew = 0;
    const a = createSqliteReadStore({ path });
    const b = createSqliteReadStore({ path });
    const claimA = a.claim('p', { owner: 'a', leaseMs: 1_000, now: () => 0 });
    const claimB = b.claim('p', { owner: 'b', leaseMs: 1_000, now: () => skew });
    try {
      expect(await claimA.acquire()).toBe(true);
      expect(await claimB.acquire()).toBe(false);
      skew = 1_001; // A has not renewed for longer than its lease
      expect(await claimB.acquire()).toBe(true);
      const late = await claimA.commit({ expected: null, next: '1', events: [], work: () => undefined });
      expect(late).toBe('not-active');
      expect(await claimA.acquire()).toBe(false);
      expect(await b.checkpoint('p')).toBeNull();
    } finally {
      await a.close();
      await b.close();
    }
  });
});
