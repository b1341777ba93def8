/**
 * The user stream decider: which devices a user has, and the throttle of match(user, token)
 * — a failed match is counted once here, never on the devices that did not match.
 */
import { describe, expect, it } from 'vitest';
import type { UserEvent } from '../../domain/events.ts';
import { evolveUser, foldUser, initialUserState } from '../../domain/user.ts';
import { DEVICE_ID, T0 } from './fixtures.ts';
import { givenUser, policy } from './spec.ts';

const OTHER_ID = '7d1c0f7e-9b3a-4e55-8a2f-0c6b5d4e3f21';
const N = T0 + 10_000;
const attached = (deviceId = DEVICE_ID, at = T0): UserEvent => ({ type: 'DeviceAttached', data: { deviceId, kind: 'totp', at } });
const matchFailed = (at: number, devicesTried = 2): UserEvent => ({ type: 'MatchFailed', data: { devicesTried, at } });
const matchRefused = (failureCount: number, lockedUntil: number, at: number): UserEvent => ({
  type: 'MatchRefused',
  data: { reason: 'throttled', failureCount, lockedUntil, at },
});
/** n failed matches, the last at `last`, one second apart. */
const failedMatches = (n: number, last: number) => Array.from({ length: n }, (_, i) => matchFailed(last - (n - 1 - i) * 1000));
const check = { type: 'CheckMatchAllowed' } as const;

describe('AttachDevice', () => {
  it('attaches a device: DeviceAttached with its kind', () => {
    const s = givenUser([]).when({ type: 'AttachDevice', deviceId: DEVICE_ID, kind: 'sms' }, { now: N }).then([
      { type: 'DeviceAttached', data: { deviceId: DEVICE_ID, kind: 'sms', at: N } },
    ]);
    expect(s.devices).toEqual([{ deviceId: DEVICE_ID, kind: 'sms' }]);
  });

  it('is idempotent: attaching the same device again → nothing happened', () => {
    givenUser([attached()]).when({ type: 'AttachDevice', deviceId: DEVICE_ID, kind: 'totp' }, { now: N }).thenNothingHappened();
  });

  it('keeps devices in the order they were attached', () => {
    const s = givenUser([attached()]).when({ type: 'AttachDevice', deviceId: OTHER_ID, kind: 'static' }, { now: N }).then([
      { type: 'DeviceAttached', data: { deviceId: OTHER_ID, kind: 'static', at: N } },
    ]);
    expect(s.devices).toEqual([
      { deviceId: DEVICE_ID, kind: 'totp' },
      { deviceId: OTHER_ID, kind: 'static' },
    ]);
  });

  it('the reducer ignores a duplicate DeviceAttached (delivery at least once)', () => {
    expect(foldUser([attached(), attached(DEVICE_ID, T0 + 1)]).devices).toEqual([{ deviceId: DEVICE_ID, kind: 'totp' }]);
  });
});

describe('CheckMatchAllowed', () => {
  it('no failures → allowed (nothing happened)', () => {
    givenUser([attached()]).when(check, { now: N }).thenNothingHappened();
  });

  it.each([
    [1, 1000],
    [2, 2000],
    [3, 4000],
    [4, 8000],
  ])('after %i failed match(es): refused 1 ms before lastFailureAt + %i ms with MatchRefused', (n, delay) => {
    const events = [attached(), ...failedMatches(n, N)];
    const g = givenUser(events);
    const s = g.when(check, { now: N + delay - 1 }).then([matchRefused(n, N + delay, N + delay - 1)]);
    expect(s).toEqual(g.state());
  });

  it.each([
    [1, 1000],
    [4, 8000],
  ])('after %i failed match(es): allowed at exactly lastFailureAt + %i ms', (n, delay) => {
    givenUser([attached(), ...failedMatches(n, N)]).when(check, { now: N + delay }).thenNothingHappened();
  });

  it('the match throttle has its own policy: device factors do not apply, matchThrottle does', () => {
    const g = givenUser([attached(), ...failedMatches(2, N)]);
    g.when(check, { now: N + 1, policy: policy({ throttle: { totp: { factor: 0 } } }) }).then([matchRefused(2, N + 2000, N + 1)]);
    g.when(check, { now: N + 1, policy: policy({ matchThrottle: { factor: 0 } }) }).thenNothingHappened();
    g.when(check, { now: N + 2000, policy: policy({ matchThrottle: { factor: 3 } }) }).then([matchRefused(2, N + 6000, N + 2000)]);
  });

  it('the ceiling applies to the match throttle too', () => {
    givenUser([attached(), ...failedMatches(12, N)])
      .when(check, { now: N + 1, policy: policy({ matchThrottle: { maxDelaySeconds: 60 } }) })
      .then([matchRefused(12, N + 60_000, N + 1)]);
  });

  it('expired failures (failureExpirySeconds) no longer refuse; before the expiry they do', () => {
    const g = givenUser([attached(), ...failedMatches(10, N)]); // 512 s lock
    const p = policy({ matchThrottle: { failureExpirySeconds: 300 } });
    g.when(check, { now: N + 299_999, policy: p }).then([matchRefused(10, N + 512_000, N + 299_999)]);
    g.when(check, { now: N + 300_000, policy: p }).thenNothingHappened();
  });
});

describe('RecordMatchFailure', () => {
  it('counts once, however many devices were tried', () => {
    const s = givenUser([attached(), attached(OTHER_ID)])
      .when({ type: 'RecordMatchFailure', devicesTried: 2 }, { now: N })
      .then([matchFailed(N, 2)]);
    expect(s.throttle).toEqual({ failureCount: 1, lastFailureAt: N });
  });

  it('adds to earlier failures', () => {
    const s = givenUser([attached(), ...failedMatches(3, N)])
      .when({ type: 'RecordMatchFailure', devicesTried: 1 }, { now: N + 5000 })
      .then([matchFailed(N + 5000, 1)]);
    expect(s.throttle).toEqual({ failureCount: 4, lastFailureAt: N + 5000 });
  });

  it('after the failure expiry: first ThrottleReset (failures expired), then a fresh count of 1', () => {
    const s = givenUser([attached(), ...failedMatches(5, N)])
      .when({ type: 'RecordMatchFailure', devicesTried: 1 }, { now: N + 60_000, policy: policy({ matchThrottle: { failureExpirySeconds: 60 } }) })
      .then([{ type: 'ThrottleReset', data: { reason: 'failures expired', at: N + 60_000 } }, matchFailed(N + 60_000, 1)]);
    expect(s.throttle).toEqual({ failureCount: 1, lastFailureAt: N + 60_000 });
  });
});

describe('RecordMatchSuccess', () => {
  it('with earlier failures: MatchSucceeded, and the count resets', () => {
    const s = givenUser([attached(), ...failedMatches(2, N)])
      .when({ type: 'RecordMatchSuccess', deviceId: DEVICE_ID }, { now: N + 3000 })
      .then([{ type: 'MatchSucceeded', data: { deviceId: DEVICE_ID, at: N + 3000 } }]);
    expect(s.throttle).toEqual({ failureCount: 0, lastFailureAt: null });
  });

  it('without failures: nothing happened (no event per successful login)', () => {
    givenUser([attached()]).when({ type: 'RecordMatchSuccess', deviceId: DEVICE_ID }, { now: N }).thenNothingHappened();
  });

  it('after a reset: nothing happened', () => {
    givenUser([attached(), ...failedMatches(2, N), { type: 'ThrottleReset', data: { reason: 'admin', at: N + 1 } }])
      .when({ type: 'RecordMatchSuccess', deviceId: DEVICE_ID }, { now: N + 2 })
      .thenNothingHappened();
  });
});

describe('ResetUserThrottle', () => {
  it('records ThrottleReset with the reason, and the lock is lifted', () => {
    const events = [attached(), ...failedMatches(6, N)];
    const s = givenUser(events)
      .when({ type: 'ResetUserThrottle', reason: 'identity verified by phone' }, { now: N + 1 })
      .then([{ type: 'ThrottleReset', data: { reason: 'identity verified by phone', at: N + 1 } }]);
    expect(s.throttle).toEqual({ failureCount: 0, lastFailureAt: null });
    givenUser([...events, { type: 'ThrottleReset', data: { reason: 'x', at: N + 1 } }]).when(check, { now: N + 2 }).thenNothingHappened();
  });

  it('a user without devices → device-not-found', () => {
    givenUser([]).when({ type: 'ResetUserThrottle', reason: 'x' }, { now: N }).thenFails('device-not-found');
  });
});

describe('user reducer', () => {
  it('MatchRefused changes nothing; MatchFailed counts; MatchSucceeded and ThrottleReset clear', () => {
    const s1 = evolveUser(initialUserState(), matchFailed(N));
    expect(s1.throttle).toEqual({ failureCount: 1, lastFailureAt: N });
    expect(evolveUser(s1, matchRefused(1, N + 1000, N + 1))).toEqual(s1);
    expect(evolveUser(s1, { type: 'MatchSucceeded', data: { deviceId: DEVICE_ID, at: N + 2 } }).throttle).toEqual({ failureCount: 0, lastFailureAt: null });
    expect(evolveUser(s1, { type: 'ThrottleReset', data: { reason: 'x', at: N + 2 } }).throttle).toEqual({ failureCount: 0, lastFailureAt: null });
  });
});
