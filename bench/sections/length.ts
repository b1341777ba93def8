/**
 * 4. Stream length: verification latency on a device whose stream holds 10 000 events against
 * devices with 10, measured alternately (one long, one short, …) so both see the same machine.
 *
 *   memory   the memory store (no I/O to hide behind: the CPU cost of a long stream shows)
 *   sqlite   the SQLite store, synchronous=FULL (built with NORMAL, reopened with FULL)
 *   nocache  the memory store with cacheSize 0, for contrast: every verification reads and
 *            decodes the whole stream
 */
import { join } from 'node:path';
import { createMemoryEventStore } from '../../adapters/store/memory.ts';
import { createSqliteEventStore } from '../../adapters/store/sqlite.ts';
import type { Engine } from '../../app/engine.ts';
import { createMemoryVault } from '../../adapters/vault/memory.ts';
import type { EventStore, Vault } from '../../domain/ports.ts';
import { benchClock, codeAt, makeEngine, mustVerify, registerDevices, STEP_MS, type BenchClock, type Device } from '../lib/engines.ts';
import { log, percentile, recorder, runSection, type SectionOptions } from '../lib/measure.ts';

const LONG = 10_000;
const SHORT = 10;

/** Grows each device's stream to `events` events (registration + verifications). */
const grow = async (engine: Engine, clock: BenchClock, devices: readonly Device[], events: number) => {
  for (let e = 1; e < events; e++) {
    const at = clock.tick();
    for (const d of devices) await mustVerify(engine, d.deviceId, codeAt(d.key, at));
  }
};

/** Alternating single verifications: long device, then a short one; latencies in µs. */
const alternate = async (engine: Engine, clock: BenchClock, long: Device, shorts: readonly Device[], n: number) => {
  const lat = { long: [] as number[], short: [] as number[] };
  for (let i = 0; i < n; i++) {
    const at = clock.tick();
    const s = shorts[i % shorts.length]!;
    const a = codeAt(long.key, at);
    const b = codeAt(s.key, at);
    let t = performance.now();
    await mustVerify(engine, long.deviceId, a);
    lat.long.push((performance.now() - t) * 1000);
    t = performance.now();
    await mustVerify(engine, s.deviceId, b);
    lat.short.push((performance.now() - t) * 1000);
  }
  return lat;
};

interface Setup {
  readonly engine: Engine;
  readonly clock: BenchClock;
  readonly long: Device;
  readonly shorts: readonly Device[];
  readonly close: () => Promise<void>;
}

const build = async (store: EventStore, o: { shorts: number; cacheSize?: number }): Promise<Omit<Setup, 'close'> & { vault: Vault }> => {
  const clock = benchClock();
  const vault = createMemoryVault();
  const engine = makeEngine(store, clock, { vault, ...(o.cacheSize === undefined ? {} : { cacheSize: o.cacheSize }) });
  const [long] = await registerDevices(engine, 1, 'long');
  const shorts = await registerDevices(engine, o.shorts, 'short');
  await grow(engine, clock, [long!], LONG);
  await grow(engine, clock, shorts, SHORT);
  return { engine, clock, long: long!, shorts, vault };
};

const main = async (o: SectionOptions) => {
  const r = recorder('length');
  const n = { memory: o.quick ? 600 : 2000, sqlite: o.quick ? 120 : 400, nocache: o.quick ? 20 : 40 };
  // As many short devices as verifications per round: each stays near 10 events.
  const shortsFor = (ops: number) => Math.max(10, Math.ceil(ops / 2));

  const memStore = createMemoryEventStore();
  const mem = await build(memStore, { shorts: shortsFor(n.memory) });
  log('length: memory store built');

  // SQLite: built quickly with synchronous=NORMAL, measured with FULL (same file).
  const path = join(o.workDir, 'length.db');
  const building = createSqliteEventStore({ path, synchronous: 'NORMAL' });
  const built = await build(building, { shorts: shortsFor(n.sqlite) });
  await building.close();
  const sqliteStore = createSqliteEventStore({ path, synchronous: 'FULL' });
  const sq: Setup = { ...built, engine: makeEngine(sqliteStore, built.clock, { vault: built.vault }), close: () => sqliteStore.close() };
  // The first verification of the long stream in a new engine reads it whole (the cold cost).
  {
    const at = sq.clock.tick();
    const t = performance.now();
    await mustVerify(sq.engine, sq.long.deviceId, codeAt(sq.long.key, at));
    r.figure('sqlite-cold', `first verification of the ${LONG.toLocaleString('en-US')}-event device by a new engine (SQLite; reads the stream once)`, 'ms', [performance.now() - t]);
  }
  log('length: SQLite store built');

  // Built with the cache (without it, building the long stream would take quadratic time),
  // measured by an engine without one on the same store.
  const noStore = createMemoryEventStore();
  const noBuilt = await build(noStore, { shorts: 20 });
  const none: Setup = { ...noBuilt, engine: makeEngine(noStore, noBuilt.clock, { vault: noBuilt.vault, cacheSize: 0 }), close: async () => undefined };
  log('length: cache-off memory store built');

  const rounds: Record<string, number[]> = {};
  const push = (k: string, v: number) => (rounds[k] ??= []).push(v);
  /** Every sample of every round: p99 is taken over all of them (a round has too few for its tail). */
  const pooled: Record<string, number[]> = {};
  for (let round = 0; round < o.rounds; round++) {
    for (const [name, s, ops] of [['memory', mem, n.memory], ['sqlite', sq, n.sqlite], ['nocache', none, n.nocache]] as const) {
      const lat = await alternate(s.engine, s.clock, s.long, s.shorts, ops);
      (pooled[`${name}-long`] ??= []).push(...lat.long);
      (pooled[`${name}-short`] ??= []).push(...lat.short);
      const p50l = percentile(lat.long, 50);
      const p99l = percentile(lat.long, 99);
      const p50s = percentile(lat.short, 50);
      const p99s = percentile(lat.short, 99);
      push(`${name}-p50-long`, p50l);
      push(`${name}-p99-long`, p99l);
      push(`${name}-p50-short`, p50s);
      push(`${name}-p99-short`, p99s);
      push(`${name}-p50-ratio`, p50l / p50s);
      push(`${name}-p99-ratio`, p99l / p99s);
      log(`length round ${round + 1}/${o.rounds} ${name}: p50 ${p50l.toFixed(0)} µs vs ${p50s.toFixed(0)} µs, p99 ${p99l.toFixed(0)} µs vs ${p99s.toFixed(0)} µs`);
    }
  }
  const L = `${LONG.toLocaleString('en-US')} events`;
  for (const [name, label] of [['memory', 'memory store'], ['sqlite', 'SQLite FULL'], ['nocache', 'memory store, cacheSize 0']] as const) {
    r.figure(`${name}-p50-long`, `verify p50, ${L} (${label})`, 'µs', rounds[`${name}-p50-long`]!);
    r.figure(`${name}-p50-short`, `verify p50, ~${SHORT} events (${label})`, 'µs', rounds[`${name}-p50-short`]!);
    r.figure(`${name}-p99-long`, `verify p99, ${L} (${label})`, 'µs', rounds[`${name}-p99-long`]!);
    r.figure(`${name}-p99-short`, `verify p99, ~${SHORT} events (${label})`, 'µs', rounds[`${name}-p99-short`]!);
  }
  const p99Pooled = (name: string) => {
    const long = pooled[`${name}-long`]!;
    const short = pooled[`${name}-short`]!;
    r.figure(`${name}-p99-long-all`, `verify p99 over all rounds (${long.length} samples), ${L} (${name})`, 'µs', [percentile(long, 99)]);
    r.figure(`${name}-p99-short-all`, `verify p99 over all rounds (${short.length} samples), ~${SHORT} events (${name})`, 'µs', [percentile(short, 99)]);
    return [percentile(long, 99) / percentile(short, 99)];
  };
  r.ratioAtMost('length-mem-p50', `p50 latency, ${L} / ${SHORT} events (memory store)`, rounds['memory-p50-ratio']!, 1.5);
  r.ratioAtMost('length-mem-p99', `p99 latency (all rounds' samples), ${L} / ${SHORT} events (memory store)`, p99Pooled('memory'), 1.5);
  r.ratioAtMost('length-sq-p50', `p50 latency, ${L} / ${SHORT} events (SQLite FULL)`, rounds['sqlite-p50-ratio']!, 1.5);
  r.ratioAtMost('length-sq-p99', `p99 latency (all rounds' samples), ${L} / ${SHORT} events (SQLite FULL)`, p99Pooled('sqlite'), 1.5);
  r.info('length-nocache-p50', `p50 latency, ${L} / ${SHORT} events, cacheSize 0 (memory store)`, rounds['nocache-p50-ratio']!);
  r.note(
    `Per round: ${n.memory} (memory), ${n.sqlite} (SQLite) and ${n.nocache} (cache off) verifications of each kind, long and short alternating; ` +
      `the short devices take turns, so each stays near ${SHORT} events while the long one grows past ${LONG.toLocaleString('en-US')}.`,
  );
  r.note(`One TOTP step (${STEP_MS / 1000} s of simulated time) per verification: every code is valid.`);
  await sq.close();
  return r.result();
};

runSection(main);
