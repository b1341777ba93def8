/**
 * The commands over the read models: `stats` (catches the projection up, then reports),
 * `replay` (drops the read models and rebuilds them from the log, with a progress bar) and
 * `quarantine` (the stored events that do not decode, which the projection set aside).
 */
import cliProgress from 'cli-progress';
import {
  createProjectionRunner,
  createReadSide,
  openReadStore,
  readStoreUrl,
  type ProjectionRunner,
  type ReadStore,
} from '../../projections/index.ts';
import type { Io } from './io.ts';
import { iso, ok, type Result } from './output.ts';
import { parseInteger } from './parse.ts';
import type { GlobalOptions, Runtime } from './runtime.ts';

type Opts = Record<string, string | boolean | undefined>;

/** The read store: FACTORSTREAM_READ_STORE, else the event store itself when it is SQL. */
const openReads = (g: GlobalOptions, io: Io): Promise<ReadStore> =>
  openReadStore(readStoreUrl({ ...io.env, FACTORSTREAM_STORE: g.store }));

const withRunner = async (
  rt: Runtime,
  g: GlobalOptions,
  io: Io,
  f: (runner: ProjectionRunner, reads: ReadStore) => Promise<Result>,
): Promise<Result> => {
  const reads = await openReads(g, io);
  let setAside = 0;
  const runner = createProjectionRunner({ store: rt.store, readStore: reads, onQuarantine: () => void setAside++ });
  try {
    const result = await f(runner, reads);
    if (setAside > 0)
      io.stderr(
        `factorstream: set aside ${setAside} stored event(s) that do not decode; the read models go on without them (list: factorstream quarantine)\n`,
      );
    return result;
  } finally {
    await runner.close().catch(() => {});
    await reads.close().catch(() => {});
  }
};

export const stats = (rt: Runtime, g: GlobalOptions, o: Opts, io: Io): Promise<Result> =>
  withRunner(rt, g, io, async (runner, reads) => {
    const hours = typeof o.hours === 'string' ? parseInteger(o.hours, '--hours', 1, 24 * 366) : 24;
    await runner.start().whenCaughtUp({ timeoutMs: 10 * 60_000 });
    const now = rt.clock.now();
    const side = createReadSide(reads, { policy: g.config.policy, now: () => now });
    const from = Math.floor((now - hours * 3_600_000) / 3_600_000) * 3_600_000;
    const d = await side.dashboard({ from, to: now, now });
    const busy = d.hourly.filter((h) => h.verified + h.failed + h.refused + h.matchFailed + h.matchRefused > 0);
    const kinds = Object.entries(d.devices).filter(([k]) => k !== 'total');
    const text = [
      `devices: ${d.devices.total.confirmed} confirmed, ${d.devices.total.unconfirmed} unconfirmed, ${d.devices.total.removed} removed`,
      ...kinds.map(([k, c]) => `  ${k.padEnd(7)} ${c.confirmed} confirmed, ${c.unconfirmed} unconfirmed, ${c.removed} removed`),
      `verifications in the last ${hours} h (hours with activity):`,
      ...(busy.length === 0
        ? ['  none']
        : busy.map((h) => `  ${iso(h.hour)}  ${h.verified} accepted, ${h.failed} failed, ${h.refused} refused, ${h.matchFailed} failed matches`)),
      `locked right now: ${d.lockedDevices.length}`,
      ...d.lockedDevices.map((x) => `  ${x.persistentId} (${x.userId}) until ${iso(x.throttle.lockedUntil)}`),
      `users with an unusual failure pattern (slow guessing over days): ${d.unusualFailures.length}`,
      ...d.unusualFailures.map((f) => `  ${f.userId}: ${f.failures} failures on ${f.days.length} days since ${iso(f.firstFailureAt)}`),
    ];
    return ok({ command: 'stats', from: iso(from), to: iso(now), ...d }, text);
  });

export const replay = (rt: Runtime, g: GlobalOptions, _o: Opts, io: Io, json: boolean): Promise<Result> =>
  withRunner(rt, g, io, async (runner) => {
    const bar = json
      ? null
      : new cliProgress.SingleBar(
          { format: 'replaying [{bar}] {percentage}% | {value}/{total} events | {rate} events/s', stream: process.stderr, hideCursor: true },
          cliProgress.Presets.shades_classic,
        );
    let started = false;
    const result = await runner.rebuild({
      onProgress: (done, total, rate) => {
        if (!bar) return;
        if (!started) {
          bar.start(total, done, { rate: 0 });
          started = true;
        } else bar.update(done, { rate: Math.round(rate) });
      },
    });
    bar?.stop();
    return ok({ command: 'replay', events: result.events, seconds: result.seconds }, [
      `rebuilt the read models from ${result.events} event(s) in ${result.seconds.toFixed(1)} s`,
    ]);
  });

/** The events the projection set aside because they do not decode, oldest first. */
export const quarantine = (rt: Runtime, g: GlobalOptions, _o: Opts, io: Io): Promise<Result> =>
  withRunner(rt, g, io, async (runner, reads) => {
    await runner.start().whenCaughtUp({ timeoutMs: 10 * 60_000 });
    const entries = (await reads.audit({ action: 'event-quarantined', limit: 10_000 })).reverse();
    const events = entries.map((e) => ({
      streamName: e.streamName,
      version: e.version,
      position: e.position,
      type: e.type,
      userId: e.userId,
      deviceId: e.deviceId,
      recordedAt: iso(e.recordedAt),
      problem: e.reason,
    }));
    const text =
      events.length === 0
        ? ['no stored event is set aside: every event decodes']
        : [
            `${events.length} stored event(s) do not decode and are set aside (the read models go on without them):`,
            ...events.map((e) => `  ${e.streamName} version ${e.version} (position ${e.position}, ${e.type}${e.userId ? `, user ${e.userId}` : ''}): ${e.problem}`),
            'Commands on such a device fail until the event is repaired; erase --user works on it. After a repair, rebuild the read models (factorstream replay).',
          ];
    return ok({ command: 'quarantine', events }, text);
  });
