/**
 * decide(command, state, context) -> Either<DomainError, DeviceEvent[]>
 *
 * Pure and synchronous: the time, the opened secret, the keyed digest function and any
 * freshly drawn code arrive in the context. A wrong code, a replay, a throttled or cooled-down
 * request are events; only a command the domain cannot take at all is a Left.
 */
import { left, right, type Either } from 'fp-ts/lib/Either.js';
import type { DeviceCommand } from './commands.ts';
import type { DeviceState, RegisteredDevice } from './device.ts';
import { domainError, type DomainError } from './errors.ts';
import type { DeviceEvent, FailureReason, TokenMatch } from './events.ts';
import type { Digester } from './ports.ts';
import { checkCooldown } from './policies/cooldown.ts';
import type { Policy } from './policies/policy.ts';
import { checkThrottle, failuresExpired, initialThrottle } from './policies/throttle.ts';
import { verifyHotp } from './kinds/hotp.ts';
import { verifySideChannel } from './kinds/sidechannel.ts';
import { findDigest } from './kinds/static.ts';
import { parseBackupCode, parseDigits, parseNumericToken } from './kinds/token.ts';
import { verifyTotp } from './kinds/totp.ts';

export interface DecideContext {
  /** The instant of the decision, ms since the epoch. */
  readonly now: number;
  readonly policy: Policy;
  /** The device's opened TOTP/HOTP key (verification of those kinds only). */
  readonly secret?: Uint8Array;
  /** The device's keyed digest function (backup and side-channel codes). */
  readonly digest?: Digester;
  /** A freshly drawn side-channel code (GenerateChallenge). */
  readonly challengeCode?: string;
  /** Freshly drawn backup codes (IssueStaticTokens). */
  readonly staticCodes?: readonly string[];
}

type Decision = Either<DomainError, DeviceEvent[]>;

const missing = (what: string): Decision =>
  left(domainError('invalid-command', `internal: the decision needs ${what}, which the engine did not provide`));

type Verification = { ok: true; match: TokenMatch } | { ok: false; reason: FailureReason };

/** Checks a token against the device's current state, without throttling. */
const check = (d: RegisteredDevice, token: unknown, ctx: DecideContext): Either<DomainError, Verification> => {
  const k = d.k;
  switch (k.kind) {
    case 'totp': {
      const value = parseNumericToken(token, k.config.digits);
      if (value === null) return right({ ok: false, reason: 'malformed' });
      if (ctx.secret === undefined) return left(domainError('invalid-command', 'internal: the TOTP key was not opened'));
      const r = verifyTotp(k.config, k, ctx.secret, value, ctx.now, { maxDrift: ctx.policy.maxDrift, sync: ctx.policy.totpSync });
      return right(r.ok ? { ok: true, match: { kind: 'totp', step: r.step, drift: r.drift } } : { ok: false, reason: r.reason });
    }
    case 'hotp': {
      const value = parseNumericToken(token, k.config.digits);
      if (value === null) return right({ ok: false, reason: 'malformed' });
      if (ctx.secret === undefined) return left(domainError('invalid-command', 'internal: the HOTP key was not opened'));
      const r = verifyHotp(k.config, k.counter, ctx.secret, value);
      return right(r.ok ? { ok: true, match: { kind: 'hotp', counter: r.counter } } : { ok: false, reason: 'invalid' });
    }
    case 'static': {
      const code = parseBackupCode(token);
      if (code === null) return right({ ok: false, reason: 'malformed' });
      if (ctx.digest === undefined) return left(domainError('invalid-command', 'internal: the digest key was not opened'));
      const found = findDigest(k.digests, ctx.digest(code));
      return right(found === null ? { ok: false, reason: 'invalid' } : { ok: true, match: { kind: 'static', digest: found } });
    }
    case 'email':
    case 'sms': {
      const code = parseDigits(token, ctx.policy.codeDigits);
      if (code === null) return right({ ok: false, reason: 'malformed' });
      if (ctx.digest === undefined) return left(domainError('invalid-command', 'internal: the digest key was not opened'));
      const r = verifySideChannel(k, ctx.digest(code), ctx.now);
      return right(r.ok ? { ok: true, match: { kind: 'sidechannel' } } : { ok: false, reason: r.reason });
    }
    default: {
      const unreachable: never = k;
      return unreachable;
    }
  }
};

const active = (state: DeviceState): Either<DomainError, RegisteredDevice> => {
  if (state.status === 'empty') return left(domainError('device-not-found', 'no device with this id'));
  if (state.removed) return left(domainError('device-removed', `device ${state.deviceId} was removed`));
  return right(state);
};

const verify = (state: DeviceState, token: unknown, confirming: boolean, ctx: DecideContext): Decision => {
  const a = active(state);
  if (a._tag === 'Left') return a;
  let d = a.right;
  const { now } = ctx;
  const throttlePolicy = ctx.policy.throttle[d.k.kind];
  const events: DeviceEvent[] = [];
  if (failuresExpired(d.throttle, now, throttlePolicy)) {
    events.push({ type: 'ThrottleReset', data: { reason: 'failures expired', at: now } });
    d = { ...d, throttle: initialThrottle };
  }
  const allowed = checkThrottle(d.throttle, now, throttlePolicy);
  if (!allowed.allowed) {
    events.push({
      type: 'VerificationRefused',
      data: { reason: 'throttled', failureCount: allowed.failureCount, lockedUntil: allowed.lockedUntil, at: now },
    });
    return right(events);
  }
  const r = check(d, token, ctx);
  if (r._tag === 'Left') return r;
  if (!r.right.ok) {
    events.push({ type: 'VerificationFailed', data: { reason: r.right.reason, at: now } });
    return right(events);
  }
  events.push({ type: 'TokenVerified', data: { match: r.right.match, at: now } });
  if (confirming && !d.confirmed) events.push({ type: 'DeviceConfirmed', data: { at: now } });
  return right(events);
};

const sideChannel = (d: RegisteredDevice, what: string): Either<DomainError, RegisteredDevice & { k: { kind: 'email' | 'sms' } }> =>
  d.k.kind === 'email' || d.k.kind === 'sms'
    ? right(d as RegisteredDevice & { k: { kind: 'email' | 'sms' } })
    : left(domainError('wrong-kind', `${what} needs an e-mail or SMS device; device ${d.deviceId} is ${d.k.kind}`));

export const decide = (command: DeviceCommand, state: DeviceState, ctx: DecideContext): Decision => {
  const { now } = ctx;
  switch (command.type) {
    case 'RegisterDevice': {
      if (state.status !== 'empty')
        return left(domainError('device-exists', `device ${state.deviceId} is already registered`));
      const { deviceId, userId, name, confirmed, config, origin, throttle, pendingCode } = command;
      if (pendingCode && config.kind !== 'email' && config.kind !== 'sms')
        return left(domainError('invalid-command', `a pending code is for e-mail and SMS devices, not ${config.kind}`));
      return right([
        {
          type: 'DeviceRegistered',
          data: {
            deviceId,
            userId,
            name,
            confirmed,
            at: now,
            config,
            ...(origin ? { origin } : {}),
            ...(throttle ? { throttle } : {}),
            ...(pendingCode ? { pendingCode } : {}),
          },
        },
      ]);
    }
    case 'ConfirmDevice':
      return verify(state, command.token, true, ctx);
    case 'VerifyToken':
      return verify(state, command.token, false, ctx);
    case 'GenerateChallenge': {
      const a = active(state);
      if (a._tag === 'Left') return a;
      const s = sideChannel(a.right, 'a challenge');
      if (s._tag === 'Left') return s;
      const cooldown = checkCooldown(s.right.cooldown, now, ctx.policy.cooldownSeconds);
      if (!cooldown.allowed)
        return right([{ type: 'ChallengeRefused', data: { reason: 'cooldown', retryAt: cooldown.retryAt, at: now } }]);
      if (ctx.challengeCode === undefined || ctx.digest === undefined) return missing('a drawn code and the digest key');
      return right([
        {
          type: 'ChallengeGenerated',
          data: {
            codeDigest: ctx.digest(ctx.challengeCode),
            validUntil: now + Math.round(ctx.policy.codeValiditySeconds * 1000),
            at: now,
          },
        },
      ]);
    }
    case 'RecordDeliveryFailure': {
      const a = active(state);
      if (a._tag === 'Left') return a;
      const s = sideChannel(a.right, 'a delivery');
      if (s._tag === 'Left') return s;
      if (s.right.k.codeDigest === null)
        return left(domainError('no-challenge', `device ${s.right.deviceId} has no pending code`));
      return right([{ type: 'ChallengeDeliveryFailed', data: { reason: command.reason, at: now } }]);
    }
    case 'IssueStaticTokens': {
      const a = active(state);
      if (a._tag === 'Left') return a;
      if (a.right.k.kind !== 'static')
        return left(domainError('wrong-kind', `backup codes need a static device; device ${a.right.deviceId} is ${a.right.k.kind}`));
      if (ctx.staticCodes === undefined || ctx.digest === undefined) return missing('drawn codes and the digest key');
      const digest = ctx.digest;
      return right([{ type: 'StaticTokensIssued', data: { digests: ctx.staticCodes.map((c) => digest(c)), at: now } }]);
    }
    case 'ResetThrottle': {
      const a = active(state);
      if (a._tag === 'Left') return a;
      return right([{ type: 'ThrottleReset', data: { reason: command.reason, at: now } }]);
    }
    case 'RenameDevice': {
      const a = active(state);
      if (a._tag === 'Left') return a;
      return a.right.name === command.name ? right([]) : right([{ type: 'DeviceRenamed', data: { name: command.name, at: now } }]);
    }
    case 'RemoveDevice': {
      const a = active(state);
      if (a._tag === 'Left') return a;
      return right([{ type: 'DeviceRemoved', data: { at: now, ...(command.reason ? { reason: command.reason } : {}) } }]);
    }
    default: {
      const unreachable: never = command;
      return unreachable;
    }
  }
};
