/**
 * The SQLite read store (better-sqlite3). It may share the event store's file: its tables
 * are prefixed rm_.
 *
 * A batch runs in one BEGIN IMMEDIATE transaction, synchronously from the lease check to the
 * commit: SQLite's writer lock makes it exclusive between processes, and no await inside it
 * lets another connection of this process (the event store's, say) block on the lock while
 * this one waits for the event loop. One instance applies events at a time: the holder of
 * the lease row (rm_leases), renewed with every batch and by the runner's heartbeat, and
 * taken over by another instance once it has expired.
 *
 * A rebuild writes the whole read model, with no reader waiting for it: its reset drops the
 * indexes only queries use (sql.ts, readIndexes) in its own transaction, its batches run with
 * a larger page cache and WAL checkpoint interval, and finishRebuild builds the indexes from
 * the finished tables and restores the settings. Queries during a rebuild are answered, by
 * scanning. If the process dies mid-rebuild, the indexes come back when the store is next
 * opened (schemaDdl) or when another instance claims the projection.
 */
import Database from 'better-sqlite3';
import { ProjectionError } from '../errors.ts';
import type { Claim, ClaimOptions, CommitRequest, CommitResult, ReadStore } from '../read-store.ts';
import { loadSync, runBuffered, type RowLoader } from './buffered-tx.ts';
import { flushPlan, loaderSql, readIndexes, readSchemaPlan, sqlReads, toDeviceRow, toStreak, type Tables } from './sql.ts';

export interface SqliteReadStoreOptions {
  /** File path, or `:memory:`. */
  readonly path: string;
  /** How long a transaction waits for another connection's write lock. Default 5000 ms. */
  readonly busyTimeoutMs?: number;
}

/**
 * While a rebuild writes (this connection only): a page cache that holds the primary-key
 * indexes a rebuild inserts into at random (by event, device and user id) instead of the
 * default 2 MB, and fewer, larger WAL checkpoints, so that a page written by many batches
 * is copied back to the database once rather than once per checkpoint.
 */
const REBUILD_CACHE_KIB = 64 * 1024;
const REBUILD_AUTOCHECKPOINT_PAGES = 100_000;

type Row = Record<string, unknown>;

const t: Tables = (name) => name;
const list = (param: string) => `(SELECT value FROM json_each(${param}))`;

/**
 * A statement of the shared SQL (written for PostgreSQL, with $1…), prepared with plain `?`
 * placeholders: better-sqlite3 binds an array to those by position, which costs much less
 * per row than binding an object by name.
 */
interface Prepared {
  readonly statement: Database.Statement;
  /** The parameter each `?` takes (0-based); null when they are $1, $2, … in order, once each. */
  readonly order: readonly number[] | null;
  /** How many `?` there are. */
  readonly count: number;
}

const positional = (db: Database.Database, sql: string): Prepared => {
  const order: number[] = [];
  const text = sql.replace(/\$(\d+)/g, (_, n: string) => {
    order.push(Number(n) - 1);
    return '?';
  });
  return { statement: db.prepare(text), order: order.every((n, i) => n === i) ? null : order, count: order.length };
};

/** The values to bind, in placeholder order; undefined binds as NULL. */
const args = (p: Prepared, params: readonly unknown[]): readonly unknown[] => {
  if (p.order) return p.order.map((i) => params[i] ?? null);
  if (params.length === p.count && !params.includes(undefined)) return params;
  return Array.from({ length: p.count }, (_, i) => params[i] ?? null);
};

const failure = (path: string, action: string, error: unknown): ProjectionError =>
  error instanceof ProjectionError
    ? error
    : new ProjectionError(
        'read-store-failed',
        `SQLite read store "${path}" could not ${action}: ${error instanceof Error ? error.message : String(error)}`,
        null,
        { cause: error },
      );

const open = (o: SqliteReadStoreOptions): Database.Database => {
  let db: Database.Database;
  try {
    db = new Database(o.path);
  } catch (error) {
    throw failure(o.path, 'open the database', error);
  }
  try {
    db.pragma(`busy_timeout = ${o.busyTimeoutMs ?? 5000}`);
    if (o.path !== ':memory:') db.pragma('journal_mode = WAL');
    // Read models can be rebuilt; the checkpoint commits with them either way.
    db.pragma('synchronous = NORMAL');
    db.transaction(() => {
      const has = (table: string) => db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(table) !== undefined;
      const version = has('rm_schema') ? ((db.prepare('SELECT version FROM rm_schema WHERE id = 1').get() as { version: number } | undefined)?.version ?? null) : null;
      for (const ddl of readSchemaPlan('sqlite', t, { version, tables: has('rm_checkpoints') }, `SQLite read store "${o.path}"`)) db.exec(ddl);
    }).immediate();
    return db;
  } catch (error) {
    db.close();
    throw failure(o.path, 'create its tables', error);
  }
};

export const createSqliteReadStore = (o: SqliteReadStoreOptions): ReadStore => {
  const db = open(o);
  let closed = false;
  const statements = new Map<string, Prepared>();
  const prepare = (sql: string) => {
    let p = statements.get(sql);
    if (!p) statements.set(sql, (p = positional(db, sql)));
    return p;
  };
  const all = (sql: string, params: readonly unknown[]): Row[] => {
    const p = prepare(sql);
    return p.statement.all(args(p, params)) as Row[];
  };
  const run = (sql: string, params: readonly unknown[]): void => {
    const p = prepare(sql);
    p.statement.run(args(p, params));
  };
  const guarded = <A extends unknown[], R>(action: string, f: (...a: A) => R) =>
    (...a: A): R => {
      if (closed) throw new ProjectionError('read-store-failed', `SQLite read store "${o.path}" is closed`);
      try {
        return f(...a);
      } catch (error) {
        throw failure(o.path, action, error);
      }
    };

  const q = loaderSql(t, list);
  const loader = (projection: string): RowLoader<'sync'> => ({
    streamVersions: (streams) =>
      new Map(all(q.streamVersions, [projection, JSON.stringify(streams)]).map((r) => [String(r.stream_name), Number(r.version)])),
    devices: (ids) => new Map(all(q.devices, [JSON.stringify(ids)]).map((r) => [String(r.device_id), toDeviceRow(r)])),
    streaks: (ids) => new Map(all(q.streaks, [JSON.stringify(ids)]).map((r) => [String(r.user_id), toStreak(r)])),
  });

  const leaseOf = (projection: string) =>
    all(`SELECT owner, expires_at FROM rm_leases WHERE projection = $1`, [projection])[0] as
      | { owner: string; expires_at: number }
      | undefined;

  const indexes = readIndexes(t);
  /** Builds the read indexes a rebuild dropped; nothing to do when they exist. */
  const ensureIndexes = () => {
    for (const i of indexes) db.exec(i.create);
  };

  const acquire = db.transaction((projection: string, c: ClaimOptions): boolean => {
    const lease = leaseOf(projection);
    const now = c.now();
    if (lease && lease.owner !== c.owner && lease.expires_at >= now) return false;
    // Taking the projection over, not renewing: an instance that died in a rebuild may have
    // left the indexes dropped. (If this instance is about to rebuild, its reset drops them.)
    if (!lease || lease.owner !== c.owner) ensureIndexes();
    run(
      `INSERT INTO rm_leases (projection, owner, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (projection) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at`,
      [projection, c.owner, now + c.leaseMs],
    );
    run(`INSERT INTO rm_checkpoints (projection, position, updated_at) VALUES ($1, NULL, $2) ON CONFLICT (projection) DO NOTHING`, [
      projection,
      now,
    ]);
    return true;
  });

  const commit = db.transaction((projection: string, c: ClaimOptions, req: CommitRequest): CommitResult => {
    const lease = leaseOf(projection);
    const now = c.now();
    if (!lease || lease.owner !== c.owner || lease.expires_at < now) return 'not-active';
    const stored = all(`SELECT position FROM rm_checkpoints WHERE projection = $1`, [projection])[0]?.position ?? null;
    if (stored !== req.expected) return 'checkpoint-moved';
    const changes = runBuffered(loadSync(loader(projection), req.events), req.work);
    // A rebuild's reset: the read model is emptied in this transaction, so the indexes go with
    // it and are built once, from the finished tables, by finishRebuild (or, if this process
    // dies first, by the next open or claim; see ensureIndexes).
    if (req.rebuild && changes.clearedReadModel) for (const i of indexes) db.exec(`DROP INDEX IF EXISTS ${i.name}`);
    for (const s of flushPlan(changes, projection, t)) run(s.sql, s.params);
    run(`UPDATE rm_checkpoints SET position = $2, updated_at = $3 WHERE projection = $1`, [projection, req.next, now]);
    run(`UPDATE rm_leases SET expires_at = $3 WHERE projection = $1 AND owner = $2`, [projection, c.owner, now + c.leaseMs]);
    return 'committed';
  });

  /** The pragmas a rebuild changed on this connection, to restore; null: none changed. */
  let saved: { readonly cacheSize: number; readonly autocheckpoint: number } | null = null;
  const startRebuild = () => {
    if (saved) return;
    saved = {
      cacheSize: Number(db.pragma('cache_size', { simple: true })),
      autocheckpoint: Number(db.pragma('wal_autocheckpoint', { simple: true })),
    };
    db.pragma(`cache_size = -${REBUILD_CACHE_KIB}`);
    db.pragma(`wal_autocheckpoint = ${REBUILD_AUTOCHECKPOINT_PAGES}`);
  };
  const finishRebuild = () => {
    // With the rebuild's cache still set: building an index sorts the whole table.
    db.transaction(ensureIndexes).immediate();
    if (!saved) return;
    const { cacheSize, autocheckpoint } = saved;
    saved = null;
    db.pragma(`cache_size = ${cacheSize}`);
    db.pragma(`wal_autocheckpoint = ${autocheckpoint}`);
    // The WAL grew to the rebuild's checkpoint interval, and a WAL file does not shrink by
    // itself; this also spares the next live batch a large checkpoint.
    db.pragma('wal_checkpoint(TRUNCATE)');
  };

  const claim = (projection: string, c: ClaimOptions): Claim => ({
    acquire: async () => guarded('take the projection lease', () => acquire.immediate(projection, c))(),
    commit: async (req) => {
      if (closed) throw new ProjectionError('read-store-failed', `SQLite read store "${o.path}" is closed`);
      try {
        if (req.rebuild) startRebuild();
        return commit.immediate(projection, c, req);
      } catch (error) {
        // A handler's own error goes back to the runner as it was thrown.
        if (error instanceof ProjectionError || !(error instanceof Database.SqliteError)) throw error;
        throw failure(o.path, 'commit a batch', error);
      }
    },
    release: async () => {
      if (!closed) run(`DELETE FROM rm_leases WHERE projection = $1 AND owner = $2`, [projection, c.owner]);
    },
    finishRebuild: async () => guarded('build its indexes after a rebuild', finishRebuild)(),
  });

  const reads = sqlReads(async (sql, params) => guarded('read', all)(sql, params), t);
  return {
    kind: 'sqlite',
    claim,
    ...reads,
    close: async () => {
      if (closed) return;
      closed = true;
      db.close();
    },
  };
};
