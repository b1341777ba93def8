/**
 * The read-side API over the memory read store, checked against the engine's own view of the
 * same events (the engine folds each stream with the same reducers, at query time).
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { DeviceView } from '../../app/engine.ts';
import { fold } from '../../domain/device.ts';
import type { DeviceEvent } from '../../domain/events.ts';
import { evolveSnapshot, toSnapshot, type DeviceSnapshot, type DeviceSummary } from '../../projections/device-snapshot.ts';
import { decodeRecorded } from '../../projections/projected-event.ts';
import { createReadSide, type ReadSide } from '../../projections/read-side.ts';
import { createProjectionRunner, type ProjectionRunner } from '../../projections/runner.ts';
import { createMemoryReadStore } from '../../projections/stores/memory.ts';
import { deviceStateAfter, deviceStateAt } from '../../projections/time-travel.ts';
import { START, createWorld, workloadArb, type Step, type World } from './fixtures.ts';
import { scenario } from './suite.ts';

const open: ProjectionRunner[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
});

const storeOf = async (world: World) => {
  const readStore = createMemoryReadStore();
  const r = createProjectionRunner({ store: world.events, readStore }).start();
  open.push(r);
  await r.whenCaughtUp();
  return readStore;
};

const project = async (world: World): Promise<ReadSide> => createReadSide(await storeOf(world), { now: world.clock.now });

/** The engine's view in the read side's shape. */
const fromEngine = (v: DeviceView): DeviceSummary => ({
  deviceId: v.deviceId,
  persistentId: v.persistentId,
  userId: v.userId,
  kind: v.kind,
  name: v.name,
  confirmed: v.confirmed,
  removed: v.removed,
  createdAt: v.createdAt,
  lastUsedAt: v.lastUsedAt,
  version: v.version,
  throttle: v.throttle,
  cooldown: v.cooldown,
  backupCodesLeft: v.backupCodesLeft ?? null,
  pendingCodeValidUntil: v.pendingCode?.validUntil ?? null,
  origin: v.origin,
});
const byId = (a: { deviceId: string }, b: { deviceId: string }) => (a.deviceId < b.deviceId ? -1 : 1);
const right = <A>(e: { _tag: 'Left'; left: unknown } | { _tag: 'Right'; right: A }): A => {
  if (e._tag === 'Left') throw new Error(JSON.stringify(e.left));
  return e.right;
};

describe('devices per user', () => {
  it('devicesForUser and userHasDevice agree with the engine after any workload', async () => {
    await fc.assert(
      fc.asyncProperty(workloadArb, async ({ seed, steps }) => {
        const world = createWorld(seed);
        await world.run(steps);
        const side = await project(world);
        for (const userId of ['user-0', 'user-1', 'user-2']) {
          for (const confirmed of [undefined, true, false]) {
            const filter = confirmed === undefined ? {} : { confirmed };
            const engine = await world.engine.userDevices(userId, filter)();
            const expected = engine._tag === 'Right' ? engine.right.map(fromEngine).sort(byId) : [];
            expect((await side.devicesForUser(userId, filter)).sort(byId)).toEqual(expected);
            expect(await side.userHasDevice(userId, filter)).toBe(expected.length > 0);
          }
        }
      }),
      { numRuns: 30 },
    );
  });

  it('status is computed at the query instant under the given policy', async () => {
    const world = createWorld(31);
    await world.run([
      { op: 'register', user: 0, kind: 'totp', confirmed: true },
      { op: 'verify', device: 0, right: false },
      { op: 'tick', ms: 100 },
      { op: 'register', user: 0, kind: 'email', confirmed: true },
      { op: 'challenge', device: 1, deliveryFails: false },
    ]);
    const readStore = await storeOf(world);
    const side = createReadSide(readStore, { now: world.clock.now });
    const t = world.clock.now();
    const [totp, email] = await side.devicesForUser('user-0', { now: t });
    expect(totp!.throttle).toEqual({ failureCount: 1, lockedUntil: t - 100 + 1000, lastFailureAt: t - 100 });
    expect(email!.cooldown).toEqual({ lastGeneratedAt: t, nextChallengeAt: t + 60_000 + 1 });
    expect(email!.pendingCodeValidUntil).toBe(t + 300_000);
    const later = await side.devicesForUser('user-0', { now: t + 10 * 60_000 });
    expect(later[0]!.throttle.lockedUntil).toBeNull();
    expect(later[1]!.cooldown.nextChallengeAt).toBeNull();
    expect(later[1]!.pendingCodeValidUntil).toBeNull();
    const noThrottle = createReadSide(readStore, { policy: { throttle: { totp: { factor: 0 } } } });
    expect((await noThrottle.devicesForUser('user-0', { now: t }))[0]!.throttle.lockedUntil).toBeNull();
    expect(await side.device(totp!.persistentId, { now: t })).toEqual(totp);
  });
});

describe('audit log', () => {
  it('records who did what, why and from where, newest first', async () => {
    const world = createWorld(32);
    await world.run(scenario);
    const side = await project(world);
    const { entries, nextCursor } = await side.auditForUser('user-0', { limit: 1000 });
    expect(nextCursor).toBeNull();
    const actions = entries.map((e) => e.action);
    expect(actions).toEqual(
      expect.arrayContaining([
        'device-enrolled',
        'device-confirmed',
        'verification-accepted',
        'verification-failed',
        'challenge-generated',
        'challenge-refused',
        'challenge-delivery-failed',
        'backup-codes-issued',
        'throttle-reset',
        'device-renamed',
      ]),
    );
    const sorted = [...entries].sort((a, b) => b.at - a.at || (a.position < b.position ? 1 : -1));
    expect(entries).toEqual(sorted);
    const reset = entries.find((e) => e.action === 'throttle-reset')!;
    expect(reset).toMatchObject({ actor: 'admin:dave', reason: 'user called the help desk', type: 'ThrottleReset' });
    expect(reset.ip).toMatch(/^198\.51\.100\.\d+$/);
    expect(reset.userAgent).toMatch(/^agent\/\d$/);
    expect(entries.find((e) => e.action === 'device-renamed')!.details).toEqual({ from: 'Authenticator app', to: 'Phone' });
    expect(entries.find((e) => e.action === 'verification-failed')!.reason).toBe('invalid');
    expect(entries.find((e) => e.action === 'backup-codes-issued')!.details).toEqual({ count: 10 });
    expect(entries.find((e) => e.action === 'challenge-delivery-failed')!.reason).toBe('the gateway is down');
    // The user stream: a failed match of user-1, and the removal of their SMS device.
    const other = (await side.auditForUser('user-1')).entries;
    expect(other.find((e) => e.action === 'match-failed')).toMatchObject({ deviceId: null, details: { devicesTried: 2 } });
    expect(other.find((e) => e.action === 'device-removed')).toMatchObject({ reason: 'lost it' });
    // Straight after a failure, the next attempt is refused.
    await world.run([{ op: 'verify', device: 0, right: false }]);
    const refused = (await (await project(world)).auditForUser('user-0')).entries[0]!;
    expect(refused).toMatchObject({ action: 'verification-refused', reason: 'throttled', details: { failureCount: 1 } });
  });

  it('pages with a cursor or an offset, per user and per device', async () => {
    const world = createWorld(33);
    await world.run(scenario);
    const side = await project(world);
    const all = (await side.auditForUser('user-0', { limit: 1000 })).entries;
    expect(all.length).toBeGreaterThan(10);
    const paged = [];
    let cursor: string | null = null;
    do {
      const page = await side.auditForUser('user-0', { limit: 3, cursor });
      expect(page.entries.length).toBeLessThanOrEqual(3);
      paged.push(...page.entries);
      cursor = page.nextCursor;
    } while (cursor);
    expect(paged).toEqual(all);
    expect((await side.auditForUser('user-0', { limit: 4, offset: 5 })).entries).toEqual(all.slice(5, 9));
    const device = world.devices[0]!;
    const mine = (await side.auditForDevice(`totp/${device.deviceId}`, { limit: 1000 })).entries;
    expect(mine).toEqual(all.filter((e) => e.deviceId === device.deviceId));
    expect(mine.every((e) => e.persistentId === `totp/${device.deviceId}`)).toBe(true);
    await expect(side.auditForUser('user-0', { cursor: 'not-a-cursor' })).rejects.toMatchObject({ code: 'invalid' });
    await expect(side.auditForUser('user-0', { limit: 0 })).rejects.toMatchObject({ code: 'invalid' });
  });
});

describe('statistics', () => {
  it('counts devices by kind and status, and verifications per hour of event time', async () => {
    const world = createWorld(34);
    await world.run(scenario);
    const side = await project(world);
    const counts = await side.deviceCounts();
    expect(counts.totp).toEqual({ confirmed: 1, unconfirmed: 0, removed: 0 });
    expect(counts.sms).toEqual({ confirmed: 0, unconfirmed: 0, removed: 1 });
    expect(counts.total).toEqual({ confirmed: 4, unconfirmed: 0, removed: 1 });
    const hours = await side.verificationsPerHour({ from: START, to: world.clock.now() });
    expect(hours.map((h) => h.hour)).toEqual([START, START + 3_600_000]);
    const events = (await world.events.readAll()).events;
    const count = (type: string, from: number) => events.filter((e) => e.type === type && (e.data as { at: number }).at >= from && (e.data as { at: number }).at < from + 3_600_000).length;
    for (const h of hours) {
      expect(h).toEqual({
        hour: h.hour,
        verified: count('TokenVerified', h.hour),
        failed: count('VerificationFailed', h.hour),
        refused: count('VerificationRefused', h.hour),
        matchFailed: count('MatchFailed', h.hour),
        matchRefused: count('MatchRefused', h.hour),
      });
    }
    expect(hours[0]!.verified).toBe(3); // the TOTP confirmation, a backup code, the HOTP code
    expect(hours[1]!.failed).toBe(1);
  });

  it('lists the devices locked at the query instant, as the engine would refuse them', async () => {
    await fc.assert(
      fc.asyncProperty(workloadArb, async ({ seed, steps }) => {
        const world = createWorld(seed);
        await world.run(steps);
        const side = await project(world);
        const locked = (await side.lockedDevices()).map((d) => d.deviceId).sort();
        const expected: string[] = [];
        for (const d of world.devices) {
          const v = await world.engine.device(d.deviceId)();
          if (v._tag === 'Right' && !v.right.removed && v.right.throttle.lockedUntil !== null) expected.push(d.deviceId);
        }
        expect(locked).toEqual(expected.sort());
      }),
      { numRuns: 20 },
    );
  });

  it('flags slow guessing spread over days, which throttling does not show, until a success', async () => {
    const wrongEveryFewHours: Step[] = Array.from({ length: 12 }, () => [
      { op: 'verify', device: 0, right: false } as Step,
      { op: 'tick', ms: 6 * 3_600_000 } as Step,
    ]).flat();
    const world = createWorld(35);
    await world.run([{ op: 'register', user: 0, kind: 'totp', confirmed: true }, { op: 'resetThrottle', device: 0 }, ...wrongEveryFewHours]);
    const side = await project(world);
    // Never locked for long: each guess waits out the (short) throttle delay.
    expect(await side.lockedDevices()).toEqual([]);
    const [flagged] = await side.unusualFailurePatterns();
    expect(flagged).toMatchObject({ userId: 'user-0', failures: 12 });
    expect(flagged!.days.length).toBeGreaterThanOrEqual(3);
    expect(await side.unusualFailurePatterns({ minFailures: 13 })).toEqual([]);
    expect(await side.unusualFailurePatterns({ minDistinctDays: 5 })).toEqual([]);
    // An admin reset does not end the streak; a success does.
    await world.run([{ op: 'resetThrottle', device: 0 }, { op: 'verify', device: 0, right: false }]);
    const after = await project(world);
    expect((await after.unusualFailurePatterns())[0]!.failures).toBe(13);
    await world.run([{ op: 'tick', ms: 60_000 }, { op: 'verify', device: 0, right: true }]);
    expect(await (await project(world)).unusualFailurePatterns()).toEqual([]);
  });

  it('a burst of failures on one day is not slow guessing', async () => {
    const world = createWorld(36);
    const burst: Step[] = Array.from({ length: 12 }, () => [{ op: 'match', user: 0, right: false } as Step, { op: 'tick', ms: 60_000 } as Step]).flat();
    await world.run([{ op: 'register', user: 0, kind: 'totp', confirmed: true }, ...burst]);
    const side = await project(world);
    // The match throttle turns the later guesses into refusals; the failures are counted.
    const [streak] = await side.unusualFailurePatterns({ minFailures: 1, minDistinctDays: 1 });
    expect(streak!.failures).toBeGreaterThanOrEqual(5);
    expect(streak!.days).toHaveLength(1);
    expect(await side.unusualFailurePatterns({ minFailures: streak!.failures })).toEqual([]);
    const dash = await side.dashboard({ from: START, to: world.clock.now() });
    expect(dash.hourly.reduce((n, h) => n + h.matchFailed + h.matchRefused, 0)).toBe(12);
  });
});

describe('time travel and the redacting fold', () => {
  it('deviceStateAt equals the engine deviceAt at any instant', async () => {
    await fc.assert(
      fc.asyncProperty(workloadArb, fc.array(fc.integer({ min: -60_000, max: 5 * 86_400_000 }), { minLength: 1, maxLength: 5 }), async ({ seed, steps }, offsets) => {
        const world = createWorld(seed);
        await world.run(steps);
        for (const d of world.devices)
          for (const instant of offsets.map((o) => START + o)) {
            const engine = await world.engine.deviceAt(d.deviceId, instant)();
            const mine = await deviceStateAt(world.events, d.deviceId, instant);
            expect(mine).toEqual(engine._tag === 'Right' ? fromEngine(engine.right) : null);
          }
      }),
      { numRuns: 15 },
    );
  });

  it('folding redacted events gives the view of folding the real ones, and keeps no secret', async () => {
    await fc.assert(
      fc.asyncProperty(workloadArb, async ({ seed, steps }) => {
        const world = createWorld(seed);
        await world.run(steps);
        for (const d of world.devices) {
          const events = (await world.events.readStream(`otpdevice-${d.deviceId}`)).events.map(
            (e) => right(decodeRecorded(e)).event as DeviceEvent,
          );
          const real = fold(events);
          let snapshot: DeviceSnapshot | null = null;
          for (const e of events) snapshot = evolveSnapshot(snapshot, e);
          expect(real.status).toBe('registered');
          expect(snapshot).toEqual(real.status === 'registered' ? toSnapshot(real) : null);
          const text = JSON.stringify(snapshot);
          expect(text).not.toMatch(/v\d+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+/); // no sealed value
          expect(text).not.toContain('redacted');
        }
      }),
      { numRuns: 20 },
    );
  });

  it('deviceStateAfter(version) is the device right after that event: deviceStateAt its instant, unless a later event shares it', async () => {
    await fc.assert(
      fc.asyncProperty(workloadArb, async ({ seed, steps }) => {
        const world = createWorld(seed);
        await world.run(steps);
        for (const d of world.devices) {
          const events = (await world.events.readStream(`otpdevice-${d.deviceId}`)).events.map((e) => right(decodeRecorded(e)));
          for (const [i, e] of events.entries()) {
            const after = await deviceStateAfter(world.events, d.deviceId, e.version);
            expect(after?.at).toBe(e.event.data.at);
            expect(after?.device.version).toBe(e.version);
            const next = events[i + 1];
            if (next === undefined || next.event.data.at > e.event.data.at)
              expect(after?.device).toEqual(await deviceStateAt(world.events, d.deviceId, e.event.data.at));
            else expect(after?.device.version).toBeLessThan((await deviceStateAt(world.events, d.deviceId, e.event.data.at))!.version);
          }
          expect(await deviceStateAfter(world.events, d.deviceId, events.length + 1)).toBeNull();
        }
      }),
      { numRuns: 15 },
    );
    await expect(deviceStateAfter(createWorld(1).events, 'x', 0)).rejects.toMatchObject({ code: 'invalid' });
  });

  it('accepts a persistent id, and says when the device did not exist yet', async () => {
    const world = createWorld(37);
    await world.run(scenario.slice(0, 3));
    const d = world.devices[0]!;
    expect(await deviceStateAt(world.events, `totp/${d.deviceId}`, START - 1)).toBeNull();
    expect((await deviceStateAt(world.events, `totp/${d.deviceId}`, START))?.confirmed).toBe(true);
    await expect(deviceStateAt(world.events, 'nope/123', START)).rejects.toMatchObject({ code: 'invalid' });
  });
});
