/**
 * Throttling, for every device kind, as django-otp's ThrottlingMixin: after n consecutive
 * failures the next attempt is refused while now − lastFailureAt < factor·2^(n−1) s.
 * Plus the pure reducers in domain/policies/throttle.ts and cooldown.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Kind } from '../../domain/codecs.ts';
import type { DeviceEvent, FailureReason, TokenMatch } from '../../domain/events.ts';
import { timeStep } from '../../domain/kinds/totp.ts';
import { checkCooldown, cooldownReleased, cooldownStarted, initialCooldown } from '../../domain/policies/cooldown.ts';
import type { ThrottlePolicy } from '../../domain/policies/policy.ts';
import {
  checkThrottle,
  failuresExpired,
  initialThrottle,
  throttleCleared,
  throttleDelayMs,
  throttleFailed,
  throttleStatus,
} from '../../domain/policies/throttle.ts';
import type { Digester } from '../../domain/ports.ts';
import {
  RFC4226,
  RFC_KEY,
  T0,
  challenge,
  configFor,
  digest,
  failed,
  failures,
  issued,
  otherCode,
  refused,
  registered,
  totpCode,
  verified,
} from './fixtures.ts';
import { given, policy } from './spec.ts';

// ---- one fixture per kind ----------------------------------------------------------------------

interface KindCase {
  readonly kind: Kind;
  /** Registration (and codes or a pending challenge) at T0. */
  readonly setup: readonly DeviceEvent[];
  readonly keys: { secret?: Uint8Array; digest?: Digester };
  readonly right: (now: number) => string;
  readonly wrong: (now: number) => string;
  readonly match: (now: number) => TokenMatch;
  /** Why a wrong code fails once the right one was used (a side-channel code is consumed). */
  readonly afterSuccess: FailureReason;
}

const SIDE_CODE = '428913';
const BACKUP = ['abcdefgh', 'ijklmnop'];

const kinds: readonly KindCase[] = [
  {
    kind: 'totp',
    setup: [registered(configFor('totp'))],
    keys: { secret: RFC_KEY },
    right: (now) => totpCode(now),
    wrong: (now) => otherCode([-2, -1, 0, 1, 2].map((o) => totpCode(now, o))),
    match: (now) => ({ kind: 'totp', step: timeStep(now, 30, 0), drift: 0 }),
    afterSuccess: 'invalid',
  },
  {
    kind: 'hotp',
    setup: [registered(configFor('hotp'))],
    keys: { secret: RFC_KEY },
    right: () => RFC4226[0]!,
    wrong: () => otherCode(RFC4226.slice(0, 7)),
    match: () => ({ kind: 'hotp', counter: 0 }),
    afterSuccess: 'invalid',
  },
  {
    kind: 'static',
    setup: [registered(configFor('static')), issued(BACKUP, T0)],
    keys: { digest },
    right: () => BACKUP[0]!,
    wrong: () => 'zzzzzzzz',
    match: () => ({ kind: 'static', digest: digest(BACKUP[0]!) }),
    afterSuccess: 'invalid',
  },
  ...(['email', 'sms'] as const).map(
    (kind): KindCase => ({
      kind,
      // A long validity, so the code is still valid whatever lock a test builds.
      setup: [registered(configFor(kind)), challenge(SIDE_CODE, T0, T0 + 30 * 86_400_000)],
      keys: { digest },
      right: () => SIDE_CODE,
      wrong: () => otherCode([SIDE_CODE]),
      match: () => ({ kind: 'sidechannel' }),
      afterSuccess: 'no-challenge',
    }),
  ),
];

/** The last failure: 100 s after T0, i.e. 10 s into a TOTP step (so +8 s stays in the step). */
const F = T0 + 100_000;

describe.each(kinds)('throttling of a $kind device', (k) => {
  const verify = (token: unknown) => ({ type: 'VerifyToken', token }) as const;
  const ctx = (now: number, overrides: Parameters<typeof policy>[0] = {}) => ({ now, ...k.keys, policy: policy(overrides) });
  const withFactor = (tp: Partial<ThrottlePolicy>) => ({ throttle: { [k.kind]: tp } });

  it.each([
    [1, 1000],
    [2, 2000],
    [3, 4000],
    [4, 8000],
  ])('after %i failure(s) an attempt 1 ms before lastFailureAt + %i ms is refused', (n, delay) => {
    given([...k.setup, ...failures(n, F)])
      .when(verify(k.wrong(F + delay - 1)), ctx(F + delay - 1))
      .then([refused(n, F + delay, F + delay - 1)]);
  });

  it.each([
    [1, 1000],
    [2, 2000],
    [3, 4000],
    [4, 8000],
  ])('after %i failure(s) an attempt at exactly lastFailureAt + %i ms is allowed (and judged)', (n, delay) => {
    const state = given([...k.setup, ...failures(n, F)])
      .when(verify(k.wrong(F + delay)), ctx(F + delay))
      .then([failed(F + delay)]);
    expect(state.status === 'registered' && state.throttle).toEqual({ failureCount: n + 1, lastFailureAt: F + delay });
  });

  it('an attempt in the same millisecond as the failure is refused, lockedUntil one second later', () => {
    given([...k.setup, failed(F)]).when(verify(k.right(F)), ctx(F)).then([refused(1, F + 1000, F)]);
  });

  it('a refusal emits only VerificationRefused and changes no state', () => {
    const g = given([...k.setup, ...failures(2, F)]);
    const after = g.when(verify(k.right(F + 1500)), ctx(F + 1500)).then([refused(2, F + 2000, F + 1500)]);
    expect(after).toEqual(g.state());
  });

  it('a valid code is not consumed while refused: it still works once the lock ends', () => {
    const history = [...k.setup, ...failures(2, F), refused(2, F + 2000, F + 1999)];
    given([...k.setup, ...failures(2, F)]).when(verify(k.right(F + 1999)), ctx(F + 1999)).then([refused(2, F + 2000, F + 1999)]);
    given(history).when(verify(k.right(F + 2000)), ctx(F + 2000)).then([verified(k.match(F + 2000), F + 2000)]);
  });

  it('a success resets the failure count: the next failure is judged at once and counts 1', () => {
    const s = given([...k.setup, ...failures(3, F)])
      .when(verify(k.right(F + 4000)), ctx(F + 4000))
      .then([verified(k.match(F + 4000), F + 4000)]);
    expect(s.status === 'registered' && s.throttle).toEqual({ failureCount: 0, lastFailureAt: null });
    const s2 = given([...k.setup, ...failures(3, F), verified(k.match(F + 4000), F + 4000)])
      .when(verify(k.wrong(F + 4000)), ctx(F + 4000))
      .then([failed(F + 4000, k.afterSuccess)]);
    expect(s2.status === 'registered' && s2.throttle).toEqual({ failureCount: 1, lastFailureAt: F + 4000 });
  });

  it('an admin ResetThrottle records ThrottleReset with its reason and lifts the lock', () => {
    const s = given([...k.setup, ...failures(4, F)])
      .when({ type: 'ResetThrottle', reason: 'support ticket 1234: user locked out' }, ctx(F + 1))
      .then([{ type: 'ThrottleReset', data: { reason: 'support ticket 1234: user locked out', at: F + 1 } }]);
    expect(s.status === 'registered' && s.throttle).toEqual({ failureCount: 0, lastFailureAt: null });
    given([...k.setup, ...failures(4, F), { type: 'ThrottleReset', data: { reason: 'support', at: F + 1 } }])
      .when(verify(k.wrong(F + 2)), ctx(F + 2))
      .then([failed(F + 2)]);
  });

  it('factor 0 disables refusal, but failures are still counted', () => {
    const s = given([...k.setup, ...failures(5, F)])
      .when(verify(k.wrong(F)), ctx(F, withFactor({ factor: 0 })))
      .then([failed(F)]);
    expect(s.status === 'registered' && s.throttle).toEqual({ failureCount: 6, lastFailureAt: F });
  });

  it('factor 0.5 halves the delay: 3 failures lock for 2 s', () => {
    const p = withFactor({ factor: 0.5 });
    given([...k.setup, ...failures(3, F)]).when(verify(k.wrong(F + 1999)), ctx(F + 1999, p)).then([refused(3, F + 2000, F + 1999)]);
    given([...k.setup, ...failures(3, F)]).when(verify(k.wrong(F + 2000)), ctx(F + 2000, p)).then([failed(F + 2000)]);
  });

  it('factor 3 triples the delay: 2 failures lock for 6 s', () => {
    const p = withFactor({ factor: 3 });
    given([...k.setup, ...failures(2, F)]).when(verify(k.wrong(F + 5999)), ctx(F + 5999, p)).then([refused(2, F + 6000, F + 5999)]);
    given([...k.setup, ...failures(2, F)]).when(verify(k.wrong(F + 6000)), ctx(F + 6000, p)).then([failed(F + 6000)]);
  });

  it('a changed factor re-times an existing lock (the policy is read at decision time)', () => {
    const g = given([...k.setup, ...failures(3, F)]); // factor 1: locked until F + 4 s
    g.when(verify(k.wrong(F + 3000)), ctx(F + 3000)).then([refused(3, F + 4000, F + 3000)]);
    g.when(verify(k.wrong(F + 3000)), ctx(F + 3000, withFactor({ factor: 3 }))).then([refused(3, F + 12_000, F + 3000)]);
    g.when(verify(k.wrong(F + 3000)), ctx(F + 3000, withFactor({ factor: 0.5 }))).then([failed(F + 3000)]);
  });

  it('the optional ceiling maxDelaySeconds caps the delay (10 failures: 512 s capped at 30 s)', () => {
    const g = given([...k.setup, ...failures(10, F)]);
    const cap = withFactor({ maxDelaySeconds: 30 });
    g.when(verify(k.wrong(F + 29_999)), ctx(F + 29_999, cap)).then([refused(10, F + 30_000, F + 29_999)]);
    g.when(verify(k.wrong(F + 30_000)), ctx(F + 30_000, cap)).then([failed(F + 30_000)]);
    // Without the ceiling (the default, django-otp parity) the full 2^9 s apply.
    g.when(verify(k.wrong(F + 30_000)), ctx(F + 30_000)).then([refused(10, F + 512_000, F + 30_000)]);
  });

  it('no ceiling by default: 20 failures lock for 2^19 s (about six days), to the millisecond', () => {
    const g = given([...k.setup, ...failures(20, F)]);
    const lock = 2 ** 19 * 1000;
    g.when(verify(k.wrong(F + lock - 1)), ctx(F + lock - 1)).then([refused(20, F + lock, F + lock - 1)]);
    g.when(verify(k.wrong(F + lock)), ctx(F + lock)).then([failed(F + lock)]);
  });

  it('failureExpirySeconds: an attempt after the expiry first records ThrottleReset, then is judged fresh', () => {
    const expiry = withFactor({ failureExpirySeconds: 60 });
    const g = given([...k.setup, ...failures(8, F)]); // 8 failures: 128 s lock
    const reset: DeviceEvent = { type: 'ThrottleReset', data: { reason: 'failures expired', at: F + 60_000 } };
    const s = g.when(verify(k.wrong(F + 60_000)), ctx(F + 60_000, expiry)).then([reset, failed(F + 60_000)]);
    expect(s.status === 'registered' && s.throttle).toEqual({ failureCount: 1, lastFailureAt: F + 60_000 });
    g.when(verify(k.right(F + 60_000)), ctx(F + 60_000, expiry)).then([reset, verified(k.match(F + 60_000), F + 60_000)]);
  });

  it('failureExpirySeconds: 1 ms before the expiry the lock still applies and nothing is reset', () => {
    given([...k.setup, ...failures(8, F)])
      .when(verify(k.right(F + 59_999)), ctx(F + 59_999, withFactor({ failureExpirySeconds: 60 })))
      .then([refused(8, F + 128_000, F + 59_999)]);
  });

  it('failureExpirySeconds: failures younger than the expiry keep counting (no reset recorded)', () => {
    const s = given([...k.setup, failed(F)])
      .when(verify(k.wrong(F + 5000)), ctx(F + 5000, withFactor({ failureExpirySeconds: 60 })))
      .then([failed(F + 5000)]);
    expect(s.status === 'registered' && s.throttle).toEqual({ failureCount: 2, lastFailureAt: F + 5000 });
  });

  it('the throttle of one kind does not read another kind’s policy', () => {
    const other: Kind = k.kind === 'totp' ? 'hotp' : 'totp';
    given([...k.setup, failed(F)])
      .when(verify(k.wrong(F + 10)), ctx(F + 10, { throttle: { [other]: { factor: 0 } } }))
      .then([refused(1, F + 1000, F + 10)]);
  });
});

// ---- the pure reducers -------------------------------------------------------------------------

const tp = (o: Partial<ThrottlePolicy> = {}): ThrottlePolicy => ({ factor: 1, maxDelaySeconds: null, failureExpirySeconds: null, ...o });

describe('throttle reducers (domain/policies/throttle.ts)', () => {
  it('throttleFailed counts one failure and stamps it; throttleCleared returns to the initial state', () => {
    expect(initialThrottle).toEqual({ failureCount: 0, lastFailureAt: null });
    const one = throttleFailed(initialThrottle, F);
    expect(one).toEqual({ failureCount: 1, lastFailureAt: F });
    expect(throttleFailed(one, F + 5)).toEqual({ failureCount: 2, lastFailureAt: F + 5 });
    expect(throttleCleared()).toEqual(initialThrottle);
  });

  it('throttleDelayMs is factor·2^(n−1) s: 1, 2, 4, 8 s at factor 1', () => {
    expect([1, 2, 3, 4].map((n) => throttleDelayMs(n, tp()))).toEqual([1000, 2000, 4000, 8000]);
  });

  it('throttleDelayMs is 0 with no failures, with factor 0, or with a negative count', () => {
    expect(throttleDelayMs(0, tp())).toBe(0);
    expect(throttleDelayMs(7, tp({ factor: 0 }))).toBe(0);
    expect(throttleDelayMs(-1, tp())).toBe(0);
  });

  it('throttleDelayMs scales with the factor and stops at the ceiling', () => {
    expect(throttleDelayMs(1, tp({ factor: 0.5 }))).toBe(500);
    expect(throttleDelayMs(3, tp({ factor: 3 }))).toBe(12_000);
    expect(throttleDelayMs(10, tp({ maxDelaySeconds: 30 }))).toBe(30_000);
    expect(throttleDelayMs(4, tp({ maxDelaySeconds: 30 }))).toBe(8000);
  });

  it('checkThrottle: no failures → allowed; a count without a timestamp (import) → allowed, as django-otp', () => {
    expect(checkThrottle(initialThrottle, F, tp())).toEqual({ allowed: true });
    expect(checkThrottle({ failureCount: 3, lastFailureAt: null }, F, tp())).toEqual({ allowed: true });
  });

  it('checkThrottle: refused strictly before lastFailureAt + delay, allowed at it', () => {
    const s = { failureCount: 3, lastFailureAt: F };
    expect(checkThrottle(s, F + 3999, tp())).toEqual({ allowed: false, failureCount: 3, lockedUntil: F + 4000 });
    expect(checkThrottle(s, F + 4000, tp())).toEqual({ allowed: true });
  });

  it('checkThrottle: factor 0 never refuses', () => {
    expect(checkThrottle({ failureCount: 50, lastFailureAt: F }, F, tp({ factor: 0 }))).toEqual({ allowed: true });
  });

  it('checkThrottle: an astronomically long lock is reported as the last representable instant', () => {
    const c = checkThrottle({ failureCount: 2000, lastFailureAt: F }, F + 1, tp());
    expect(c).toEqual({ allowed: false, failureCount: 2000, lockedUntil: 8.64e15 });
  });

  it('checkThrottle: lockedUntil is the first allowed millisecond, for any factor given to the millisecond', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }), // factor in thousandths of a second
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 0, max: 4_000_000_000_000 }),
        (milli, n, last) => {
          const p = tp({ factor: milli / 1000 });
          const s = { failureCount: n, lastFailureAt: last };
          const c = checkThrottle(s, last, p);
          if (c.allowed) return false;
          expect(c.lockedUntil).toBe(last + milli * 2 ** (n - 1));
          expect(checkThrottle(s, c.lockedUntil - 1, p).allowed).toBe(false);
          expect(checkThrottle(s, c.lockedUntil, p)).toEqual({ allowed: true });
          return true;
        },
      ),
      { seed: 20_260_101, numRuns: 2000 },
    );
  });

  it('failuresExpired: only with an expiry set, failures recorded, and the last one old enough', () => {
    const s = { failureCount: 2, lastFailureAt: F };
    expect(failuresExpired(s, F + 10 ** 12, tp())).toBe(false);
    expect(failuresExpired(s, F + 59_999, tp({ failureExpirySeconds: 60 }))).toBe(false);
    expect(failuresExpired(s, F + 60_000, tp({ failureExpirySeconds: 60 }))).toBe(true);
    expect(failuresExpired(initialThrottle, F + 10 ** 9, tp({ failureExpirySeconds: 60 }))).toBe(false);
  });

  it('failuresExpired: an expiry given to the millisecond ends on that millisecond (4.07 s → 4070 ms)', () => {
    const s = { failureCount: 1, lastFailureAt: F };
    expect(failuresExpired(s, F + 4069, tp({ failureExpirySeconds: 4.07 }))).toBe(false);
    expect(failuresExpired(s, F + 4070, tp({ failureExpirySeconds: 4.07 }))).toBe(true);
  });

  it('throttleStatus: the lock in force, or none; expired failures read as zero', () => {
    const s = { failureCount: 3, lastFailureAt: F };
    expect(throttleStatus(s, F + 1000, tp())).toEqual({ failureCount: 3, lockedUntil: F + 4000 });
    expect(throttleStatus(s, F + 4000, tp())).toEqual({ failureCount: 3, lockedUntil: null });
    expect(throttleStatus(s, F + 1000, tp({ factor: 0 }))).toEqual({ failureCount: 3, lockedUntil: null });
    expect(throttleStatus(s, F + 60_000, tp({ failureExpirySeconds: 60 }))).toEqual({ failureCount: 0, lockedUntil: null });
    expect(throttleStatus(initialThrottle, F, tp())).toEqual({ failureCount: 0, lockedUntil: null });
  });
});

describe('cooldown reducers (domain/policies/cooldown.ts)', () => {
  const G = T0 + 5000;

  it('cooldownStarted stamps the generation; cooldownReleased returns to the initial state', () => {
    expect(initialCooldown).toEqual({ lastGeneratedAt: null });
    expect(cooldownStarted(G)).toEqual({ lastGeneratedAt: G });
    expect(cooldownReleased()).toEqual(initialCooldown);
  });

  it('checkCooldown: nothing generated yet → allowed', () => {
    expect(checkCooldown(initialCooldown, G, 60)).toEqual({ allowed: true });
  });

  it('checkCooldown: strict > as django-otp: refused at exactly lastGeneratedAt + 60 s, allowed 1 ms later', () => {
    expect(checkCooldown(cooldownStarted(G), G + 59_999, 60)).toEqual({ allowed: false, retryAt: G + 60_001 });
    expect(checkCooldown(cooldownStarted(G), G + 60_000, 60)).toEqual({ allowed: false, retryAt: G + 60_001 });
    expect(checkCooldown(cooldownStarted(G), G + 60_001, 60)).toEqual({ allowed: true });
  });

  it('checkCooldown: cooldown 0 still refuses a second generation in the same millisecond (django-otp’s >)', () => {
    expect(checkCooldown(cooldownStarted(G), G, 0)).toEqual({ allowed: false, retryAt: G + 1 });
    expect(checkCooldown(cooldownStarted(G), G + 1, 0)).toEqual({ allowed: true });
  });

  it('checkCooldown: retryAt is the first allowed millisecond, for any cooldown given to the millisecond', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3_600_000 }), fc.integer({ min: 0, max: 4_000_000_000_000 }), (milli, last) => {
        const c = checkCooldown(cooldownStarted(last), last, milli / 1000);
        if (c.allowed) return false;
        expect(c.retryAt).toBe(last + milli + 1);
        expect(checkCooldown(cooldownStarted(last), c.retryAt - 1, milli / 1000).allowed).toBe(false);
        expect(checkCooldown(cooldownStarted(last), c.retryAt, milli / 1000)).toEqual({ allowed: true });
        return true;
      }),
      { seed: 20_260_101, numRuns: 2000 },
    );
  });
});
