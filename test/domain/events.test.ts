/**
 * The event catalog: every event type round-trips through its codec; a stored event that
 * does not decode gives a message naming the event type and the field.
 */
import { isLeft } from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import {
  decodeEvent,
  deviceEventCodecs,
  encodeEvent,
  eventCodecs,
  isEventType,
  userEventCodecs,
  type FactorEvent,
} from '../../domain/events.ts';
import { DEVICE_ID, SEALED, T0, USER_ID, configFor, digest, totpConfig } from './fixtures.ts';

const at = T0 + 1234;
const samples: readonly FactorEvent[] = [
  { type: 'AdminTokenRefused', data: { address: '2001:db8::1', failureCount: 2, delayMs: 1000, at } },
  {
    type: 'DeviceRegistered',
    data: { deviceId: DEVICE_ID, userId: USER_ID, name: 'Imported mail', confirmed: true, at, config: configFor('email'), pendingCode: { codeDigest: 'a'.repeat(64), validUntil: at + 1 } },
  },
  ...(['totp', 'hotp', 'static', 'email', 'sms'] as const).map(
    (kind): FactorEvent => ({
      type: 'DeviceRegistered',
      data: { deviceId: DEVICE_ID, userId: USER_ID, name: `My ${kind}`, confirmed: kind !== 'sms', at, config: configFor(kind) },
    }),
  ),
  {
    type: 'DeviceRegistered',
    data: {
      deviceId: DEVICE_ID,
      userId: USER_ID,
      name: 'Imported',
      confirmed: true,
      at,
      config: totpConfig({ algorithm: 'SHA512', digits: 8, step: 60, t0: 5, tolerance: 2, drift: -3, lastStep: 123_456 }),
      origin: { system: 'django-otp', reference: 'otp_totp.totpdevice/17' },
      throttle: { failureCount: 3, lastFailureAt: at - 1 },
    },
  },
  {
    type: 'DeviceRegistered',
    data: { deviceId: DEVICE_ID, userId: USER_ID, name: 'Imported', confirmed: true, at, config: configFor('hotp'), throttle: { failureCount: 1, lastFailureAt: null } },
  },
  { type: 'DeviceConfirmed', data: { at } },
  { type: 'DeviceRenamed', data: { name: 'Téléphone — travail', at } },
  { type: 'DeviceRemoved', data: { at } },
  { type: 'DeviceRemoved', data: { at, reason: 'phone lost\nreported by user' } },
  { type: 'StaticTokensIssued', data: { digests: ['abcdefgh', 'ijklmnop'].map(digest), at } },
  { type: 'StaticTokensIssued', data: { digests: [], at } },
  { type: 'ChallengeGenerated', data: { codeDigest: digest('123456'), validUntil: at + 300_000, at } },
  { type: 'ChallengeDeliveryFailed', data: { reason: 'SMTP 550', at } },
  { type: 'ChallengeRefused', data: { reason: 'cooldown', retryAt: at + 60_001, at } },
  { type: 'TokenVerified', data: { match: { kind: 'totp', step: 58_907_520, drift: -1 }, at } },
  { type: 'TokenVerified', data: { match: { kind: 'totp', step: 0, drift: 0 }, at } },
  { type: 'TokenVerified', data: { match: { kind: 'hotp', counter: 2 ** 40 }, at } },
  { type: 'TokenVerified', data: { match: { kind: 'static', digest: digest('abcdefgh') }, at } },
  { type: 'TokenVerified', data: { match: { kind: 'sidechannel' }, at } },
  ...(['invalid', 'malformed', 'replay', 'expired', 'no-challenge'] as const).map(
    (reason): FactorEvent => ({ type: 'VerificationFailed', data: { reason, at } }),
  ),
  { type: 'VerificationRefused', data: { reason: 'throttled', failureCount: 3, lockedUntil: at + 4000, at } },
  { type: 'ThrottleReset', data: { reason: 'failures expired', at } },
  ...(['totp', 'hotp', 'static', 'email', 'sms'] as const).map(
    (kind): FactorEvent => ({ type: 'DeviceAttached', data: { deviceId: DEVICE_ID, kind, at } }),
  ),
  { type: 'MatchSucceeded', data: { deviceId: DEVICE_ID, at } },
  { type: 'MatchFailed', data: { devicesTried: 0, at } },
  { type: 'MatchFailed', data: { devicesTried: 3, at } },
  { type: 'MatchRefused', data: { reason: 'throttled', failureCount: 1, lockedUntil: at + 1000, at } },
  // Instants before the epoch are instants too.
  { type: 'DeviceConfirmed', data: { at: -86_400_000 } },
];

const roundTrip = (e: FactorEvent) => {
  const wire = JSON.parse(JSON.stringify(encodeEvent(e))) as { type: string; data: unknown };
  return decodeEvent(wire.type, wire.data);
};

describe('round trip', () => {
  it('the samples cover every event type of the catalog', () => {
    expect(new Set(samples.map((e) => e.type))).toEqual(new Set(Object.keys(eventCodecs)));
  });

  it.each(samples.map((e) => [e.type, e] as const))('%s round-trips through encodeEvent / JSON / decodeEvent', (_, e) => {
    expect(roundTrip(e)).toEqual({ _tag: 'Right', right: e });
  });

  it('encodeEvent keeps the type and gives plain JSON data', () => {
    const e = samples[0]!;
    const enc = encodeEvent(e);
    expect(enc.type).toBe(e.type);
    expect(JSON.parse(JSON.stringify(enc.data))).toEqual(e.data);
  });
});

/** Top-level fields that may be left out. */
const OPTIONAL = new Set(['DeviceRegistered.origin', 'DeviceRegistered.throttle', 'DeviceRemoved.reason']);

/** A value of the wrong JSON type for a field holding `v`. */
const wrongTypeFor = (v: unknown): unknown => {
  if (typeof v === 'string') return 42;
  if (typeof v === 'number') return 'soon';
  if (typeof v === 'boolean') return 'yes';
  return 'not an object';
};

/** One sample per type, with every optional field present. */
const fullest = Object.values(
  Object.fromEntries(
    [...samples].reverse().map((e) => [e.type, e] as const).sort((a, b) => Object.keys(a[1].data).length - Object.keys(b[1].data).length),
  ),
) as FactorEvent[];

const fieldCases = fullest.flatMap((e) => Object.keys(e.data).map((field) => [e.type, field, e] as const));

describe('decode errors', () => {
  it.each(['DeviceExploded', 'deviceregistered', '', 'toString', '__proto__', 'constructor'])('unknown type %j → Left naming it', (type) => {
    const r = decodeEvent(type, { at });
    expect(isLeft(r)).toBe(true);
    if (isLeft(r)) expect(r.left).toBe(`unknown event type "${type}"`);
  });

  it('a very long unknown type is cut in the message', () => {
    const r = decodeEvent('X'.repeat(1000), {});
    expect(isLeft(r) && r.left).toBe(`unknown event type "${'X'.repeat(64)}"`);
  });

  it.each(fieldCases)('%s without %s → Left naming the type and the field (or Right if optional)', (type, field, e) => {
    const data: Record<string, unknown> = { ...(e.data as Record<string, unknown>) };
    delete data[field];
    const r = decodeEvent(type, data);
    if (OPTIONAL.has(`${type}.${field}`)) {
      expect(r._tag).toBe('Right');
    } else {
      expect(isLeft(r)).toBe(true);
      if (isLeft(r)) {
        expect(r.left.startsWith(`${type}: `)).toBe(true);
        expect(r.left).toContain(field);
      }
    }
  });

  it.each(fieldCases)('%s with a wrong type of %s → Left naming the type and the field', (type, field, e) => {
    const data: Record<string, unknown> = { ...(e.data as Record<string, unknown>) };
    data[field] = wrongTypeFor(data[field]);
    const r = decodeEvent(type, data);
    expect(isLeft(r)).toBe(true);
    if (isLeft(r)) {
      expect(r.left.startsWith(`${type}: `)).toBe(true);
      expect(r.left).toContain(field);
    }
  });

  it.each([null, 'x', 42, []])('data %j that is not an object → Left naming the type', (data) => {
    const r = decodeEvent('DeviceConfirmed', data);
    expect(isLeft(r) && r.left.startsWith('DeviceConfirmed: ')).toBe(true);
  });

  it.each<[string, string, (d: Record<string, unknown>) => void]>([
    ['a nested config field missing', 'config.step', (d) => delete (d.config as Record<string, unknown>).step],
    ['a config of an unknown kind', 'config.kind', (d) => ((d.config as Record<string, unknown>).kind = 'yubikey')],
    ['an unsealed secret', 'config.secret', (d) => ((d.config as Record<string, unknown>).secret = 'GEZDGNBVGY3TQOJQ')],
    ['an upper-case device id', 'deviceId', (d) => (d.deviceId = DEVICE_ID.toUpperCase())],
    ['a 65-character name', 'name', (d) => (d.name = 'n'.repeat(65))],
    ['an empty name', 'name', (d) => (d.name = '')],
    ['a fractional instant', 'at', (d) => (d.at = at + 0.5)],
    ['an instant beyond the representable range', 'at', (d) => (d.at = 9e15)],
    ['8 digits as a string', 'config.digits', (d) => ((d.config as Record<string, unknown>).digits = '8')],
    ['a 7-digit config', 'config.digits', (d) => ((d.config as Record<string, unknown>).digits = 7)],
    ['an imported throttle with a negative count', 'throttle.failureCount', (d) => (d.throttle = { failureCount: -1, lastFailureAt: null })],
  ])('DeviceRegistered with %s → Left naming %s', (_, path, mutate) => {
    const data = JSON.parse(JSON.stringify({ deviceId: DEVICE_ID, userId: USER_ID, name: 'x', confirmed: true, at, config: totpConfig() })) as Record<
      string,
      unknown
    >;
    mutate(data);
    const r = decodeEvent('DeviceRegistered', data);
    expect(isLeft(r)).toBe(true);
    if (isLeft(r)) {
      expect(r.left.startsWith('DeviceRegistered: ')).toBe(true);
      expect(r.left).toContain(path);
    }
  });

  it('a nested TokenMatch field of the wrong type names the path', () => {
    const r = decodeEvent('TokenVerified', { match: { kind: 'hotp', counter: -1 }, at });
    expect(isLeft(r) && r.left).toMatch(/^TokenVerified: .*match\.counter/);
  });

  it('an unknown failure reason names the field', () => {
    const r = decodeEvent('VerificationFailed', { reason: 'throttled', at });
    expect(isLeft(r) && r.left).toMatch(/^VerificationFailed: .*reason/);
  });

  it('messages never echo the rejected value (it may hold a secret)', () => {
    const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
    const r = decodeEvent('DeviceRegistered', { deviceId: DEVICE_ID, userId: USER_ID, name: 'x', confirmed: true, at, config: totpConfig({ secret }) });
    expect(isLeft(r) && r.left).not.toContain(secret);
    const r2 = decodeEvent('ChallengeGenerated', { codeDigest: '123456', validUntil: at, at });
    expect(isLeft(r2) && r2.left).not.toContain('123456');
  });
});

describe('catalog', () => {
  // DESIGN.md "The device aggregate": the event catalog, first version.
  const DESIGN_DEVICE = [
    'DeviceRegistered',
    'DeviceConfirmed',
    'DeviceRenamed',
    'DeviceRemoved',
    'StaticTokensIssued',
    'ChallengeGenerated',
    'ChallengeDeliveryFailed',
    'ChallengeRefused',
    'TokenVerified',
    'VerificationFailed',
    'VerificationRefused',
    'ThrottleReset',
  ];
  const DESIGN_USER = ['MatchFailed', 'MatchRefused'];

  it('contains exactly the DESIGN.md names plus the user stream’s DeviceAttached and MatchSucceeded, and the access stream’s AdminTokenRefused', () => {
    expect(Object.keys(eventCodecs).sort()).toEqual([...DESIGN_DEVICE, ...DESIGN_USER, 'DeviceAttached', 'MatchSucceeded', 'AdminTokenRefused'].sort());
  });

  it('the device stream takes exactly the device events', () => {
    expect(Object.keys(deviceEventCodecs).sort()).toEqual([...DESIGN_DEVICE].sort());
  });

  it('the user stream takes its own events plus ThrottleReset', () => {
    expect(Object.keys(userEventCodecs).sort()).toEqual(['DeviceAttached', 'MatchFailed', 'MatchRefused', 'MatchSucceeded', 'ThrottleReset']);
  });

  it('event names are past-tense facts (end in -ed or Reset)', () => {
    for (const name of Object.keys(eventCodecs)) expect(name).toMatch(/(ed|Reset)$/);
  });

  it('isEventType knows the catalog and nothing inherited', () => {
    expect(isEventType('TokenVerified')).toBe(true);
    expect(isEventType('hasOwnProperty')).toBe(false);
  });

  it('no sample event carries the sealed secret outside config.secret', () => {
    const json = JSON.stringify(samples.filter((e) => e.type !== 'DeviceRegistered'));
    expect(json).not.toContain(SEALED);
  });
});
