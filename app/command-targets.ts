/**
 * What a command names and how it is checked before anything is read: a device (by id, or by
 * persistent id, which also names its kind, as in django-otp) and the free texts (user ids,
 * reasons, names). A bad value is an invalid-command error naming it.
 */
import { isLeft, left, right, type Either } from 'fp-ts/lib/Either.js';
import type { Kind } from '../domain/codecs.ts';
import { fromPersistentId } from '../domain/ids.ts';
import { err, Failure, must, type EngineError } from './errors.ts';

/** A device as a command names it: by id, or by persistent id (which also names its kind). */
export interface DeviceRef {
  readonly deviceId: string;
  readonly kind: Kind | null;
}

export const refOf = (x: string | DeviceRef): DeviceRef => (typeof x === 'string' ? { deviceId: x, kind: null } : x);

export const notFound = (r: DeviceRef): EngineError =>
  err('device-not-found', r.kind === null ? `no device with id ${r.deviceId}` : `no ${r.kind} device with id ${r.deviceId}`);

/** A device id, or a persistent id whose kind must match the device's (as in django-otp). */
export const resolveDevice = (device: string): Either<EngineError, DeviceRef> => {
  if (typeof device !== 'string') return left(err('invalid-command', 'device must be a device id or a persistent id'));
  if (device.includes('/')) {
    const p = fromPersistentId(device);
    return isLeft(p) ? left(err('invalid-command', p.left)) : right(p.right);
  }
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(device)
    ? right({ deviceId: device, kind: null })
    : left(err('invalid-command', `"${device.slice(0, 80)}" is not a device id (a lower-case UUID) or persistent id (<kind>/<uuid>)`));
};

export const mustDevice = (d: string): DeviceRef => must(resolveDevice(d));

/** A free text of 1–`max` characters without control characters. */
export const checkedText = (what: string, value: unknown, max: number): string => {
  if (typeof value !== 'string' || value.trim().length === 0 || value.length > max)
    throw new Failure(err('invalid-command', `${what} must be 1–${max} characters long`));
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) throw new Failure(err('invalid-command', `${what} must not contain control characters`));
  return value;
};
