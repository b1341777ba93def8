/**
 * The PostgreSQL read store (pg). Its tables sit in a schema (default `factorstream`, the
 * event store's), prefixed rm_.
 *
 * One instance applies events at a time: the one holding a session-level advisory lock
 * (`pg_try_advisory_lock`) on a dedicated connection. Its batches run on that same
 * connection, so if the connection (or the process) dies, the lock goes with it and no
 * batch of the old holder can commit after another instance has taken over. Each batch is
 * one transaction that also compares and moves the checkpoint (SELECT … FOR UPDATE).
 */
import pg from 'pg';
import { ProjectionError } from '../errors.ts';
import type { Claim, ClaimOptions, CommitRequest, CommitResult, ReadStore } from '../read-store.ts';
import { loadAsync, runBuffered, type RowLoader } from './buffered-tx.ts';
import { bulkFlushPlan, loaderSql, readSchemaPlan, sqlReads, toDeviceRow, toStreak, type Tables } from './sql.ts';

export interface PostgresReadStoreOptions {
  /** `postgres://user:password@host:port/database`. */
  readonly connectionString: string;
  /** Schema of the read-model tables; created if missing. Default `factorstream`. */
  readonly schema?: string;
  /** Connections for queries (claims use their own). Default 4. */
  readonly poolSize?: number;
}

/** The URL without its password, for messages. */
export const redactUrl = (url: string): string => {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
  }
};

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

const isPgError = (e: unknown): boolean =>
  e instanceof Error && ('code' in e || /connect|terminat|Connection|ECONN|timeout/i.test(e.message));

/** Runs async functions one after another. */
const serial = () => {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(f: () => Promise<T>): Promise<T> => {
    const next = tail.then(f, f);
    tail = next.catch(() => undefined);
    return next;
  };
};

export const createPostgresReadStore = async (o: PostgresReadStoreOptions): Promise<ReadStore> => {
  const schema = o.schema ?? 'factorstream';
  const where = `PostgreSQL read store ${redactUrl(o.connectionString)} (schema ${schema})`;
  const failure = (action: string, error: unknown) =>
    error instanceof ProjectionError
      ? error
      : new ProjectionError('read-store-failed', `${where} could not ${action}: ${error instanceof Error ? error.message : String(error)}`, null, {
          cause: error,
        });
  const t: Tables = (name) => `${quoteIdent(schema)}.${name}`;
  const pool = new pg.Pool({ connectionString: o.connectionString, max: o.poolSize ?? 4, connectionTimeoutMillis: 10_000 });
  pool.on('error', () => undefined); // an idle client's error: the pool drops it
  const claims = new Set<() => Promise<void>>();
  let closed = false;

  const migrate = async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('factorstream-read-store-schema', 0))`);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
      const exists = async (table: string) =>
        (await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [t(table)])).rows[0]?.t != null;
      const version = (await exists('rm_schema'))
        ? ((await client.query<{ version: number }>(`SELECT version FROM ${t('rm_schema')} WHERE id = 1`)).rows[0]?.version ?? null)
        : null;
      for (const ddl of readSchemaPlan('postgres', t, { version, tables: await exists('rm_checkpoints') }, where)) await client.query(ddl);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  };
  try {
    // The event store may create the schema at the same moment (a unique violation): once more.
    await migrate().catch((e: { code?: string }) => (e.code === '23505' || e.code === '42P06' ? migrate() : Promise.reject(e)));
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw failure('create its tables (is PostgreSQL running and the URL right?)', error);
  }

  const q = loaderSql(t, (p) => `(SELECT unnest(${p}::text[]))`);
  const loader = (client: pg.Client, projection: string): RowLoader<'async'> => ({
    streamVersions: async (streams) =>
      new Map((await client.query(q.streamVersions, [projection, streams])).rows.map((r) => [String(r.stream_name), Number(r.version)])),
    devices: async (ids) => new Map((await client.query(q.devices, [ids])).rows.map((r) => [String(r.device_id), toDeviceRow(r)])),
    streaks: async (ids) => new Map((await client.query(q.streaks, [ids])).rows.map((r) => [String(r.user_id), toStreak(r)])),
  });

  const claim = (projection: string, c: ClaimOptions): Claim => {
    const lockKey = `factorstream-projection:${schema}:${projection}`;
    const one = serial();
    let client: pg.Client | null = null;
    let held = false;
    let dead = false;

    const drop = async () => {
      const old = client;
      client = null;
      held = false;
      // end() waits for the server to say goodbye; on a connection that was cut, that may
      // never come (and every claim call waits in line behind this one).
      if (old) await Promise.race([old.end().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
    };
    const connect = async (): Promise<pg.Client> => {
      const fresh = new pg.Client({ connectionString: o.connectionString });
      const lost = () => {
        if (client === fresh) {
          dead = true;
          held = false;
        }
      };
      fresh.on('error', lost);
      fresh.on('end', lost);
      await fresh.connect();
      dead = false;
      client = fresh;
      return fresh;
    };
    const alive = async (cl: pg.Client) => {
      try {
        await cl.query('SELECT 1');
        return !dead;
      } catch {
        return false;
      }
    };

    const acquire = async (): Promise<boolean> => {
      if (closed) throw new ProjectionError('read-store-failed', `${where} is closed`);
      if (client && held && !dead && (await alive(client))) return true;
      if (!client || dead) {
        await drop();
        await connect();
      }
      const cl = client!;
      const r = await cl.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [lockKey]);
      held = r.rows[0]?.ok === true;
      if (held)
        await cl.query(
          `INSERT INTO ${t('rm_checkpoints')} (projection, position, updated_at) VALUES ($1, NULL, $2) ON CONFLICT (projection) DO NOTHING`,
          [projection, c.now()],
        );
      return held;
    };

    const commit = async (req: CommitRequest): Promise<CommitResult> => {
      const cl = client;
      if (!cl || !held || dead) return 'not-active';
      try {
        await cl.query('BEGIN');
        const cp = await cl.query(`SELECT position FROM ${t('rm_checkpoints')} WHERE projection = $1 FOR UPDATE`, [projection]);
        if ((cp.rows[0]?.position ?? null) !== req.expected) {
          await cl.query('ROLLBACK');
          return 'checkpoint-moved';
        }
        const changes = runBuffered(await loadAsync(loader(cl, projection), req.events), req.work);
        for (const s of bulkFlushPlan(changes, projection, t)) await cl.query(s.sql, s.params as unknown[]);
        await cl.query(`UPDATE ${t('rm_checkpoints')} SET position = $2, updated_at = $3 WHERE projection = $1`, [
          projection,
          req.next,
          c.now(),
        ]);
        await cl.query('COMMIT');
        return 'committed';
      } catch (error) {
        await cl.query('ROLLBACK').catch(() => undefined);
        if (error instanceof ProjectionError) throw error; // a handler failed: rolled back
        // The connection went, and the lock with it: another instance may have taken over.
        if (dead || client !== cl || !(await alive(cl))) {
          await drop();
          return 'not-active';
        }
        if (!isPgError(error)) throw error;
        throw failure('commit a batch', error);
      }
    };

    const release = () => one(drop);
    claims.add(release);
    return {
      acquire: () =>
        one(async () => {
          try {
            return await acquire();
          } catch (error) {
            await drop();
            throw failure('take the projection lock', error);
          }
        }),
      commit: (req) => one(() => commit(req)),
      release,
    };
  };

  const reads = sqlReads(async (sql, params) => {
    if (closed) throw new ProjectionError('read-store-failed', `${where} is closed`);
    try {
      return (await pool.query(sql, params as unknown[])).rows as Record<string, unknown>[];
    } catch (error) {
      throw failure('read', error);
    }
  }, t);

  return {
    kind: 'postgres',
    claim,
    ...reads,
    close: async () => {
      if (closed) return;
      closed = true;
      await Promise.all([...claims].map((release) => release()));
      await pool.end();
    },
  };
};
