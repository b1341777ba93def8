/**
 * The event catalog: one io-ts codec per event type. These codecs are the only wire format;
 * every event crosses the store boundary through them, in both directions.
 *
 * Events state facts in the past tense. They never carry a secret, a code, an e-mail
 * address or a phone number in plaintext: secrets and destinations are sealed by the Vault,
 * codes appear only as keyed digests.
 */
import * as t from 'io-ts';
import { left, type Either } from 'fp-ts/lib/Either.js';
import {
  Algorithm,
  Actor,
  CommandId,
  Digest,
  Digits,
  DeviceId,
  DeviceName,
  Instant,
  Int,
  Kind,
  NonNegativeInt,
  OnBehalfOf,
  PositiveInt,
  Reason,
  Sealed,
  UserId,
  describeErrors,
} from './codecs.ts';

// ---- device configurations (fixed at registration) -------------------------------------

export const TotpConfig = t.type({
  kind: t.literal('totp'),
  secret: Sealed,
  algorithm: Algorithm,
  digits: Digits,
  step: PositiveInt,
  t0: NonNegativeInt,
  tolerance: NonNegativeInt,
  /** Drift (in steps) the device starts with: 0, or the value carried over by an import. */
  drift: Int,
  /** Last accepted time step the device starts with: -1, or carried over by an import. */
  lastStep: Int,
});
export const HotpConfig = t.type({
  kind: t.literal('hotp'),
  secret: Sealed,
  algorithm: Algorithm,
  digits: Digits,
  tolerance: NonNegativeInt,
  /** The next counter value to expect. */
  counter: NonNegativeInt,
});
export const StaticConfig = t.type({ kind: t.literal('static') });
export const SideChannelConfig = t.type({
  kind: t.union([t.literal('email'), t.literal('sms')]),
  /** The e-mail address or phone number, sealed. */
  destination: Sealed,
});
export const DeviceConfig = t.union([TotpConfig, HotpConfig, StaticConfig, SideChannelConfig]);
export type TotpConfig = t.TypeOf<typeof TotpConfig>;
export type HotpConfig = t.TypeOf<typeof HotpConfig>;
export type StaticConfig = t.TypeOf<typeof StaticConfig>;
export type SideChannelConfig = t.TypeOf<typeof SideChannelConfig>;
export type DeviceConfig = t.TypeOf<typeof DeviceConfig>;

// ---- device stream events ----------------------------------------------------------------

const Origin = t.type({ system: t.string, reference: t.string });

export const DeviceRegistered = t.intersection([
  t.type({
    deviceId: DeviceId,
    userId: UserId,
    name: DeviceName,
    confirmed: t.boolean,
    at: Instant,
    config: DeviceConfig,
  }),
  t.partial({
    /** Where an imported device came from (e.g. django-otp and its persistent id). */
    origin: Origin,
    /** Throttling state carried over by an import. */
    throttle: t.type({ failureCount: NonNegativeInt, lastFailureAt: t.union([Instant, t.null]) }),
    /** E-mail/SMS: a code sent before an import, still pending (its keyed digest, as ChallengeGenerated keeps it). */
    pendingCode: t.type({ codeDigest: Digest, validUntil: Instant }),
  }),
]);
export const DeviceConfirmed = t.type({ at: Instant });
export const DeviceRenamed = t.type({ name: DeviceName, at: Instant });
export const DeviceRemoved = t.intersection([t.type({ at: Instant }), t.partial({ reason: Reason })]);
/** A new set of backup codes replaced any earlier set. Only keyed digests are stored. */
export const StaticTokensIssued = t.type({ digests: t.array(Digest), at: Instant });
export const ChallengeGenerated = t.type({ codeDigest: Digest, validUntil: Instant, at: Instant });
/** The code could not be delivered: it is void, and the cooldown is released. */
export const ChallengeDeliveryFailed = t.type({ reason: Reason, at: Instant });
export const ChallengeRefused = t.type({ reason: t.literal('cooldown'), retryAt: Instant, at: Instant });

export const TokenMatch = t.union([
  t.type({ kind: t.literal('totp'), step: Int, drift: Int }),
  t.type({ kind: t.literal('hotp'), counter: NonNegativeInt }),
  t.type({ kind: t.literal('static'), digest: Digest }),
  t.type({ kind: t.literal('sidechannel') }),
]);
export type TokenMatch = t.TypeOf<typeof TokenMatch>;
export const TokenVerified = t.type({ match: TokenMatch, at: Instant });

export const FailureReason = t.keyof({
  invalid: null,
  malformed: null,
  replay: null,
  expired: null,
  'no-challenge': null,
});
export type FailureReason = t.TypeOf<typeof FailureReason>;
export const VerificationFailed = t.type({ reason: FailureReason, at: Instant });
/** Throttled: nothing changed. failureCount and lockedUntil are reported, never trusted. */
export const VerificationRefused = t.type({
  reason: t.literal('throttled'),
  failureCount: NonNegativeInt,
  lockedUntil: Instant,
  at: Instant,
});
export const ThrottleReset = t.type({ reason: Reason, at: Instant });

// ---- user stream events --------------------------------------------------------------------

/** A device was registered for the user (written before the device's own first event). */
export const DeviceAttached = t.type({ deviceId: DeviceId, kind: Kind, at: Instant });
export const MatchSucceeded = t.type({ deviceId: DeviceId, at: Instant });
export const MatchFailed = t.type({ devicesTried: NonNegativeInt, at: Instant });
export const MatchRefused = t.type({
  reason: t.literal('throttled'),
  failureCount: NonNegativeInt,
  lockedUntil: Instant,
  at: Instant,
});

/** Text from the caller's client (an IP, a user agent): bounded and free of control characters. */
const ClientText = (name: string, max: number) =>
  new t.Type<string, string, unknown>(
    name,
    (u): u is string => typeof u === 'string' && u.length <= max && !/[\u0000-\u001f\u007f]/.test(u),
    (u, c) =>
      typeof u !== 'string'
        ? t.failure(u, c, `${name} must be a string`)
        : u.length > max
          ? t.failure(u, c, `${name} must be at most ${max} characters (got ${u.length})`)
          : /[\u0000-\u001f\u007f]/.test(u)
            ? t.failure(u, c, `${name} must not contain control characters`)
            : t.success(u),
    t.identity,
  );
/** A wrong admin token on the dashboard: from where, the how-manieth in a row, and how long that address now waits. */
export const AdminTokenRefused = t.type({
  address: ClientText('address', 64),
  failureCount: PositiveInt,
  delayMs: NonNegativeInt,
  at: Instant,
});
export const accessEventCodecs = { AdminTokenRefused } as const;
export type AccessEvent = { readonly type: 'AdminTokenRefused'; readonly data: t.TypeOf<typeof AdminTokenRefused> };

// ---- the catalog -----------------------------------------------------------------------------

export const deviceEventCodecs = {
  DeviceRegistered,
  DeviceConfirmed,
  DeviceRenamed,
  DeviceRemoved,
  StaticTokensIssued,
  ChallengeGenerated,
  ChallengeDeliveryFailed,
  ChallengeRefused,
  TokenVerified,
  VerificationFailed,
  VerificationRefused,
  ThrottleReset,
} as const;

export const userEventCodecs = {
  DeviceAttached,
  MatchSucceeded,
  MatchFailed,
  MatchRefused,
  ThrottleReset,
} as const;

export const eventCodecs = { ...deviceEventCodecs, ...userEventCodecs, ...accessEventCodecs } as const;

type EventOf<C extends Record<string, t.Mixed>> = {
  [K in keyof C & string]: { readonly type: K; readonly data: t.TypeOf<C[K]> };
}[keyof C & string];

export type DeviceEvent = EventOf<typeof deviceEventCodecs>;
export type UserEvent = EventOf<typeof userEventCodecs>;
export type FactorEvent = EventOf<typeof eventCodecs>;
export type EventType = FactorEvent['type'];
export type EventData<T extends EventType> = Extract<FactorEvent, { type: T }>['data'];

export const isEventType = (type: string): type is EventType => Object.hasOwn(eventCodecs, type);

/** Decodes one stored event (its type and JSON data) through the catalog's codec. */
export const decodeEvent = (type: string, data: unknown): Either<string, FactorEvent> => {
  if (!isEventType(type)) return left(`unknown event type "${type.slice(0, 64)}"`);
  const r = (eventCodecs[type] as t.Mixed).decode(data);
  if (r._tag === 'Left') return left(`${type}: ${describeErrors(r.left)}`);
  return { _tag: 'Right', right: { type, data: r.right } as FactorEvent };
};

/** Encodes an event's data for the store (the codecs are JSON-safe: encoding is identity). */
export const encodeEvent = (event: FactorEvent): { type: string; data: unknown } => ({
  type: event.type,
  data: (eventCodecs[event.type] as t.Mixed).encode(event.data),
});

/**
 * Encodes an event for the store and decodes the result again: Left, naming the field and the
 * rule, when the event could not be read back. The engine appends nothing that fails this, so
 * no input and no bug can write an event that stops every reader of the log.
 */
export const encodeChecked = (event: FactorEvent): Either<string, { type: string; data: unknown }> => {
  if (!isEventType(event.type)) return left(`unknown event type "${String(event.type).slice(0, 64)}"`);
  const encoded = encodeEvent(event);
  const back = (eventCodecs[event.type] as t.Mixed).decode(encoded.data);
  return back._tag === 'Left' ? left(`${event.type}: ${describeErrors(back.left)}`) : { _tag: 'Right', right: encoded };
};

// ---- metadata ----------------------------------------------------------------------------------

export const ClientContext = t.partial({
  ip: ClientText('client.ip', 64),
  userAgent: ClientText('client.userAgent', 512),
});
export type ClientContext = t.TypeOf<typeof ClientContext>;

export const EventMetadata = t.intersection([
  t.type({
    eventId: t.string,
    commandId: CommandId,
    correlationId: t.string,
    causationId: t.string,
    actor: Actor,
  }),
  t.partial({
    client: ClientContext,
    /** Whom the actor claims to act for (the dashboard's X-Factorstream-Actor); the actor is who authenticated. */
    onBehalfOf: OnBehalfOf,
    /** SHA-256 of the previous event of the stream (domain/chain.ts). */
    prevHash: t.string,
    /** The id of the key that signed the event, and its MAC (domain/event-mac.ts). */
    macKey: Digest,
    mac: Digest,
  }),
]);
export type EventMetadata = t.TypeOf<typeof EventMetadata>;
