/**
 * Opens the event store named by a URL (FACTORSTREAM_STORE):
 *
 *   sqlite:PATH                     a SQLite file (the default: sqlite:./factorstream.db)
 *   sqlite::memory:                 a private in-memory SQLite database
 *   postgres://… / postgresql://…   PostgreSQL
 *   esdb://… / esdb+discover://…    EventStoreDB
 *   memory:                         the in-memory store (tests, demos; nothing is kept)
 */
import { existsSync } from 'node:fs';
import { StoreError, type EventStore } from '../../domain/ports.ts';
import { createMemoryEventStore } from './memory.ts';
import { createPostgresEventStore, redactConnectionString } from './postgres.ts';
import { createSqliteEventStore } from './sqlite.ts';

export const DEFAULT_STORE_URL = 'sqlite:./factorstream.db';

const ACCEPTED_FORMS =
  'sqlite:PATH (e.g. sqlite:./factorstream.db), sqlite::memory:, postgres://user:password@host:5432/database ' +
  '(or postgresql://…), esdb://host:2113?tls=false (or esdb+discover://…), memory:';

export const openEventStore = async (url: string = process.env.FACTORSTREAM_STORE ?? DEFAULT_STORE_URL): Promise<EventStore> => {
  const value = url.trim();
  if (value === 'memory:') return createMemoryEventStore();
  if (value.startsWith('sqlite:')) {
    const path = value.slice('sqlite:'.length);
    if (path === '') throw new StoreError('invalid', `store "${value}" names no file; accepted forms: ${ACCEPTED_FORMS}`);
    // sqlite://x is not a path: "//x" would silently name a file at the root of the disk.
    if (path.startsWith('//'))
      throw new StoreError(
        'invalid',
        `store "${value}": write sqlite:PATH without "//", e.g. sqlite:./factorstream.db or sqlite:/var/lib/factorstream.db`,
      );
    return createSqliteEventStore({ path });
  }
  if (/^postgres(ql)?:\/\//i.test(value)) return createPostgresEventStore({ connectionString: value });
  if (/^esdb(\+discover)?:\/\//i.test(value)) return openEventStoreDb(value);
  throw new StoreError(
    'invalid',
    `unsupported event store "${redactConnectionString(value)}" (FACTORSTREAM_STORE); accepted forms: ${ACCEPTED_FORMS}`,
  );
};

/**
 * The EventStoreDB adapter is loaded only when asked for, so that its gRPC client costs
 * nothing to SQLite and PostgreSQL users. The specifier is a variable so that this file
 * compiles whether or not the adapter is present.
 */
const openEventStoreDb = async (connectionString: string): Promise<EventStore> => {
  const specifier = './eventstoredb.ts';
  if (!existsSync(new URL(specifier, import.meta.url)))
    throw new StoreError(
      'invalid',
      `EventStoreDB support (adapters/store/eventstoredb.ts) is not part of this build, so ` +
        `"${redactConnectionString(connectionString)}" cannot be opened; use a sqlite: or postgres:// store`,
    );
  const adapter = (await import(specifier)) as { createEventStoreDbStore?: unknown };
  if (typeof adapter.createEventStoreDbStore !== 'function')
    throw new StoreError('invalid', 'adapters/store/eventstoredb.ts does not export createEventStoreDbStore');
  return (await adapter.createEventStoreDbStore({ connectionString })) as EventStore;
};
