/**
 * Device lifecycle: register, confirm, rename, remove; timestamps; persistent ids.
 */
import { isLeft, isRight } from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { Sealed, type Kind } from '../../domain/codecs.ts';
import type { DeviceCommand } from '../../domain/commands.ts';
import type { RegisteredDevice } from '../../domain/device.ts';
import { decodeEvent, type DeviceConfig, type DeviceEvent } from '../../domain/events.ts';
import {
  deviceIdFor,
  deviceStream,
  eventIdFor,
  fromPersistentId,
  persistentId,
  userStream,
  uuidFromBytes,
} from '../../domain/ids.ts';
import { toBase32 } from '../../domain/kinds/uri.ts';
import {
  DEVICE_ID,
  RFC_KEY,
  SEALED,
  T0,
  USER_ID,
  configFor,
  digest,
  failed,
  failures,
  otherCode,
  refused,
  registered,
  totpCode,
  totpConfig,
  verified,
} from './fixtures.ts';
import { given } from './spec.ts';

const N = T0 + 10_000;
const register = (config: DeviceConfig, o: Partial<Extract<DeviceCommand, { type: 'RegisterDevice' }>> = {}): DeviceCommand => ({
  type: 'RegisterDevice',
  deviceId: DEVICE_ID,
  userId: USER_ID,
  name: 'My phone',
  confirmed: true,
  config,
  ...o,
});
const totpMatch = (now: number) => verified({ kind: 'totp', step: Math.floor(now / 30_000), drift: 0 }, now);
const reg = (s: unknown) => s as RegisteredDevice;

describe('registration', () => {
  it.each([true, false])('RegisterDevice (confirmed: %s) records DeviceRegistered and starts a fresh device', (confirmed) => {
    const s = given([]).when(register(totpConfig(), { confirmed }), { now: N }).then([registered(totpConfig(), { at: N, confirmed })]);
    expect(s).toEqual({
      status: 'registered',
      deviceId: DEVICE_ID,
      userId: USER_ID,
      name: 'My phone',
      confirmed,
      removed: false,
      k: { kind: 'totp', config: totpConfig(), drift: 0, lastStep: -1 },
      throttle: { failureCount: 0, lastFailureAt: null },
      cooldown: { lastGeneratedAt: null },
      createdAt: N,
      lastUsedAt: null,
      origin: null,
    });
  });

  it.each<Kind>(['totp', 'hotp', 'static', 'email', 'sms'])('a %s device registers with its kind state', (kind) => {
    const s = reg(given([]).when(register(configFor(kind)), { now: N }).then([registered(configFor(kind), { at: N })]));
    expect(s.k.kind).toBe(kind);
  });

  it('an import carries its origin and throttle state, and the imported lock applies', () => {
    const origin = { system: 'django-otp', reference: 'otp_totp.totpdevice/17' };
    const throttle = { failureCount: 2, lastFailureAt: N - 500 };
    const events = given([]).when(register(totpConfig({ drift: 3, lastStep: 99 }), { origin, throttle }), { now: N }).events();
    expect(events).toEqual([
      {
        type: 'DeviceRegistered',
        data: { deviceId: DEVICE_ID, userId: USER_ID, name: 'My phone', confirmed: true, at: N, config: totpConfig({ drift: 3, lastStep: 99 }), origin, throttle },
      },
    ]);
    const s = reg(given(events).state());
    expect([s.origin, s.throttle, s.k]).toEqual([origin, throttle, { kind: 'totp', config: totpConfig({ drift: 3, lastStep: 99 }), drift: 3, lastStep: 99 }]);
    given(events).when({ type: 'VerifyToken', token: totpCode(N) }, { now: N, secret: RFC_KEY }).then([refused(2, N + 1500, N)]);
  });

  it('DeviceRegistered carries no plaintext secret: the config holds a sealed string', () => {
    const [e] = given([]).when(register(totpConfig()), { now: N }).events();
    expect(e?.type === 'DeviceRegistered' && e.data.config.kind === 'totp' && e.data.config.secret).toBe(SEALED);
    expect(Sealed.is(SEALED)).toBe(true);
    const json = JSON.stringify(e);
    for (const form of [RFC_KEY.toString('hex'), toBase32(RFC_KEY), RFC_KEY.toString('latin1'), RFC_KEY.toString('base64').replace(/=+$/, '')]) {
      expect(json).not.toContain(form);
    }
  });

  it('a plaintext (base32) secret in a DeviceRegistered event is rejected by the codec, naming the field', () => {
    const data = { deviceId: DEVICE_ID, userId: USER_ID, name: 'x', confirmed: true, at: N, config: totpConfig({ secret: toBase32(RFC_KEY) }) };
    const r = decodeEvent('DeviceRegistered', data);
    expect(isLeft(r)).toBe(true);
    if (isLeft(r)) {
      expect(r.left).toContain('DeviceRegistered');
      expect(r.left).toContain('config.secret');
      expect(r.left).not.toContain(toBase32(RFC_KEY));
    }
  });

  it('register twice → device-exists', () => {
    given([registered(totpConfig())]).when(register(totpConfig()), { now: N }).thenFails('device-exists');
  });

  it('register over a removed device → device-exists (the id stays taken: its history stays)', () => {
    given([registered(totpConfig()), { type: 'DeviceRemoved', data: { at: N } }]).when(register(totpConfig()), { now: N + 1 }).thenFails('device-exists');
  });
});

describe('confirmation', () => {
  const unconfirmed = [registered(totpConfig(), { confirmed: false })];
  const confirm = (token: unknown): DeviceCommand => ({ type: 'ConfirmDevice', token });

  it('ConfirmDevice with a valid code → TokenVerified + DeviceConfirmed', () => {
    const s = reg(given(unconfirmed).when(confirm(totpCode(N)), { now: N, secret: RFC_KEY }).then([totpMatch(N), { type: 'DeviceConfirmed', data: { at: N } }]));
    expect([s.confirmed, s.lastUsedAt]).toEqual([true, N]);
  });

  it('ConfirmDevice with a wrong code → VerificationFailed, not confirmed', () => {
    const s = reg(given(unconfirmed).when(confirm(totpCode(N, 5)), { now: N, secret: RFC_KEY }).then([failed(N)]));
    expect(s.confirmed).toBe(false);
  });

  it('ConfirmDevice while throttled → VerificationRefused only, not confirmed', () => {
    const s = reg(given([...unconfirmed, failed(N - 10)]).when(confirm(totpCode(N)), { now: N, secret: RFC_KEY }).then([refused(1, N + 990, N)]));
    expect(s.confirmed).toBe(false);
  });

  it('ConfirmDevice with a malformed code → VerificationFailed malformed, not confirmed', () => {
    given(unconfirmed).when(confirm('12-34-56'), { now: N, secret: RFC_KEY }).then([failed(N, 'malformed')]);
  });

  it('ConfirmDevice on an already confirmed device → only TokenVerified', () => {
    given([registered(totpConfig())]).when(confirm(totpCode(N)), { now: N, secret: RFC_KEY }).then([totpMatch(N)]);
  });

  it('ConfirmDevice works for a side-channel device with its challenge code', () => {
    const events: DeviceEvent[] = [registered(configFor('email'), { confirmed: false }), { type: 'ChallengeGenerated', data: { codeDigest: digest('123456'), validUntil: N + 300_000, at: N } }];
    given(events).when(confirm('123456'), { now: N + 1, digest }).then([verified({ kind: 'sidechannel' }, N + 1), { type: 'DeviceConfirmed', data: { at: N + 1 } }]);
  });

  it('VerifyToken on an unconfirmed device works (django-otp parity, issue #57) but does not confirm it', () => {
    const s = reg(given(unconfirmed).when({ type: 'VerifyToken', token: totpCode(N) }, { now: N, secret: RFC_KEY }).then([totpMatch(N)]));
    expect(s.confirmed).toBe(false);
  });
});

describe('rename and remove', () => {
  const device = [registered(totpConfig())];

  it('RenameDevice records DeviceRenamed and the state takes the new name', () => {
    const s = reg(given(device).when({ type: 'RenameDevice', name: 'Work phone' }, { now: N }).then([{ type: 'DeviceRenamed', data: { name: 'Work phone', at: N } }]));
    expect(s.name).toBe('Work phone');
  });

  it('RenameDevice to the same name → nothing happened', () => {
    given(device).when({ type: 'RenameDevice', name: 'My phone' }, { now: N }).thenNothingHappened();
  });

  it('RemoveDevice records DeviceRemoved (with or without a reason) and the device is removed', () => {
    const s = reg(given(device).when({ type: 'RemoveDevice' }, { now: N }).then([{ type: 'DeviceRemoved', data: { at: N } }]));
    expect(s.removed).toBe(true);
    given(device).when({ type: 'RemoveDevice', reason: 'phone lost' }, { now: N }).then([{ type: 'DeviceRemoved', data: { at: N, reason: 'phone lost' } }]);
  });

  const commands: [string, DeviceCommand][] = [
    ['ConfirmDevice', { type: 'ConfirmDevice', token: '123456' }],
    ['VerifyToken', { type: 'VerifyToken', token: '123456' }],
    ['GenerateChallenge', { type: 'GenerateChallenge' }],
    ['RecordDeliveryFailure', { type: 'RecordDeliveryFailure', reason: 'x' }],
    ['IssueStaticTokens', { type: 'IssueStaticTokens' }],
    ['ResetThrottle', { type: 'ResetThrottle', reason: 'x' }],
    ['RenameDevice', { type: 'RenameDevice', name: 'Other' }],
    ['RenameDevice (same name)', { type: 'RenameDevice', name: 'My phone' }],
    ['RemoveDevice', { type: 'RemoveDevice' }],
  ];
  const fullContext = { now: N + 1, secret: RFC_KEY, digest, challengeCode: '123456', staticCodes: ['abcdefgh'] };

  it.each(commands)('%s on a removed device → device-removed', (_, command) => {
    for (const kind of ['totp', 'static', 'email'] as const)
      given([registered(configFor(kind)), { type: 'DeviceRemoved', data: { at: N } }]).when(command, fullContext).thenFails('device-removed');
  });

  it.each(commands)('%s on an empty state → device-not-found', (_, command) => {
    given([]).when(command, fullContext).thenFails('device-not-found');
  });
});

describe('timestamps', () => {
  it('createdAt comes from the registration; lastUsedAt is set on each success only', () => {
    const T1 = N;
    const T2 = N + 60_000;
    const T3 = N + 120_000;
    const T4 = N + 180_000;
    let history: DeviceEvent[] = [registered(totpConfig(), { at: T0 })];
    const at = (h: DeviceEvent[]) => [reg(given(h).state()).createdAt, reg(given(h).state()).lastUsedAt];
    expect(at(history)).toEqual([T0, null]);
    history = [...history, failed(T1)];
    expect(at(history)).toEqual([T0, null]);
    history = [...history, totpMatch(T2)];
    expect(at(history)).toEqual([T0, T2]);
    history = [...history, failed(T3), refused(1, T3 + 1000, T3 + 1), { type: 'DeviceRenamed', data: { name: 'n', at: T3 + 2 } }, { type: 'ThrottleReset', data: { reason: 'r', at: T3 + 3 } }];
    expect(at(history)).toEqual([T0, T2]);
    history = [...history, totpMatch(T4)];
    expect(at(history)).toEqual([T0, T4]);
  });

  it('a failure never moves lastUsedAt (decided, not only folded)', () => {
    const later = N + 60_000;
    const wrong = otherCode([-1, 0, 1].map((o) => totpCode(later, o)));
    const s = reg(given([registered(totpConfig()), totpMatch(N)]).when({ type: 'VerifyToken', token: wrong }, { now: later, secret: RFC_KEY }).then([failed(later)]));
    expect(s.lastUsedAt).toBe(N);
  });

  it('the throttle of an imported registration survives as-is; lastFailureAt null means no lock', () => {
    const s = reg(given([registered(totpConfig(), { throttle: { failureCount: 4, lastFailureAt: null } })]).state());
    expect(s.throttle).toEqual({ failureCount: 4, lastFailureAt: null });
    given([registered(totpConfig(), { throttle: { failureCount: 4, lastFailureAt: null } })])
      .when({ type: 'VerifyToken', token: totpCode(N) }, { now: N, secret: RFC_KEY })
      .then([totpMatch(N)]);
  });

  it('failures(n) fixture sanity: n events, the last at the given instant', () => {
    expect(failures(3, N)).toEqual([failed(N - 2000), failed(N - 1000), failed(N)]);
  });
});

describe('ids (domain/ids.ts)', () => {
  it.each<Kind>(['totp', 'hotp', 'static', 'email', 'sms'])('persistentId / fromPersistentId round-trip for %s', (kind) => {
    const pid = persistentId(kind, DEVICE_ID);
    expect(pid).toBe(`${kind}/${DEVICE_ID}`);
    expect(fromPersistentId(pid)).toEqual({ _tag: 'Right', right: { kind, deviceId: DEVICE_ID } });
  });

  it.each<[string, unknown, RegExp]>([
    ['empty', '', /expected <kind>\/<device id>/],
    ['no slash', 'totp', /expected <kind>\/<device id>/],
    ['no kind', `/${DEVICE_ID}`, /kind one of totp, hotp, static, email, sms/],
    ['unknown kind', `yubikey/${DEVICE_ID}`, /"yubikey\/.*" is not a persistent id/],
    ['upper-case kind', `TOTP/${DEVICE_ID}`, /kind one of/],
    ['a django-otp persistent id', 'otp_totp.totpdevice/1', /kind one of/],
    ['no device id', 'totp/', /lower-case UUID/],
    ['not a UUID', 'totp/17', /lower-case UUID/],
    ['an upper-case UUID', `totp/${DEVICE_ID.toUpperCase()}`, /lower-case UUID/],
    ['an extra segment', `totp/${DEVICE_ID}/x`, /lower-case UUID|kind one of/],
    ['too long', `totp/${'a'.repeat(200)}`, /looks like "totp\/<uuid>"/],
    ['not a string', 42, /looks like "totp\/<uuid>"/],
    ['null', null, /looks like "totp\/<uuid>"/],
  ])('fromPersistentId rejects %s with a clear message (no exception)', (_, pid, message) => {
    const r = fromPersistentId(pid as string);
    expect(isLeft(r)).toBe(true);
    if (isLeft(r)) expect(r.left).toMatch(message);
  });

  it('stream names: categories without "-", then the id', () => {
    expect(deviceStream(DEVICE_ID)).toBe(`otpdevice-${DEVICE_ID}`);
    expect(userStream(USER_ID)).toBe(`otpuser-${USER_ID}`);
  });

  it('event and device ids are deterministic UUIDv5s', () => {
    const a = eventIdFor('cmd-1', 0, deviceStream(DEVICE_ID));
    expect(a).toBe(eventIdFor('cmd-1', 0, deviceStream(DEVICE_ID)));
    expect(a).not.toBe(eventIdFor('cmd-1', 1, deviceStream(DEVICE_ID)));
    expect(a).not.toBe(eventIdFor('cmd-2', 0, deviceStream(DEVICE_ID)));
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const d = deviceIdFor('cmd-1');
    expect(d).toBe(deviceIdFor('cmd-1'));
    expect(isRight(fromPersistentId(persistentId('totp', d)))).toBe(true);
  });

  it('uuidFromBytes gives a version-4, variant-1 lower-case UUID that fromPersistentId accepts', () => {
    const u = uuidFromBytes(new Uint8Array(16).fill(0xff));
    expect(u).toBe('ffffffff-ffff-4fff-bfff-ffffffffffff');
    expect(isRight(fromPersistentId(`sms/${u}`))).toBe(true);
  });
});
