/**
 * 3. Concurrency: 8 verifiers at once, each on its own device (8 async loops in one process,
 * one engine), against one verifier and against the raw append floor of the database.
 *
 * PostgreSQL (127.0.0.1:5432; a bench database is created and dropped):
 *   floor      8 clients, each inserting one event-sized row per statement (autocommit, a
 *              prepared INSERT) into a copy of the store's events table (same columns,
 *              defaults, indexes)
 *   engine ×8  engine.verify from 8 loops; store pool of 8 connections
 *   engine ×1  the same, one loop
 *   also: the same with optimisticCache false (a read before every append), and 8 loops over
 *   two engines taking turns on each device (every verification meets a stale cache)
 * SQLite (synchronous=FULL):
 *   engine ×8 with group commit (several verifications per durable commit), ×8 without, ×1.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { createPostgresEventStore } from '../../adapters/store/postgres.ts';
import { createSqliteEventStore } from '../../adapters/store/sqlite.ts';
import { createMemoryVault } from '../../adapters/vault/memory.ts';
import type { Engine } from '../../app/engine.ts';
import { benchClock, codeAt, makeEngine, registerDevices, START_MS, STEP_MS, type Device, ROW_DATA, ROW_META } from '../lib/engines.ts';
import { log, rate, recorder, runSection, type SectionOptions } from '../lib/measure.ts';
import { isLeft } from 'fp-ts/lib/Either.js';

const ADMIN = process.env.FACTORSTREAM_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const VERIFIERS = 8;

/**
 * `loops` verifiers, each on its own device and its own clock: verifier k verifies its device
 * at steps t+1, t+2, … (the engine's clock is per call: the `now` option). ops per verifier.
 */
const concurrent = async (engines: Engine | readonly Engine[], devices: readonly Device[], loops: number, ops: number, stepOf: number[]) => {
  // Several engines (instances of a service) take turns: verification i goes to engine i mod n.
  const list: readonly Engine[] = Array.isArray(engines) ? (engines as readonly Engine[]) : [engines as Engine];
  const pick = (i: number): Engine => list[i % list.length]!;
  const plans = Array.from({ length: loops }, (_, k) => {
    const d = devices[k]!;
    const from = stepOf[k]!;
    return Array.from({ length: ops }, (_, i) => {
      const at = START_MS + (from + i + 1) * STEP_MS;
      return { at, code: codeAt(d.key, at) };
    });
  });
  const r = await rate(loops * ops, () =>
    Promise.all(
      plans.map(async (p, k) => {
        const d = devices[k]!;
        for (let i = 0; i < p.length; i++) {
          const { at, code } = p[i]!;
          const out = await pick(i).verify(d.deviceId, code, { now: at })();
          if (isLeft(out)) throw new Error(`verify failed: ${out.left.code} ${out.left.message}`);
          if (!out.right.ok) throw new Error(`verify rejected a valid code: ${out.right.reason}`);
        }
      }),
    ),
  );
  for (let k = 0; k < loops; k++) stepOf[k]! += ops;
  return r;
};

const postgres = async (o: SectionOptions, r: ReturnType<typeof recorder>) => {
  const dbName = `factorstream_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: ADMIN });
  try {
    await admin.connect();
  } catch (e) {
    r.note(`PostgreSQL at ${ADMIN} is not reachable (${(e as Error).message}): its part was skipped.`);
    return;
  }
  await admin.query(`DROP DATABASE IF EXISTS ${dbName}`);
  await admin.query(`CREATE DATABASE ${dbName}`);
  const url = new URL(ADMIN);
  url.pathname = `/${dbName}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: VERIFIERS });
  pool.on('error', () => undefined); // an idle connection closed at the end: nothing to do
  try {
    const version = (await pool.query<{ v: string }>('SHOW server_version')).rows[0]!.v;
    const settings = (await pool.query<{ name: string; setting: string }>(
      "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'commit_delay', 'wal_sync_method')",
    )).rows;
    r.version('postgresql', version);
    const store = await createPostgresEventStore({ pool, schema: 'factorstream' });
    await pool.query('CREATE SCHEMA floor');
    await pool.query('CREATE TABLE floor.events (LIKE factorstream.events INCLUDING ALL)');
    const clock = benchClock();
    const engine = makeEngine(store, clock);
    const devices = await registerDevices(engine, VERIFIERS, 'pg-user');
    const stepOf = Array.from({ length: VERIFIERS }, () => 0);
    // For contrast: an engine that reads what was appended since its cached version before
    // every command (optimisticCache false: the default before stores reported conflict tails).
    const checked = makeEngine(store, clock, { optimisticCache: false });
    const checkedDevices = await registerDevices(checked, VERIFIERS, 'pg-checked-user');
    const checkedStepOf = Array.from({ length: VERIFIERS }, () => 0);
    // And two instances of the service taking turns on the same devices: every verification
    // finds its engine's cache one event behind (a refused append, then the real one).
    const vault = createMemoryVault(); // one key store for both, as two instances would share one
    const turns = [makeEngine(store, clock, { vault }), makeEngine(store, clock, { vault })];
    const turnDevices = await registerDevices(turns[0]!, VERIFIERS, 'pg-turns-user');
    const turnStepOf = Array.from({ length: VERIFIERS }, () => 0);
    const ops = o.quick ? 60 : 200;
    // The floor's own connections: the store's pool stays free for the engine.
    const clients = await Promise.all(
      Array.from({ length: VERIFIERS }, async () => {
        const c = new pg.Client({ connectionString: url.toString() });
        c.on('error', () => undefined);
        await c.connect();
        return c;
      }),
    );
    let row = 0;
    // Rows like the engine's: UUID stream names, random UUID event ids.
    const floorStreams = Array.from({ length: VERIFIERS }, () => `otpdevice-${randomUUID()}`);
    const floorRound = (n = VERIFIERS, opsEach = ops) =>
      rate(n * opsEach, () =>
        Promise.all(
          clients.slice(0, n).map(async (c, k) => {
            for (let i = 0; i < opsEach; i++) {
              const n = row++;
              await c.query({
                name: 'floor-insert',
                text: 'INSERT INTO floor.events (stream_name, version, event_id, type, data, metadata, recorded_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7)',
                values: [floorStreams[k]!, n + 1, randomUUID(), 'TokenVerified', ROW_DATA, ROW_META, new Date().toISOString()],
              });
            }
          }),
        ),
      );
    // Warm-up.
    await floorRound();
    await concurrent(engine, devices, VERIFIERS, 20, stepOf);
    await concurrent(checked, checkedDevices, VERIFIERS, 20, checkedStepOf);
    await concurrent(turns, turnDevices, VERIFIERS, 20, turnStepOf);
    const rounds = {
      floor: [] as number[], floorOne: [] as number[], eight: [] as number[], one: [] as number[], checkedEight: [] as number[], checkedOne: [] as number[], turns: [] as number[],
    };
    for (let round = 0; round < o.rounds; round++) {
      rounds.floor.push(await floorRound());
      rounds.floorOne.push(await floorRound(1, Math.ceil(ops * 1.5)));
      rounds.eight.push(await concurrent(engine, devices, VERIFIERS, ops, stepOf));
      rounds.one.push(await concurrent(engine, devices, 1, Math.ceil(ops * 1.5), stepOf));
      rounds.checkedEight.push(await concurrent(checked, checkedDevices, VERIFIERS, ops, checkedStepOf));
      rounds.checkedOne.push(await concurrent(checked, checkedDevices, 1, Math.ceil(ops * 1.5), checkedStepOf));
      rounds.turns.push(await concurrent(turns, turnDevices, VERIFIERS, ops, turnStepOf));
      log(
        `postgres round ${round + 1}/${o.rounds}: floor ${rounds.floor.at(-1)!.toFixed(0)}/s (1 client ${rounds.floorOne.at(-1)!.toFixed(0)}/s), 8 verifiers ${rounds.eight.at(-1)!.toFixed(0)}/s, ` +
          `1 verifier ${rounds.one.at(-1)!.toFixed(0)}/s; read first: 8 ${rounds.checkedEight.at(-1)!.toFixed(0)}/s, 1 ${rounds.checkedOne.at(-1)!.toFixed(0)}/s; ` +
          `2 instances taking turns: 8 ${rounds.turns.at(-1)!.toFixed(0)}/s`,
      );
    }
    for (const c of clients) await c.end();
    await store.close();
    r.figure('pg-floor', `PostgreSQL raw append floor: ${VERIFIERS} clients, 1 row per INSERT (autocommit)`, 'rows/s', rounds.floor);
    r.figure('pg-floor-1', 'PostgreSQL raw append floor: 1 client', 'rows/s', rounds.floorOne);
    r.figure('pg-engine-8', `engine.verify, PostgreSQL, ${VERIFIERS} concurrent verifiers`, 'verifies/s', rounds.eight);
    r.figure('pg-engine-1', 'engine.verify, PostgreSQL, 1 verifier', 'verifies/s', rounds.one);
    r.figure('pg-engine-8-checked', `engine.verify, PostgreSQL, ${VERIFIERS} concurrent verifiers, optimisticCache false (read, then append)`, 'verifies/s', rounds.checkedEight);
    r.figure('pg-engine-1-checked', 'engine.verify, PostgreSQL, 1 verifier, optimisticCache false', 'verifies/s', rounds.checkedOne);
    r.figure('pg-engine-8-turns', `engine.verify, PostgreSQL, ${VERIFIERS} concurrent verifiers, 2 engines taking turns on each device`, 'verifies/s', rounds.turns);
    const per = (a: number[], b: number[]) => a.map((x, i) => x / b[i]!);
    r.ratio('pg-8-vs-floor', `PostgreSQL: ${VERIFIERS} verifiers / raw append floor (${VERIFIERS} clients)`, per(rounds.eight, rounds.floor), 0.7);
    r.ratio('pg-8-vs-1', `PostgreSQL: ${VERIFIERS} verifiers / 1 verifier`, per(rounds.eight, rounds.one), 2);
    r.info('pg-floor-8-vs-1', `PostgreSQL raw floor: ${VERIFIERS} clients / 1 client (what ${VERIFIERS} verifiers / 1 can reach at the floor)`, per(rounds.floor, rounds.floorOne));
    r.info('pg-1-vs-floor-1', 'PostgreSQL: 1 verifier / raw floor with 1 client', per(rounds.one, rounds.floorOne));
    r.info('pg-8-checked-vs-floor', `PostgreSQL, read before each command: ${VERIFIERS} verifiers / raw append floor`, per(rounds.checkedEight, rounds.floor));
    r.info('pg-8-checked-vs-1', `PostgreSQL, read before each command: ${VERIFIERS} verifiers / 1 verifier`, per(rounds.checkedEight, rounds.checkedOne));
    r.info('pg-8-turns-vs-floor', `PostgreSQL, 2 engines taking turns (every cache stale): ${VERIFIERS} verifiers / raw append floor`, per(rounds.turns, rounds.floor));
    r.note(`PostgreSQL settings: ${settings.map((s) => `${s.name}=${s.setting}`).join(', ')}; the bench database ${dbName} is dropped afterwards.`);
    r.note(
      'An engine verification on PostgreSQL is 1 round trip when the engine\'s cache is current (the append statement, prepared) and 2 when ' +
        'another instance wrote since (the refused append brings back what was missed, then the real one); with optimisticCache false it ' +
        'is always 2 (read the stream after the cached version, then append). The floor is 1.',
    );
  } finally {
    await pool.end().catch(() => undefined);
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  }
};

const sqlite = async (o: SectionOptions, r: ReturnType<typeof recorder>) => {
  const ops = o.quick ? 40 : 120;
  const mk = async (file: string, groupCommit: boolean) => {
    const store = createSqliteEventStore({ path: join(o.workDir, file), synchronous: 'FULL', groupCommit });
    const engine = makeEngine(store, benchClock());
    const devices = await registerDevices(engine, VERIFIERS, 'sq-user');
    return { store, engine, devices, stepOf: Array.from({ length: VERIFIERS }, () => 0) };
  };
  const group = await mk('group.db', true);
  const solo = await mk('solo.db', false);
  await concurrent(group.engine, group.devices, VERIFIERS, 10, group.stepOf);
  await concurrent(solo.engine, solo.devices, VERIFIERS, 10, solo.stepOf);
  const rounds = { eight: [] as number[], one: [] as number[], eightSolo: [] as number[], perCommit: [] as number[] };
  for (let round = 0; round < o.rounds; round++) {
    const before = group.store.stats();
    rounds.eight.push(await concurrent(group.engine, group.devices, VERIFIERS, ops, group.stepOf));
    const after = group.store.stats();
    rounds.perCommit.push((after.appends - before.appends) / (after.commits - before.commits));
    rounds.one.push(await concurrent(group.engine, group.devices, 1, ops * 2, group.stepOf));
    rounds.eightSolo.push(await concurrent(solo.engine, solo.devices, VERIFIERS, ops, solo.stepOf));
    log(`sqlite round ${round + 1}/${o.rounds}: 8 verifiers (group commit) ${rounds.eight.at(-1)!.toFixed(0)}/s, 1 verifier ${rounds.one.at(-1)!.toFixed(0)}/s, 8 without group commit ${rounds.eightSolo.at(-1)!.toFixed(0)}/s`);
  }
  await group.store.close();
  await solo.store.close();
  r.figure('sq-engine-8', `engine.verify, SQLite FULL, ${VERIFIERS} concurrent verifiers, group commit`, 'verifies/s', rounds.eight);
  r.figure('sq-engine-8-solo', `engine.verify, SQLite FULL, ${VERIFIERS} concurrent verifiers, group commit off`, 'verifies/s', rounds.eightSolo);
  r.figure('sq-engine-1', 'engine.verify, SQLite FULL, 1 verifier', 'verifies/s', rounds.one);
  r.figure('sq-per-commit', 'verifications per durable commit (8 verifiers, group commit)', 'appends/commit', rounds.perCommit);
  const per = (a: number[], b: number[]) => a.map((x, i) => x / b[i]!);
  r.ratio('sq-8-vs-1', `SQLite: ${VERIFIERS} verifiers with group commit / 1 verifier`, per(rounds.eight, rounds.one), 2);
  r.info('sq-group-effect', `SQLite: ${VERIFIERS} verifiers, group commit on / off`, per(rounds.eight, rounds.eightSolo));
};

const main = async (o: SectionOptions) => {
  const r = recorder('concurrency');
  await postgres(o, r);
  await sqlite(o, r);
  return r.result();
};

runSection(main);
