/**
 * Stream names, persistent ids and deterministic ids.
 */
import { left, right, type Either } from 'fp-ts/lib/Either.js';
import { v5 as uuidv5 } from 'uuid';
import type { Kind } from './codecs.ts';

/** Stream categories contain no "-": EventStoreDB's $ce- and SQL stream types split at the first one. */
export const DEVICE_CATEGORY = 'otpdevice';
export const USER_CATEGORY = 'otpuser';
export const deviceStream = (deviceId: string): string => `${DEVICE_CATEGORY}-${deviceId}`;
export const userStream = (userId: string): string => `${USER_CATEGORY}-${userId}`;

/** `<kind>/<deviceId>`, like django-otp's `<model label>/<id>`. */
export const persistentId = (kind: Kind, deviceId: string): string => `${kind}/${deviceId}`;

const KINDS: readonly Kind[] = ['totp', 'hotp', 'static', 'email', 'sms'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const fromPersistentId = (pid: string): Either<string, { kind: Kind; deviceId: string }> => {
  if (typeof pid !== 'string' || pid.length > 100) return left('a persistent id looks like "totp/<uuid>"');
  const slash = pid.lastIndexOf('/');
  const kind = pid.slice(0, slash) as Kind;
  const deviceId = pid.slice(slash + 1);
  if (slash < 0 || !KINDS.includes(kind))
    return left(`"${pid}" is not a persistent id: expected <kind>/<device id> with kind one of ${KINDS.join(', ')}`);
  if (!UUID.test(deviceId)) return left(`"${pid}" is not a persistent id: the device id must be a lower-case UUID`);
  return right({ kind, deviceId });
};

/** Namespace of factorstream's UUIDv5 ids. */
const NAMESPACE = 'c5b7f1d2-4a0e-5e86-9d2b-6f1f3c0a7e41';

/** Event ids are UUIDv5 of the command id and the event's index, so a retried command is idempotent. */
export const eventIdFor = (commandId: string, index: number, stream: string): string =>
  uuidv5(`${commandId}\u0000${stream}\u0000${index}`, NAMESPACE);

/** The id of a device registered by a command: deterministic, so a retried registration is idempotent. */
export const deviceIdFor = (commandId: string): string => uuidv5(`device\u0000${commandId}`, NAMESPACE);

/** A random (v4) UUID from 16 random bytes. */
export const uuidFromBytes = (b: Uint8Array): string => {
  const h = Array.from(b.subarray(0, 16), (x, i) => {
    const v = i === 6 ? (x & 0x0f) | 0x40 : i === 8 ? (x & 0x3f) | 0x80 : x;
    return v.toString(16).padStart(2, '0');
  }).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};
