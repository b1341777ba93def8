/**
 * Small io-ts building blocks shared by the event catalog and the command codecs.
 */
import * as t from 'io-ts';
import { isLeft, type Either } from 'fp-ts/lib/Either.js';

const integer = (name: string, min: number, max: number) =>
  new t.Type<number, number, unknown>(
    name,
    (u): u is number => typeof u === 'number' && Number.isSafeInteger(u) && u >= min && u <= max,
    (u, c) =>
      typeof u === 'number' && Number.isSafeInteger(u) && u >= min && u <= max
        ? t.success(u)
        : t.failure(u, c, `${name} must be a whole number from ${min} to ${max}`),
    t.identity,
  );

/** Milliseconds since the Unix epoch. */
export const Instant = integer('Instant', -8.64e15, 8.64e15);
export const Int = integer('Int', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
export const NonNegativeInt = integer('NonNegativeInt', 0, Number.MAX_SAFE_INTEGER);
export const PositiveInt = integer('PositiveInt', 1, Number.MAX_SAFE_INTEGER);

const boundedString = (name: string, min: number, max: number, pattern?: RegExp, what?: string) =>
  new t.Type<string, string, unknown>(
    name,
    (u): u is string =>
      typeof u === 'string' && u.length >= min && u.length <= max && (pattern === undefined || pattern.test(u)),
    (u, c) => {
      if (typeof u !== 'string') return t.failure(u, c, `${name} must be a string`);
      if (u.length < min || u.length > max)
        return t.failure(u, c, `${name} must be ${min}–${max} characters long (got ${u.length})`);
      if (pattern !== undefined && !pattern.test(u)) return t.failure(u, c, `${name} ${what ?? 'is malformed'}`);
      return t.success(u);
    },
    t.identity,
  );

// eslint-disable-next-line no-control-regex
const NO_CONTROL = /^[^\u0000-\u001f\u007f]*$/u;
export const UserId = boundedString('userId', 1, 128, NO_CONTROL, 'must not contain control characters');
export const DeviceName = boundedString('name', 1, 64, NO_CONTROL, 'must not contain control characters');
export const DeviceId = boundedString(
  'deviceId',
  36,
  36,
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
  'must be a lower-case UUID',
);
/** An id chosen by the caller for a command (idempotency key), or by the engine. */
export const CommandId = boundedString('commandId', 1, 128, NO_CONTROL, 'must not contain control characters');
export const Reason = boundedString('reason', 1, 500, /^[^\u0000-\u0008\u000b-\u001f\u007f]*$/u, 'must not contain control characters');
export const Actor = boundedString('actor', 1, 128, NO_CONTROL, 'must not contain control characters');
/** The `admin:` form is the authenticated dashboard identity (admin:<token fingerprint>): no claimed name may take it. */
export const RESERVED_ACTOR_PREFIX = 'admin:';
const NOT_RESERVED = /^(?!admin:)[^\u0000-\u001f\u007f]*$/iu;
/**
 * A name someone claims to act for (e.g. the dashboard's X-Factorstream-Actor): kept apart from
 * the authenticated actor, as the actor's text is checked, and never in the reserved `admin:` form.
 */
export const OnBehalfOf = boundedString('onBehalfOf', 1, 128, NOT_RESERVED, `must not contain control characters nor start with "${RESERVED_ACTOR_PREFIX}" (that form names an authenticated admin)`);
/** A secret sealed by the Vault: `v1.<iv>.<ciphertext>.<tag>` (base64url). */
export const Sealed = boundedString('sealed', 8, 4096, /^v\d+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+$/, 'is not a sealed value');
/** A keyed digest (HMAC-SHA256, base64url) of a code. */
export const Digest = boundedString('digest', 16, 128, /^[A-Za-z0-9_-]+$/, 'is not a digest');

export const Algorithm = t.keyof({ SHA1: null, SHA256: null, SHA512: null }, 'algorithm (SHA1, SHA256 or SHA512)');
export type Algorithm = t.TypeOf<typeof Algorithm>;
export const Digits = t.union([t.literal(6), t.literal(8)], 'digits (6 or 8)');
export type Digits = t.TypeOf<typeof Digits>;
export const Kind = t.keyof({ totp: null, hotp: null, static: null, email: null, sms: null }, 'kind');
export type Kind = t.TypeOf<typeof Kind>;

/**
 * Turns io-ts validation errors into one readable sentence that names the field and the
 * problem. Values are never echoed: a rejected field may hold a secret.
 */
export const describeErrors = (errors: t.Errors): string => {
  const lines = new Set<string>();
  for (const e of errors) {
    const path = e.context
      .map((c) => c.key)
      .filter((k) => k !== '' && !/^\d+$/.test(k))
      .join('.');
    const last = e.context[e.context.length - 1];
    const expected = last?.type.name ?? 'value';
    const msg = e.message ?? (e.value === undefined ? `${path || 'value'} is required` : `${path || 'value'} must be ${expected}`);
    lines.add(path && e.message ? `${path}: ${msg}` : msg);
    if (lines.size >= 3) break;
  }
  return [...lines].join('; ');
};

export const decodeWith = <A>(codec: t.Decoder<unknown, A>, u: unknown): Either<string, A> => {
  const r = codec.decode(u);
  return isLeft(r) ? { _tag: 'Left', left: describeErrors(r.left) } : r;
};
