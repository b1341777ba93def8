/**
 * Matching a code against all of a user's devices (django-otp's match_token): the user
 * stream's match throttle checked first, then each confirmed device tried; the device the
 * code belongs to verifies it through its own stream, and the user stream records the
 * success (after failures) or the failure. Crosses the user and device streams, with its own
 * bounded retry on a conflict of the user stream.
 */
import { isLeft } from 'fp-ts/lib/Either.js';
import type { Kind } from '../domain/codecs.ts';
import { decide, type DecideContext } from '../domain/decide.ts';
import type { DeviceState } from '../domain/device.ts';
import type { DeviceEvent, UserEvent } from '../domain/events.ts';
import { persistentId, userStream } from '../domain/ids.ts';
import { decideUser, type UserState } from '../domain/user.ts';
import type { Meta } from './command-metadata.ts';
import type { EngineContext } from './context.ts';
import type { MatchOutcome, Options } from './engine-api.ts';
import { err, Failure, mapDomain, must, run } from './errors.ts';
import { userStreamType } from './factor-streams.ts';
import type { Loaded } from './state-cache.ts';
import { verifyOutcome } from './verify.ts';

const kindOfAttached = (s: UserState, deviceId: string): Kind => s.devices.find((d) => d.deviceId === deviceId)?.kind ?? 'totp';

export const matchWorkflow = (ctx: EngineContext) => {
  const { policy, meta, streams, secrets, handler } = ctx;
  const maxRetries = handler.maxRetries;

  /** Appends user events decided outside the command handler; false on a conflict. */
  const appendUser = async (userId: string, user: Loaded<UserState, UserEvent>, events: readonly UserEvent[], m: Meta): Promise<boolean> => {
    const { result } = await handler.append(userStream(userId), userStreamType, user, events, m);
    return result.ok;
  };

  return (userId: string, token: unknown, options?: Options) =>
    run(async (): Promise<MatchOutcome> => {
      const m = must(meta(options));
      if (typeof userId !== 'string' || userId.length === 0 || userId.length > 128)
        throw new Failure(err('invalid-command', 'userId must be 1–128 characters long'));
      for (let attempt = 0; attempt <= maxRetries; attempt++) {
        const user = await streams.loadUser(userId);
        const previous = user.commands.eventsOf(m.commandId, user.version);
        const earlier = previous.find((e) => e.type === 'MatchSucceeded' || e.type === 'MatchFailed' || e.type === 'MatchRefused');
        if (earlier?.type === 'MatchSucceeded')
          return { ok: true, deviceId: earlier.data.deviceId, persistentId: persistentId(kindOfAttached(user.state, earlier.data.deviceId), earlier.data.deviceId) };
        if (earlier?.type === 'MatchFailed') return { ok: false, reason: 'no-match' };
        if (earlier?.type === 'MatchRefused')
          return { ok: false, reason: 'throttled', retryAt: earlier.data.lockedUntil, failureCount: earlier.data.failureCount };
        if (user.state.devices.length === 0) throw new Failure(err('device-not-found', `user ${userId.slice(0, 128)} has no devices`));

        // A retried command whose code was already accepted by a device reports that success
        // again: a success leaves no trace on the user stream when there were no failures, and
        // trying the consumed code again would count it as a failed match.
        const loadedDevices: { deviceId: string; loaded: Loaded<DeviceState, DeviceEvent>; deviceMeta: Meta; tried: boolean }[] = [];
        for (const { deviceId } of user.state.devices) {
          const loaded = await streams.loadDevice(deviceId);
          const deviceMeta: Meta = { ...m, commandId: `${m.commandId}:device:${deviceId}` };
          const prior = loaded.commands.eventsOf(deviceMeta.commandId, loaded.version);
          if (prior.some((e) => e.type === 'TokenVerified') && loaded.state.status === 'registered')
            return { ok: true, deviceId, persistentId: persistentId(loaded.state.k.kind, deviceId) };
          loadedDevices.push({ deviceId, loaded, deviceMeta, tried: prior.length > 0 });
        }

        const check = must(mapDomain(decideUser({ type: 'CheckMatchAllowed' }, user.state, { now: m.now, policy })));
        if (check.length > 0) {
          const r = await appendUser(userId, user, check, m);
          if (!r) continue;
          const refused = check.find((e) => e.type === 'MatchRefused');
          return refused?.type === 'MatchRefused'
            ? { ok: false, reason: 'throttled', retryAt: refused.data.lockedUntil, failureCount: refused.data.failureCount }
            : { ok: false, reason: 'throttled' };
        }

        let tried = 0;
        for (const { deviceId, loaded, deviceMeta, tried: triedBefore } of loadedDevices) {
          const d = loaded.state;
          if (d.status === 'empty' || d.removed || !d.confirmed) continue;
          tried++;
          if (triedBefore) continue; // this command already lost a race for the code on this device
          // A trial decision: is this the device the code belongs to? Nothing is written for
          // the devices that do not match, so their throttles are left alone.
          const trialContext: DecideContext = { now: m.now, policy, ...(await secrets.keysFor(d)) };
          const trial = decide({ type: 'VerifyToken', token }, d, trialContext);
          if (isLeft(trial) || !trial.right.some((e) => e.type === 'TokenVerified')) continue;
          const done = await streams.onDevice(deviceId, deviceMeta, { type: 'VerifyToken', token }, secrets.keysFor);
          const outcome = verifyOutcome(deviceId, done.state, done.events);
          if (!outcome.ok) continue; // lost a race for this code: it counts as not matching
          const success = must(mapDomain(decideUser({ type: 'RecordMatchSuccess', deviceId }, user.state, { now: m.now, policy })));
          if (success.length > 0) await streams.onUser(userId, m, { type: 'RecordMatchSuccess', deviceId });
          return { ok: true, deviceId, persistentId: persistentId(d.k.kind, deviceId) };
        }
        const failed = must(mapDomain(decideUser({ type: 'RecordMatchFailure', devicesTried: tried }, user.state, { now: m.now, policy })));
        if (await appendUser(userId, user, failed, m)) return { ok: false, reason: 'no-match' };
      }
      throw new Failure(err('conflict', `the user stream of ${userId.slice(0, 128)} kept changing; gave up`));
    });
};
