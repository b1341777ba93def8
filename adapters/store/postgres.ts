/**
 * The PostgreSQL event store (PostgreSQL ≥ 13), through a `pg` Pool.
 *
 * One table, `<schema>.events`, created and migrated by the adapter; the applied schema
 * version is recorded in `<schema>.schema_version`.
 *
 * Appends are one statement (so one implicit transaction): it reads the stream's version and
 * inserts the events only if it equals the expected version. Two appends racing at the same
 * version both try to insert the same (stream_name, version); the unique index makes the
 * second wait for the first and then fail with a unique violation (23505), which is turned
 * into a conflict value — or into success when it was a retry of the very same events.
 * "Must not exist" (expected 0) collides the same way on version 1.
 *
 * Global order. Sequence values are handed out when a row is inserted, not when its
 * transaction commits, so a reader that simply asks for `global_position > checkpoint` can
 * move past a position whose transaction commits later, and skip it for ever. Each row
 * therefore records its transaction id (`xid8`), and readAll returns only rows whose
 * transaction is older than every transaction still in flight
 * (`transaction_id < pg_snapshot_xmin(pg_current_snapshot())`), ordered by
 * (transaction_id, global_position). Any row committed later belongs to a transaction at or
 * above that horizon, so it sorts after every checkpoint handed out so far. Positions are
 * "<xid, 20 digits>:<global_position, 19 digits>" and sort as strings. The cost: a long-open
 * transaction anywhere in the cluster holds the horizon back, and readAll and subscriptions
 * wait for it (events are delayed, never lost).
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import {
  StoreError,
  type AppendResult,
  type EventStore,
  type GlobalPosition,
  type NewEvent,
  type ReadAllOptions,
  type ReadAllResult,
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

export interface PostgresEventStoreOptions {
  /** `postgres://user:password@host:port/database`. Needed unless `pool` is given. */
  readonly connectionString?: string;
  /** Schema holding the store's tables; created if missing. Default `factorstream`. */
  readonly schema?: string;
  /** A pool owned by the caller: the store uses it and leaves it open on close(). */
  readonly pool?: pg.Pool;
  /** Size of the pool the store creates when none is given. Default 10. */
  readonly max?: number;
  /** How often subscriptions poll. Default 100 ms. */
  readonly pollIntervalMs?: number;
  /** Clock for `recordedAt`; defaults to the system clock. */
  readonly now?: () => number;
  /**
   * Send the store's frequent statements as named prepared statements, parsed and planned
   * once per connection (the append statement costs more to plan than to run). Default true;
   * turn it off behind a pooler that cannot keep them (PgBouncer in transaction mode).
   */
  readonly preparedStatements?: boolean;
}

/** The schema version this code writes; recorded in `<schema>.schema_version`. */
export const POSTGRES_SCHEMA_VERSION = 1;

/** Migrations by the version they produce; `s` is the quoted schema name. */
const migrations = (s: string): Record<number, string> => ({
  1: `
    CREATE TABLE ${s}.events (
      global_position BIGSERIAL   PRIMARY KEY,
      transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
      stream_name     TEXT        NOT NULL,
      version         BIGINT      NOT NULL CHECK (version > 0),
      event_id        TEXT        NOT NULL,
      type            TEXT        NOT NULL,
      data            JSONB       NOT NULL,
      metadata        JSONB       NOT NULL,
      recorded_at     TIMESTAMPTZ NOT NULL,
      CONSTRAINT events_stream_version_key UNIQUE (stream_name, version),
      CONSTRAINT events_event_id_key UNIQUE (event_id)
    );
    CREATE INDEX events_transaction_order ON ${s}.events (transaction_id, global_position);`,
});

// ---- positions ----------------------------------------------------------------------------------

const formatPosition = (xid: string, position: string): GlobalPosition =>
  `${xid.padStart(20, '0')}:${position.padStart(19, '0')}`;
const START = { xid: '0', position: '0' };
const parsePosition = (p: GlobalPosition | null | undefined): { xid: string; position: string } => {
  if (p === null || p === undefined || p === '') return START;
  const m = /^(\d{1,20}):(\d{1,19})$/.exec(p);
  const xid = m ? BigInt(m[1]!) : -1n;
  const position = m ? BigInt(m[2]!) : -1n;
  if (xid < 0n || xid >= 2n ** 64n || position < 0n || position >= 2n ** 63n)
    throw new StoreError('invalid', `not a position of a PostgreSQL store: "${p.slice(0, 60)}"`);
  // Sent without the padding: xid8 input reads a leading 0 as an octal prefix.
  return { xid: xid.toString(), position: position.toString() };
};

// ---- errors -------------------------------------------------------------------------------------

/** The connection string with any password replaced by `***`, fit for messages and logs. */
export const redactConnectionString = (value: string): string => {
  try {
    const url = new URL(value);
    if (url.password) url.password = '***';
    for (const key of [...url.searchParams.keys()])
      if (/pass|secret|key|token/i.test(key)) url.searchParams.set(key, '***');
    return url.toString();
  } catch {
    // Not a URL: mask anything that looks like user:password@ or password=…
    return value.replace(/\/\/([^:/@\s]*):[^@\s]*@/g, '//$1:***@').replace(/(password\s*=\s*)[^&\s]*/gi, '$1***');
  }
};

const NETWORK_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

/** Errors meaning "the server cannot be used right now", as opposed to a bad request. */
const isUnavailable = (error: unknown): boolean => {
  const code = (error as { code?: unknown })?.code;
  if (typeof code === 'string') {
    if (NETWORK_ERRORS.has(code)) return true;
    // 08: connection exception; 57P: operator intervention (shutdown, …); 53: insufficient
    // resources; 3D000: no such database; 28: authentication failed.
    if (/^(08|57P|53|28)/.test(code) || code === '3D000') return true;
  }
  const message = (error as Error)?.message ?? '';
  return /Connection terminated|timeout exceeded when trying to connect|connection error|Client was closed/i.test(message);
};

const errorText = (error: unknown): string => {
  const e = error as { message?: string; code?: string; errors?: { message?: string }[] };
  // Node reports a refused dual-stack connect as an AggregateError with an empty message.
  return e?.message || e?.errors?.map((x) => x.message).join('; ') || e?.code || String(error);
};

// ---- rows ---------------------------------------------------------------------------------------

/** Every integer is selected as text: pg returns BIGINT as a string anyway, and no bigint may leak. */
const COLUMNS = `e.global_position::text AS position, e.transaction_id::text AS xid, e.stream_name, e.version::text AS version,
  e.event_id, e.type, e.data::text AS data, e.metadata::text AS metadata,
  round(extract(epoch FROM e.recorded_at) * 1000)::bigint::text AS recorded_at`;
// Queries alias the table as `e` and sort on `e.` columns: a bare ORDER BY version would sort
// the text output column of the same name ("10" before "2").

interface Row {
  position: string;
  xid: string;
  stream_name: string;
  version: string;
  event_id: string;
  type: string;
  data: string;
  metadata: string;
  recorded_at: string;
}

const toStoredRow = (r: Row): StoredRow => {
  const position = formatPosition(r.xid, r.position);
  const where = `stream "${r.stream_name}" at position ${position}:`;
  return {
    streamName: r.stream_name,
    version: toSafeInteger(r.version, `${where} version`),
    position,
    eventId: r.event_id,
    type: r.type,
    data: r.data,
    metadata: r.metadata,
    recordedAt: toSafeInteger(r.recorded_at, `${where} recorded_at`),
  };
};

// ---- the store ----------------------------------------------------------------------------------

export const createPostgresEventStore = async (options: PostgresEventStoreOptions): Promise<EventStore> => {
  const schemaName = options.schema ?? 'factorstream';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schemaName))
    throw new StoreError(
      'invalid',
      `PostgreSQL schema name must be lower-case letters, digits and _, got "${schemaName.slice(0, 80)}"`,
    );
  if (!options.pool && !options.connectionString)
    throw new StoreError('invalid', 'createPostgresEventStore needs a connectionString or a pool');
  const target = options.connectionString ? redactConnectionString(options.connectionString) : 'the given pool';
  const s = `"${schemaName}"`;
  const now = options.now ?? (() => Date.now());

  const ownPool = !options.pool;
  const pool =
    options.pool ??
    new pg.Pool({ connectionString: options.connectionString, max: options.max ?? 10, connectionTimeoutMillis: 10_000 });
  // An idle client losing its connection emits 'error' on the pool; unhandled it would crash
  // the process. The pool drops that client, and the next query reports the problem.
  if (ownPool) pool.on('error', () => {});

  const translate = (error: unknown, action: string): unknown => {
    if (error instanceof StoreError) return error;
    if (isUnavailable(error))
      return new StoreError(
        'unavailable',
        `PostgreSQL at ${target} is unavailable (while trying to ${action}): ${errorText(error)}`,
        { cause: error },
      );
    return error;
  };

  const prepared = options.preparedStatements ?? true;
  // Statement names are per connection and cut at 63 bytes by PostgreSQL: a short digest of
  // the schema keeps them unique when stores of several schemas share a pool.
  const prefix = `factorstream_${createHash('sha256').update(schemaName).digest('hex').slice(0, 12)}_`;
  /** A query, named (so prepared once per connection) when `name` is given and prepared statements are on. */
  const statement = (text: string, values: unknown[], name?: string): pg.QueryConfig =>
    prepared && name ? { name: prefix + name, text, values } : { text, values };

  const query = async <R extends pg.QueryResultRow>(text: string, values: unknown[], action: string, name?: string): Promise<R[]> => {
    try {
      return (await pool.query<R>(statement(text, values, name))).rows;
    } catch (error) {
      throw translate(error, action);
    }
  };

  // Creates the schema and applies missing migrations. The advisory lock serialises stores
  // opening the same schema at once (CREATE … IF NOT EXISTS alone can still race).
  const migrate = async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`factorstream schema ${schemaName}`]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${s}.schema_version (
           version    INTEGER     PRIMARY KEY,
           applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )`,
      );
      const { rows } = await client.query<{ v: number }>(`SELECT COALESCE(MAX(version), 0)::int AS v FROM ${s}.schema_version`);
      const current = rows[0]!.v;
      if (current > POSTGRES_SCHEMA_VERSION)
        throw new StoreError(
          'invalid',
          `PostgreSQL schema "${schemaName}" has version ${current}, newer than this factorstream supports ` +
            `(${POSTGRES_SCHEMA_VERSION}); upgrade factorstream`,
        );
      const steps = migrations(s);
      for (let v = current + 1; v <= POSTGRES_SCHEMA_VERSION; v++) {
        await client.query(steps[v]!);
        await client.query(`INSERT INTO ${s}.schema_version (version) VALUES ($1)`, [v]);
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  };

  try {
    await migrate();
  } catch (error) {
    if (ownPool) await pool.end().catch(() => {});
    throw translate(error, 'open the event store');
  }

  let closed = false;
  const checkOpen = () => {
    if (closed) throw new StoreError('closed', 'the event store is closed');
  };

  /** The stream's version and the position of its last event. */
  const head = async (streamName: string) => {
    const rows = await query<{ version: string; xid: string; position: string }>(
      `SELECT e.version::text AS version, e.transaction_id::text AS xid, e.global_position::text AS position
       FROM ${s}.events e WHERE e.stream_name = $1 ORDER BY e.version DESC LIMIT 1`,
      [streamName],
      `read stream "${streamName}"`,
      'head',
    );
    const row = rows[0];
    return row
      ? { version: toSafeInteger(row.version, `stream "${streamName}" version`), position: formatPosition(row.xid, row.position) }
      : { version: 0, position: formatPosition(START.xid, START.position) };
  };

  /**
   * The append did not happen at `expectedVersion`: it is either a retry of an append that
   * did (success, nothing written) or a conflict.
   */
  const resolveMismatch = async (
    streamName: string,
    events: readonly EncodedEvent[],
    expectedVersion: number,
    actualVersion: number,
  ): Promise<AppendResult> => {
    if (actualVersion > expectedVersion) {
      // The rows after the expected version: a retry of this append, or what the caller missed.
      const behind = actualVersion - expectedVersion;
      const rows = await query<Row>(
        `SELECT ${COLUMNS} FROM ${s}.events e WHERE e.stream_name = $1 AND e.version > $2 ORDER BY e.version LIMIT $3`,
        [streamName, expectedVersion, behind <= MAX_CONFLICT_TAIL ? behind : events.length],
        `read stream "${streamName}"`,
      );
      return afterMismatch(rows.map(toStoredRow), events, expectedVersion, actualVersion);
    }
    return { ok: false, expectedVersion, actualVersion };
  };

  // One statement: `stream_head` reads the stream's version, the insert runs only when it equals
  // the expected version, and the first row always returns `actual` (plus the last inserted
  // row's version and position). When the stream is longer than expected (a conflict, or a
  // retry), the rows after it follow, read from the same snapshot: the caller's retry is
  // recognised and a conflict reports what the caller missed (AppendResult.tail), with no
  // further round trip. `ord` orders the rows: 0 for the status row, then the versions.
  const withTail = (insertedAndStatus: string) => `
    ${insertedAndStatus}
    UNION ALL
    SELECT NULL, ${COLUMNS}, e.version
    FROM stream_head JOIN ${s}.events e ON e.stream_name = $1 AND e.version > $2::bigint
    WHERE stream_head.v > $2::bigint AND stream_head.v <= $2::bigint + ${MAX_CONFLICT_TAIL}
    ORDER BY ord`;
  const STATUS = `stream_head.v::text AS actual, inserted.global_position::text AS position, inserted.transaction_id::text AS xid,
      NULL AS stream_name, inserted.version::text AS version, NULL AS event_id, NULL AS type, NULL AS data, NULL AS metadata,
      NULL AS recorded_at, 0::bigint AS ord`;
  // ORDER BY ord makes global positions follow versions within the append.
  const appendStatement = withTail(`
    WITH stream_head AS (
      SELECT COALESCE(MAX(version), 0) AS v FROM ${s}.events WHERE stream_name = $1
    ), inserted AS (
      INSERT INTO ${s}.events (stream_name, version, event_id, type, data, metadata, recorded_at)
      SELECT $1, $2::bigint + e.ord, e.event_id, e.type, e.data::jsonb, e.metadata::jsonb, $7::timestamptz
      FROM stream_head,
           unnest($3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS e(event_id, type, data, metadata, ord)
      WHERE stream_head.v = $2::bigint
      ORDER BY e.ord
      RETURNING version, transaction_id, global_position
    )
    (SELECT ${STATUS}
     FROM stream_head LEFT JOIN inserted ON true
     ORDER BY inserted.version DESC NULLS LAST  -- the RETURNING column: a bigint
     LIMIT 1)`);

  // The same for the most frequent append, one event (a verification): no arrays to unnest,
  // no ordering, a cheaper plan. Same parameters, each array replaced by its one element.
  const appendOneStatement = withTail(`
    WITH stream_head AS (
      SELECT COALESCE(MAX(version), 0) AS v FROM ${s}.events WHERE stream_name = $1
    ), inserted AS (
      INSERT INTO ${s}.events (stream_name, version, event_id, type, data, metadata, recorded_at)
      SELECT $1, $2::bigint + 1, $3, $4, $5::jsonb, $6::jsonb, $7::timestamptz
      FROM stream_head
      WHERE stream_head.v = $2::bigint
      RETURNING version, transaction_id, global_position
    )
    SELECT ${STATUS}
    FROM stream_head LEFT JOIN inserted ON true`);

  const appendToStream = async (
    streamName: string,
    events: readonly NewEvent[],
    expectedVersion: number,
  ): Promise<AppendResult> => {
    checkOpen();
    checkExpectedVersion(expectedVersion);
    const encoded = encodeEvents(events);
    if (encoded.length === 0) {
      const current = await head(streamName);
      return current.version === expectedVersion
        ? appended(current.version, current.position, false)
        : resolveMismatch(streamName, encoded, expectedVersion, current.version);
    }
    let row: { actual: string; version: string | null; xid: string | null; position: string | null };
    let after: Row[];
    try {
      const recordedAt = new Date(now()).toISOString();
      const one = encoded.length === 1 ? encoded[0]! : null;
      const result = await pool.query<typeof row>(
        one
          ? statement(appendOneStatement, [streamName, expectedVersion, one.eventId, one.type, one.data, one.metadata, recordedAt], 'append-one')
          : statement(
              appendStatement,
              [
                streamName,
                expectedVersion,
                encoded.map((e) => e.eventId),
                encoded.map((e) => e.type),
                encoded.map((e) => e.data),
                encoded.map((e) => e.metadata),
                recordedAt,
              ],
              'append',
            ),
      );
      [row, ...after] = result.rows as [typeof row, ...Row[]];
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === '23505') return afterUniqueViolation(streamName, encoded, expectedVersion, error);
      if (code === '22P05' || code === '22P02')
        throw new StoreError('invalid', `PostgreSQL refused the events' JSON (${errorText(error)})`, { cause: error });
      if (isUnavailable(error))
        throw new StoreError(
          'unavailable',
          `PostgreSQL at ${target} is unavailable (while appending to stream "${streamName}"): ${errorText(error)}. ` +
            'If the connection broke mid-append, it may or may not have been stored; retrying it with the same ' +
            'event ids and expected version is safe.',
          { cause: error },
        );
      throw error;
    }
    if (row.version !== null && row.xid !== null && row.position !== null) {
      hub.notify();
      const version = toSafeInteger(row.version, 'appended version');
      return appended(version, formatPosition(row.xid, row.position), true);
    }
    const actualVersion = toSafeInteger(row.actual, `stream "${streamName}" version`);
    // The statement read the rows after the expected version (unless too many): a retry of
    // this append, or what the caller missed.
    if (after.length > 0) return afterMismatch(after.map(toStoredRow), encoded, expectedVersion, actualVersion);
    return resolveMismatch(streamName, encoded, expectedVersion, actualVersion);
  };

  /** A concurrent append got there first, or an event id is already used elsewhere. */
  const afterUniqueViolation = async (
    streamName: string,
    events: readonly EncodedEvent[],
    expectedVersion: number,
    error: unknown,
  ): Promise<AppendResult> => {
    const { version } = await head(streamName);
    if (version !== expectedVersion) return resolveMismatch(streamName, events, expectedVersion, version);
    // The stream did not move, so the violation was on event_id: name the stored event.
    const taken = await query<{ event_id: string; stream_name: string; version: string }>(
      `SELECT event_id, stream_name, version::text AS version FROM ${s}.events WHERE event_id = ANY($1::text[]) LIMIT 1`,
      [events.map((e) => e.eventId)],
      'look up an event id',
    );
    const t = taken[0];
    throw new StoreError(
      'invalid',
      t
        ? `event id ${t.event_id} is already stored (stream "${t.stream_name}" version ${t.version})`
        : `an event id is already stored (${errorText(error)})`,
      { cause: error },
    );
  };

  const readStream = async (streamName: string): Promise<StreamRead> => {
    checkOpen();
    const rows = await query<Row>(
      `SELECT ${COLUMNS} FROM ${s}.events e WHERE e.stream_name = $1 ORDER BY e.version`,
      [streamName],
      `read stream "${streamName}"`,
      'read-stream',
    );
    const events = decodeStream(rows.map(toStoredRow));
    return { version: events.length, events };
  };

  const readStreamFrom = async (streamName: string, afterVersion: number): Promise<StreamRead> => {
    checkOpen();
    checkAfterVersion(afterVersion);
    if (afterVersion === 0) return readStream(streamName);
    // From the event at afterVersion itself: finding it shows the stream is at least that long,
    // in the same round trip. It is checked, not decoded.
    const rows = await query<Row>(
      `SELECT ${COLUMNS} FROM ${s}.events e WHERE e.stream_name = $1 AND e.version >= $2 ORDER BY e.version`,
      [streamName, afterVersion],
      `read stream "${streamName}"`,
      'read-stream-from',
    );
    // Shorter than afterVersion, or a gap: say how long it is; the caller reads it whole.
    const mismatch = async () => ({ version: (await head(streamName)).version, events: [] });
    if (rows[0] === undefined || toSafeInteger(rows[0].version, `stream "${streamName}" version`) !== afterVersion) return mismatch();
    const events = decodeRun(rows.slice(1).map(toStoredRow), afterVersion + 1);
    return events ? { version: afterVersion + events.length, events } : mismatch();
  };

  const readAll = async (o: ReadAllOptions = {}): Promise<ReadAllResult> => {
    checkOpen();
    checkLimit(o.limit);
    const after = parsePosition(o.after);
    // Only transactions older than every one still running: see the file comment.
    const rows = await query<Row>(
      `SELECT ${COLUMNS} FROM ${s}.events e
       WHERE e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
         AND (e.transaction_id, e.global_position) > ($1::xid8, $2::bigint)
       ORDER BY e.transaction_id, e.global_position
       LIMIT $3`,
      [after.xid, after.position, o.limit ?? null],
      'read the global log',
    );
    const events = rows.map((r) => decodeRow(toStoredRow(r)));
    return { events, last: events.length ? events[events.length - 1]!.position : (o.after ?? null) };
  };

  const hub = createSubscriptionHub(readAll, { intervalMs: options.pollIntervalMs ?? 100, batchSize: 500 });

  return {
    appendToStream,
    tailOnConflict: true,
    readStream,
    readStreamFrom,
    readAll,
    subscribe: (o) => hub.subscribe(o),
    close: async () => {
      if (closed) return;
      closed = true;
      await hub.closeAll(new StoreError('closed', 'the event store was closed'));
      if (ownPool) await pool.end();
    },
  };
};
