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

/**
 * The range each setting may take. Every value a decision writes into an event (a code's
 * validUntil, a lock's lockedUntil) is derived from these and the decision's time, so bounded
 * settings keep every event inside its codec's range. Like Keycloak's and privacyIDEA's limits,
 * they are wide enough for any sane deployment: a day between challenges, a day of validity,
 * a year of lock.
 */
export const POLICY_BOUNDS = {
  /** Seconds: the first wait after one failure (0 disables throttling). */
  factor: { min: 0, max: 86_400 },
  /** Seconds: the ceiling on a throttle wait (null: none). */
  maxDelaySeconds: { min: 0, max: 31_536_000 },
  /** Seconds after which failures are forgotten (null: never). */
  failureExpirySeconds: { min: 1, max: 31_536_000 },
  /** Seconds between two challenges of one side-channel device. */
  cooldownSeconds: { min: 0, max: 86_400 },
  /** Seconds a side-channel code stays valid. */
  codeValiditySeconds: { min: 1, max: 86_400 },
  /** Steps of learned TOTP drift (whole). */
  maxDrift: { min: 0, max: 100 },
  /** Backup codes issued at once (whole). */
  backupCodeCount: { min: 1, max: 100 },
} as const satisfies Record<string, { readonly min: number; readonly max: number }>;

type Bounded = keyof typeof POLICY_BOUNDS;

const shown = (v: unknown): string => (typeof v === 'number' ? String(v) : typeof v === 'string' ? JSON.stringify(v.slice(0, 20)) : typeof v);

/** Checks a policy for values out of their bounds (POLICY_BOUNDS); returns the problems found. */
export const policyProblems = (p: Policy): string[] => {
  const problems: string[] = [];
  const within = (v: unknown, what: string, bound: Bounded, whole = false) => {
    const { min, max } = POLICY_BOUNDS[bound];
    const ok = typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max && (!whole || Number.isInteger(v));
    if (!ok) problems.push(`${what} must be a ${whole ? 'whole number' : 'number'} from ${min} to ${max} (got ${shown(v)})`);
  };
  const check = (tp: ThrottlePolicy | undefined, where: string) => {
    if (typeof tp !== 'object' || tp === null) {
      problems.push(`${where} must be an object`);
      return;
    }
    within(tp.factor, `${where}.factor`, 'factor');
    if (tp.maxDelaySeconds !== null) within(tp.maxDelaySeconds, `${where}.maxDelaySeconds`, 'maxDelaySeconds');
    if (tp.failureExpirySeconds !== null) within(tp.failureExpirySeconds, `${where}.failureExpirySeconds`, 'failureExpirySeconds');
  };
  for (const k of ['totp', 'hotp', 'static', 'email', 'sms'] as const) check(p.throttle[k], `throttle.${k}`);
  check(p.matchThrottle, 'matchThrottle');
  within(p.cooldownSeconds, 'cooldownSeconds', 'cooldownSeconds');
  within(p.codeValiditySeconds, 'codeValiditySeconds', 'codeValiditySeconds');
  if (p.codeDigits !== 6 && p.codeDigits !== 8) problems.push(`codeDigits must be 6 or 8 (got ${shown(p.codeDigits)})`);
  within(p.maxDrift, 'maxDrift', 'maxDrift', true);
  if (typeof p.totpSync !== 'boolean') problems.push(`totpSync must be true or false (got ${shown(p.totpSync)})`);
  within(p.backupCodeCount, 'backupCodeCount', 'backupCodeCount', true);
  return problems;
};
