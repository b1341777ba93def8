/**
 * A dashboard over a real engine: a SQLite event store in a temporary file, the read models
 * in the same file, a memory vault, and a clock the test moves. The server listens on an
 * ephemeral port of 127.0.0.1.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteEventStore } from '../../adapters/store/sqlite.ts';
import { createMemoryVault } from '../../adapters/vault/memory.ts';
import { systemRandom } from '../../adapters/system.ts';
import { startDashboard, type Dashboard, type DashboardOptions } from '../../adapters/http/server.ts';
import { createEngine, type Engine, type Registered } from '../../app/engine.ts';
import { hotpCode } from '../../domain/kinds/oath.ts';
import { timeStep } from '../../domain/kinds/totp.ts';
import type { Delivery, EventStore, TokenSender } from '../../domain/ports.ts';
import { createSqliteReadStore } from '../../projections/stores/sqlite.ts';
import type { ReadStore } from '../../projections/read-store.ts';

export const TOKEN = 'test-admin-token-0123456789abcdef';

export interface Harness {
  readonly dir: string;
  readonly engine: Engine;
  readonly events: EventStore;
  readonly readStore: ReadStore;
  readonly clock: { now(): number; set(ms: number): void; advance(ms: number): void };
  /** Every plaintext secret, code and address this harness saw: none may ever reach a response. */
  readonly secrets: Set<string>;
  readonly logs: string[];
  /** Starts a dashboard over this engine (token mode unless told otherwise). */
  serve(options?: Partial<DashboardOptions>): Promise<Dashboard>;
  close(): Promise<void>;
}

export const createHarness = (start: number = Date.now()): Harness => {
  const dir = mkdtempSync(join(tmpdir(), 'fs-http-'));
  const path = join(dir, 'fs.db');
  let now = start;
  const clock = { now: () => now, set: (ms: number) => void (now = ms), advance: (ms: number) => void (now += ms) };
  const secrets = new Set<string>();
  const sender: TokenSender = {
    send: async (d: Delivery) => {
      secrets.add(d.code);
      secrets.add(d.destination);
      return { ok: true };
    },
  };
  const events = createSqliteEventStore({ path, pollIntervalMs: 10, synchronous: 'NORMAL' });
  const readStore = createSqliteReadStore({ path });
  const engine = createEngine({ store: events, vault: createMemoryVault(), sender, clock, random: systemRandom });
  const servers: Dashboard[] = [];
  const logs: string[] = [];
  return {
    dir,
    engine,
    events,
    readStore,
    clock,
    secrets,
    logs,
    serve: async (options = {}) => {
      const d = await startDashboard({
        engine,
        store: events,
        readStore,
        adminToken: TOKEN,
        host: '127.0.0.1',
        port: 0,
        clock,
        log: (line) => logs.push(line),
        feedIntervalMs: 20,
        ...options,
      });
      servers.push(d);
      return d;
    },
    close: async () => {
      for (const s of servers) await s.close();
      await readStore.close();
      await events.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
};

/** Unwraps an engine result, failing the test on a Left. */
export const right = async <A>(task: () => Promise<{ _tag: 'Left'; left: { code: string; message: string } } | { _tag: 'Right'; right: A }>): Promise<A> => {
  const r = await task();
  if (r._tag === 'Left') throw new Error(`engine error ${r.left.code}: ${r.left.message}`);
  return r.right;
};

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export interface Seeded {
  /** Alice's authenticator app (confirmed, key known to the test). */
  readonly alicePhone: Registered;
  readonly aliceKey: Uint8Array;
  readonly aliceBackup: string;
  readonly aliceEmail: Registered;
  readonly carolToken: Registered;
  readonly daveSms: Registered;
  /** The right TOTP code for alice's phone at the clock's now. */
  aliceCode(): string;
}

/**
 * A small, realistic history ending at the clock's current instant: alice (app, backup codes,
 * e-mail), bob (slow guessing over three days: flagged), carol (a hardware token locked now),
 * dave (an unconfirmed app and an SMS device), with verifications spread over the last day.
 */
export const seed = async (h: Harness): Promise<Seeded> => {
  const end = h.clock.now();
  const at = (ms: number) => h.clock.set(ms);
  const self = (ip = '198.51.100.7') => ({ actor: 'self', client: { ip, userAgent: 'Mozilla/5.0 (test)' } });
  const remember = (r: Registered) => {
    if (r.secretBase32) h.secrets.add(r.secretBase32);
    if (r.otpauthUri) h.secrets.add(r.otpauthUri);
    return r;
  };
  const key = (fill: number) => Uint8Array.from({ length: 20 }, (_, i) => (fill * 31 + i * 7) & 0xff);
  const keep = (k: Uint8Array) => {
    h.secrets.add(Buffer.from(k).toString('hex'));
    h.secrets.add(Buffer.from(k).toString('base64'));
    return k;
  };

  at(end - 3 * DAY - 2 * HOUR);
  const aliceKey = keep(key(1));
  const alicePhone = remember(
    await right(h.engine.register({ kind: 'totp', userId: 'alice', name: 'Pixel 8 authenticator', secret: aliceKey, confirmed: true }, self())),
  );
  const codes = await right(h.engine.issueBackupCodes({ userId: 'alice', name: 'Printed backup codes' }, self()));
  for (const c of codes.codes) h.secrets.add(c);
  h.secrets.add('alice.personal@example.org');
  const aliceEmail = remember(
    await right(h.engine.register({ kind: 'email', userId: 'alice', name: 'Personal e-mail', destination: 'alice.personal@example.org', confirmed: true }, self())),
  );
  const bobKey = keep(key(2));
  const bobPhone = remember(await right(h.engine.register({ kind: 'totp', userId: 'bob', name: 'iPhone', secret: bobKey, confirmed: true }, self('203.0.113.9'))));
  const carolKey = keep(key(3));
  const carolToken = remember(
    await right(h.engine.register({ kind: 'hotp', userId: 'carol', name: 'YubiKey 5', secret: carolKey, confirmed: true }, self('192.0.2.44'))),
  );
  const daveKey = keep(key(4));
  remember(await right(h.engine.register({ kind: 'totp', userId: 'dave', name: 'New phone', secret: daveKey }, self('192.0.2.80'))));
  h.secrets.add('+14155550123');
  const daveSms = remember(
    await right(h.engine.register({ kind: 'sms', userId: 'dave', name: 'Mobile', destination: '+1 415 555 0123', confirmed: true }, self('192.0.2.80'))),
  );

  // bob: four wrong codes a day, three days running, and no success since: slow guessing.
  for (let day = 0; day < 3; day++)
    for (let i = 0; i < 4; i++) {
      at(end - (3 - day) * DAY + i * 2 * HOUR);
      await right(h.engine.verify(bobPhone.deviceId, String(100000 + day * 10 + i), self('203.0.113.9')));
    }

  // The last day: alice signs in now and then; a few mistakes by several users.
  const code = (k: Uint8Array) => hotpCode(k, timeStep(h.clock.now(), 30, 0), 6);
  for (let hour = 22; hour >= 1; hour -= 1) {
    at(end - hour * HOUR + 7 * 60_000);
    if (hour % 3 === 0) await right(h.engine.verify(alicePhone.deviceId, code(aliceKey), self()));
    if (hour % 5 === 0) await right(h.engine.verify(alicePhone.deviceId, '000000', self()));
    if (hour % 4 === 1) await right(h.engine.match('dave', '123456', self('192.0.2.80')));
    if (hour === 7) {
      const used = codes.codes[0]!;
      await right(h.engine.verify(codes.deviceId, used, self()));
    }
  }
  at(end - 40 * 60_000);
  await right(h.engine.challenge(aliceEmail.deviceId, self()));

  // carol: eight wrong codes in the last minutes (each after the lock before it ended): locked now.
  for (const s of [600, 590, 580, 570, 540, 500, 400, 60]) {
    at(end - s * 1000);
    await right(h.engine.verify(carolToken.deviceId, '999999', self('192.0.2.44')));
  }
  // ... and tries again while locked: refused, and recorded.
  at(end - 30_000);
  await right(h.engine.verify(carolToken.deviceId, '999999', self('192.0.2.44')));
  at(end - 20_000);
  await right(h.engine.challenge(daveSms.deviceId, self('192.0.2.80')));
  at(end);
  return {
    alicePhone,
    aliceKey,
    aliceBackup: codes.codes[1]!,
    aliceEmail,
    carolToken,
    daveSms,
    aliceCode: () => code(aliceKey),
  };
};
