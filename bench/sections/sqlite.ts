/**
 * 2. Durable verification on the embedded store: one verifier, one durable commit per
 * verification (SQLite, WAL journal, synchronous=FULL: the WAL is fsynced at every commit).
 *
 *   floor      better-sqlite3 alone: BEGIN IMMEDIATE, one INSERT of an event-sized row into a
 *              table like the store's (same indexes), COMMIT — same file system, same pragmas
 *   engine     engine.verify on createSqliteEventStore (synchronous FULL), 100 devices round
 *              robin, one verification at a time (group commit on, as by default: a lone
 *              append waits one event-loop turn, then commits alone)
 *   engine-nogroup  the same with groupCommit off
 *   django     django-otp 1.1.3 TOTPDevice.verify_token on a SQLite file with the same
 *              pragmas (bench/django/verify_bench.py, the Debian package, /usr/bin/python3);
 *              and django_otp.verify_token(user, persistent_id, token), which also loads the
 *              device, as a login view does
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { createSqliteEventStore } from '../../adapters/store/sqlite.ts';
import { benchClock, makeEngine, mustVerify, plan, registerDevices, ROW_DATA, ROW_META } from '../lib/engines.ts';
import { log, rate, rateSync, recorder, runSection, type SectionOptions } from '../lib/measure.ts';

const DJANGO_SCRIPT = fileURLToPath(new URL('../django/verify_bench.py', import.meta.url));

/** The django-otp process: started once, asked for one timed batch per round. */
const startDjango = async (dir: string) => {
  const child = spawn('/usr/bin/python3', [DJANGO_SCRIPT, dir, 'WAL'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const queue: ((line: string) => void)[] = [];
  const early: string[] = [];
  lines.on('line', (l) => {
    const next = queue.shift();
    if (next) next(l);
    else early.push(l);
  });
  const exited = new Promise<never>((_, reject) => child.on('exit', (code) => reject(new Error(`django-otp bench exited (${code})`))));
  const nextLine = () =>
    Promise.race([new Promise<string>((resolve) => (early.length ? resolve(early.shift()!) : queue.push(resolve))), exited]);
  const ready = JSON.parse(await nextLine()) as Record<string, unknown>;
  return {
    info: ready,
    run: async (mode: 'run' | 'run-load', n: number): Promise<number> => {
      child.stdin.write(`${mode} ${n}\n`);
      const r = JSON.parse(await nextLine()) as { ops: number; seconds: number };
      return r.ops / r.seconds;
    },
    stop: () => {
      child.stdin.write('quit\n');
      child.stdin.end();
    },
  };
};

/** The raw append floor: one row per durable transaction, nothing else. */
const floor = (path: string) => {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(`CREATE TABLE events (
    position INTEGER PRIMARY KEY AUTOINCREMENT, stream_name TEXT NOT NULL, version INTEGER NOT NULL CHECK (version > 0),
    event_id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, data TEXT NOT NULL, metadata TEXT NOT NULL, recorded_at INTEGER NOT NULL,
    UNIQUE (stream_name, version))`);
  const insert = db.prepare('INSERT INTO events (stream_name, version, event_id, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
  // Rows like the engine's: 100 device streams (UUID names), random UUID event ids (so the
  // unique index takes them at random places, as it takes the engine's).
  const streams = Array.from({ length: 100 }, () => `otpdevice-${randomUUID()}`);
  const one = db.transaction((i: number) =>
    insert.run(streams[i % 100]!, Math.floor(i / 100) + 1, randomUUID(), 'TokenVerified', ROW_DATA, ROW_META, Date.now()),
  );
  let i = 0;
  return {
    append: () => one.immediate(i++),
    close: () => db.close(),
  };
};

const main = async (o: SectionOptions) => {
  const r = recorder('sqlite');
  const n = o.quick ? 100 : 300;
  const raw = floor(join(o.workDir, 'floor.db'));
  const clock = benchClock();
  const store = createSqliteEventStore({ path: join(o.workDir, 'engine.db'), synchronous: 'FULL' });
  const engine = makeEngine(store, clock);
  const devices = await registerDevices(engine, 100);
  const clock2 = benchClock();
  const store2 = createSqliteEventStore({ path: join(o.workDir, 'engine-nogroup.db'), synchronous: 'FULL', groupCommit: false });
  const engine2 = makeEngine(store2, clock2);
  const devices2 = await registerDevices(engine2, 100);
  const django = await startDjango(join(o.workDir, 'django'));
  r.version('django', String(django.info.django));
  r.version('django-otp', String(django.info.django_otp));
  r.version('python', String(django.info.python));
  r.version('sqlite (django)', String(django.info.sqlite));
  r.version('sqlite (better-sqlite3)', String((new Database(':memory:').prepare('select sqlite_version() v').get() as { v: string }).v));

  const rounds = { floor: [] as number[], engine: [] as number[], nogroup: [] as number[], django: [] as number[], djangoLoad: [] as number[] };
  let op = 0;
  let op2 = 0;
  const runEngine = async (e: typeof engine, c: typeof clock, devs: typeof devices, start: number) => {
    const codes = plan(c, devs, n, start);
    return rate(n, async () => {
      for (let i = 0; i < n; i++) {
        c.tick();
        await mustVerify(e, devs[(i + start) % devs.length]!.deviceId, codes[i]!);
      }
    });
  };
  // Warm-up (untimed).
  raw.append();
  await runEngine(engine, clock, devices, op);
  op += n;
  await django.run('run', 20);
  const SLICES = 5;
  const slice = Math.ceil(n / SLICES);
  for (let round = 0; round < o.rounds; round++) {
    // The three targets' contenders in alternating slices, so they share the machine's load.
    const ms = { floor: 0, engine: 0, django: 0 };
    for (let sl = 0; sl < SLICES; sl++) {
      ms.floor += slice / rateSync(slice, () => {
        for (let i = 0; i < slice; i++) raw.append();
      });
      const codes = plan(clock, devices, slice, op);
      let t = performance.now();
      for (let i = 0; i < slice; i++) {
        clock.tick();
        await mustVerify(engine, devices[(i + op) % devices.length]!.deviceId, codes[i]!);
      }
      ms.engine += (performance.now() - t) / 1000;
      op += slice;
      ms.django += slice / (await django.run('run', slice));
    }
    rounds.floor.push((SLICES * slice) / ms.floor);
    rounds.engine.push((SLICES * slice) / ms.engine);
    rounds.django.push((SLICES * slice) / ms.django);
    rounds.nogroup.push(await runEngine(engine2, clock2, devices2, op2));
    op2 += n;
    rounds.djangoLoad.push(await django.run('run-load', n));
    log(`sqlite round ${round + 1}/${o.rounds}: floor ${rounds.floor.at(-1)!.toFixed(0)}/s, engine ${rounds.engine.at(-1)!.toFixed(0)}/s, django-otp ${rounds.django.at(-1)!.toFixed(0)}/s`);
  }
  django.stop();
  raw.close();
  await store.close();
  await store2.close();

  r.figure('floor', 'raw append floor: better-sqlite3, 1 row per durable transaction', 'commits/s', rounds.floor);
  r.figure('engine', 'engine.verify on the SQLite store (group commit on)', 'verifies/s', rounds.engine);
  r.figure('engine-nogroup', 'engine.verify on the SQLite store (group commit off)', 'verifies/s', rounds.nogroup);
  r.figure('django', 'django-otp TOTPDevice.verify_token (device instance held)', 'verifies/s', rounds.django);
  r.figure('django-load', 'django-otp django_otp.verify_token (loads the device, then verifies)', 'verifies/s', rounds.djangoLoad);
  const per = (a: number[], b: number[]) => a.map((x, i) => x / b[i]!);
  r.ratio('sqlite-engine-vs-floor', 'engine verify (SQLite, FULL) / raw append floor', per(rounds.engine, rounds.floor), 0.8);
  r.ratio('sqlite-engine-vs-django', 'engine verify / django-otp verify_token, same durability', per(rounds.engine, rounds.django), 5);
  r.info('sqlite-django-vs-floor', 'django-otp verify_token / raw append floor', per(rounds.django, rounds.floor));
  r.note(
    `Same durability on both sides: SQLite ${String(django.info.journal_mode).toUpperCase()} journal, synchronous=FULL (${String(django.info.synchronous)}), one commit per verification, ` +
      'on the same file system. django-otp runs in Django autocommit mode: its verify_token saves the device (one UPDATE, one commit); ' +
      "its clock is moved one step per call, so each call verifies the next step's valid code.",
  );
  r.note('A single verifier is bound by one fsync per verification on both sides: the floor caps every contender at its own rate.');
  return r.result();
};

runSection(main);
