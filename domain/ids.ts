/**
 * Stream names, persistent ids and deterministic ids.
 */
import { createHash } from 'node:crypto';
import { oneShotHash } from './one-shot-hash.ts';
import { left, right, type Either } from 'fp-ts/lib/Either.js';
import { v5 as uuidv5 } from 'uuid';
import type { Kind } from './codecs.ts';

/** A local const, so that its check narrows inside the closures below (see one-shot-hash.ts). */
const oneShot = oneShotHash;

/** Stream categories contain no "-": EventStoreDB's $ce- and SQL stream types split at the first one. */
export const DEVICE_CATEGORY = 'otpdevice';
export const USER_CATEGORY = 'otpuser';
export const deviceStream = (deviceId: string): string => `${DEVICE_CATEGORY}-${deviceId}`;
export const userStream = (userId: string): string => `${USER_CATEGORY}-${userId}`;
/** Refused admin tokens, one stream per client address (named by a digest of it: an IPv6 address has ":"). */
export const ACCESS_CATEGORY = 'otpaccess';
export const accessStream = (addressDigest: string): string => `${ACCESS_CATEGORY}-${addressDigest}`;

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

const NAMESPACE_BYTES = Buffer.from(NAMESPACE.replace(/-/g, ''), 'hex');
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const VARIANT = '89ab';

/** Namespace and name, side by side, for the one-shot digest (grown when a name needs more). */
let scratch = Buffer.alloc(1024);
NAMESPACE_BYTES.copy(scratch);

const sha1Hex = (name: string): string => {
  if (!oneShot) return createHash('sha1').update(NAMESPACE_BYTES).update(name, 'utf8').digest('hex');
  if (16 + name.length * 3 > scratch.length) {
    scratch = Buffer.alloc(16 + name.length * 3);
    NAMESPACE_BYTES.copy(scratch);
  }
  const n = scratch.write(name, 16, 'utf8');
  return oneShot('sha1', scratch.subarray(0, 16 + n), 'hex');
};

/**
 * UUIDv5 (RFC 9562 §5.5) of `name` in factorstream's namespace: the same value as the uuid
 * package's v5(name, NAMESPACE), computed with node:crypto's SHA-1 in one pass (it is on the
 * path of every command: one id per event). Names that are not well-formed UTF-16 go to the
 * uuid package, which refuses them as it always has.
 */
export const uuidV5 = (name: string): string => {
  // String.prototype.isWellFormed: Node ≥ 20, outside the ES2022 lib this project compiles against.
  if (!(name as unknown as { isWellFormed(): boolean }).isWellFormed()) return uuidv5(name, NAMESPACE);
  const h = sha1Hex(name);
  // Version 5 in the 13th hex digit; the variant (10xx) in the 17th.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${VARIANT[parseInt(h[16]!, 16) & 3]}${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

/** Event ids are UUIDv5 of the command id and the event's index, so a retried command is idempotent. */
export const eventIdFor = (commandId: string, index: number, stream: string): string =>
  uuidV5(`${commandId}\u0000${stream}\u0000${index}`);

/** The id of a device registered by a command: deterministic, so a retried registration is idempotent. */
export const deviceIdFor = (commandId: string): string => uuidV5(`device\u0000${commandId}`);

/** A random (v4) UUID from 16 random bytes. */
export const uuidFromBytes = (b: Uint8Array): string => {
  const x = (i: number) => HEX[i === 6 ? (b[i]! & 0x0f) | 0x40 : i === 8 ? (b[i]! & 0x3f) | 0x80 : b[i]!]!;
  return (
    x(0) + x(1) + x(2) + x(3) + '-' + x(4) + x(5) + '-' + x(6) + x(7) + '-' + x(8) + x(9) + '-' +
    x(10) + x(11) + x(12) + x(13) + x(14) + x(15)
  );
};
