import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EventStore } from '../../../domain/ports.ts';
import { openEventStore } from '../../../adapters/store/factory.ts';
import { createTestDatabase } from '../../support/postgres.ts';

const event = () => {
  const eventId = randomUUID();
  return { eventId, type: 'Tested', data: {}, metadata: { eventId } };
};

/** Proves the store works: an append and a read. */
const roundTrip = async (store: EventStore) => {
  const stream = `factory-${randomUUID()}`;
  expect(await store.appendToStream(stream, [event()], 0)).toMatchObject({ ok: true, version: 1 });
  expect((await store.readStream(stream)).version).toBe(1);
};

let dir: string;
const savedEnv = process.env.FACTORSTREAM_STORE;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'factorstream-factory-'));
});
afterEach(() => {
  if (savedEnv === undefined) delete process.env.FACTORSTREAM_STORE;
  else process.env.FACTORSTREAM_STORE = savedEnv;
  rmSync(dir, { recursive: true, force: true });
});

describe('openEventStore', () => {
  it('opens a SQLite file from sqlite:PATH', async () => {
    const path = join(dir, 'events.db');
    const store = await openEventStore(`sqlite:${path}`);
    await roundTrip(store);
    await store.close();
    expect(existsSync(path)).toBe(true);
  });

  it('reads FACTORSTREAM_STORE when no URL is given', async () => {
    const path = join(dir, 'from-env.db');
    process.env.FACTORSTREAM_STORE = `sqlite:${path}`;
    const store = await openEventStore();
    await roundTrip(store);
    await store.close();
    expect(existsSync(path)).toBe(true);
  });

  it('opens sqlite::memory: and memory:', async () => {
    for (const url of ['sqlite::memory:', 'memory:']) {
      const store = await openEventStore(url);
      await roundTrip(store);
      await store.close();
    }
  });

  it('opens postgres:// and postgresql:// URLs', async () => {
    const database = await createTestDatabase('fs_test');
    try {
      for (const url of [database.url, database.url.replace(/^postgres:/, 'postgresql:')]) {
        const store = await openEventStore(url);
        await roundTrip(store);
        await store.close();
      }
    } finally {
      await database.drop();
    }
  });

  it('reports an unreachable PostgreSQL as StoreError("unavailable") without the password', async () => {
    const failure = await openEventStore('postgresql://someone:hunter2@127.0.0.1:1/x').catch((e: unknown) => e);
    expect(failure).toMatchObject({ name: 'StoreError', code: 'unavailable' });
    expect((failure as Error).message).not.toContain('hunter2');
  });

  it('refuses an unknown store, naming it with the password masked and listing the accepted forms', async () => {
    const failure = await openEventStore('mysql://someone:hunter2@db.example/events').catch((e: unknown) => e);
    expect(failure).toMatchObject({ name: 'StoreError', code: 'invalid' });
    const message = (failure as Error).message;
    expect(message).toContain('mysql://someone:***@db.example/events');
    expect(message).not.toContain('hunter2');
    for (const form of ['sqlite:', 'sqlite::memory:', 'postgres://', 'postgresql://', 'esdb://', 'esdb+discover://', 'memory:'])
      expect(message).toContain(form);
  });

  it('refuses sqlite: without a path, and sqlite:// forms that would name a file at the root', async () => {
    await expect(openEventStore('sqlite:')).rejects.toMatchObject({ code: 'invalid', message: expect.stringContaining('names no file') });
    await expect(openEventStore('sqlite://./events.db')).rejects.toMatchObject({
      code: 'invalid',
      message: expect.stringContaining('sqlite:./factorstream.db'),
    });
  });

  const esdbAdapter = fileURLToPath(new URL('../../../adapters/store/eventstoredb.ts', import.meta.url));
  // Only meaningful while the EventStoreDB adapter is absent from the tree.
  it.runIf(!existsSync(esdbAdapter))('says clearly when EventStoreDB support is missing', async () => {
    for (const url of ['esdb://admin:changeit@localhost:2113?tls=false', 'esdb+discover://localhost:2113']) {
      const failure = await openEventStore(url).catch((e: unknown) => e);
      expect(failure).toMatchObject({ name: 'StoreError', code: 'invalid', message: expect.stringContaining('eventstoredb.ts') });
      expect((failure as Error).message).not.toContain('changeit');
    }
  });

  it.runIf(existsSync(esdbAdapter))('hands esdb:// URLs to the EventStoreDB adapter', async () => {
    // The client connects lazily, so no server is needed to see the adapter being used.
    const store = await openEventStore('esdb://127.0.0.1:1?tls=false');
    expect(typeof store.appendToStream).toBe('function');
    expect(typeof store.subscribe).toBe('function');
    await store.close();
  });
});
