/**
 * The engine's view of one device: the folded state at a version, read at an instant under
 * the policy (throttle and cooldown as they stand then). What `device`, `deviceAt`,
 * `userDevices` and the administrative commands answer.
 */
import type { Kind } from '../domain/codecs.ts';
import type { DeviceState, RegisteredDevice } from '../domain/device.ts';
import { persistentId } from '../domain/ids.ts';
import { checkCooldown } from '../domain/policies/cooldown.ts';
import type { Policy } from '../domain/policies/policy.ts';
import { throttleStatus } from '../domain/policies/throttle.ts';
import { err, Failure } from './errors.ts';

export interface DeviceView {
  readonly deviceId: string;
  readonly persistentId: string;
  readonly userId: string;
  readonly kind: Kind;
  readonly name: string;
  readonly confirmed: boolean;
  readonly removed: boolean;
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
  readonly version: number;
  readonly throttle: { readonly failureCount: number; readonly lockedUntil: number | null; readonly lastFailureAt: number | null };
  readonly cooldown: { readonly lastGeneratedAt: number | null; readonly nextChallengeAt: number | null };
  readonly totp?: {
    readonly algorithm: string;
    readonly digits: number;
    readonly step: number;
    readonly t0: number;
    readonly tolerance: number;
    readonly drift: number;
    readonly lastStep: number;
  };
  readonly hotp?: { readonly algorithm: string; readonly digits: number; readonly tolerance: number; readonly counter: number };
  readonly backupCodesLeft?: number;
  readonly pendingCode?: { readonly validUntil: number } | null;
  readonly origin: { readonly system: string; readonly reference: string } | null;
}

export const view = (d: RegisteredDevice, version: number, now: number, policy: Policy): DeviceView => {
  const k = d.k;
  const t = throttleStatus(d.throttle, now, policy.throttle[k.kind]);
  const cooling = checkCooldown(d.cooldown, now, policy.cooldownSeconds);
  return {
    deviceId: d.deviceId,
    persistentId: persistentId(k.kind, d.deviceId),
    userId: d.userId,
    kind: k.kind,
    name: d.name,
    confirmed: d.confirmed,
    removed: d.removed,
    createdAt: d.createdAt,
    lastUsedAt: d.lastUsedAt,
    version,
    throttle: { failureCount: t.failureCount, lockedUntil: t.lockedUntil, lastFailureAt: d.throttle.lastFailureAt },
    cooldown: { lastGeneratedAt: d.cooldown.lastGeneratedAt, nextChallengeAt: cooling.allowed ? null : cooling.retryAt },
    ...(k.kind === 'totp'
      ? {
          totp: {
            algorithm: k.config.algorithm,
            digits: k.config.digits,
            step: k.config.step,
            t0: k.config.t0,
            tolerance: k.config.tolerance,
            drift: k.drift,
            lastStep: k.lastStep,
          },
        }
      : {}),
    ...(k.kind === 'hotp'
      ? { hotp: { algorithm: k.config.algorithm, digits: k.config.digits, tolerance: k.config.tolerance, counter: k.counter } }
      : {}),
    ...(k.kind === 'static' ? { backupCodesLeft: k.digests.length } : {}),
    ...(k.kind === 'email' || k.kind === 'sms'
      ? { pendingCode: k.validUntil !== null && now < k.validUntil ? { validUntil: k.validUntil } : null }
      : {}),
    origin: d.origin,
  };
};

/** The registered device, or device-not-found. */
export const registeredOrFail = (state: DeviceState, deviceId: string): RegisteredDevice => {
  if (state.status === 'empty') throw new Failure(err('device-not-found', `no device with id ${deviceId}`));
  return state;
};
