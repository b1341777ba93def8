/**
 * What the SQLite and PostgreSQL read stores share: the tables, how rows map to columns and
 * back, and the read queries (written with $1… parameters; the SQLite store rewrites them).
 *
 * Tables (all prefixed rm_, so they can sit beside the event store's tables):
 *   rm_checkpoints      projection → position (the checkpoint, moved with every batch)
 *   rm_leases           projection → owner, expires_at (SQLite: the active instance)
 *   rm_stream_versions  (projection, stream) → last applied version (idempotency)
 *   rm_devices          one row per device: a snapshot without secrets, plus query columns
 *   rm_audit            one row per audited event
 *   rm_hourly           counts per hour of event time
 *   rm_failure_streaks  per user: failures since the last success, and on which days
 *   rm_counters         general-purpose counters (custom projections, tests)
 */
import type { GlobalPosition } from '../../domain/ports.ts';
import { ProjectionError } from '../errors.ts';
import type { Changes } from './buffered-tx.ts';
import type { DeviceRow, DeviceSnapshot } from '../device-snapshot.ts';
import {
  deviceStatus,
  type AuditDetails,
  type AuditEntry,
  type AuditQuery,
  type DeviceCount,
  type DeviceStatus,
  type FailureStreak,
  type HourlyRow,
  type ReadModelDump,
  sortDump,
} from '../read-store.ts';

export type Dialect = 'sqlite' | 'postgres';

/** Table name resolver: bare names for SQLite, schema-qualified for PostgreSQL. */
export type Tables = (name: string) => string;

/**
 * The layout of the read-model tables this code writes, recorded in rm_schema.
 *   1  the first (no rm_schema table)
 *   2  rm_audit keyed by position instead of event id
 */
export const READ_SCHEMA_VERSION = 2;

/** Every table of a read store but rm_leases (which instance is active is not a read model). */
const SCHEMA_TABLES = ['rm_checkpoints', 'rm_stream_versions', 'rm_devices', 'rm_audit', 'rm_hourly', 'rm_failure_streaks', 'rm_counters'] as const;

/**
 * The statements that bring a read store to READ_SCHEMA_VERSION, run in the store's opening
 * transaction. `found` is the recorded version: null for a store without rm_schema (none
 * when it has no rm_checkpoints either, else 1). Read models are made from the log, so an
 * older layout is not converted: its tables are dropped and made again, checkpoints with
 * them, and every projection starts again from the start of the log. A newer one is refused.
 */
export const readSchemaPlan = (dialect: Dialect, t: Tables, found: { readonly version: number | null; readonly tables: boolean }, where: string): string[] => {
  const version = found.version ?? (found.tables ? 1 : null);
  if (version !== null && version > READ_SCHEMA_VERSION)
    throw new ProjectionError(
      'read-store-failed',
      `${where} holds read models of a newer factorstream (layout ${version}; this one writes ${READ_SCHEMA_VERSION}): upgrade, or give it a read store of its own`,
    );
  const drop = version !== null && version < READ_SCHEMA_VERSION ? SCHEMA_TABLES.map((name) => `DROP TABLE IF EXISTS ${t(name)}`) : [];
  return [
    ...drop,
    `CREATE TABLE IF NOT EXISTS ${t('rm_schema')} (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)`,
    ...schemaDdl(dialect, t),
    `INSERT INTO ${t('rm_schema')} (id, version) VALUES (1, ${READ_SCHEMA_VERSION}) ON CONFLICT (id) DO UPDATE SET version = excluded.version`,
  ];
};

export const schemaDdl = (dialect: Dialect, t: Tables): string[] => {
  const big = dialect === 'postgres' ? 'BIGINT' : 'INTEGER';
  // Positions sort as strings; PostgreSQL must compare them bytewise, not by locale.
  const pos = dialect === 'postgres' ? 'TEXT COLLATE "C"' : 'TEXT';
  // Keys too, so that every store orders rows the same way (bytewise).
  const key = pos;
  return [
    `CREATE TABLE IF NOT EXISTS ${t('rm_checkpoints')} (
       projection ${key} PRIMARY KEY, position ${pos}, updated_at ${big} NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${t('rm_leases')} (
       projection ${key} PRIMARY KEY, owner TEXT NOT NULL, expires_at ${big} NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${t('rm_stream_versions')} (
       projection ${key} NOT NULL, stream_name ${key} NOT NULL, version ${big} NOT NULL,
       PRIMARY KEY (projection, stream_name))`,
    `CREATE TABLE IF NOT EXISTS ${t('rm_devices')} (
       device_id ${key} PRIMARY KEY, user_id ${key} NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
       failure_count ${big} NOT NULL, created_at ${big} NOT NULL, version ${big} NOT NULL,
       snapshot TEXT NOT NULL)`,
    // Keyed by position: a replay inserts in position order, at the end of the key (a random
    // key such as the event id would write to pages all over it: ~4× the cost per row).
    `CREATE TABLE IF NOT EXISTS ${t('rm_audit')} (
       position ${pos} PRIMARY KEY, event_id ${key} NOT NULL, stream_name ${key} NOT NULL,
       version ${big} NOT NULL, user_id ${key}, device_id ${key}, persistent_id TEXT, type TEXT NOT NULL,
       action TEXT NOT NULL, reason TEXT, at ${big} NOT NULL, recorded_at ${big} NOT NULL,
       actor TEXT NOT NULL, ip TEXT, user_agent TEXT, details TEXT NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${t('rm_hourly')} (
       hour ${big} PRIMARY KEY, verified ${big} NOT NULL, failed ${big} NOT NULL, refused ${big} NOT NULL,
       match_failed ${big} NOT NULL, match_refused ${big} NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${t('rm_failure_streaks')} (
       user_id ${key} PRIMARY KEY, failures ${big} NOT NULL, day_count ${big} NOT NULL, days TEXT NOT NULL,
       first_failure_at ${big} NOT NULL, last_failure_at ${big} NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${t('rm_counters')} (
       name ${key} NOT NULL, key ${key} NOT NULL, value ${big} NOT NULL, PRIMARY KEY (name, key))`,
    ...readIndexes(t).map((i) => i.create),
  ];
};

/**
 * The indexes only queries use: every write goes by primary key. Their keys are random
 * (user and device ids), so keeping them up to date row by row costs most of a rebuild's
 * writes; the SQLite store drops them for a rebuild and builds them again at its end.
 */
export const readIndexes = (t: Tables): { readonly name: string; readonly create: string }[] => [
  { name: 'rm_devices_user', create: `CREATE INDEX IF NOT EXISTS rm_devices_user ON ${t('rm_devices')} (user_id, created_at, device_id)` },
  { name: 'rm_audit_user', create: `CREATE INDEX IF NOT EXISTS rm_audit_user ON ${t('rm_audit')} (user_id, at, position)` },
  { name: 'rm_audit_device', create: `CREATE INDEX IF NOT EXISTS rm_audit_device ON ${t('rm_audit')} (device_id, at, position)` },
];

/** The read-model tables a rebuild empties (counters and checkpoints are handled apart). */
export const READ_MODEL_TABLES = ['rm_devices', 'rm_audit', 'rm_hourly', 'rm_failure_streaks'] as const;

// ---- rows to columns ----------------------------------------------------------------------------

export const deviceColumns = (row: DeviceRow) => ({
  device_id: row.snapshot.deviceId,
  user_id: row.snapshot.userId,
  kind: row.snapshot.k.kind,
  status: deviceStatus(row),
  failure_count: row.snapshot.throttle.failureCount,
  created_at: row.snapshot.createdAt,
  version: row.version,
  snapshot: JSON.stringify(row.snapshot),
});

export const auditColumns = (e: AuditEntry) => ({
  event_id: e.eventId,
  position: e.position,
  stream_name: e.streamName,
  version: e.version,
  user_id: e.userId,
  device_id: e.deviceId,
  persistent_id: e.persistentId,
  type: e.type,
  action: e.action,
  reason: e.reason,
  at: e.at,
  recorded_at: e.recordedAt,
  actor: e.actor,
  ip: e.ip,
  user_agent: e.userAgent,
  details: JSON.stringify(e.details),
});

export const streakColumns = (s: FailureStreak) => ({
  user_id: s.userId,
  failures: s.failures,
  day_count: s.days.length,
  days: JSON.stringify(s.days),
  first_failure_at: s.firstFailureAt,
  last_failure_at: s.lastFailureAt,
});

// ---- columns to rows ----------------------------------------------------------------------------

type Row = Record<string, unknown>;

/** Integers come back as numbers (SQLite), strings (pg's BIGINT) or bigints. */
const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));
const text = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

export const toDeviceRow = (r: Row): DeviceRow => ({
  version: num(r.version),
  snapshot: JSON.parse(String(r.snapshot)) as DeviceSnapshot,
});

export const toAuditEntry = (r: Row): AuditEntry => ({
  eventId: String(r.event_id),
  position: String(r.position),
  streamName: String(r.stream_name),
  version: num(r.version),
  userId: text(r.user_id),
  deviceId: text(r.device_id),
  persistentId: text(r.persistent_id),
  type: String(r.type),
  action: String(r.action) as AuditEntry['action'],
  reason: text(r.reason),
  at: num(r.at),
  recordedAt: num(r.recorded_at),
  actor: String(r.actor),
  ip: text(r.ip),
  userAgent: text(r.user_agent),
  details: JSON.parse(String(r.details)) as AuditDetails,
});

export const toStreak = (r: Row): FailureStreak => ({
  userId: String(r.user_id),
  failures: num(r.failures),
  days: JSON.parse(String(r.days)) as number[],
  firstFailureAt: num(r.first_failure_at),
  lastFailureAt: num(r.last_failure_at),
});

export const toHourly = (r: Row): HourlyRow => ({
  hour: num(r.hour),
  verified: num(r.verified),
  failed: num(r.failed),
  refused: num(r.refused),
  matchFailed: num(r.match_failed),
  matchRefused: num(r.match_refused),
});

// ---- read queries -------------------------------------------------------------------------------

export type QueryAll = (sql: string, params: readonly unknown[]) => Promise<Row[]>;

export const auditSql = (t: Tables, q: AuditQuery): { sql: string; params: unknown[] } => {
  const params: unknown[] = [];
  const where: string[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  if (q.userId !== undefined) where.push(`user_id = ${p(q.userId)}`);
  if (q.deviceId !== undefined) where.push(`device_id = ${p(q.deviceId)}`);
  if (q.action !== undefined) where.push(`action = ${p(q.action)}`);
  if (q.before) {
    const at = p(q.before.at);
    where.push(`(at < ${at} OR (at = ${at} AND position < ${p(q.before.position)}))`);
  }
  const sql =
    `SELECT * FROM ${t('rm_audit')}${where.length ? ` WHERE ${where.join(' AND ')}` : ''}` +
    ` ORDER BY at DESC, position DESC LIMIT ${p(q.limit)} OFFSET ${p(q.offset ?? 0)}`;
  return { sql, params };
};

export const sqlReads = (all: QueryAll, t: Tables) => ({
  checkpoint: async (projection: string): Promise<GlobalPosition | null> => {
    const rows = await all(`SELECT position FROM ${t('rm_checkpoints')} WHERE projection = $1`, [projection]);
    return text(rows[0]?.position);
  },
  devicesOfUser: async (userId: string): Promise<DeviceRow[]> =>
    (await all(`SELECT * FROM ${t('rm_devices')} WHERE user_id = $1 ORDER BY created_at, device_id`, [userId])).map(toDeviceRow),
  device: async (deviceId: string): Promise<DeviceRow | null> => {
    const rows = await all(`SELECT * FROM ${t('rm_devices')} WHERE device_id = $1`, [deviceId]);
    return rows[0] ? toDeviceRow(rows[0]) : null;
  },
  devicesWithFailures: async (): Promise<DeviceRow[]> =>
    (
      await all(`SELECT * FROM ${t('rm_devices')} WHERE failure_count > 0 AND status <> 'removed' ORDER BY user_id, created_at, device_id`, [])
    ).map(toDeviceRow),
  deviceCounts: async (): Promise<DeviceCount[]> =>
    (await all(`SELECT kind, status, COUNT(*) AS n FROM ${t('rm_devices')} GROUP BY kind, status ORDER BY kind, status`, [])).map(
      (r) => ({ kind: String(r.kind), status: String(r.status) as DeviceStatus, count: num(r.n) }),
    ),
  audit: async (q: AuditQuery): Promise<AuditEntry[]> => {
    const { sql, params } = auditSql(t, q);
    return (await all(sql, params)).map(toAuditEntry);
  },
  hourly: async (fromHour: number, toHour: number): Promise<HourlyRow[]> =>
    (await all(`SELECT * FROM ${t('rm_hourly')} WHERE hour >= $1 AND hour < $2 ORDER BY hour`, [fromHour, toHour])).map(toHourly),
  failureStreaks: async (minFailures: number, minDays: number): Promise<FailureStreak[]> =>
    (
      await all(
        `SELECT * FROM ${t('rm_failure_streaks')} WHERE failures >= $1 AND day_count >= $2 ORDER BY failures DESC, user_id`,
        [minFailures, minDays],
      )
    ).map(toStreak),
  counters: async (name: string): Promise<ReadonlyMap<string, number>> =>
    new Map((await all(`SELECT key, value FROM ${t('rm_counters')} WHERE name = $1`, [name])).map((r) => [String(r.key), num(r.value)])),
  dump: async (): Promise<ReadModelDump> =>
    sortDump({
      checkpoints: (await all(`SELECT projection, position FROM ${t('rm_checkpoints')}`, [])).map((r) => ({
        projection: String(r.projection),
        position: text(r.position),
      })),
      streamVersions: (await all(`SELECT * FROM ${t('rm_stream_versions')}`, [])).map((r) => ({
        projection: String(r.projection),
        streamName: String(r.stream_name),
        version: num(r.version),
      })),
      devices: (await all(`SELECT * FROM ${t('rm_devices')}`, [])).map(toDeviceRow),
      audit: (await all(`SELECT * FROM ${t('rm_audit')}`, [])).map(toAuditEntry),
      hourly: (await all(`SELECT * FROM ${t('rm_hourly')}`, [])).map(toHourly),
      failureStreaks: (await all(`SELECT * FROM ${t('rm_failure_streaks')}`, [])).map(toStreak),
      counters: (await all(`SELECT * FROM ${t('rm_counters')}`, [])).map((r) => ({
        name: String(r.name),
        key: String(r.key),
        value: num(r.value),
      })),
    }),
});

// ---- writes -----------------------------------------------------------------------------------

export interface Statement {
  readonly sql: string;
  readonly params: readonly unknown[];
}

/**
 * The text of each kind of INSERT, built once: a batch writes thousands of rows of a handful
 * of shapes, and the stores look prepared statements up by their text (the same string object
 * every time is also the fastest key).
 */
const insertTexts = new Map<string, string>();

const insertText = (t: Tables, table: string, names: readonly string[], conflict: string): string => {
  const key = `${t(table)}\u0000${conflict}\u0000${names.join(',')}`;
  let sql = insertTexts.get(key);
  if (sql === undefined) {
    sql = `INSERT INTO ${t(table)} AS x (${names.join(', ')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')}) ` + conflict;
    if (insertTexts.size < 1000) insertTexts.set(key, sql);
  }
  return sql;
};

/**
 * One kind of INSERT for the rows of a batch. Every row of a kind has the same columns (they
 * come from one object literal), so the text is looked up once, from the first row, rather
 * than once per row; `conflict` gets the column names.
 */
const inserter = (t: Tables, table: string, conflict: (names: readonly string[]) => string) => {
  let sql: string | undefined;
  return (cols: Record<string, unknown>): Statement => {
    if (sql === undefined) {
      const names = Object.keys(cols);
      sql = insertText(t, table, names, conflict(names));
    }
    return { sql, params: Object.values(cols) };
  };
};

const updateAll = (names: readonly string[], key: string): string =>
  names
    .filter((c) => c !== key)
    .map((c) => `${c} = excluded.${c}`)
    .join(', ');

const HOURLY_SUM =
  'ON CONFLICT (hour) DO UPDATE SET ' +
  ['verified', 'failed', 'refused', 'match_failed', 'match_refused'].map((k) => `${k} = x.${k} + excluded.${k}`).join(', ');

/** The statements that write a batch's changes, in order (clears first). */
export const flushPlan = (c: Changes, projection: string, t: Tables): Statement[] => {
  const out: Statement[] = [];
  if (c.clearedReadModel) for (const table of READ_MODEL_TABLES) out.push({ sql: `DELETE FROM ${t(table)}`, params: [] });
  if (c.clearedStreamVersions) out.push({ sql: `DELETE FROM ${t('rm_stream_versions')} WHERE projection = $1`, params: [projection] });
  for (const name of c.clearedCounters) out.push({ sql: `DELETE FROM ${t('rm_counters')} WHERE name = $1`, params: [name] });
  const version = inserter(t, 'rm_stream_versions', () => 'ON CONFLICT (projection, stream_name) DO UPDATE SET version = excluded.version');
  for (const [streamName, v] of c.streamVersions) out.push(version({ projection, stream_name: streamName, version: v }));
  const device = inserter(t, 'rm_devices', (names) => `ON CONFLICT (device_id) DO UPDATE SET ${updateAll(names, 'device_id')}`);
  for (const row of c.devices.values()) out.push(device(deviceColumns(row)));
  const streak = inserter(t, 'rm_failure_streaks', (names) => `ON CONFLICT (user_id) DO UPDATE SET ${updateAll(names, 'user_id')}`);
  for (const [userId, s] of c.streaks) {
    if (s === null) out.push({ sql: `DELETE FROM ${t('rm_failure_streaks')} WHERE user_id = $1`, params: [userId] });
    else out.push(streak(streakColumns(s)));
  }
  const audit = inserter(t, 'rm_audit', () => 'ON CONFLICT (position) DO NOTHING');
  for (const e of c.audit.values()) out.push(audit(auditColumns(e)));
  const hourly = inserter(t, 'rm_hourly', () => HOURLY_SUM);
  for (const [hour, d] of c.hourly)
    out.push(hourly({ hour, verified: d.verified, failed: d.failed, refused: d.refused, match_failed: d.matchFailed, match_refused: d.matchRefused }));
  const counter = inserter(t, 'rm_counters', () => 'ON CONFLICT (name, key) DO UPDATE SET value = x.value + excluded.value');
  for (const x of c.counters.values()) out.push(counter({ name: x.name, key: x.key, value: x.by }));
  return out;
};

/** Loader queries by key list; `list` turns a parameter into the dialect's "one of these". */
export const loaderSql = (t: Tables, list: (param: string) => string) => ({
  streamVersions: `SELECT stream_name, version FROM ${t('rm_stream_versions')} WHERE projection = $1 AND stream_name IN ${list('$2')}`,
  devices: `SELECT * FROM ${t('rm_devices')} WHERE device_id IN ${list('$1')}`,
  streaks: `SELECT * FROM ${t('rm_failure_streaks')} WHERE user_id IN ${list('$1')}`,
});

// ---- set-based writes (PostgreSQL) ----------------------------------------------------------------

type ColumnTypes = Readonly<Record<string, 'text' | 'bigint'>>;

const DEVICE_TYPES: ColumnTypes = {
  device_id: 'text', user_id: 'text', kind: 'text', status: 'text', failure_count: 'bigint', created_at: 'bigint', version: 'bigint', snapshot: 'text',
};
const AUDIT_TYPES: ColumnTypes = {
  event_id: 'text', position: 'text', stream_name: 'text', version: 'bigint', user_id: 'text', device_id: 'text', persistent_id: 'text', type: 'text',
  action: 'text', reason: 'text', at: 'bigint', recorded_at: 'bigint', actor: 'text', ip: 'text', user_agent: 'text', details: 'text',
};
const STREAK_TYPES: ColumnTypes = {
  user_id: 'text', failures: 'bigint', day_count: 'bigint', days: 'text', first_failure_at: 'bigint', last_failure_at: 'bigint',
};
const VERSION_TYPES: ColumnTypes = { projection: 'text', stream_name: 'text', version: 'bigint' };
const HOURLY_TYPES: ColumnTypes = { hour: 'bigint', verified: 'bigint', failed: 'bigint', refused: 'bigint', match_failed: 'bigint', match_refused: 'bigint' };
const COUNTER_TYPES: ColumnTypes = { name: 'text', key: 'text', value: 'bigint' };

/** One INSERT … SELECT FROM jsonb_to_recordset($1) for many rows; null when there are none. */
const insertMany = (t: Tables, table: string, types: ColumnTypes, rows: readonly object[], conflict: string): Statement | null => {
  if (rows.length === 0) return null;
  const cols = Object.keys(types);
  const record = cols.map((c) => `${c} ${types[c]}`).join(', ');
  return {
    sql: `INSERT INTO ${t(table)} AS x (${cols.join(', ')}) SELECT ${cols.join(', ')} FROM jsonb_to_recordset($1::jsonb) AS r(${record}) ${conflict}`,
    params: [JSON.stringify(rows)],
  };
};

const sums = (types: ColumnTypes, key: string) =>
  Object.keys(types)
    .filter((k) => k !== key)
    .map((k) => `${k} = x.${k} + excluded.${k}`)
    .join(', ');

/** The same writes as flushPlan, a handful of statements per batch whatever its size. */
export const bulkFlushPlan = (c: Changes, projection: string, t: Tables): Statement[] => {
  const out: (Statement | null)[] = [];
  if (c.clearedReadModel) for (const table of READ_MODEL_TABLES) out.push({ sql: `DELETE FROM ${t(table)}`, params: [] });
  if (c.clearedStreamVersions) out.push({ sql: `DELETE FROM ${t('rm_stream_versions')} WHERE projection = $1`, params: [projection] });
  if (c.clearedCounters.size) out.push({ sql: `DELETE FROM ${t('rm_counters')} WHERE name = ANY($1::text[])`, params: [[...c.clearedCounters]] });
  const versions = [...c.streamVersions].map(([stream_name, version]) => ({ projection, stream_name, version }));
  out.push(insertMany(t, 'rm_stream_versions', VERSION_TYPES, versions, 'ON CONFLICT (projection, stream_name) DO UPDATE SET version = excluded.version'));
  const devices = [...c.devices.values()].map(deviceColumns);
  out.push(insertMany(t, 'rm_devices', DEVICE_TYPES, devices, `ON CONFLICT (device_id) DO UPDATE SET ${updateAll(Object.keys(DEVICE_TYPES), 'device_id')}`));
  const gone = [...c.streaks].filter(([, s]) => s === null).map(([id]) => id);
  if (gone.length) out.push({ sql: `DELETE FROM ${t('rm_failure_streaks')} WHERE user_id = ANY($1::text[])`, params: [gone] });
  const streaks = [...c.streaks.values()].flatMap((s) => (s === null ? [] : [streakColumns(s)]));
  out.push(insertMany(t, 'rm_failure_streaks', STREAK_TYPES, streaks, `ON CONFLICT (user_id) DO UPDATE SET ${updateAll(Object.keys(STREAK_TYPES), 'user_id')}`));
  out.push(insertMany(t, 'rm_audit', AUDIT_TYPES, [...c.audit.values()].map(auditColumns), 'ON CONFLICT (position) DO NOTHING'));
  const hourly = [...c.hourly].map(([hour, d]) => ({
    hour, verified: d.verified, failed: d.failed, refused: d.refused, match_failed: d.matchFailed, match_refused: d.matchRefused,
  }));
  out.push(insertMany(t, 'rm_hourly', HOURLY_TYPES, hourly, `ON CONFLICT (hour) DO UPDATE SET ${sums(HOURLY_TYPES, 'hour')}`));
  const counters = [...c.counters.values()].map((x) => ({ name: x.name, key: x.key, value: x.by }));
  out.push(insertMany(t, 'rm_counters', COUNTER_TYPES, counters, 'ON CONFLICT (name, key) DO UPDATE SET value = x.value + excluded.value'));
  return out.filter((s): s is Statement => s !== null);
};
