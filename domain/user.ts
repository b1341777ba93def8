/**
 * The user stream (`otpuser-<userId>`): which devices the user has, and the throttle of
 * `match(user, token)`. A failed match is counted once here, never on the devices that did
 * not match (unlike django-otp's match_token).
 */
import { left, right, type Either } from 'fp-ts/lib/Either.js';
import type { Kind } from './codecs.ts';
import type { UserCommand } from './commands.ts';
import { domainError, type DomainError } from './errors.ts';
import type { UserEvent } from './events.ts';
import type { Policy } from './policies/policy.ts';
import {
  checkThrottle,
  failuresExpired,
  initialThrottle,
  throttleCleared,
  throttleFailed,
  type ThrottleState,
} from './policies/throttle.ts';

export interface UserState {
  /** Devices in the order they were attached. */
  readonly devices: readonly { readonly deviceId: string; readonly kind: Kind }[];
  readonly throttle: ThrottleState;
}

export const initialUserState = (): UserState => ({ devices: [], throttle: initialThrottle });

export const evolveUser = (s: UserState, e: UserEvent): UserState => {
  switch (e.type) {
    case 'DeviceAttached':
      return s.devices.some((d) => d.deviceId === e.data.deviceId)
        ? s
        : { devices: [...s.devices, { deviceId: e.data.deviceId, kind: e.data.kind }], throttle: s.throttle };
    case 'MatchSucceeded':
    case 'ThrottleReset':
      return { devices: s.devices, throttle: throttleCleared() };
    case 'MatchFailed':
      return { devices: s.devices, throttle: throttleFailed(s.throttle, e.data.at) };
    case 'MatchRefused':
      return s;
    default: {
      const unreachable: never = e;
      return unreachable;
    }
  }
};

export const foldUser = (events: Iterable<UserEvent>, from: UserState = initialUserState()): UserState => {
  let s = from;
  for (const e of events) s = evolveUser(s, e);
  return s;
};

export interface UserDecideContext {
  readonly now: number;
  readonly policy: Policy;
}

export const decideUser = (
  command: UserCommand,
  state: UserState,
  ctx: UserDecideContext,
): Either<DomainError, UserEvent[]> => {
  const { now } = ctx;
  const tp = ctx.policy.matchThrottle;
  switch (command.type) {
    case 'AttachDevice':
      return state.devices.some((d) => d.deviceId === command.deviceId)
        ? right([])
        : right([{ type: 'DeviceAttached', data: { deviceId: command.deviceId, kind: command.kind, at: now } }]);
    case 'CheckMatchAllowed': {
      if (failuresExpired(state.throttle, now, tp)) return right([]);
      const c = checkThrottle(state.throttle, now, tp);
      return c.allowed
        ? right([])
        : right([
            { type: 'MatchRefused', data: { reason: 'throttled', failureCount: c.failureCount, lockedUntil: c.lockedUntil, at: now } },
          ]);
    }
    case 'RecordMatchFailure': {
      const events: UserEvent[] = [];
      if (failuresExpired(state.throttle, now, tp))
        events.push({ type: 'ThrottleReset', data: { reason: 'failures expired', at: now } });
      events.push({ type: 'MatchFailed', data: { devicesTried: command.devicesTried, at: now } });
      return right(events);
    }
    case 'RecordMatchSuccess':
      return state.throttle.failureCount > 0
        ? right([{ type: 'MatchSucceeded', data: { deviceId: command.deviceId, at: now } }])
        : right([]);
    case 'ResetUserThrottle':
      if (state.devices.length === 0) return left(domainError('device-not-found', 'this user has no devices'));
      return right([{ type: 'ThrottleReset', data: { reason: command.reason, at: now } }]);
    default: {
      const unreachable: never = command;
      return unreachable;
    }
  }
};
