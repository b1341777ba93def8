/**
 * A large, realistic event log, made fast: the engine writes a few users' histories (real
 * events through the real codecs, hash chain and ids), and those histories are cloned over
 * many users by replacing their identifiers (user id, device ids, event and command ids),
 * then written with direct inserts. Users' events are interleaved in the global order, as
 * many users active at once would leave them.
 *
 * The clones' hash chains do not verify (prevHash values are the template's): nothing here
 * checks them; everything else is what the engine wrote.
 */
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { createMemoryEventStore } from '../../adapters/store/memory.ts';
import { createSqliteEventStore } from '../../adapters/store/sqlite.ts';
import { createMemoryVault } from '../../adapters/vault/memory.ts';
import { systemRandom } from '../../adapters/system.ts';
import { createEngine } from '../../app/engine.ts';
import { parseOtpauthUri } from '../../domain/kinds/uri.ts';
import { codeAt, mustVerify, START_MS, STEP_MS } from './engines.ts';

/** Events per user in the template: 1 on the user stream, 9 on the device's. */
export const EVENTS_PER_USER = 10;
const TEMPLATES = 24;
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

interface Row {
  readonly stream_name: string;
  readonly version: number;
  readonly event_id: string;
  readonly type: string;
  readonly data: string;
  readonly metadata: string;
  readonly recorded_at: number;
}

/** One user's history: registered, confirmed, used, a wrong code, renamed, used again. */
const templateUser = async (j: number): Promise<Row[]> => {
  const start = START_MS + j * 3_600_000; // one template per hour: 24 hours of statistics
  let t = start;
  const store = createMemoryEventStore({ now: () => t });
  const engine = createEngine({ store, vault: createMemoryVault(), clock: { now: () => t }, random: systemRandom });
  const userId = `template-user-${j}`;
  const reg = await engine.register({ kind: 'totp', userId, name: 'Phone' }, { actor: `user:${userId}`, client: { ip: '198.51.100.7', userAgent: 'Mozilla/5.0 (X11; Linux x86_64)' } })();
  if (reg._tag === 'Left') throw new Error(reg.left.message);
  const { deviceId, otpauthUri } = reg.right;
  const parsed = parseOtpauthUri(otpauthUri ?? '');
  if (parsed._tag === 'Left') throw new Error(parsed.left);
  const key = parsed.right.key;
  const step = async (f: () => Promise<unknown>) => {
    t += STEP_MS * 7;
    await f();
  };
  await step(async () => {
    const r = await engine.confirm(deviceId, codeAt(key, t), { actor: `user:${userId}` })();
    if (r._tag === 'Left' || !r.right.ok) throw new Error('template confirm failed');
  });
  await step(() => mustVerify(engine, deviceId, codeAt(key, t)));
  await step(() => mustVerify(engine, deviceId, codeAt(key, t)));
  await step(async () => {
    const r = await engine.verify(deviceId, '000000')();
    if (r._tag === 'Left' || r.right.ok) throw new Error('template: the wrong code was accepted');
  });
  await step(() => mustVerify(engine, deviceId, codeAt(key, t)));
  await step(async () => {
    const r = await engine.rename(deviceId, 'Work phone', { actor: `user:${userId}` })();
    if (r._tag === 'Left') throw new Error(r.left.message);
  });
  await step(() => mustVerify(engine, deviceId, codeAt(key, t)));
  const rows = store.all().map((e) => ({
    stream_name: e.streamName,
    version: e.version,
    event_id: e.eventId,
    type: e.type,
    data: JSON.stringify(e.data),
    metadata: JSON.stringify(e.metadata),
    recorded_at: e.recordedAt,
  }));
  if (rows.length !== EVENTS_PER_USER) throw new Error(`template has ${rows.length} events, expected ${EVENTS_PER_USER}`);
  return rows;
};

/** A row whose text fields are split where an identifier is, ready to be filled per clone. */
interface Compiled {
  readonly parts: readonly (readonly (string | number)[])[]; // per field: text, or an index into the ids
  readonly version: number;
  readonly type: string;
  readonly recorded_at: number;
}

const compile = (rows: readonly Row[], userId: string) => {
  const ids: string[] = [];
  const index = (id: string) => {
    let i = ids.indexOf(id);
    if (i < 0) i = ids.push(id) - 1;
    return i;
  };
  const pattern = new RegExp(`${UUID.source}|${userId}`, 'g');
  const split = (text: string): (string | number)[] => {
    const out: (string | number)[] = [];
    let last = 0;
    for (const m of text.matchAll(pattern)) {
      out.push(text.slice(last, m.index));
      out.push(m[0] === userId ? -1 : index(m[0]));
      last = m.index! + m[0].length;
    }
    out.push(text.slice(last));
    return out;
  };
  const compiled: Compiled[] = rows.map((r) => ({
    parts: [split(r.stream_name), split(r.event_id), split(r.data), split(r.metadata)],
    version: r.version,
    type: r.type,
    recorded_at: r.recorded_at,
  }));
  return { compiled, idCount: ids.length };
};

const fill = (parts: readonly (string | number)[], ids: readonly string[], user: string): string => {
  let s = '';
  for (const p of parts) s += typeof p === 'string' ? p : p < 0 ? user : ids[p]!;
  return s;
};

/**
 * Writes `users` users' histories (EVENTS_PER_USER events each) into the SQLite event store
 * at `path` (created with the store's own schema). Returns the number of events.
 */
export const generateLog = async (path: string, users: number): Promise<number> => {
  const templates: ReturnType<typeof compile>[] = [];
  for (let j = 0; j < TEMPLATES; j++) templates.push(compile(await templateUser(j), `template-user-${j}`));
  await createSqliteEventStore({ path }).close(); // the schema
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const insert = db.prepare(
    'INSERT INTO events (stream_name, version, event_id, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const GROUP = 1000; // users active at once: their events interleave
  const write = db.transaction((from: number, to: number) => {
    const clones = [];
    for (let u = from; u < to; u++) {
      const t = templates[u % TEMPLATES]!;
      clones.push({ t, ids: Array.from({ length: t.idCount }, () => randomUUID()), user: `user-${u}` });
    }
    for (let k = 0; k < EVENTS_PER_USER; k++)
      for (const c of clones) {
        const row = c.t.compiled[k]!;
        const [stream, eventId, data, metadata] = row.parts.map((p) => fill(p, c.ids, c.user)) as [string, string, string, string];
        insert.run(stream, row.version, eventId, row.type, data, metadata, row.recorded_at);
      }
  });
  for (let from = 0; from < users; from += GROUP) write(from, Math.min(users, from + GROUP));
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return users * EVENTS_PER_USER;
};
