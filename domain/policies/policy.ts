/**
 * Policy: the settings a decision is taken under. Like django-otp's settings they are read
 * at decision time, not fixed at registration, so changing a factor re-times existing locks.
 */
import type { Kind } from '../codecs.ts';

export interface ThrottlePolicy {
  /** Seconds; after n consecutive failures the next attempt waits factor·2^(n−1) s. 0 disables. */
  readonly factor: number;
  /** Optional ceiling on the wait, in seconds (off by default, as in django-otp). */
  readonly maxDelaySeconds: number | null;
  /** Optional: failures older than this many seconds no longer count (off by default). */
  readonly failureExpirySeconds: number | null;
}

export interface Policy {
  /** Per device kind. */
  readonly throttle: Readonly<Record<Kind, ThrottlePolicy>>;
  /** Throttling of `match(user, token)` failures on the user stream. */
  readonly matchThrottle: ThrottlePolicy;
  /** Seconds between two challenges of one side-channel device (django-otp 1.3+: 60). */
  readonly cooldownSeconds: number;
  /** Seconds a side-channel code stays valid (django-otp: 300). */
  readonly codeValiditySeconds: number;
  /** Digits of a side-channel code (django-otp: 6). */
  readonly codeDigits: 6 | 8;
  /** Bound on learned TOTP drift, in steps (django-otp: unbounded). */
  readonly maxDrift: number;
  /** Learn TOTP drift on success (django-otp's OTP_TOTP_SYNC, default true). */
  readonly totpSync: boolean;
  /** Number of backup codes issued at once (django-two-factor-auth: 10). */
  readonly backupCodeCount: number;
}

const throttle = (factor = 1): ThrottlePolicy => ({ factor, maxDelaySeconds: null, failureExpirySeconds: null });

export const defaultPolicy: Policy = {
  throttle: { totp: throttle(), hotp: throttle(), static: throttle(), email: throttle(), sms: throttle() },
  matchThrottle: throttle(),
  cooldownSeconds: 60,
  codeValiditySeconds: 300,
  codeDigits: 6,
  maxDrift: 4,
  totpSync: true,
  backupCodeCount: 10,
};

/** A policy with some settings changed; `throttle` may be given for some kinds only. */
export interface PolicyOverrides extends Partial<Omit<Policy, 'throttle' | 'matchThrottle'>> {
  readonly throttle?: Partial<Record<Kind, Partial<ThrottlePolicy>>>;
  readonly matchThrottle?: Partial<ThrottlePolicy>;
}

export const makePolicy = (o: PolicyOverrides = {}, base: Policy = defaultPolicy): Policy => {
  const t = o.throttle ?? {};
  return {
    ...base,
    ...o,
    throttle: {
      totp: { ...base.throttle.totp, ...t.totp },
      hotp: { ...base.throttle.hotp, ...t.hotp },
      static: { ...base.throttle.static, ...t.static },
      email: { ...base.throttle.email, ...t.email },
      sms: { ...base.throttle.sms, ...t.sms },
    },
    matchThrottle: { ...base.matchThrottle, ...o.matchThrottle },
  };
};

/** Checks a policy for values that make no sense; returns the problems found. */
export const policyProblems = (p: Policy): string[] => {
  const problems: string[] = [];
  const nonNeg = (v: number, what: string) => {
    if (!Number.isFinite(v) || v < 0) problems.push(`${what} must be a number ≥ 0 (got ${v})`);
  };
  const check = (tp: ThrottlePolicy, where: string) => {
    nonNeg(tp.factor, `${where}.factor`);
    if (tp.maxDelaySeconds !== null) nonNeg(tp.maxDelaySeconds, `${where}.maxDelaySeconds`);
    if (tp.failureExpirySeconds !== null) nonNeg(tp.failureExpirySeconds, `${where}.failureExpirySeconds`);
  };
  for (const [k, tp] of Object.entries(p.throttle)) check(tp, `throttle.${k}`);
  check(p.matchThrottle, 'matchThrottle');
  nonNeg(p.cooldownSeconds, 'cooldownSeconds');
  if (!(p.codeValiditySeconds > 0)) problems.push(`codeValiditySeconds must be > 0 (got ${p.codeValiditySeconds})`);
  if (p.codeDigits !== 6 && p.codeDigits !== 8) problems.push(`codeDigits must be 6 or 8 (got ${p.codeDigits})`);
  if (!Number.isSafeInteger(p.maxDrift) || p.maxDrift < 0) problems.push(`maxDrift must be a whole number ≥ 0 (got ${p.maxDrift})`);
  if (!Number.isSafeInteger(p.backupCodeCount) || p.backupCodeCount < 1 || p.backupCodeCount > 100)
    problems.push(`backupCodeCount must be a whole number from 1 to 100 (got ${p.backupCodeCount})`);
  return problems;
};
