/**
 * Data keys in SQLite, in tables apart from the events (by default in the same file).
 * `secure_delete` overwrites a shredded key's bytes on disk, and the WAL is checkpointed and
 * truncated after a shred so no old page image of it stays behind.
 */
import Database from 'better-sqlite3';
import { VaultError } from '../../domain/ports.ts';
import { createEnvelopeVault, type EnvelopeVault, type KeyStore } from './envelope.ts';

export const createSqliteKeyStore = (path: string): KeyStore => {
  let db: Database.Database;
  try {
    db = new Database(path);
  } catch (e) {
    throw new VaultError('unavailable', `cannot open the key store ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.pragma('secure_delete = ON');
  db.exec(`
    CREATE TABLE IF NOT EXISTS vault_keys (
      device_id TEXT PRIMARY KEY,
      wrapped TEXT,
      shredded_at INTEGER
    );
    CREATE TABLE IF NOT EXISTS vault_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
  `);
  const get = db.prepare<[string], { wrapped: string | null }>('SELECT wrapped FROM vault_keys WHERE device_id = ?');
  const insert = db.prepare('INSERT OR IGNORE INTO vault_keys (device_id, wrapped) VALUES (?, ?)');
  const remove = db.prepare('DELETE FROM vault_keys WHERE device_id = ?');
  const tombstone = db.prepare('INSERT INTO vault_keys (device_id, wrapped, shredded_at) VALUES (?, NULL, ?)');
  const list = db.prepare<[], { device_id: string; wrapped: string }>(
    'SELECT device_id, wrapped FROM vault_keys WHERE wrapped IS NOT NULL ORDER BY device_id',
  );
  const update = db.prepare('UPDATE vault_keys SET wrapped = ? WHERE device_id = ? AND wrapped IS NOT NULL');
  const getMeta = db.prepare<[string], { value: string }>('SELECT value FROM vault_meta WHERE name = ?');
  const setMeta = db.prepare('INSERT INTO vault_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value');
  const initMeta = db.prepare('INSERT OR IGNORE INTO vault_meta (name, value) VALUES (?, ?)');

  const shred = db.transaction((id: string) => {
    // Delete then insert a tombstone: secure_delete zeroes the deleted cell.
    remove.run(id);
    tombstone.run(id, Date.now());
  });
  const rewrap = db.transaction((entries: ReadonlyArray<readonly [string, string]>, check: string) => {
    for (const [id, w] of entries) update.run(w, id);
    setMeta.run('master-check', check);
  });

  return {
    get: async (id) => {
      const row = get.get(id);
      return row === undefined ? undefined : row.wrapped;
    },
    insert: async (id, wrapped) => {
      insert.run(id, wrapped);
    },
    shred: async (id) => {
      shred.immediate(id);
      db.pragma('wal_checkpoint(TRUNCATE)');
    },
    list: async () => list.all().map((r) => [r.device_id, r.wrapped] as const),
    rewrap: async (entries, check) => {
      rewrap.immediate(entries, check);
      db.pragma('wal_checkpoint(TRUNCATE)');
    },
    getCheck: async () => getMeta.get('master-check')?.value ?? null,
    initCheck: async (check) => {
      initMeta.run('master-check', check);
      return getMeta.get('master-check')!.value;
    },
    close: async () => {
      db.close();
    },
  };
};

export const createSqliteVault = (path: string, masterKey: Uint8Array): EnvelopeVault =>
  createEnvelopeVault(createSqliteKeyStore(path), masterKey);
