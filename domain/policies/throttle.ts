/**
 * Throttling with exponential back-off, as django-otp's ThrottlingMixin: after n consecutive
 * failures, the next attempt is refused while now − lastFailureAt < factor·2^(n−1) seconds.
 * The boundary itself is allowed. A success or an admin reset clears the count.
 *
 * The reducer is the one place the failure count is derived from events; the device
 * aggregate, the user stream and every projection use it.
 */
import type { ThrottlePolicy } from './policy.ts';

export interface ThrottleState {
  readonly failureCount: number;
  readonly lastFailureAt: number | null;
}

export const initialThrottle: ThrottleState = { failureCount: 0, lastFailureAt: null };

export const throttleFailed = (s: ThrottleState, at: number): ThrottleState => ({
  failureCount: s.failureCount + 1,
  lastFailureAt: at,
});

export const throttleCleared = (): ThrottleState => initialThrottle;

const MAX_INSTANT = 8.64e15;

/** The wait after `failureCount` consecutive failures, in milliseconds (0 when disabled). */
export const throttleDelayMs = (failureCount: number, policy: ThrottlePolicy): number => {
  if (policy.factor <= 0 || failureCount <= 0) return 0;
  const seconds = policy.factor * 2 ** (failureCount - 1);
  const capped = policy.maxDelaySeconds === null ? seconds : Math.min(seconds, policy.maxDelaySeconds);
  // Rounded to whole microseconds (django-otp's resolution): 4.07 s is 4070 ms, not 4070.0000000000005.
  return Math.round(capped * 1e6) / 1e3;
};

export type ThrottleCheck =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly failureCount: number; readonly lockedUntil: number };

/** Whether an attempt at `now` is allowed; when not, how many failures and until when. */
export const checkThrottle = (s: ThrottleState, now: number, policy: ThrottlePolicy): ThrottleCheck => {
  if (s.failureCount === 0 || s.lastFailureAt === null) return { allowed: true };
  const delay = throttleDelayMs(s.failureCount, policy);
  if (delay === 0 || now - s.lastFailureAt >= delay) return { allowed: true };
  // The first whole millisecond at which an attempt is allowed again.
  const lockedUntil = Math.min(Math.ceil(s.lastFailureAt + delay), MAX_INSTANT);
  return { allowed: false, failureCount: s.failureCount, lockedUntil };
};

/** True when failure expiry is on and the last failure is old enough to be forgotten. */
export const failuresExpired = (s: ThrottleState, now: number, policy: ThrottlePolicy): boolean =>
  policy.failureExpirySeconds !== null &&
  s.failureCount > 0 &&
  s.lastFailureAt !== null &&
  now - s.lastFailureAt >= Math.round(policy.failureExpirySeconds * 1e6) / 1e3;

/** The lock in force at `now`, if any: a read-model friendly view of checkThrottle. */
export const throttleStatus = (
  s: ThrottleState,
  now: number,
  policy: ThrottlePolicy,
): { readonly failureCount: number; readonly lockedUntil: number | null } => {
  const expired = failuresExpired(s, now, policy);
  const check = expired ? ({ allowed: true } as const) : checkThrottle(s, now, policy);
  return {
    failureCount: expired ? 0 : s.failureCount,
    lockedUntil: check.allowed ? null : check.lockedUntil,
  };
};
