/**
 * Slow guessing: failures spread over days, with no success in between. django-otp's
 * throttling forgets nothing but only ever looks at consecutive failures of one device and
 * the time since the last one, so one guess a day against several devices, or a guess now
 * and then that an admin reset clears, never shows as a lock. The streak counts every failed
 * verification of any of the user's devices and every failed match, and only a success
 * (TokenVerified on any of the user's devices, or MatchSucceeded) ends it. Throttle resets
 * do not.
 */
import type { FailureStreak } from './read-store.ts';

export const DAY_MS = 86_400_000;

/**
 * Defaults of the "unusual failure pattern" query: at least 10 failures spread over at least
 * 3 distinct UTC days. A user who mistypes now and then succeeds in between and never gets
 * there; an attacker trying a few codes a day does within a week or so.
 */
export const DEFAULT_MIN_FAILURES = 10;
export const DEFAULT_MIN_DISTINCT_DAYS = 3;

export const dayOf = (at: number): number => Math.floor(at / DAY_MS);

export const streakAfterFailure = (s: FailureStreak | null, userId: string, at: number): FailureStreak => {
  const day = dayOf(at);
  if (s === null) return { userId, failures: 1, days: [day], firstFailureAt: at, lastFailureAt: at };
  const days = s.days.includes(day) ? s.days : [...s.days, day].sort((a, b) => a - b);
  return {
    userId,
    failures: s.failures + 1,
    days,
    firstFailureAt: Math.min(s.firstFailureAt, at),
    lastFailureAt: Math.max(s.lastFailureAt, at),
  };
};

export const isUnusual = (s: FailureStreak, minFailures: number, minDays: number): boolean =>
  s.failures >= minFailures && s.days.length >= minDays;
