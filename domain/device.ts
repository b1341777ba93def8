/**
 * The device aggregate's state and how each event changes it. Every derived value (failure
 * count, lock, cooldown, codes left, drift) is computed here from events, never read from a
 * stored field. Projections fold the same way.
 */
import type { Kind } from './codecs.ts';
import type { DeviceEvent, HotpConfig, SideChannelConfig, TotpConfig } from './events.ts';
import { type CooldownState, cooldownReleased, cooldownStarted, initialCooldown } from './policies/cooldown.ts';
import { type ThrottleState, initialThrottle, throttleCleared, throttleFailed } from './policies/throttle.ts';
import { withoutDigest } from './kinds/static.ts';

export type KindState =
  | { readonly kind: 'totp'; readonly config: TotpConfig; readonly drift: number; readonly lastStep: number }
  | { readonly kind: 'hotp'; readonly config: HotpConfig; readonly counter: number }
  | { readonly kind: 'static'; readonly digests: readonly string[] }
  | {
      readonly kind: 'email' | 'sms';
      readonly config: SideChannelConfig;
      readonly codeDigest: string | null;
      readonly validUntil: number | null;
    };

export interface RegisteredDevice {
  readonly status: 'registered';
  readonly deviceId: string;
  readonly userId: string;
  readonly name: string;
  readonly confirmed: boolean;
  readonly removed: boolean;
  readonly k: KindState;
  readonly throttle: ThrottleState;
  readonly cooldown: CooldownState;
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
  readonly origin: { readonly system: string; readonly reference: string } | null;
}

export type DeviceState = { readonly status: 'empty' } | RegisteredDevice;

export const initialState = (): DeviceState => ({ status: 'empty' });

export const kindOf = (d: RegisteredDevice): Kind => d.k.kind;

const withDevice = (
  d: RegisteredDevice,
  k: KindState,
  throttle: ThrottleState,
  cooldown: CooldownState,
  changes: { confirmed?: boolean; name?: string; removed?: boolean; lastUsedAt?: number | null } = {},
): RegisteredDevice => ({
  status: 'registered',
  deviceId: d.deviceId,
  userId: d.userId,
  name: changes.name ?? d.name,
  confirmed: changes.confirmed ?? d.confirmed,
  removed: changes.removed ?? d.removed,
  k,
  throttle,
  cooldown,
  createdAt: d.createdAt,
  lastUsedAt: changes.lastUsedAt === undefined ? d.lastUsedAt : changes.lastUsedAt,
  origin: d.origin,
});

const kindAfterSuccess = (k: KindState, e: Extract<DeviceEvent, { type: 'TokenVerified' }>['data']): KindState => {
  const m = e.match;
  switch (k.kind) {
    case 'totp':
      return m.kind === 'totp' ? { kind: 'totp', config: k.config, drift: m.drift, lastStep: m.step } : k;
    case 'hotp':
      return m.kind === 'hotp' ? { kind: 'hotp', config: k.config, counter: m.counter + 1 } : k;
    case 'static':
      return m.kind === 'static' ? { kind: 'static', digests: withoutDigest(k.digests, m.digest) } : k;
    case 'email':
    case 'sms':
      return { kind: k.kind, config: k.config, codeDigest: null, validUntil: null };
    default: {
      const unreachable: never = k;
      return unreachable;
    }
  }
};

const registered = (e: Extract<DeviceEvent, { type: 'DeviceRegistered' }>['data']): RegisteredDevice => {
  const c = e.config;
  let k: KindState;
  switch (c.kind) {
    case 'totp':
      k = { kind: 'totp', config: c, drift: c.drift, lastStep: c.lastStep };
      break;
    case 'hotp':
      k = { kind: 'hotp', config: c, counter: c.counter };
      break;
    case 'static':
      k = { kind: 'static', digests: [] };
      break;
    case 'email':
    case 'sms':
      k = { kind: c.kind, config: c, codeDigest: e.pendingCode?.codeDigest ?? null, validUntil: e.pendingCode?.validUntil ?? null };
      break;
    default: {
      const unreachable: never = c;
      return unreachable;
    }
  }
  return {
    status: 'registered',
    deviceId: e.deviceId,
    userId: e.userId,
    name: e.name,
    confirmed: e.confirmed,
    removed: false,
    k,
    throttle: e.throttle ?? initialThrottle,
    cooldown: initialCooldown,
    createdAt: e.at,
    lastUsedAt: null,
    origin: e.origin ?? null,
  };
};

export const evolve = (state: DeviceState, event: DeviceEvent): DeviceState => {
  if (event.type === 'DeviceRegistered') return state.status === 'empty' ? registered(event.data) : state;
  if (state.status === 'empty') return state;
  const d = state;
  switch (event.type) {
    case 'DeviceConfirmed':
      return withDevice(d, d.k, d.throttle, d.cooldown, { confirmed: true });
    case 'DeviceRenamed':
      return withDevice(d, d.k, d.throttle, d.cooldown, { name: event.data.name });
    case 'DeviceRemoved':
      return withDevice(d, d.k, d.throttle, d.cooldown, { removed: true });
    case 'StaticTokensIssued':
      return d.k.kind === 'static'
        ? withDevice(d, { kind: 'static', digests: event.data.digests }, d.throttle, d.cooldown)
        : d;
    case 'ChallengeGenerated':
      return d.k.kind === 'email' || d.k.kind === 'sms'
        ? withDevice(
            d,
            { kind: d.k.kind, config: d.k.config, codeDigest: event.data.codeDigest, validUntil: event.data.validUntil },
            d.throttle,
            cooldownStarted(event.data.at),
          )
        : d;
    case 'ChallengeDeliveryFailed':
      return d.k.kind === 'email' || d.k.kind === 'sms'
        ? withDevice(d, { kind: d.k.kind, config: d.k.config, codeDigest: null, validUntil: null }, d.throttle, cooldownReleased())
        : d;
    case 'ChallengeRefused':
      return d;
    case 'TokenVerified':
      return withDevice(d, kindAfterSuccess(d.k, event.data), throttleCleared(), cooldownReleased(), {
        lastUsedAt: event.data.at,
      });
    case 'VerificationFailed':
      return withDevice(d, d.k, throttleFailed(d.throttle, event.data.at), d.cooldown);
    case 'VerificationRefused':
      return d;
    case 'ThrottleReset':
      return withDevice(d, d.k, throttleCleared(), d.cooldown);
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
};

export const fold = (events: Iterable<DeviceEvent>, from: DeviceState = initialState()): DeviceState => {
  let s = from;
  for (const e of events) s = evolve(s, e);
  return s;
};
