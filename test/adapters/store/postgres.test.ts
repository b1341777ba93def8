/**
 * PostgreSQL-specific behaviour that the conformance suite cannot show: the global order under
 * concurrent writers whose transactions commit out of sequence order, corrupt rows, schema
 * versioning, connection failures.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventStore, GlobalPosition, NewEvent, RecordedEvent } from '../../../domain/ports.ts';
import { POSTGRES_SCHEMA_VERSION, createPostgresEventStore, type PostgresEventStoreOptions } from '../../../adapters/store/postgres.ts';
import { createTestDatabase } from '../../support/postgres.ts';

let database: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  database = await createTestDatabase('fs_test');
});
afterAll(async () => {
  await database?.drop();
});

const freshSchema = () => `t_${randomUUID().replaceAll('-', '')}`;
const open = (options: Partial<PostgresEventStoreOptions> = {}) =>
  createPostgresEventStore({ connectionString: database.url, schema: freshSchema(), ...options });
const client = async () => {
  const c = new pg.Client({ connectionString: database.url });
  await c.connect();
  return c;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const event = (data: Record<string, unknown> = {}): NewEvent => {
  const eventId = randomUUID();
  return { eventId, type: 'Tested', data, metadata: { eventId } };
};

/** Inserts a row the way the store does, inside the caller's transaction. */
const rawInsert = (c: pg.Client, schema: string, stream: string, version: number, eventId = randomUUID()) =>
  c.query(
    `INSERT INTO "${schema}".events (stream_name, version, event_id, type, data, metadata, recorded_at)
     VALUES ($1, $2, $3, 'Raw', '{}', '{}', now())`,
    [stream, version, eventId],
  );

describe('PostgreSQL event store: global order under concurrent writers', () => {
  it('gives a polling reader every event exactly once while 8 writers append (5 rounds)', async () => {
    for (let round = 0; round < 5; round++) {
      const schema = freshSchema();
      // Writers share one store with a pool larger than 8, so the 8 loops below hold 8
      // separate connections at once; the reader has a store (and pool) of its own.
      const writerStore = await createPostgresEventStore({ connectionString: database.url, schema, max: 10 });
      const readerStore = await createPostgresEventStore({ connectionString: database.url, schema, max: 2 });
      const slow = await client();
      try {
        const streams = Array.from({ length: 12 }, (_, i) => `order${round}-${i}`);
        const acknowledged: string[] = [];
        let conflicts = 0;

        const writer = async () => {
          for (let n = 0; n < 30; n++) {
            const stream = streams[Math.floor(Math.random() * streams.length)]!;
            const batch = Array.from({ length: 1 + Math.floor(Math.random() * 3) }, () => event({ n }));
            for (;;) {
              const { version } = await writerStore.readStream(stream);
              const result = await writerStore.appendToStream(stream, batch, version);
              if (result.ok) break;
              conflicts++;
            }
            acknowledged.push(...batch.map((e) => e.eventId));
          }
        };

        // A writer that takes its sequence numbers early and commits late (5–30 ms later),
        // so positions are certainly committed out of order: the case that makes a naive
        // `position > checkpoint` reader lose events.
        const slowWriter = async () => {
          for (let v = 1; v <= 15; v++) {
            const eventId = randomUUID();
            await slow.query('BEGIN');
            await rawInsert(slow, schema, `slow${round}-1`, v, eventId);
            await sleep(5 + Math.random() * 25);
            await slow.query('COMMIT');
            acknowledged.push(eventId);
          }
        };

        const seen: RecordedEvent[] = [];
        let checkpoint: GlobalPosition | null = null;
        let writing = true;
        const reader = async () => {
          let quietReads = 0;
          // After the writers stop, read until two reads in a row return nothing.
          while (writing || quietReads < 2) {
            const page = await readerStore.readAll({ after: checkpoint, limit: 25 });
            seen.push(...page.events);
            checkpoint = page.last;
            if (page.events.length === 0) {
              if (!writing) quietReads++;
              await sleep(2);
            } else quietReads = 0;
          }
        };

        const readerDone = reader();
        await Promise.all([...Array.from({ length: 8 }, writer), slowWriter()]);
        writing = false;
        await readerDone;

        const seenIds = seen.map((e) => e.eventId);
        expect(new Set(seenIds).size, 'no event delivered twice').toBe(seenIds.length);
        expect(new Set(seenIds)).toEqual(new Set(acknowledged));
        expect(seen).toHaveLength(acknowledged.length);
        // One global order: positions increase, and every stream's versions come 1, 2, 3, …
        for (let i = 1; i < seen.length; i++) expect(seen[i]!.position > seen[i - 1]!.position).toBe(true);
        const versions = new Map<string, number>();
        for (const e of seen) {
          expect(e.version, `${e.streamName} in order`).toBe((versions.get(e.streamName) ?? 0) + 1);
          versions.set(e.streamName, e.version);
        }
        expect(conflicts, 'the writers really raced').toBeGreaterThan(0);
      } finally {
        await slow.end();
        await writerStore.close();
        await readerStore.close();
      }
    }
  }, 120_000);

  it('holds back events committed after an older transaction that is still open, then delivers both in xid order', async () => {
    const schema = freshSchema();
    const store = await createPostgresEventStore({ connectionString: database.url, schema });
    const early = await client();
    try {
      await store.appendToStream('before-1', [event()], 0);
      const { last: checkpoint } = await store.readAll();

      // `early` inserts first (smaller global_position) but commits last.
      await early.query('BEGIN');
      await rawInsert(early, schema, 'early-1', 1);
      const late = event();
      expect(await store.appendToStream('late-1', [late], 0)).toMatchObject({ ok: true });
      // late-1 is committed, yet not readable in the global order while early-1 may still commit before it.
      expect((await store.readStream('late-1')).version).toBe(1);
      expect(await store.readAll({ after: checkpoint })).toEqual({ events: [], last: checkpoint });

      await early.query('COMMIT');
      const { events } = await store.readAll({ after: checkpoint });
      expect(events.map((e) => e.streamName)).toEqual(['early-1', 'late-1']);
      // Ordered by transaction, not by sequence value.
      const sequence = events.map((e) => Number(e.position.split(':')[1]));
      expect(sequence[0]).toBeLessThan(sequence[1]!);
    } finally {
      await early.end();
      await store.close();
    }
  });
});

describe('PostgreSQL event store: corrupt rows', () => {
  it('reports data or metadata that is not a JSON object as StoreError("corrupt") naming stream and version; keeps the row', async () => {
    const schema = freshSchema();
    const store = await createPostgresEventStore({ connectionString: database.url, schema });
    const raw = await client();
    try {
      await store.appendToStream('healthy-1', [event(), event()], 0);
      await store.appendToStream('broken-1', [event(), event(), event()], 0);
      await store.appendToStream('oddmeta-1', [event()], 0);
      await raw.query(`UPDATE "${schema}".events SET data = '"just a string"' WHERE stream_name = 'broken-1' AND version = 2`);
      await raw.query(`UPDATE "${schema}".events SET metadata = 'null' WHERE stream_name = 'oddmeta-1' AND version = 1`);
      const snapshot = `SELECT global_position, stream_name, version, data::text, metadata::text
                        FROM "${schema}".events ORDER BY global_position`;
      const before = (await raw.query(snapshot)).rows;

      const broken = {
        name: 'StoreError',
        code: 'corrupt',
        message: expect.stringMatching(/stream "broken-1" version 2\b.*data is not a JSON object/),
      };
      await expect(store.readStream('broken-1')).rejects.toMatchObject(broken);
      await expect(store.readAll()).rejects.toMatchObject(broken);
      await expect(store.readStream('oddmeta-1')).rejects.toMatchObject({
        code: 'corrupt',
        message: expect.stringMatching(/stream "oddmeta-1" version 1\b.*metadata is not a JSON object/),
      });

      expect((await store.readStream('healthy-1')).version).toBe(2);
      expect(await store.appendToStream('healthy-1', [event()], 2)).toMatchObject({ ok: true, version: 3 });
      // Reading past the corrupt row works.
      const { rows } = await raw.query(
        `SELECT transaction_id::text AS x, global_position::text AS p FROM "${schema}".events
         WHERE stream_name = 'broken-1' AND version = 2`,
      );
      const after = `${rows[0].x.padStart(20, '0')}:${rows[0].p.padStart(19, '0')}`;
      expect((await store.readAll({ after, limit: 1 })).events.map((e) => [e.streamName, e.version])).toEqual([['broken-1', 3]]);

      expect((await raw.query(snapshot)).rows.slice(0, before.length)).toEqual(before);
    } finally {
      await raw.end();
      await store.close();
    }
  });
});

describe('PostgreSQL event store: schema, input and connections', () => {
  it('creates the schema once, records its version, and survives being opened twice and concurrently', async () => {
    const schema = freshSchema();
    const opened = await Promise.all(Array.from({ length: 4 }, () => createPostgresEventStore({ connectionString: database.url, schema })));
    await opened[0]!.appendToStream('kept-1', [event()], 0);
    for (const store of opened) await store.close();
    const again = await createPostgresEventStore({ connectionString: database.url, schema });
    expect((await again.readStream('kept-1')).version).toBe(1);
    await again.close();

    const raw = await client();
    try {
      const { rows } = await raw.query(`SELECT version FROM "${schema}".schema_version`);
      expect(rows).toEqual([{ version: POSTGRES_SCHEMA_VERSION }]);
      await raw.query(`INSERT INTO "${schema}".schema_version (version) VALUES (99)`);
      await expect(createPostgresEventStore({ connectionString: database.url, schema })).rejects.toMatchObject({
        code: 'invalid',
        message: expect.stringMatching(/version 99/),
      });
    } finally {
      await raw.end();
    }
  });

  it('returns numbers for versions and padded strings for positions (no bigint reaches the caller)', async () => {
    const store = await open();
    try {
      const result = await store.appendToStream('types-1', [event(), event()], 0);
      expect(result).toMatchObject({ ok: true, version: 2 });
      if (result.ok) expect(result.position).toMatch(/^\d{20}:\d{19}$/);
      const { events } = await store.readStream('types-1');
      for (const e of events) {
        expect(typeof e.version).toBe('number');
        expect(typeof e.recordedAt).toBe('number');
        expect(e.position).toMatch(/^\d{20}:\d{19}$/);
      }
      expect(() => JSON.stringify(events)).not.toThrow();
    } finally {
      await store.close();
    }
  });

  it('records recordedAt from its clock, to the millisecond', async () => {
    const store = await open({ now: () => 1_700_000_000_123 });
    try {
      await store.appendToStream('clock-1', [event()], 0);
      expect((await store.readStream('clock-1')).events[0]!.recordedAt).toBe(1_700_000_000_123);
    } finally {
      await store.close();
    }
  });

  it('refuses data that is not a JSON object or that PostgreSQL cannot store, and writes nothing', async () => {
    const store = await open();
    try {
      const bad: NewEvent[] = [
        { ...event(), data: 'a string' },
        { ...event(), data: [1] },
        { ...event(), metadata: null },
        { ...event(), data: { nul: 'a\u0000b' } },
      ];
      for (const e of bad)
        await expect(store.appendToStream('input-1', [event(), e], 0)).rejects.toMatchObject({ name: 'StoreError', code: 'invalid' });
      expect((await store.readAll()).events).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('reports an unreachable server as StoreError("unavailable") without the password', async () => {
    const attempt = createPostgresEventStore({ connectionString: 'postgres://someone:hunter2@127.0.0.1:1/nowhere' });
    await expect(attempt).rejects.toMatchObject({
      name: 'StoreError',
      code: 'unavailable',
      message: expect.stringContaining('127.0.0.1:1'),
    });
    const message = await attempt.catch((e: Error) => e.message);
    expect(message).not.toContain('hunter2');
    expect(message).toMatch(/ECONNREFUSED|connect/);
  });

  it('reports a missing database as StoreError("unavailable")', async () => {
    const url = new URL(database.url);
    url.pathname = '/fs_test_does_not_exist';
    await expect(createPostgresEventStore({ connectionString: url.toString() })).rejects.toMatchObject({
      code: 'unavailable',
      message: expect.stringContaining('fs_test_does_not_exist'),
    });
  });

  it("leaves a caller's pool open on close()", async () => {
    const pool = new pg.Pool({ connectionString: database.url, max: 2 });
    let store: EventStore | undefined;
    try {
      store = await createPostgresEventStore({ pool, schema: freshSchema() });
      await store.appendToStream('pool-1', [event()], 0);
      await store.close();
      expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await pool.end();
    }
  });
});
