/**
 * The embedded event store: one SQLite file, through better-sqlite3.
 *
 * - WAL journal, so readers (in this and other processes) never block the writer.
 * - `synchronous=FULL` by default: in WAL mode every commit fsyncs the WAL before the append
 *   is acknowledged, so an acknowledged append survives a process crash *and* a power loss.
 *   `NORMAL` fsyncs only at checkpoints: still safe against a crashed process, but the last
 *   commits before a power loss or OS crash may be rolled back. Choose it only for
 *   throw-away data or benchmarks.
 * - One connection per store. better-sqlite3 is synchronous, so within a process appends are
 *   already serialised; between processes, every append runs in `BEGIN IMMEDIATE`, which
 *   takes the write lock before reading the stream's version, so the version check and the
 *   insert cannot interleave with another writer. `busy_timeout` makes a second process wait
 *   for the lock (up to 5 s by default) instead of failing with SQLITE_BUSY. While it waits,
 *   this process's event loop is blocked: that is the price of a synchronous driver.
 * - SQLite serialises writers, so `position` (an AUTOINCREMENT rowid, never reused) follows
 *   commit order and readAll needs no visibility trick (compare postgres.ts).
 * - Group commit (on by default): appends issued together (by commands running at the same
 *   time in this process) are queued and written in one BEGIN IMMEDIATE … COMMIT, so they
 *   share one fsync. Each keeps its own expected-version check, runs in its own SAVEPOINT (an
 *   append that throws is rolled back alone) and gets its own result; none is acknowledged
 *   before the COMMIT. The queue is written once the current run of promise callbacks is over
 *   (process.nextTick): every command that can reach its append without waiting for I/O joins
 *   the group, and a lone append waits for nothing. `groupCommit: false` writes each append in
 *   its own transaction, during the call.
 *
 * Positions are the rowid zero-padded to 19 digits (the width of SQLite's largest integer), so
 * that they sort as strings.
 */
import Database from 'better-sqlite3';
import {
  StoreError,
  type AppendResult,
  type EventStore,
  type GlobalPosition,
  type NewEvent,
  type ReadAllOptions,
  type ReadAllResult,
  type RecordedEvent,
  type StreamRead,
} from '../../domain/ports.ts';
import { createSubscriptionHub } from './polling-subscription.ts';
import {
  afterMismatch,
  appended,
  checkAfterVersion,
  checkExpectedVersion,
  checkLimit,
  decodeRow,
  decodeRun,
  decodeStream,
  encodeEvents,
  MAX_CONFLICT_TAIL,
  toSafeInteger,
  type EncodedEvent,
  type StoredRow,
} from './stored-event.ts';

export interface SqliteEventStoreOptions {
  /** File path, or `:memory:` for a private in-memory database. */
  readonly path: string;
  /** See the file comment. Default FULL. */
  readonly synchronous?: 'FULL' | 'NORMAL';
  /** How long an append waits for another process's write lock. Default 5000 ms. */
  readonly busyTimeoutMs?: number;
  /** How often subscriptions poll for other processes' appends. Default 50 ms. */
  readonly pollIntervalMs?: number;
  /** Clock for `recordedAt`; defaults to the system clock. */
  readonly now?: () => number;
  /** See the file comment. Default true. */
  readonly groupCommit?: boolean;
  /** At most this many appends share one commit. Default 512. */
  readonly maxGroupSize?: number;
}

/** What a SQLite store has done so far (for tests and benchmarks). */
export interface SqliteStoreStats {
  /** Write transactions committed (or attempted) for appends. */
  readonly commits: number;
  /** Appends written through them. */
  readonly appends: number;
}

export type SqliteEventStore = EventStore & {
  readonly readStreamFrom: NonNullable<EventStore['readStreamFrom']>;
  stats(): SqliteStoreStats;
};

/** The schema version this code writes; recorded in `PRAGMA user_version`. */
export const SQLITE_SCHEMA_VERSION = 1;

/** Migrations by the version they produce. Each runs inside the opening transaction. */
const MIGRATIONS: Record<number, string> = {
  1: `
    CREATE TABLE events (
      position    INTEGER PRIMARY KEY AUTOINCREMENT,
      stream_name TEXT    NOT NULL,
      version     INTEGER NOT NULL CHECK (version > 0),
      event_id    TEXT    NOT NULL UNIQUE,
      type        TEXT    NOT NULL,
      data        TEXT    NOT NULL,  -- JSON object
      metadata    TEXT    NOT NULL,  -- JSON object
      recorded_at INTEGER NOT NULL,  -- ms since the epoch
      UNIQUE (stream_name, version)
    );`,
};

const POSITION_DIGITS = 19;
const MAX_INT64 = 2n ** 63n - 1n;
const formatPosition = (n: bigint | number): GlobalPosition => {
  // A number is what a statement without safeIntegers gives: a position past 2^53 would have
  // lost digits (and then reads as an unsafe integer).
  if (typeof n === 'number' && !Number.isSafeInteger(n)) throw new StoreError('corrupt', `a stored position is out of range: ${n}`);
  return String(n).padStart(POSITION_DIGITS, '0');
};
const parsePosition = (p: GlobalPosition | null | undefined): bigint => {
  if (p === null || p === undefined || p === '') return 0n;
  const n = /^\d{1,19}$/.test(p) ? BigInt(p) : -1n;
  if (n < 0n || n > MAX_INT64) throw new StoreError('invalid', `not a position of a SQLite store: "${p.slice(0, 40)}"`);
  return n;
};

/**
 * Row shape of the SELECTs below. Integers are bigints where the statement uses safeIntegers,
 * numbers in the global log's read (three bigints a row cost a replay dearly): there
 * toSafeInteger and formatPosition refuse a number that lost precision, and readAll reads
 * the batch again with bigints.
 */
interface Row {
  position: bigint | number;
  stream_name: string;
  version: bigint | number;
  event_id: string;
  type: string;
  data: string;
  metadata: string;
  recorded_at: bigint | number;
}
const COLUMNS = 'position, stream_name, version, event_id, type, data, metadata, recorded_at';

const toStoredRow = (r: Row): StoredRow => {
  const position = formatPosition(r.position);
  // Runs for every row of a replay: the error's wording is built only for an error.
  return {
    streamName: r.stream_name,
    version: toSafeInteger(r.version, () => `stream "${r.stream_name}" at position ${position}: version`),
    position,
    eventId: r.event_id,
    type: r.type,
    data: r.data,
    metadata: r.metadata,
    recordedAt: toSafeInteger(r.recorded_at, () => `stream "${r.stream_name}" at position ${position}: recorded_at`),
  };
};

const sqliteCode = (error: unknown): string | undefined =>
  error instanceof Database.SqliteError ? error.code : undefined;

/** Translates driver errors into StoreErrors; leaves StoreErrors and programming errors alone. */
const translate = (error: unknown, path: string, action: string): unknown => {
  if (error instanceof StoreError) return error;
  const code = sqliteCode(error);
  const detail = (error as Error)?.message ?? String(error);
  if (code?.startsWith('SQLITE_BUSY') || code?.startsWith('SQLITE_LOCKED'))
    return new StoreError(
      'unavailable',
      `SQLite database "${path}" stayed locked by another connection while trying to ${action} (${detail}); ` +
        'retry, or raise busyTimeoutMs',
      { cause: error },
    );
  if (code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB')
    return new StoreError('corrupt', `"${path}" is not a usable SQLite database (${detail})`, { cause: error });
  if (/^SQLITE_(CANTOPEN|IOERR|FULL|READONLY)/.test(code ?? ''))
    return new StoreError('unavailable', `cannot ${action} in SQLite database "${path}" (${detail})`, { cause: error });
  return error;
};

/** Opens the database and brings its schema to SQLITE_SCHEMA_VERSION. */
const open = (options: SqliteEventStoreOptions): Database.Database => {
  const { path } = options;
  const synchronous = options.synchronous ?? 'FULL';
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
  // Both end up in PRAGMA text: accept only what they may be.
  if (synchronous !== 'FULL' && synchronous !== 'NORMAL')
    throw new StoreError('invalid', `synchronous must be FULL or NORMAL, got ${String(synchronous)}`);
  if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0)
    throw new StoreError('invalid', `busyTimeoutMs must be a whole number ≥ 0, got ${busyTimeoutMs}`);
  let db: Database.Database;
  try {
    db = new Database(path);
  } catch (error) {
    // better-sqlite3 throws a TypeError when the directory does not exist.
    throw new StoreError('unavailable', `cannot open SQLite database "${path}": ${(error as Error).message}`, { cause: error });
  }
  try {
    // busy_timeout first: switching to WAL needs a lock another process may hold.
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous}`);
    db.transaction(() => {
      const current = db.pragma('user_version', { simple: true }) as number;
      if (current > SQLITE_SCHEMA_VERSION)
        throw new StoreError(
          'invalid',
          `SQLite database "${path}" has schema version ${current}, newer than this factorstream supports ` +
            `(${SQLITE_SCHEMA_VERSION}); upgrade factorstream`,
        );
      for (let v = current + 1; v <= SQLITE_SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
      if (current !== SQLITE_SCHEMA_VERSION) db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION}`);
    }).immediate();
    return db;
  } catch (error) {
    db.close();
    throw translate(error, path, 'open the event store');
  }
};

export const createSqliteEventStore = (options: SqliteEventStoreOptions): SqliteEventStore => {
  const { path } = options;
  const now = options.now ?? (() => Date.now());
  const db = open(options);
  let closed = false;

  const selectStream = db.prepare(`SELECT ${COLUMNS} FROM events WHERE stream_name = ? ORDER BY version`).safeIntegers(true);
  const selectFrom = db
    .prepare(`SELECT ${COLUMNS} FROM events WHERE stream_name = ? AND version > ? ORDER BY version LIMIT ?`)
    .safeIntegers(true);
  const selectTail = db
    .prepare(`SELECT ${COLUMNS} FROM events WHERE stream_name = ? AND version >= ? ORDER BY version`)
    .safeIntegers(true);
  const selectAll = db.prepare(`SELECT ${COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?`).safeIntegers(false);
  const selectAllExact = db.prepare(`SELECT ${COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?`).safeIntegers(true);
  const selectHead = db
    .prepare('SELECT version, position FROM events WHERE stream_name = ? ORDER BY version DESC LIMIT 1')
    .safeIntegers(true);
  const selectEventId = db.prepare('SELECT stream_name, version FROM events WHERE event_id = ?');
  const insert = db.prepare(
    `INSERT INTO events (stream_name, version, event_id, type, data, metadata, recorded_at)
     VALUES (@streamName, @version, @eventId, @type, @data, @metadata, @recordedAt)`,
  );

  const checkOpen = () => {
    if (closed) throw new StoreError('closed', 'the event store is closed');
  };

  const head = (streamName: string) => {
    const row = selectHead.get(streamName) as { version: bigint; position: bigint } | undefined;
    if (!row) return { version: 0, position: 0n };
    return { version: toSafeInteger(row.version, `stream "${streamName}" version`), position: row.position };
  };

  // Runs under BEGIN IMMEDIATE: nobody else can write between the version check and the insert.
  const appendTransaction = db.transaction(
    (streamName: string, events: readonly EncodedEvent[], expectedVersion: number): AppendResult => {
      const current = head(streamName);
      if (current.version !== expectedVersion) {
        if (current.version > expectedVersion) {
          // What the caller missed, read under the write lock: its retry or its next decision.
          const behind = current.version - expectedVersion;
          const stored = (selectFrom.all(streamName, expectedVersion, behind <= MAX_CONFLICT_TAIL ? behind : events.length) as Row[]).map(toStoredRow);
          return afterMismatch(stored, events, expectedVersion, current.version);
        }
        return { ok: false, expectedVersion, actualVersion: current.version };
      }
      if (events.length === 0) return appended(current.version, formatPosition(current.position), false);
      const recordedAt = now();
      let position = 0n;
      events.forEach((e, i) => {
        try {
          position = BigInt(insert.run({ streamName, version: expectedVersion + i + 1, recordedAt, ...e }).lastInsertRowid);
        } catch (error) {
          // The version was checked under the write lock, so a unique violation is the event id.
          if (sqliteCode(error) === 'SQLITE_CONSTRAINT_UNIQUE') {
            const other = selectEventId.get(e.eventId) as { stream_name: string; version: number } | undefined;
            throw new StoreError(
              'invalid',
              `event id ${e.eventId} is already stored` +
                (other ? ` (stream "${other.stream_name}" version ${other.version})` : ''),
              { cause: error },
            );
          }
          throw error;
        }
      });
      return appended(expectedVersion + events.length, formatPosition(position), true);
    },
  );

  // ---- group commit ----------------------------------------------------------------------------

  interface Pending {
    readonly streamName: string;
    readonly events: readonly EncodedEvent[];
    readonly expectedVersion: number;
    readonly resolve: (r: AppendResult) => void;
    readonly reject: (e: unknown) => void;
  }
  type Outcome = { readonly ok: true; readonly result: AppendResult } | { readonly ok: false; readonly error: unknown };

  const groupCommit = options.groupCommit ?? true;
  const maxGroupSize = options.maxGroupSize ?? 512;
  if (!Number.isSafeInteger(maxGroupSize) || maxGroupSize < 1)
    throw new StoreError('invalid', `maxGroupSize must be a whole number ≥ 1, got ${maxGroupSize}`);
  let queue: Pending[] = [];
  let flushScheduled = false;
  let commits = 0;
  let appends = 0;

  // One write transaction for the whole group. Each append is a nested transaction, which
  // better-sqlite3 runs as a SAVEPOINT: one that throws is rolled back alone.
  const groupTransaction = db.transaction((group: readonly Pending[]): Outcome[] =>
    group.map((p): Outcome => {
      try {
        return { ok: true, result: appendTransaction(p.streamName, p.events, p.expectedVersion) };
      } catch (error) {
        // Some errors (I/O, a full disk) make SQLite roll the whole transaction back: then
        // nothing of the group is written, and the whole group fails.
        if (!db.inTransaction) throw error;
        return { ok: false, error };
      }
    }),
  );

  const flush = () => {
    flushScheduled = false;
    const group = queue.slice(0, maxGroupSize);
    queue = queue.slice(group.length);
    if (queue.length > 0) schedule();
    if (group.length === 0) return;
    if (closed) {
      for (const p of group) p.reject(new StoreError('closed', 'the event store is closed'));
      return;
    }
    let outcomes: Outcome[];
    commits++;
    appends += group.length;
    try {
      // A group of one is an ordinary append: its own transaction, no savepoint.
      outcomes =
        group.length === 1
          ? [{ ok: true, result: appendTransaction.immediate(group[0]!.streamName, group[0]!.events, group[0]!.expectedVersion) }]
          : groupTransaction.immediate(group);
    } catch (error) {
      // BEGIN or COMMIT failed (or SQLite rolled everything back): none of the group is stored.
      for (const p of group) p.reject(translate(error, path, `append to stream "${p.streamName}"`));
      return;
    }
    let wrote = false;
    group.forEach((p, i) => {
      const o = outcomes[i]!;
      if (o.ok) {
        wrote ||= o.result.ok && o.result.written === true;
        p.resolve(o.result);
      } else p.reject(translate(o.error, path, `append to stream "${p.streamName}"`));
    });
    if (wrote) hub.notify();
  };

  const schedule = () => {
    if (flushScheduled) return;
    flushScheduled = true;
    // Node runs nextTick callbacks once the promise callbacks queued so far (and those they
    // queue) have run: the commands resumed by the last commit all reach their appends first.
    process.nextTick(flush);
  };

  const appendToStream = async (
    streamName: string,
    events: readonly NewEvent[],
    expectedVersion: number,
  ): Promise<AppendResult> => {
    checkOpen();
    checkExpectedVersion(expectedVersion);
    const encoded = encodeEvents(events);
    if (groupCommit) {
      return new Promise<AppendResult>((resolve, reject) => {
        queue.push({ streamName, events: encoded, expectedVersion, resolve, reject });
        schedule();
      });
    }
    let result: AppendResult;
    commits++;
    appends++;
    try {
      result = appendTransaction.immediate(streamName, encoded, expectedVersion);
    } catch (error) {
      throw translate(error, path, `append to stream "${streamName}"`);
    }
    if (result.ok && result.written) hub.notify();
    return result;
  };

  const readStream = async (streamName: string): Promise<StreamRead> => {
    checkOpen();
    let rows: Row[];
    try {
      rows = selectStream.all(streamName) as Row[];
    } catch (error) {
      throw translate(error, path, `read stream "${streamName}"`);
    }
    const events = decodeStream(rows.map(toStoredRow));
    return { version: events.length, events };
  };

  const readStreamFrom = async (streamName: string, afterVersion: number): Promise<StreamRead> => {
    checkOpen();
    checkAfterVersion(afterVersion);
    if (afterVersion === 0) return readStream(streamName);
    try {
      // From the event at afterVersion itself: finding it shows the stream is at least that
      // long, in the same query. It is checked, not decoded.
      const rows = selectTail.all(streamName, afterVersion) as Row[];
      // Shorter than afterVersion, or a gap: say how long it is; the caller reads it whole.
      const mismatch = () => ({ version: head(streamName).version, events: [] });
      if (rows[0]?.version !== BigInt(afterVersion)) return mismatch();
      const events = decodeRun(rows.slice(1).map(toStoredRow), afterVersion + 1);
      return events ? { version: afterVersion + events.length, events } : mismatch();
    } catch (error) {
      throw translate(error, path, `read stream "${streamName}"`);
    }
  };

  const readAll = async (o: ReadAllOptions = {}): Promise<ReadAllResult> => {
    checkOpen();
    checkLimit(o.limit);
    const after = parsePosition(o.after);
    const read = (statement: Database.Statement) => {
      let rows: Row[];
      try {
        // LIMIT -1 is SQLite for "no limit".
        rows = statement.all(after, o.limit ?? -1) as Row[];
      } catch (error) {
        throw translate(error, path, 'read the global log');
      }
      const events = new Array<RecordedEvent>(rows.length);
      for (let i = 0; i < rows.length; i++) events[i] = decodeRow(toStoredRow(rows[i]!));
      return events;
    };
    let events: RecordedEvent[];
    try {
      events = read(selectAll);
    } catch (error) {
      // An integer past 2^53 (a position may be up to 2^63 − 1): read the batch again exactly.
      if (!(error instanceof StoreError && error.code === 'corrupt')) throw error;
      events = read(selectAllExact);
    }
    return { events, last: events.length ? events[events.length - 1]!.position : (o.after ?? null) };
  };

  const hub = createSubscriptionHub(readAll, { intervalMs: options.pollIntervalMs ?? 50, batchSize: 500 });

  return {
    appendToStream,
    tailOnConflict: true,
    readStream,
    readStreamFrom,
    readAll,
    subscribe: (o) => hub.subscribe(o),
    stats: () => ({ commits, appends }),
    close: async () => {
      if (closed) return;
      // Appends already accepted are written before the database closes.
      while (queue.length > 0) flush();
      closed = true;
      await hub.closeAll(new StoreError('closed', 'the event store was closed'));
      db.close();
    },
  };
};
