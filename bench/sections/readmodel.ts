/**
 * 6. Read model scale: devicesForUser (the read-side API, like django-otp's devices_for_user)
 * on the SQLite read store built by the replay section (100 000 users; 20 000 with --quick),
 * opened fresh in this process: memory, query latency and rate, against the indexed SELECT
 * alone (better-sqlite3, the same query, snapshots parsed).
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createReadSide } from '../../projections/read-side.ts';
import { createSqliteReadStore } from '../../projections/stores/sqlite.ts';
import { log, mb, percentile, recorder, runSection, type SectionOptions } from '../lib/measure.ts';

const main = async (o: SectionOptions) => {
  const r = recorder('readmodel');
  const path = join(o.workDir, 'rm.db');
  const raw = new Database(path, { readonly: true });
  const users = (raw.prepare('SELECT DISTINCT user_id FROM rm_devices').pluck().all() as string[]).sort();
  const devices = raw.prepare('SELECT count(*) FROM rm_devices').pluck().get() as number;
  const floor = raw.prepare('SELECT * FROM rm_devices WHERE user_id = ? ORDER BY created_at, device_id');
  const rssBefore = process.memoryUsage().rss;
  const store = createSqliteReadStore({ path });
  const side = createReadSide(store);
  const rssOpen = process.memoryUsage().rss;
  const n = o.quick ? 5_000 : 20_000;
  let seed = 12345;
  const pick = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return users[seed % users.length]!;
  };
  const rounds = { p50: [] as number[], p99: [] as number[], rate: [] as number[], floorP50: [] as number[], floorRate: [] as number[], rss: [] as number[] };
  for (let round = 0; round < o.rounds; round++) {
    const lat: number[] = [];
    const flat: number[] = [];
    let found = 0;
    const start = performance.now();
    for (let i = 0; i < n; i++) {
      const u = pick();
      const t = performance.now();
      found += (await side.devicesForUser(u)).length;
      lat.push((performance.now() - t) * 1000);
    }
    rounds.rate.push((n / (performance.now() - start)) * 1000);
    const fstart = performance.now();
    for (let i = 0; i < n; i++) {
      const u = pick();
      const t = performance.now();
      for (const row of floor.all(u) as { snapshot: string }[]) JSON.parse(row.snapshot);
      flat.push((performance.now() - t) * 1000);
    }
    rounds.floorRate.push((n / (performance.now() - fstart)) * 1000);
    if (found < n) throw new Error(`devicesForUser found ${found} devices for ${n} users`);
    rounds.p50.push(percentile(lat, 50));
    rounds.p99.push(percentile(lat, 99));
    rounds.floorP50.push(percentile(flat, 50));
    rounds.rss.push(mb(process.memoryUsage().rss));
    log(`readmodel round ${round + 1}/${o.rounds}: devicesForUser p50 ${rounds.p50.at(-1)!.toFixed(1)} µs, p99 ${rounds.p99.at(-1)!.toFixed(1)} µs, ${rounds.rate.at(-1)!.toFixed(0)}/s`);
  }
  await store.close();
  raw.close();
  const U = users.length.toLocaleString('en-US');
  r.figure('users', 'users in the read model', 'users', [users.length]);
  r.figure('devices', 'devices in the read model', 'devices', [devices]);
  r.figure('file', 'read model file (devices, audit log, statistics)', 'MB', [mb(statSync(path).size)]);
  r.figure('rss-open', 'process RSS: opening the read store adds', 'MB', [mb(rssOpen - rssBefore)]);
  r.figure('rss', `process RSS after ${n.toLocaleString('en-US')} queries per round`, 'MB', rounds.rss);
  r.figure('p50', `devicesForUser p50, ${U} users (random users)`, 'µs', rounds.p50);
  r.figure('p99', `devicesForUser p99, ${U} users`, 'µs', rounds.p99);
  r.figure('rate', 'devicesForUser, one at a time', 'queries/s', rounds.rate);
  r.figure('floor-p50', 'indexed SELECT + JSON.parse alone (better-sqlite3), p50', 'µs', rounds.floorP50);
  r.figure('floor-rate', 'indexed SELECT + JSON.parse alone, one at a time', 'queries/s', rounds.floorRate);
  r.info('readmodel-vs-floor', 'devicesForUser rate / indexed SELECT alone', rounds.rate.map((x, i) => x / rounds.floorRate[i]!));
  r.note('SQLite keeps the read model on disk: memory stays that of the page cache (2 MB by default) and the process, whatever the number of users.');
  return r.result();
};

runSection(main);
