import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { EventStore } from '../../domain/ports.ts';
import { readModelProjection } from '../../projections/read-model.ts';
import { auditOrder, type Projection, type ReadStore } from '../../projections/read-store.ts';
import { createProjectionRunner, rebuild } from '../../projections/runner.ts';
import { createSqliteReadStore } from '../../projections/stores/sqlite.ts';
import { createWorld, leaks, normalized, projectAll, sqliteFixtureIn, sqliteText, tempDir } from './fixtures.ts';
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

/** The read-model indexes in the file, by name (primary keys' own indexes left out). */
const indexesIn = (path: string): string[] => {
  const db = new Database(path, { readonly: true });
  try {
    const rows = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'rm_%' ORDER BY name`).all() as { name: string }[];
    return rows.map((r) => r.name);
  } finally {
    db.close();
  }
};
const READ_INDEXES = ['rm_audit_device', 'rm_audit_user', 'rm_devices_user'];

/** What the queries that use those indexes answer, for every user and device in the model. */
const answers = async (store: ReadStore) => {
  const dump = await store.dump();
  const users = [...new Set(dump.audit.map((e) => e.userId).filter((u) => u !== null))].sort();
  const devices = dump.devices.map((d) => d.snapshot.deviceId).sort();
  return {
    byUser: await Promise.all(users.map(async (u) => [await store.devicesOfUser(u), await store.audit({ userId: u, limit: 1000 })])),
    byDevice: await Promise.all(devices.map((d) => store.audit({ deviceId: d, limit: 1000 }))),
    // The same, filtered from the full tables (no index involved).
    expected: {
      byUser: users.map((u) => [
        dump.devices
          .filter((d) => d.snapshot.userId === u)
          .sort((a, b) => a.snapshot.createdAt - b.snapshot.createdAt || (a.snapshot.deviceId < b.snapshot.deviceId ? -1 : 1)),
        dump.audit.filter((e) => e.userId === u).sort(auditOrder),
      ]),
      byDevice: devices.map((d) => dump.audit.filter((e) => e.deviceId === d).sort(auditOrder)),
    },
  };
};

describe('SQLite rebuild', () => {
  const liveModel = async (seed: number, path: string) => {
    const world = createWorld(seed);
    await world.run(scenario);
    const readStore = createSqliteReadStore({ path });
    const live = createProjectionRunner({ store: world.events, readStore, batchSize: 4 }).start();
    await live.whenCaughtUp();
    await live.close();
    expect(indexesIn(path)).toEqual(READ_INDEXES);
    return { world, readStore, dump: normalized(await readStore.dump()) };
  };

  it('drops the read indexes, still answers queries (by scanning), and builds them again at the end', async () => {
    const path = `${tmp.dir}/rebuild-indexes.db`;
    const { world, readStore, dump } = await liveModel(21, path);
    try {
      // Holds the rebuild before its third read of the log, after two batches.
      let reads = 0;
      let reached!: () => void;
      let resume!: () => void;
      const atPause = new Promise<void>((r) => (reached = r));
      const paused = new Promise<void>((r) => (resume = r));
      const events: EventStore = {
        ...world.events,
        readAll: async (o) => {
          if (++reads === 3) {
            reached();
            await paused;
          }
          return world.events.readAll(o);
        },
      };
      const total = (await world.events.readAll()).events.length;
      const rebuilt = rebuild(createProjectionRunner({ store: events, readStore, rebuildBatchSize: 10 }), { total });
      await atPause;
      expect(indexesIn(path)).toEqual([]);
      const during = await answers(readStore);
      expect(during.byUser.length).toBeGreaterThan(0);
      expect(during.byUser).toEqual(during.expected.byUser);
      expect(during.byDevice).toEqual(during.expected.byDevice);
      resume();
      expect((await rebuilt).events).toBe(total);
      expect(indexesIn(path)).toEqual(READ_INDEXES);
      expect(normalized(await readStore.dump())).toEqual(dump);
      const after = await answers(readStore);
      expect(after.byUser).toEqual(after.expected.byUser);
      expect(after.byDevice).toEqual(after.expected.byDevice);
    } finally {
      await readStore.close();
    }
  });

  it('a rebuild that fails half-way leaves the indexes in place, and a new rebuild completes', async () => {
    const path = `${tmp.dir}/rebuild-fails.db`;
    const { world, readStore, dump } = await liveModel(22, path);
    try {
      let applied = 0;
      const flaky: Projection = {
        ...readModelProjection,
        apply: (tx, e) => {
          if (++applied > 12) throw new Error('the process was killed');
          readModelProjection.apply(tx, e);
        },
      };
      const failed = rebuild(createProjectionRunner({ store: world.events, readStore, projection: flaky, rebuildBatchSize: 5 }));
      await expect(failed).rejects.toMatchObject({ code: 'handler-failed' });
      expect(indexesIn(path)).toEqual(READ_INDEXES);
      await rebuild(createProjectionRunner({ store: world.events, readStore }));
      expect(normalized(await readStore.dump())).toEqual(dump);
    } finally {
      await readStore.close();
    }
  });

  it('an instance that dies mid-rebuild: the indexes come back when another instance takes over, or the store is reopened', async () => {
    const path = `${tmp.dir}/rebuild-dies.db`;
    const { readStore: standby } = await liveModel(23, path);
    const name = readModelProjection.name;
    const reset = (tx: Parameters<Projection['reset']>[0]) => {
      readModelProjection.reset(tx);
      tx.clearStreamVersions();
    };
    const startRebuild = async (store: ReadStore, owner: string, now: number) => {
      const claim = store.claim(name, { owner, leaseMs: 1_000, now: () => now });
      expect(await claim.acquire()).toBe(true);
      const expected = await store.checkpoint(name);
      expect(await claim.commit({ expected, next: null, events: [], work: reset, rebuild: true })).toBe('committed');
      expect(indexesIn(path)).toEqual([]);
    };
    try {
      // Dies: closed without finishing its rebuild (nor releasing its lease).
      const dying = createSqliteReadStore({ path });
      await startRebuild(dying, 'a', 0);
      await dying.close();
      // The other instance, open all along, takes over once the lease has expired.
      const claim = standby.claim(name, { owner: 'b', leaseMs: 1_000, now: () => 1_001 });
      expect(await claim.acquire()).toBe(true);
      expect(indexesIn(path)).toEqual(READ_INDEXES);
      await claim.release();

      const again = createSqliteReadStore({ path });
      await startRebuild(again, 'c', 2_000);
      await again.close();
      await createSqliteReadStore({ path }).close();
      expect(indexesIn(path)).toEqual(READ_INDEXES);
    } finally {
      await standby.close();
    }
  });

  it('a live batch that empties the read model keeps the indexes', async () => {
    const path = `${tmp.dir}/live-clear.db`;
    const { readStore } = await liveModel(24, path);
    try {
      const name = readModelProjection.name;
      const claim = readStore.claim(name, { owner: 'x', leaseMs: 1_000, now: () => 0 });
      expect(await claim.acquire()).toBe(true);
      const expected = await readStore.checkpoint(name);
      expect(await claim.commit({ expected, next: expected, events: [], work: (tx) => tx.clearReadModel() })).toBe('committed');
      expect(indexesIn(path)).toEqual(READ_INDEXES);
      expect((await readStore.dump()).audit).toEqual([]);
    } finally {
      await readStore.close();
    }
  });
});

describe('SQLite read store layout (rm_schema)', () => {
  /** The first layout: no rm_schema, rm_audit keyed by event id. */
  const makeV1 = (path: string) => {
    const raw = new Database(path);
    raw.exec('DROP TABLE rm_schema; DROP TABLE rm_audit');
    raw.exec(`CREATE TABLE rm_audit (
       event_id TEXT PRIMARY KEY, position TEXT NOT NULL, stream_name TEXT NOT NULL,
       version INTEGER NOT NULL, user_id TEXT, device_id TEXT, persistent_id TEXT, type TEXT NOT NULL,
       action TEXT NOT NULL, reason TEXT, at INTEGER NOT NULL, recorded_at INTEGER NOT NULL,
       actor TEXT NOT NULL, ip TEXT, user_agent TEXT, details TEXT NOT NULL)`);
    raw.close();
  };
  const layout = (path: string) => {
    const raw = new Database(path, { readonly: true });
    try {
      const version = (raw.prepare('SELECT version FROM rm_schema').get() as { version: number }).version;
      const key = (raw.prepare('PRAGMA table_info(rm_audit)').all() as { name: string; pk: number }[]).filter((c) => c.pk > 0).map((c) => c.name);
      return { version, key };
    } finally {
      raw.close();
    }
  };

  it('a new store records the current layout: audit rows keyed by position', async () => {
    const path = `${tmp.dir}/layout-new.db`;
    await createSqliteReadStore({ path }).close();
    expect(layout(path)).toEqual({ version: 2, key: ['position'] });
  });

  it('a store of the first layout is made again, and its projections start over from the log to the same model', async () => {
    const path = `${tmp.dir}/layout-v1.db`;
    const world = createWorld(31);
    await world.run(scenario);
    const first = createSqliteReadStore({ path });
    const model = await projectAll(world.events, first);
    await first.close();
    makeV1(path);

    const reopened = createSqliteReadStore({ path });
    try {
      expect(layout(path)).toEqual({ version: 2, key: ['position'] });
      expect(await reopened.checkpoint(readModelProjection.name)).toBeNull(); // starts over
      expect((await reopened.dump()).audit).toEqual([]);
      expect(await projectAll(world.events, reopened)).toEqual(model);
    } finally {
      await reopened.close();
    }
    // Opened again at the current layout: nothing is dropped.
    const third = createSqliteReadStore({ path });
    try {
      expect(normalized(await third.dump())).toEqual(model);
    } finally {
      await third.close();
    }
  });

  it('a store written by a newer factorstream is refused, and left as it is', async () => {
    const path = `${tmp.dir}/layout-newer.db`;
    await createSqliteReadStore({ path }).close();
    const raw = new Database(path);
    raw.exec("UPDATE rm_schema SET version = 99; INSERT INTO rm_checkpoints (projection, position, updated_at) VALUES ('p', '7', 1)");
    raw.close();
    expect(() => createSqliteReadStore({ path })).toThrow(/newer factorstream \(layout 99; this one writes 2\)/);
    const check = new Database(path, { readonly: true });
    expect(check.prepare('SELECT version FROM rm_schema').get()).toEqual({ version: 99 });
    expect(check.prepare('SELECT position FROM rm_checkpoints').all()).toEqual([{ position: '7' }]);
    check.close();
  });
});
