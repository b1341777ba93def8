import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProjectionRunner, headPosition, rebuild } from '../../projections/runner.ts';
import { createPostgresReadStore } from '../../projections/stores/postgres.ts';
import {
  createTestDatabase,
  createWorld,
  leaks,
  normalized,
  postgresFixtureIn,
  projectAll,
  postgresText,
  sealedAndDigests,
  type TestDatabase,
} from './fixtures.ts';
import { countingProjection, readStoreSuite, referenceDump, scenario } from './suite.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

readStoreSuite('PostgreSQL', postgresFixtureIn(() => db.url), 6);

describe('PostgreSQL: two application instances on one read store', () => {
  it('applies every event exactly once, and the other instance takes over when the active one dies', async () => {
    const schema = 'takeover';
    const world = createWorld(21);
    await world.run(scenario.slice(0, 6));
    const storeA = await createPostgresReadStore({ connectionString: db.url, schema });
    const storeB = await createPostgresReadStore({ connectionString: db.url, schema });
    const options = { store: world.events, projection: countingProjection, batchSize: 2, standbyPollMs: 10 };
    const a = createProjectionRunner({ ...options, readStore: storeA, instanceId: 'a' }).start();
    await a.whenCaughtUp();
    const b = createProjectionRunner({ ...options, readStore: storeB, instanceId: 'b' }).start();
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      await world.run(scenario.slice(6, 12));
      await b.whenCaughtUp();
      expect(b.state()).toBe('standby');
      // Kill A's lock connection, as if its process had died: the lock goes with it.
      const killed = await admin.query(
        `SELECT pg_terminate_backend(pid) AS ok FROM pg_locks
         WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      );
      expect(killed.rows).toEqual([{ ok: true }]);
      // A's process is still alive here and may reconnect and take the lock again before B
      // does (both are right); a dead process would not: stop A. Whatever A committed before
      // it noticed, B goes on from the checkpoint.
      await a.close();
      expect(await a.stopped()).toBeNull(); // A lost its lock; it did not fail
      await world.run(scenario.slice(12));
      await b.whenCaughtUp();
      expect(['catching-up', 'live']).toContain(b.state());
      const counts = await storeB.counters('applied');
      const ids = (await world.events.readAll()).events.map((e) => e.eventId);
      expect([...counts.keys()].sort()).toEqual([...ids].sort());
      expect([...counts.values()].every((n) => n === 1)).toBe(true);
    } finally {
      await admin.end();
      await a.close();
      await b.close();
      await storeA.close();
      await storeB.close();
    }
  });

  it('fails clearly when PostgreSQL cannot be reached', async () => {
    await expect(createPostgresReadStore({ connectionString: 'postgres://nobody:secret@127.0.0.1:1/none' })).rejects.toMatchObject({
      code: 'read-store-failed',
      message: expect.not.stringContaining('secret'),
    });
  });
});

describe('PostgreSQL read store beside the PostgreSQL event store, in one schema', () => {
  it('follows the event store, rebuilds to the same read model, and holds no secret', async () => {
    // Imported here: the adapter is written alongside, and a problem in it should fail this test only.
    const { createPostgresEventStore } = await import('../../adapters/store/postgres.ts');
    const events = await createPostgresEventStore({ connectionString: db.url, schema: 'shared', pollIntervalMs: 10 });
    const world = createWorld(22, events);
    const readStore = await createPostgresReadStore({ connectionString: db.url, schema: 'shared' });
    const live = createProjectionRunner({ store: events, readStore, batchSize: 8 }).start();
    try {
      await world.run(scenario);
      await live.whenCaughtUp();
      await live.close();
      const liveDump = normalized(await readStore.dump());
      expect(liveDump).toEqual(await referenceDump(events));
      await rebuild(createProjectionRunner({ store: events, readStore }));
      expect(normalized(await readStore.dump())).toEqual(liveDump);
      const sealed = sealedAndDigests((await events.readAll()).events);
      expect(leaks(await postgresText(db.url, 'shared'), [...world.secrets, ...sealed])).toEqual([]);
    } finally {
      await live.close();
      await readStore.close();
      await events.close();
    }
  });
});

describe('PostgreSQL read store layout (rm_schema)', () => {
  const query = async (sql: string) => {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      return (await c.query(sql)).rows;
    } finally {
      await c.end();
    }
  };
  const auditKey = async (schema: string) =>
    (
      await query(`SELECT a.attname AS name FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                   WHERE i.indrelid = '${schema}.rm_audit'::regclass AND i.indisprimary`)
    ).map((r) => r.name);

  it('makes a store of the first layout again: audit rows keyed by position, projections start over to the same model', async () => {
    const schema = 'layout_v1';
    const world = createWorld(32);
    await world.run(scenario);
    const first = await createPostgresReadStore({ connectionString: db.url, schema });
    const model = await projectAll(world.events, first);
    await first.close();
    expect(await auditKey(schema)).toEqual(['position']);
    // The first layout: no rm_schema, rm_audit keyed by event id.
    await query(`DROP TABLE ${schema}.rm_schema; ALTER TABLE ${schema}.rm_audit DROP CONSTRAINT rm_audit_pkey, ADD PRIMARY KEY (event_id)`);
    expect(await auditKey(schema)).toEqual(['event_id']);

    const reopened = await createPostgresReadStore({ connectionString: db.url, schema });
    try {
      expect(await auditKey(schema)).toEqual(['position']);
      expect(await query(`SELECT version FROM ${schema}.rm_schema`)).toEqual([{ version: 2 }]);
      expect((await reopened.dump()).audit).toEqual([]);
      expect(await projectAll(world.events, reopened)).toEqual(model);
    } finally {
      await reopened.close();
    }
  });

  it('refuses a store written by a newer factorstream, and leaves it as it is', async () => {
    const schema = 'layout_newer';
    await (await createPostgresReadStore({ connectionString: db.url, schema })).close();
    await query(`UPDATE ${schema}.rm_schema SET version = 99`);
    await expect(createPostgresReadStore({ connectionString: db.url, schema })).rejects.toMatchObject({
      code: 'read-store-failed',
      message: expect.stringMatching(/newer factorstream \(layout 99; this one writes 2\)/),
    });
    expect(await query(`SELECT version FROM ${schema}.rm_schema`)).toEqual([{ version: 99 }]);
  });
});

describe('PostgreSQL read store when the database goes away for a while', () => {
  it('the runner waits and goes on once it is back: every event applied once', async () => {
    // PostgreSQL reached through a TCP proxy that the test takes down (cutting every
    // connection, refusing new ones) and brings back, as a restart of the server would.
    const { createServer, connect } = await import('node:net');
    const sockets = new Set<import('node:net').Socket>();
    const target = new URL(db.url);
    const proxy = createServer((client) => {
      const upstream = connect(Number(target.port || 5432), target.hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => sockets.delete(s));
      }
      client.pipe(upstream).pipe(client);
    });
    const listen = (port = 0) => new Promise<number>((resolve) => proxy.listen(port, '127.0.0.1', () => resolve((proxy.address() as import('node:net').AddressInfo).port)));
    const port = await listen();
    const url = new URL(db.url);
    url.port = String(port);

    const world = createWorld(33);
    await world.run(scenario.slice(0, 8));
    const readStore = await createPostgresReadStore({ connectionString: url.toString(), schema: 'outage' });
    const waits: number[] = [];
    const r = createProjectionRunner({
      store: world.events,
      readStore,
      projection: countingProjection,
      batchSize: 3,
      standbyPollMs: 10,
      leaseMs: 300,
      retry: { initialMs: 20, maxMs: 100 },
      onRetry: (_, ms) => waits.push(ms),
    }).start();
    try {
      await r.whenCaughtUp();
      // Down: connections cut, new ones refused; events keep coming meanwhile.
      proxy.close(); // refuses new connections (its callback would wait for the open ones)
      for (const s of sockets) s.destroy();
      await world.run(scenario.slice(8));
      const deadline = Date.now() + 10_000;
      while (waits.length === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
      expect(waits.length).toBeGreaterThan(0);
      expect(r.state()).not.toBe('failed');
      // Back up.
      await listen(port);
      await r.waitForPosition(await headPosition(world.events), { timeoutMs: 15_000 });
      const counts = await readStore.counters('applied');
      const ids = (await world.events.readAll()).events.map((e) => e.eventId);
      expect([...counts.keys()].sort()).toEqual([...ids].sort());
      expect([...counts.values()].every((n) => n === 1)).toBe(true);
    } finally {
      await r.close();
      await readStore.close();
      for (const s of sockets) s.destroy();
      proxy.close();
    }
  });
});
