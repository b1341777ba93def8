/**
 * The devices read model folds each device with the domain's own `evolve`, then keeps only
 * what a view needs. The sealed secret, the sealed destination and every code digest are
 * stripped before anything is stored; the read model never holds them.
 *
 * To fold the next event, a snapshot is turned back into a device state with a placeholder
 * wherever a stripped value was, and the event's digests are replaced by the same
 * placeholder. The reducer only ever compares or counts those values (a used backup code is
 * one of the issued ones, a pending code is there or not), so folding redacted events over
 * a redacted state gives the same view as folding the real ones.
 */
import type { Algorithm, Kind } from '../domain/codecs.ts';
import { evolve, initialState, type DeviceState, type KindState, type RegisteredDevice } from '../domain/device.ts';
import type { DeviceEvent } from '../domain/events.ts';
import { persistentId } from '../domain/ids.ts';
import { checkCooldown, type CooldownState } from '../domain/policies/cooldown.ts';
import type { Policy } from '../domain/policies/policy.ts';
import { throttleStatus, type ThrottleState } from '../domain/policies/throttle.ts';

/** Stands in for a stripped secret, destination or digest while folding. */
const REDACTED = 'redacted';

export type KindSnapshot =
  | {
      readonly kind: 'totp';
      readonly algorithm: Algorithm;
      readonly digits: 6 | 8;
      readonly step: number;
      readonly t0: number;
      readonly tolerance: number;
      readonly drift: number;
      readonly lastStep: number;
    }
  | { readonly kind: 'hotp'; readonly algorithm: Algorithm; readonly digits: 6 | 8; readonly tolerance: number; readonly counter: number }
  | { readonly kind: 'static'; readonly codesLeft: number }
  | { readonly kind: 'email' | 'sms'; readonly pendingValidUntil: number | null };

export interface DeviceSnapshot {
  readonly deviceId: string;
  readonly userId: string;
  readonly name: string;
  readonly confirmed: boolean;
  readonly removed: boolean;
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
  readonly origin: { readonly system: string; readonly reference: string } | null;
  readonly throttle: ThrottleState;
  readonly cooldown: CooldownState;
  readonly k: KindSnapshot;
}

/** A device as the read model stores it: its snapshot and the stream version it reflects. */
export interface DeviceRow {
  readonly version: number;
  readonly snapshot: DeviceSnapshot;
}

const kindSnapshot = (k: KindState): KindSnapshot => {
  switch (k.kind) {
    case 'totp': {
      const { algorithm, digits, step, t0, tolerance } = k.config;
      return { kind: 'totp', algorithm, digits, step, t0, tolerance, drift: k.drift, lastStep: k.lastStep };
    }
    case 'hotp': {
      const { algorithm, digits, tolerance } = k.config;
      return { kind: 'hotp', algorithm, digits, tolerance, counter: k.counter };
    }
    case 'static':
      return { kind: 'static', codesLeft: k.digests.length };
    case 'email':
    case 'sms':
      return { kind: k.kind, pendingValidUntil: k.codeDigest === null ? null : k.validUntil };
    default: {
      const unreachable: never = k;
      return unreachable;
    }
  }
};

const kindState = (k: KindSnapshot): KindState => {
  switch (k.kind) {
    case 'totp': {
      const { kind, algorithm, digits, step, t0, tolerance, drift, lastStep } = k;
      return { kind, config: { kind, secret: REDACTED, algorithm, digits, step, t0, tolerance, drift, lastStep }, drift, lastStep };
    }
    case 'hotp': {
      const { kind, algorithm, digits, tolerance, counter } = k;
      return { kind, config: { kind, secret: REDACTED, algorithm, digits, tolerance, counter }, counter };
    }
    case 'static':
      return { kind: 'static', digests: Array.from({ length: k.codesLeft }, () => REDACTED) };
    case 'email':
    case 'sms':
      return {
        kind: k.kind,
        config: { kind: k.kind, destination: REDACTED },
        codeDigest: k.pendingValidUntil === null ? null : REDACTED,
        validUntil: k.pendingValidUntil,
      };
    default: {
      const unreachable: never = k;
      return unreachable;
    }
  }
};

export const toSnapshot = (d: RegisteredDevice): DeviceSnapshot => ({
  deviceId: d.deviceId,
  userId: d.userId,
  name: d.name,
  confirmed: d.confirmed,
  removed: d.removed,
  createdAt: d.createdAt,
  lastUsedAt: d.lastUsedAt,
  origin: d.origin === null ? null : { system: d.origin.system, reference: d.origin.reference },
  throttle: { failureCount: d.throttle.failureCount, lastFailureAt: d.throttle.lastFailureAt },
  cooldown: { lastGeneratedAt: d.cooldown.lastGeneratedAt },
  k: kindSnapshot(d.k),
});

export const fromSnapshot = (s: DeviceSnapshot): RegisteredDevice => ({
  status: 'registered',
  deviceId: s.deviceId,
  userId: s.userId,
  name: s.name,
  confirmed: s.confirmed,
  removed: s.removed,
  k: kindState(s.k),
  throttle: s.throttle,
  cooldown: s.cooldown,
  createdAt: s.createdAt,
  lastUsedAt: s.lastUsedAt,
  origin: s.origin,
});

/** The event with its secrets and digests replaced by the placeholder. */
export const redactEvent = (e: DeviceEvent): DeviceEvent => {
  switch (e.type) {
    case 'DeviceRegistered': {
      const c = e.data.config;
      const config =
        c.kind === 'totp' || c.kind === 'hotp'
          ? { ...c, secret: REDACTED }
          : c.kind === 'email' || c.kind === 'sms'
            ? { ...c, destination: REDACTED }
            : c;
      return { type: e.type, data: { ...e.data, config } };
    }
    case 'StaticTokensIssued':
      return { type: e.type, data: { ...e.data, digests: e.data.digests.map(() => REDACTED) } };
    case 'ChallengeGenerated':
      return { type: e.type, data: { ...e.data, codeDigest: REDACTED } };
    case 'TokenVerified':
      return e.data.match.kind === 'static'
        ? { type: e.type, data: { ...e.data, match: { kind: 'static', digest: REDACTED } } }
        : e;
    case 'DeviceConfirmed':
    case 'DeviceRenamed':
    case 'DeviceRemoved':
    case 'ChallengeDeliveryFailed':
    case 'ChallengeRefused':
    case 'VerificationFailed':
    case 'VerificationRefused':
    case 'ThrottleReset':
      return e;
    default: {
      const unreachable: never = e;
      return unreachable;
    }
  }
};

/** One step of the fold: the snapshot after `event`, or null while the device does not exist. */
export const evolveSnapshot = (before: DeviceSnapshot | null, event: DeviceEvent): DeviceSnapshot | null => {
  const state: DeviceState = before === null ? initialState() : fromSnapshot(before);
  const after = evolve(state, redactEvent(event));
  return after.status === 'registered' ? toSnapshot(after) : null;
};

// ---- the view, computed at query time ---------------------------------------------------------

export interface DeviceSummary {
  readonly deviceId: string;
  readonly persistentId: string;
  readonly userId: string;
  readonly kind: Kind;
  readonly name: string;
  readonly confirmed: boolean;
  readonly removed: boolean;
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
  /** The device stream's version this summary reflects. */
  readonly version: number;
  /** Throttling at the query's instant (domain's throttleStatus). */
  readonly throttle: { readonly failureCount: number; readonly lockedUntil: number | null; readonly lastFailureAt: number | null };
  /** Cooldown at the query's instant (domain's checkCooldown); side-channel devices only have one. */
  readonly cooldown: { readonly lastGeneratedAt: number | null; readonly nextChallengeAt: number | null };
  /** Static devices: backup codes not used yet; null for other kinds. */
  readonly backupCodesLeft: number | null;
  /** Side-channel devices: until when the code sent last is valid, if one is pending at the instant. */
  readonly pendingCodeValidUntil: number | null;
  readonly origin: { readonly system: string; readonly reference: string } | null;
}

export const summarize = (row: DeviceRow, now: number, policy: Policy): DeviceSummary => {
  const s = row.snapshot;
  const kind = s.k.kind;
  const throttle = throttleStatus(s.throttle, now, policy.throttle[kind]);
  const cooldown = checkCooldown(s.cooldown, now, policy.cooldownSeconds);
  const pending = s.k.kind === 'email' || s.k.kind === 'sms' ? s.k.pendingValidUntil : null;
  return {
    deviceId: s.deviceId,
    persistentId: persistentId(kind, s.deviceId),
    userId: s.userId,
    kind,
    name: s.name,
    confirmed: s.confirmed,
    removed: s.removed,
    createdAt: s.createdAt,
    lastUsedAt: s.lastUsedAt,
    version: row.version,
    throttle: { failureCount: throttle.failureCount, lockedUntil: throttle.lockedUntil, lastFailureAt: s.throttle.lastFailureAt },
    cooldown: { lastGeneratedAt: s.cooldown.lastGeneratedAt, nextChallengeAt: cooldown.allowed ? null : cooldown.retryAt },
    backupCodesLeft: s.k.kind === 'static' ? s.k.codesLeft : null,
    pendingCodeValidUntil: pending !== null && now < pending ? pending : null,
    origin: s.origin,
  };
};

/** True when the device is throttled at `now`. */
export const lockedAt = (row: DeviceRow, now: number, policy: Policy): boolean =>
  throttleStatus(row.snapshot.throttle, now, policy.throttle[row.snapshot.k.kind]).lockedUntil !== null;
