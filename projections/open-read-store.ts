/**
 * Opens the read store named by a URL (FACTORSTREAM_READ_STORE):
 *
 *   sqlite:PATH                     a SQLite file (may be the event store's own)
 *   sqlite::memory:                 a private in-memory SQLite database
 *   postgres://… / postgresql://…   PostgreSQL (tables in schema `factorstream`)
 *   memory:                         in memory (tests, demos)
 *
 * Unset, it defaults to the event store's URL (FACTORSTREAM_STORE, default
 * sqlite:./factorstream.db) when that is SQLite, PostgreSQL or memory:, so the read models
 * sit beside the events. An EventStoreDB event store needs FACTORSTREAM_READ_STORE set.
 */
import { ProjectionError } from './errors.ts';
import type { ReadStore } from './read-store.ts';
import { createMemoryReadStore } from './stores/memory.ts';
import { createPostgresReadStore, redactUrl } from './stores/postgres.ts';
import { createSqliteReadStore } from './stores/sqlite.ts';

export const DEFAULT_EVENT_STORE_URL = 'sqlite:./factorstream.db';

const ACCEPTED = 'sqlite:PATH (e.g. sqlite:./factorstream.db), sqlite::memory:, postgres://user:password@host:5432/database, memory:';

const isPostgres = (url: string) => /^postgres(ql)?:\/\//i.test(url);
const usable = (url: string) => url === 'memory:' || url.startsWith('sqlite:') || isPostgres(url);

/** The read store URL the environment asks for. */
export const readStoreUrl = (env: Readonly<Record<string, string | undefined>> = process.env): string => {
  const explicit = env.FACTORSTREAM_READ_STORE?.trim();
  if (explicit) return explicit;
  const events = env.FACTORSTREAM_STORE?.trim() || DEFAULT_EVENT_STORE_URL;
  if (usable(events)) return events;
  throw new ProjectionError(
    'invalid',
    `FACTORSTREAM_READ_STORE is not set, and the event store "${redactUrl(events)}" (FACTORSTREAM_STORE) cannot hold read models; ` +
      `set FACTORSTREAM_READ_STORE to one of: ${ACCEPTED}`,
  );
};

export const openReadStore = async (url: string = readStoreUrl()): Promise<ReadStore> => {
  const value = url.trim();
  if (value === 'memory:') return createMemoryReadStore();
  if (value.startsWith('sqlite:')) {
    const path = value.slice('sqlite:'.length);
    if (path === '') throw new ProjectionError('invalid', `read store "${value}" names no file; accepted forms: ${ACCEPTED}`);
    return createSqliteReadStore({ path });
  }
  if (isPostgres(value)) return createPostgresReadStore({ connectionString: value });
  throw new ProjectionError('invalid', `unsupported read store "${redactUrl(value)}" (FACTORSTREAM_READ_STORE); accepted forms: ${ACCEPTED}`);
};
