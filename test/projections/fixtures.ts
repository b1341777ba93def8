/**
 * Shared test fixtures for the read side: a PostgreSQL database per test file, read-store
 * fixtures, and a randomised workload that drives a real engine.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import pg from 'pg';
import { createMemoryEventStore } from '../../adapters/store/memory.ts';
import { createMemoryVault } from '../../adapters/vault/memory.ts';
import type { Kind } from '../../domain/codecs.ts';
import { createEngine, type Engine } from '../../app/engine.ts';
import { hotpCode } from '../../domain/kinds/oath.ts';
import { timeStep } from '../../domain/kinds/totp.ts';
import type { Delivery, EventStore, Random, TokenSender } from '../../domain/ports.ts';
import type { ReadModelDump, ReadStore } from '../../projections/read-store.ts';
import { createProjectionRunner } from '../../projections/runner.ts';
import { createMemoryReadStore } from '../../projections/stores/memory.ts';
import { createPostgresReadStore } from '../../projections/stores/postgres.ts';
import { createSqliteReadStore } from '../../projections/stores/sqlite.ts';

// ---- PostgreSQL: one database per test file --------------------------------------------------

export const PG_ADMIN_URL = process.env.FACTORSTREAM_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const withDatabase = (admin: string, database: string) => {
  const u = new URL(admin);
  u.pathname = `/${database}`;
  return u.toString();
};

export interface TestDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

/** Creates fsproj_<random>; fails with a clear message when PostgreSQL is not reachable. */
export const createTestDatabase = async (): Promise<TestDatabase> => {
  const name = `fsproj_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  try {
    await admin.connect();
  } catch (e) {
    throw new Error(
      `PostgreSQL is not reachable at ${PG_ADMIN_URL} (${(e as Error).message}). These tests need it: start PostgreSQL ` +
        `(trust auth on 127.0.0.1:5432) or point FACTORSTREAM_PG_URL at an admin URL.`,
    );
  }
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return {
    url: withDatabase(PG_ADMIN_URL, name),
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
};

// ---- read-store fixtures ---------------------------------------------------------------------

export interface StoreFixture {
  readonly store: ReadStore;
  /** Another connection to the same read store (another "application instance"). */
  reopen(): Promise<ReadStore>;
  /** Every row of every table of the read store, as text (what an attacker with a dump sees). */
  rawText(): Promise<string>;
  close(): Promise<void>;
}

export type OpenFixture = () => Promise<StoreFixture>;

export const memoryFixture: OpenFixture = async () => {
  const store = createMemoryReadStore();
  return {
    store,
    reopen: async () => store,
    rawText: async () => JSON.stringify(await store.dump()),
    close: () => store.close(),
  };
};

/** Dumps every table of a SQLite file but the event store's. */
export const sqliteText = (path: string): string => {
  const db = new Database(path, { readonly: true });
  try {
    const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('events', 'sqlite_sequence')`).all() as {
      name: string;
    }[];
    return tables.map((t) => `${t.name}\n${JSON.stringify(db.prepare(`SELECT * FROM "${t.name}"`).all())}`).join('\n');
  } finally {
    db.close();
  }
};

export const sqliteFixtureIn = (dir: string): OpenFixture => {
  let n = 0;
  return async () => {
    const path = join(dir, `read-${process.pid}-${n++}.db`);
    const opened: ReadStore[] = [];
    const open = () => {
      const s = createSqliteReadStore({ path });
      opened.push(s);
      return s;
    };
    const store = open();
    return {
      store,
      reopen: async () => open(),
      rawText: async () => sqliteText(path),
      close: async () => {
        for (const s of opened) await s.close();
      },
    };
  };
};

export const tempDir = (): { dir: string; remove: () => void } => {
  const dir = mkdtempSync(join(tmpdir(), 'fsproj-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
};

/** Dumps every table of a PostgreSQL schema. */
export const postgresText = async (url: string, schema: string): Promise<string> => {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const tables = await c.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_name <> 'events' ORDER BY table_name`,
      [schema],
    );
    const parts: string[] = [];
    for (const { table_name } of tables.rows) {
      const rows = await c.query(`SELECT * FROM "${schema}"."${table_name}"`);
      parts.push(`${table_name}\n${JSON.stringify(rows.rows)}`);
    }
    return parts.join('\n');
  } finally {
    await c.end();
  }
};

/** Each fixture gets its own schema in the test database. */
export const postgresFixtureIn = (url: () => string): OpenFixture => {
  let n = 0;
  return async () => {
    const schema = `rs_${process.pid}_${n++}`;
    const opened: ReadStore[] = [];
    const open = async () => {
      const s = await createPostgresReadStore({ connectionString: url(), schema });
      opened.push(s);
      return s;
    };
    const store = await open();
    return {
      store,
      reopen: open,
      rawText: () => postgresText(url(), schema),
      close: async () => {
        for (const s of opened) await s.close();
      },
    };
  };
};

// ---- determinism -------------------------------------------------------------------------------

/** A seeded xorshift32 Random: reproducible workloads. */
export const seededRandom = (seed: number): Random => {
  let x = seed >>> 0 || 0x9e3779b9;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  return { bytes: (n) => Uint8Array.from({ length: n }, () => next() & 0xff) };
};

export const START = Date.UTC(2024, 2, 1, 9, 0, 0);

/** A dump as plain JSON data, so that dumps of different stores compare with toEqual. */
export const normalized = (d: ReadModelDump): ReadModelDump => JSON.parse(JSON.stringify(d)) as ReadModelDump;

/** Runs the standard projection live over everything in `events`; the read store's dump, normalized. */
export const projectAll = async (events: EventStore, readStore: ReadStore, batchSize = 4): Promise<ReadModelDump> => {
  const runner = createProjectionRunner({ store: events, readStore, batchSize }).start();
  await runner.whenCaughtUp();
  await runner.close();
  return normalized(await readStore.dump());
};

// ---- the workload ------------------------------------------------------------------------------

export type Step =
  | { readonly op: 'register'; readonly user: number; readonly kind: Kind; readonly confirmed: boolean }
  | { readonly op: 'verify'; readonly device: number; readonly right: boolean }
  | { readonly op: 'confirm'; readonly device: number; readonly right: boolean }
  | { readonly op: 'backupCodes'; readonly user: number }
  | { readonly op: 'challenge'; readonly device: number; readonly deliveryFails: boolean }
  | { readonly op: 'resetThrottle'; readonly device: number }
  | { readonly op: 'resetUser'; readonly user: number }
  | { readonly op: 'rename'; readonly device: number; readonly name: string }
  | { readonly op: 'remove'; readonly device: number }
  | { readonly op: 'match'; readonly user: number; readonly right: boolean }
  | { readonly op: 'tick'; readonly ms: number };

const USERS = 3;
const user = fc.nat({ max: USERS - 1 });
const device = fc.nat({ max: 50 });

const right = fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) });

export const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ op: fc.constant('register' as const), user, kind: fc.constantFrom<Kind>('totp', 'hotp', 'static', 'email', 'sms'), confirmed: fc.boolean() }) },
  { weight: 8, arbitrary: fc.record({ op: fc.constant('verify' as const), device, right }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('confirm' as const), device, right }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('backupCodes' as const), user }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('challenge' as const), device, deliveryFails: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('resetThrottle' as const), device }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('resetUser' as const), user }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('rename' as const), device, name: fc.constantFrom('Phone', 'Laptop key', 'Backup', 'Work phone') }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('remove' as const), device }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('match' as const), user, right }) },
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('tick' as const),
      ms: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1_000, max: 120_000 }) }, { weight: 1, arbitrary: fc.integer({ min: 3_600_000, max: 2 * 86_400_000 }) }),
    }),
  },
);

export const workloadArb = fc.record({ seed: fc.integer(), steps: fc.array(stepArb, { minLength: 10, maxLength: 60 }) });

interface Tracked {
  readonly deviceId: string;
  readonly kind: Kind;
  readonly user: string;
  readonly key?: Uint8Array;
  readonly unusedCodes: string[];
}

export interface World {
  readonly engine: Engine;
  readonly events: EventStore & { all(): readonly unknown[] };
  readonly clock: { now(): number; advance(ms: number): void };
  /** Every plaintext a read model must never hold: keys (hex, base32), codes, addresses, numbers. */
  readonly secrets: Set<string>;
  readonly devices: Tracked[];
  run(steps: readonly Step[]): Promise<void>;
}

/** A real engine over a memory event store (or the one given), with a fake sender. */
export const createWorld = (seed: number, store?: EventStore): World => {
  let now = START;
  const clock = { now: () => now, advance: (ms: number) => void (now += ms) };
  const events = (store ?? createMemoryEventStore({ now: clock.now })) as World['events'];
  const random = seededRandom(seed);
  const secrets = new Set<string>();
  const lastCode = new Map<string, string>();
  let failDelivery = false;
  const sender: TokenSender = {
    send: async (d: Delivery) => {
      lastCode.set(d.deviceId, d.code);
      secrets.add(d.code);
      secrets.add(d.destination);
      return failDelivery ? { ok: false, reason: 'the gateway is down' } : { ok: true };
    },
  };
  const engine = createEngine({ store: events, vault: createMemoryVault(), sender, clock, random });
  const devices: Tracked[] = [];
  let n = 0;
  const opts = () => {
    n++;
    return { actor: n % 4 === 0 ? 'admin:carol' : 'self', client: { ip: `198.51.100.${n % 250}`, userAgent: `agent/${n % 7}` } };
  };
  const pick = (i: number) => (devices.length ? devices[i % devices.length]! : null);

  const rightToken = async (d: Tracked): Promise<string | null> => {
    switch (d.kind) {
      case 'totp':
        return hotpCode(d.key!, timeStep(clock.now(), 30, 0), 6);
      case 'hotp': {
        const v = await engine.device(d.deviceId)();
        return v._tag === 'Right' && v.right.hotp ? hotpCode(d.key!, v.right.hotp.counter, 6) : null;
      }
      case 'static':
        return d.unusedCodes.shift() ?? null;
      case 'email':
      case 'sms': {
        const code = lastCode.get(d.deviceId) ?? null;
        lastCode.delete(d.deviceId);
        return code;
      }
    }
  };
  /** What a user does before typing a code: ask for one, or for new backup codes. */
  const prepare = async (d: Tracked) => {
    if ((d.kind === 'email' || d.kind === 'sms') && !lastCode.has(d.deviceId)) await engine.challenge(d.deviceId, opts())();
    if (d.kind === 'static' && d.unusedCodes.length === 0) {
      const r = await engine.issueBackupCodes({ device: d.deviceId }, opts())();
      if (r._tag === 'Right') {
        for (const c of r.right.codes) secrets.add(c);
        d.unusedCodes.push(...r.right.codes);
      }
    }
  };
  const token = async (d: Tracked, right: boolean) => {
    if (!right) return d.kind === 'static' ? 'aaaaaaaa' : '000000';
    await prepare(d);
    const t = await rightToken(d);
    if (t !== null) secrets.add(t);
    return t ?? '000000';
  };

  const register = async (s: Extract<Step, { op: 'register' }>) => {
    const userId = `user-${s.user}`;
    const key = s.kind === 'totp' || s.kind === 'hotp' ? random.bytes(20) : undefined;
    const destination = s.kind === 'email' ? `person${devices.length}.u${s.user}@example.org` : `+1415555${1000 + devices.length}`;
    const input =
      s.kind === 'totp' || s.kind === 'hotp'
        ? { kind: s.kind, userId, secret: key!, confirmed: s.confirmed }
        : s.kind === 'static'
          ? { kind: s.kind, userId, confirmed: s.confirmed }
          : { kind: s.kind, userId, destination, confirmed: s.confirmed };
    if (key) {
      secrets.add(Buffer.from(key).toString('hex'));
      secrets.add(Buffer.from(key).toString('base64'));
    }
    if (s.kind === 'email' || s.kind === 'sms') secrets.add(destination);
    const r = await engine.register(input, opts())();
    if (r._tag === 'Left') return;
    if (r.right.secretBase32) secrets.add(r.right.secretBase32);
    devices.push({ deviceId: r.right.deviceId, kind: s.kind, user: userId, ...(key ? { key } : {}), unusedCodes: [] });
  };

  const step = async (s: Step): Promise<void> => {
    switch (s.op) {
      case 'register':
        return register(s);
      case 'verify':
      case 'confirm': {
        const d = pick(s.device);
        if (!d) return;
        const t = await token(d, s.right);
        await (s.op === 'verify' ? engine.verify : engine.confirm)(d.deviceId, t, opts())();
        return;
      }
      case 'backupCodes': {
        const r = await engine.issueBackupCodes({ userId: `user-${s.user}` }, opts())();
        if (r._tag === 'Left') return;
        for (const c of r.right.codes) secrets.add(c);
        let d = devices.find((x) => x.deviceId === r.right.deviceId);
        if (!d) devices.push((d = { deviceId: r.right.deviceId, kind: 'static', user: `user-${s.user}`, unusedCodes: [] }));
        d.unusedCodes.splice(0, d.unusedCodes.length, ...r.right.codes);
        return;
      }
      case 'challenge': {
        const d = pick(s.device);
        if (!d) return;
        failDelivery = s.deliveryFails;
        await engine.challenge(d.deviceId, opts())();
        failDelivery = false;
        return;
      }
      case 'resetThrottle': {
        const d = pick(s.device);
        if (d) await engine.resetThrottle(d.deviceId, 'user called the help desk', { ...opts(), actor: 'admin:dave' })();
        return;
      }
      case 'resetUser':
        await engine.resetUserThrottle(`user-${s.user}`, 'identity checked', { ...opts(), actor: 'admin:dave' })();
        return;
      case 'rename': {
        const d = pick(s.device);
        if (d) await engine.rename(d.deviceId, s.name, opts())();
        return;
      }
      case 'remove': {
        const d = pick(s.device);
        if (d) await engine.remove(d.deviceId, 'lost it', opts())();
        return;
      }
      case 'match': {
        const userId = `user-${s.user}`;
        const usable = await engine.userDevices(userId, { confirmed: true })();
        const ids = new Set(usable._tag === 'Right' ? usable.right.map((v) => v.deviceId) : []);
        const d = devices.find((x) => ids.has(x.deviceId) && x.kind !== 'email' && x.kind !== 'sms');
        const t = d && s.right ? await token(d, true) : '000000';
        await engine.match(userId, t, opts())();
        return;
      }
      case 'tick':
        clock.advance(s.ms);
        return;
    }
  };

  return {
    engine,
    events,
    clock,
    secrets,
    devices,
    run: async (steps) => {
      for (const s of steps) await step(s);
    },
  };
};

/** The plaintexts of `secrets` found in `text` (numeric codes only as whole numbers). */
export const leaks = (text: string, secrets: Iterable<string>): string[] =>
  [...secrets].filter((s) => {
    if (s.length < 4) return false;
    if (/^\d+$/.test(s)) return new RegExp(`(?<![0-9])${s}(?![0-9])`).test(text);
    return text.toLowerCase().includes(s.toLowerCase());
  });

/** Sealed secrets and destinations, and code digests, as they appear in the events. */
export const sealedAndDigests = (events: readonly { readonly data: unknown }[]): Set<string> => {
  const out = new Set<string>();
  const walk = (v: unknown, key: string) => {
    if (typeof v === 'string' && ['secret', 'destination', 'codeDigest', 'digest', 'digests'].includes(key)) out.add(v);
    else if (Array.isArray(v)) v.forEach((x) => walk(x, key));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, k);
  };
  for (const e of events) walk(e.data, '');
  return out;
};
