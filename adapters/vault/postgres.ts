/**
 * Data keys in PostgreSQL, in a table apart from the events. A shred deletes the row and
 * leaves a tombstone; the table is vacuumed afterwards so the dead row version holding the
 * wrapped key does not linger (it is encrypted under the master key in any case).
 */
import pg from 'pg';
import { VaultError } from '../../domain/ports.ts';
import { createEnvelopeVault, type EnvelopeVault, type KeyStore } from './envelope.ts';

const ident = (name: string) => {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new VaultError('unavailable', `"${name.slice(0, 70)}" is not a valid schema name`);
  return `"${name}"`;
};

export const createPostgresKeyStore = (options: { connectionString?: string; pool?: pg.Pool; schema?: string }): KeyStore => {
  const pool = options.pool ?? new pg.Pool({ connectionString: options.connectionString, max: 4, connectionTimeoutMillis: 10_000 });
  const ownPool = options.pool === undefined;
  // An idle connection the server closes (a restart, an administrator) makes the pool emit
  // 'error'; without a listener that would end the process. The pool drops the connection and
  // the next query opens another.
  if (ownPool) pool.on('error', () => undefined);
  const s = ident(options.schema ?? 'public');
  const keys = `${s}.vault_keys`;
  const meta = `${s}.vault_meta`;
  const wrap = async <A>(f: () => Promise<A>): Promise<A> => {
    try {
      return await f();
    } catch (e) {
      if (e instanceof VaultError) throw e;
      throw new VaultError('unavailable', `the PostgreSQL key store failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  let ready: Promise<void> | null = null;
  const init = () =>
    (ready ??= wrap(async () => {
      await pool.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
      await pool.query(`CREATE TABLE IF NOT EXISTS ${keys} (device_id text PRIMARY KEY, wrapped text, shredded_at timestamptz)`);
      await pool.query(`CREATE TABLE IF NOT EXISTS ${meta} (name text PRIMARY KEY, value text NOT NULL)`);
    }).catch((e) => {
      ready = null;
      throw e;
    }));
  const q = async (text: string, values: unknown[] = []) => {
    await init();
    return wrap(() => pool.query(text, values));
  };
  return {
    get: async (id) => {
      const r = await q(`SELECT wrapped FROM ${keys} WHERE device_id = $1`, [id]);
      return r.rowCount === 0 ? undefined : (r.rows[0].wrapped as string | null);
    },
    insert: async (id, wrapped) => {
      await q(`INSERT INTO ${keys} (device_id, wrapped) VALUES ($1, $2) ON CONFLICT (device_id) DO NOTHING`, [id, wrapped]);
    },
    shred: async (id) => {
      await init();
      await wrap(async () => {
        const c = await pool.connect();
        try {
          await c.query('BEGIN');
          await c.query(`DELETE FROM ${keys} WHERE device_id = $1`, [id]);
          await c.query(`INSERT INTO ${keys} (device_id, wrapped, shredded_at) VALUES ($1, NULL, now())`, [id]);
          await c.query('COMMIT');
        } catch (e) {
          await c.query('ROLLBACK').catch(() => {});
          throw e;
        } finally {
          c.release();
        }
        await pool.query(`VACUUM ${keys}`).catch(() => {});
      });
    },
    list: async () => {
      const r = await q(`SELECT device_id, wrapped FROM ${keys} WHERE wrapped IS NOT NULL ORDER BY device_id`);
      return r.rows.map((row) => [row.device_id as string, row.wrapped as string] as const);
    },
    rewrap: async (entries, check) => {
      await init();
      await wrap(async () => {
        const c = await pool.connect();
        try {
          await c.query('BEGIN');
          for (const [id, w] of entries) await c.query(`UPDATE ${keys} SET wrapped = $1 WHERE device_id = $2 AND wrapped IS NOT NULL`, [w, id]);
          await c.query(
            `INSERT INTO ${meta} (name, value) VALUES ('master-check', $1) ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
            [check],
          );
          await c.query('COMMIT');
        } catch (e) {
          await c.query('ROLLBACK').catch(() => {});
          throw e;
        } finally {
          c.release();
        }
      });
    },
    getCheck: async () => {
      const r = await q(`SELECT value FROM ${meta} WHERE name = 'master-check'`);
      return r.rowCount === 0 ? null : (r.rows[0].value as string);
    },
    initCheck: async (check) => {
      await q(`INSERT INTO ${meta} (name, value) VALUES ('master-check', $1) ON CONFLICT (name) DO NOTHING`, [check]);
      const r = await q(`SELECT value FROM ${meta} WHERE name = 'master-check'`);
      return r.rows[0].value as string;
    },
    close: async () => {
      if (ownPool) await pool.end();
    },
  };
};

export const createPostgresVault = (
  options: { connectionString?: string; pool?: pg.Pool; schema?: string },
  masterKey: Uint8Array,
): EnvelopeVault => createEnvelopeVault(createPostgresKeyStore(options), masterKey);
