/**
 * io-ts codecs for what reaches the engine from outside: registration input and command
 * options. A value that does not fit gets a message naming the field and the rule; secrets
 * are never echoed.
 */
import * as t from 'io-ts';
import { Actor, CommandId, DeviceName, Instant, Int, NonNegativeInt, OnBehalfOf, UserId } from './codecs.ts';
import { ClientContext } from './events.ts';
import { MAX_KEY_BYTES, MIN_KEY_BYTES } from './kinds/oath.ts';

const oneOf = <V extends string | number>(name: string, values: readonly V[]) =>
  new t.Type<V, V, unknown>(
    name,
    (u): u is V => values.includes(u as V),
    (u, c) =>
      values.includes(u as V)
        ? t.success(u as V)
        : t.failure(
            u,
            c,
            `${name} must be one of ${values.join(', ')}` +
              (typeof u === 'string' || typeof u === 'number' ? ` (got ${JSON.stringify(String(u).slice(0, 20))})` : ''),
          ),
    t.identity,
  );

const range = (name: string, min: number, max: number) =>
  new t.Type<number, number, unknown>(
    name,
    (u): u is number => typeof u === 'number' && Number.isSafeInteger(u) && u >= min && u <= max,
    (u, c) =>
      typeof u === 'number' && Number.isSafeInteger(u) && u >= min && u <= max
        ? t.success(u)
        : t.failure(u, c, `${name} must be a whole number from ${min} to ${max}` + (typeof u === 'number' ? ` (got ${u})` : '')),
    t.identity,
  );

/** Raw key bytes; the message gives the length only. */
export const SecretBytes = new t.Type<Uint8Array, Uint8Array, unknown>(
  'secret',
  (u): u is Uint8Array => u instanceof Uint8Array && u.length >= MIN_KEY_BYTES && u.length <= MAX_KEY_BYTES,
  (u, c) =>
    !(u instanceof Uint8Array)
      ? t.failure(u, c, 'secret must be bytes (a Uint8Array)')
      : u.length < MIN_KEY_BYTES || u.length > MAX_KEY_BYTES
        ? t.failure(u, c, `secret must be ${MIN_KEY_BYTES}–${MAX_KEY_BYTES} bytes long (got ${u.length})`)
        : t.success(u),
  t.identity,
);

export const AlgorithmInput = oneOf('algorithm', ['SHA1', 'SHA256', 'SHA512'] as const);
export const DigitsInput = oneOf('digits', [6, 8] as const);
export const KindInput = oneOf('kind', ['totp', 'hotp', 'static', 'email', 'sms'] as const);

const Origin = t.type({ system: t.string, reference: t.string });
const ImportedThrottle = t.type({ failureCount: NonNegativeInt, lastFailureAt: t.union([Instant, t.null]) });

const common = {
  name: DeviceName,
  confirmed: t.boolean,
  origin: Origin,
  throttle: ImportedThrottle,
};

export const TotpInput = t.intersection([
  t.type({ kind: t.literal('totp'), userId: UserId }),
  t.partial({
    ...common,
    secret: SecretBytes,
    algorithm: AlgorithmInput,
    digits: DigitsInput,
    step: range('step', 1, 86_400),
    t0: range('t0', 0, 8_640_000_000_000),
    tolerance: range('tolerance', 0, 10),
    drift: range('drift', -32_768, 32_767),
    lastStep: Int,
  }),
]);

export const HotpInput = t.intersection([
  t.type({ kind: t.literal('hotp'), userId: UserId }),
  t.partial({
    ...common,
    secret: SecretBytes,
    algorithm: AlgorithmInput,
    digits: DigitsInput,
    tolerance: range('tolerance', 0, 100),
    counter: range('counter', 0, Number.MAX_SAFE_INTEGER),
  }),
]);

export const StaticInput = t.intersection([t.type({ kind: t.literal('static'), userId: UserId }), t.partial(common)]);

/** E-mail address: a pragmatic check (one "@", no spaces or control characters, 3–254 chars); the message never repeats it. */
// eslint-disable-next-line no-control-regex
const EMAIL = /^[^\s@\u0000-\u001f\u007f]+@[^\s@\u0000-\u001f\u007f]+$/u;
const EmailAddress = new t.Type<string, string, unknown>(
  'destination',
  (u): u is string => typeof u === 'string' && u.length <= 254 && EMAIL.test(u),
  (u, c) =>
    typeof u === 'string' && u.length <= 254 && EMAIL.test(u)
      ? t.success(u)
      : t.failure(u, c, 'destination must be an e-mail address like name@example.com'),
  t.identity,
);
/** Phone number in E.164 form (+ and 8–15 digits); spaces, dots, dashes and parentheses are allowed and dropped. */
const PhoneNumber = new t.Type<string, string, unknown>(
  'destination',
  (u): u is string => typeof u === 'string' && /^\+[1-9][0-9]{7,14}$/.test(u),
  (u, c) => {
    if (typeof u !== 'string' || u.length > 40) return t.failure(u, c, 'destination must be a phone number in international form, like +14155550100');
    const compact = u.replace(/[\s().-]/g, '');
    return /^\+[1-9][0-9]{7,14}$/.test(compact)
      ? t.success(compact)
      : t.failure(u, c, 'destination must be a phone number in international form, like +14155550100');
  },
  t.identity,
);

/** A code of 6 or 8 ASCII digits; the message never repeats it. */
const PendingCodeValue = new t.Type<string, string, unknown>(
  'pendingCode.code',
  (u): u is string => typeof u === 'string' && /^(\d{6}|\d{8})$/.test(u),
  (u, c) => (typeof u === 'string' && /^(\d{6}|\d{8})$/.test(u) ? t.success(u) : t.failure(u, c, 'pendingCode.code must be 6 or 8 digits')),
  t.identity,
);
/** E-mail/SMS, from an import: a code already sent and still pending, usable strictly before validUntil (ms). */
const PendingCodeInput = t.type({ code: PendingCodeValue, validUntil: Instant });

export const EmailInput = t.intersection([
  t.type({ kind: t.literal('email'), userId: UserId, destination: EmailAddress }),
  t.partial({ ...common, pendingCode: PendingCodeInput }),
]);
export const SmsInput = t.intersection([
  t.type({ kind: t.literal('sms'), userId: UserId, destination: PhoneNumber }),
  t.partial({ ...common, pendingCode: PendingCodeInput }),
]);

export const registerInputCodecs = {
  totp: TotpInput,
  hotp: HotpInput,
  static: StaticInput,
  email: EmailInput,
  sms: SmsInput,
} as const;

export type RegisterInput =
  | t.TypeOf<typeof TotpInput>
  | t.TypeOf<typeof HotpInput>
  | t.TypeOf<typeof StaticInput>
  | t.TypeOf<typeof EmailInput>
  | t.TypeOf<typeof SmsInput>;

export const CommandOptions = t.partial({
  /** Idempotency key: a command retried with the same id is not applied twice. */
  commandId: CommandId,
  correlationId: CommandId,
  causationId: CommandId,
  actor: Actor,
  /** Whom the actor claims to act for: recorded apart from the actor, never in the reserved admin: form. */
  onBehalfOf: OnBehalfOf,
  client: ClientContext,
  /** Decide as if it were this instant (ms since the epoch) instead of the clock's now. */
  now: Instant,
});
export type CommandOptions = t.TypeOf<typeof CommandOptions>;
