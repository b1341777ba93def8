/**
 * The engine's public API end to end on the memory store and vault, with a hand-moved clock.
 */
import { isLeft } from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { VaultError } from '../../domain/ports.ts';
import { eventHash, genesisHash } from '../../domain/chain.ts';
import { deviceStream, eventIdFor, userStream } from '../../domain/ids.ts';
import { hotpCode } from '../../domain/kinds/oath.ts';
import { parseOtpauthUri, toBase32 } from '../../domain/kinds/uri.ts';
import { deviceEvents, ko, ok, seededRandom, setup, T0, totpAt, types, userEvents, type Harness } from './harness.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const keyOf = (uri: string | undefined): Uint8Array => {
  const p = parseOtpauthUri(uri ?? '');
  if (isLeft(p)) throw new Error(p.left);
  return p.right.key;
};

/** A registered, confirmed TOTP device with a known key. */
const totpDevice = async (h: Harness, userId: string, fill: number, extra: Record<string, unknown> = {}) => {
  const key = new Uint8Array(20).fill(fill);
  const r = await ok(h.engine.register({ kind: 'totp', userId, secret: key, confirmed: true, ...extra }));
  return { deviceId: r.deviceId, key };
};

/** A six-digit code that none of the keys gives in the window around now. */
const wrongCode = (keys: readonly Uint8Array[], now: number): string => {
  const valid = new Set(keys.flatMap((k) => [-2, -1, 0, 1, 2].map((o) => totpAt(k, now, { offset: o }))));
  for (let i = 0; ; i++) {
    const c = String(123456 + i).padStart(6, '0');
    if (!valid.has(c)) return c;
  }
};

const storeSize = (h: Harness) => h.store.all().length;

describe('register', () => {
  it('returns the ids and an otpauth URI whose key round-trips and verifies', async () => {
    const h = setup();
    const r = await ok(h.engine.register({ kind: 'totp', userId: 'alice' }));
    expect(r.deviceId).toMatch(UUID);
    expect(r).toMatchObject({ persistentId: `totp/${r.deviceId}`, kind: 'totp', replayed: false });
    const parsed = parseOtpauthUri(r.otpauthUri!);
    if (isLeft(parsed)) throw new Error(parsed.left);
    expect(parsed.right).toMatchObject({ kind: 'totp', account: 'alice', issuer: 'factorstream', algorithm: 'SHA1', digits: 6, step: 30, counter: null });
    expect(parsed.right.key).toHaveLength(20);
    expect(toBase32(parsed.right.key)).toBe(r.secretBase32);
    // The key in the URI is the key the device holds.
    expect(await ok(h.engine.confirm(r.deviceId, totpAt(parsed.right.key, h.now())))).toMatchObject({ ok: true, confirmed: true });
  });

  it('draws keys of the hash size for each algorithm, and an HOTP URI carries the counter', async () => {
    const h = setup();
    for (const [algorithm, bytes] of [['SHA1', 20], ['SHA256', 32], ['SHA512', 64]] as const) {
      const r = await ok(h.engine.register({ kind: 'hotp', userId: 'alice', algorithm, digits: 8, counter: 5 }));
      const p = parseOtpauthUri(r.otpauthUri!);
      if (isLeft(p)) throw new Error(p.left);
      expect(p.right).toMatchObject({ kind: 'hotp', algorithm, digits: 8, counter: 5, step: null });
      expect(p.right.key).toHaveLength(bytes);
      expect(await ok(h.engine.verify(r.deviceId, hotpCode(p.right.key, 5, 8, algorithm)))).toMatchObject({ ok: true });
    }
  });

  it('records the device on its own stream and on the user stream; no secret in either', async () => {
    const h = setup();
    const r = await ok(h.engine.register({ kind: 'totp', userId: 'alice', name: 'Phone' }));
    const events = await deviceEvents(h, r.deviceId);
    expect(events).toEqual([
      {
        type: 'DeviceRegistered',
        data: {
          deviceId: r.deviceId,
          userId: 'alice',
          name: 'Phone',
          confirmed: false,
          at: T0,
          config: { kind: 'totp', secret: expect.stringMatching(/^v1\./), algorithm: 'SHA1', digits: 6, step: 30, t0: 0, tolerance: 1, drift: 0, lastStep: -1 },
        },
      },
    ]);
    expect(await userEvents(h, 'alice')).toEqual([{ type: 'DeviceAttached', data: { deviceId: r.deviceId, kind: 'totp', at: T0 } }]);
    const key = keyOf(r.otpauthUri);
    const everything = JSON.stringify(h.store.all());
    expect(everything).not.toContain(r.secretBase32!);
    expect(everything).not.toContain(Buffer.from(key).toString('hex'));
    expect(everything).not.toContain(Buffer.from(key).toString('base64'));
  });
});

describe('confirm and verify', () => {
  it('confirms a device by its first valid code', async () => {
    const h = setup();
    const r = await ok(h.engine.register({ kind: 'totp', userId: 'alice' }));
    const key = keyOf(r.otpauthUri);
    expect((await ok(h.engine.device(r.deviceId))).confirmed).toBe(false);

    const bad = wrongCode([key], h.now());
    expect(await ok(h.engine.confirm(r.deviceId, bad))).toEqual({ ok: false, deviceId: r.deviceId, reason: 'invalid' });
    expect((await ok(h.engine.device(r.deviceId))).confirmed).toBe(false);

    h.advance(30_000);
    expect(await ok(h.engine.confirm(r.deviceId, totpAt(key, h.now())))).toEqual({
      ok: true,
      deviceId: r.deviceId,
      persistentId: `totp/${r.deviceId}`,
      confirmed: true,
    });
    expect(types(await deviceEvents(h, r.deviceId))).toEqual(['DeviceRegistered', 'VerificationFailed', 'TokenVerified', 'DeviceConfirmed']);

    // Confirming again with a later code succeeds without a second DeviceConfirmed.
    h.advance(30_000);
    expect(await ok(h.engine.confirm(r.deviceId, totpAt(key, h.now())))).toMatchObject({ ok: true, confirmed: true });
    expect(types(await deviceEvents(h, r.deviceId)).filter((t) => t === 'DeviceConfirmed')).toHaveLength(1);
  });

  it('verify accepts a valid code without confirming the device', async () => {
    const h = setup();
    const r = await ok(h.engine.register({ kind: 'totp', userId: 'alice' }));
    expect(await ok(h.engine.verify(r.deviceId, totpAt(keyOf(r.otpauthUri), h.now())))).toMatchObject({ ok: true, confirmed: false });
    expect((await ok(h.engine.device(r.deviceId))).confirmed).toBe(false);
  });

  it('refuses a replayed code, then throttles with retryAt until factor·2^(n−1) s have passed', async () => {
    const h = setup();
    const { deviceId, key } = await totpDevice(h, 'alice', 1);
    const code = totpAt(key, h.now());
    expect(await ok(h.engine.verify(deviceId, code))).toMatchObject({ ok: true });
    expect(await ok(h.engine.verify(deviceId, code))).toEqual({ ok: false, deviceId, reason: 'replay' });
    const failedAt = h.now();

    h.advance(999);
    const refused = await ok(h.engine.verify(deviceId, totpAt(key, h.now(), { offset: 1 })));
    expect(refused).toEqual({ ok: false, deviceId, reason: 'throttled', retryAt: failedAt + 1000, failureCount: 1 });
    expect((await deviceEvents(h, deviceId)).at(-1)).toEqual({
      type: 'VerificationRefused',
      data: { reason: 'throttled', failureCount: 1, lockedUntil: failedAt + 1000, at: failedAt + 999 },
    });

    h.at(failedAt + 1000); // the boundary itself is allowed
    expect(await ok(h.engine.verify(deviceId, '000000'))).toMatchObject({ ok: false, reason: expect.stringMatching(/invalid/) });
    h.advance(1999);
    expect(await ok(h.engine.verify(deviceId, '000000'))).toMatchObject({ ok: false, reason: 'throttled', retryAt: h.now() + 1, failureCount: 2 });
    h.advance(1);
    const view = await ok(h.engine.device(deviceId));
    expect(view.throttle).toEqual({ failureCount: 2, lockedUntil: null, lastFailureAt: failedAt + 1000 });
    expect(await ok(h.engine.verify(deviceId, totpAt(key, h.now(), { offset: 1 })))).toMatchObject({ ok: true });
    expect((await ok(h.engine.device(deviceId))).throttle.failureCount).toBe(0);
  });
});

describe('match across a user’s devices', () => {
  const twoDevices = async () => {
    const h = setup();
    const a = await totpDevice(h, 'alice', 0xa);
    const b = await totpDevice(h, 'alice', 0xb);
    return { h, a, b };
  };

  it('a code for device B matches B and adds nothing to device A (django-otp #110/#186 is absent)', async () => {
    const { h, a, b } = await twoDevices();
    const aBefore = (await h.store.readStream(deviceStream(a.deviceId))).version;
    expect(await ok(h.engine.match('alice', totpAt(b.key, h.now())))).toEqual({ ok: true, deviceId: b.deviceId, persistentId: `totp/${b.deviceId}` });
    const aStream = await deviceEvents(h, a.deviceId);
    expect(aStream).toHaveLength(aBefore);
    expect(types(aStream)).not.toContain('VerificationFailed');
    expect((await deviceEvents(h, b.deviceId)).at(-1)).toMatchObject({ type: 'TokenVerified' });
    expect((await ok(h.engine.device(a.deviceId))).throttle.failureCount).toBe(0);
    // A success with no earlier failure writes nothing on the user stream.
    expect(types(await userEvents(h, 'alice'))).toEqual(['DeviceAttached', 'DeviceAttached']);
  });

  it('a failed match is counted once on the user stream; the next attempt within 1 s is refused', async () => {
    const { h, a, b } = await twoDevices();
    const before = storeSize(h);
    expect(await ok(h.engine.match('alice', wrongCode([a.key, b.key], h.now())))).toEqual({ ok: false, reason: 'no-match' });
    expect(storeSize(h)).toBe(before + 1);
    expect((await userEvents(h, 'alice')).at(-1)).toEqual({ type: 'MatchFailed', data: { devicesTried: 2, at: T0 } });
    for (const d of [a, b]) expect(types(await deviceEvents(h, d.deviceId))).toEqual(['DeviceRegistered']);

    h.advance(500);
    // Even a valid code is refused, and it is not consumed.
    expect(await ok(h.engine.match('alice', totpAt(a.key, h.now())))).toEqual({ ok: false, reason: 'throttled', retryAt: T0 + 1000, failureCount: 1 });
    expect((await userEvents(h, 'alice')).at(-1)).toEqual({
      type: 'MatchRefused',
      data: { reason: 'throttled', failureCount: 1, lockedUntil: T0 + 1000, at: T0 + 500 },
    });
    expect(types(await deviceEvents(h, a.deviceId))).toEqual(['DeviceRegistered']);

    h.at(T0 + 1000);
    expect(await ok(h.engine.match('alice', totpAt(a.key, h.now())))).toMatchObject({ ok: true, deviceId: a.deviceId });
    expect((await userEvents(h, 'alice')).at(-1)).toEqual({ type: 'MatchSucceeded', data: { deviceId: a.deviceId, at: T0 + 1000 } });
  });

  it('only considers confirmed devices', async () => {
    const h = setup();
    const a = await totpDevice(h, 'alice', 0xa);
    const c = await totpDevice(h, 'alice', 0xc, { confirmed: false });
    expect(await ok(h.engine.match('alice', totpAt(c.key, h.now())))).toEqual({ ok: false, reason: 'no-match' });
    expect((await userEvents(h, 'alice')).at(-1)).toEqual({ type: 'MatchFailed', data: { devicesTried: 1, at: T0 } });
    expect(types(await deviceEvents(h, c.deviceId))).toEqual(['DeviceRegistered']);
    expect(types(await deviceEvents(h, a.deviceId))).toEqual(['DeviceRegistered']);
    // Once confirmed, it takes part.
    h.advance(30_000);
    expect(await ok(h.engine.confirm(c.deviceId, totpAt(c.key, h.now())))).toMatchObject({ ok: true });
    h.advance(30_000);
    expect(await ok(h.engine.match('alice', totpAt(c.key, h.now())))).toMatchObject({ ok: true, deviceId: c.deviceId });
  });

  it('skips removed devices, and is a Left for a user without devices', async () => {
    const h = setup();
    const a = await totpDevice(h, 'alice', 0xa);
    await ok(h.engine.remove(a.deviceId));
    expect(await ok(h.engine.match('alice', totpAt(a.key, h.now())))).toEqual({ ok: false, reason: 'no-match' });
    expect((await userEvents(h, 'alice')).at(-1)).toEqual({ type: 'MatchFailed', data: { devicesTried: 0, at: T0 } });
    expect(await ko(h.engine.match('nobody', '123456'))).toMatchObject({ code: 'device-not-found' });
  });
});

describe('backup codes', () => {
  it('issueBackupCodes by user creates one static device; codes are shown once and each works once', async () => {
    const h = setup();
    const first = await ok(h.engine.issueBackupCodes({ userId: 'bob' }, { commandId: 'issue-1' }));
    expect(first).toMatchObject({ persistentId: `static/${first.deviceId}`, replayed: false });
    expect(first.codes).toHaveLength(10);
    expect(new Set(first.codes).size).toBe(10);
    for (const c of first.codes) expect(c).toMatch(/^[a-z2-7]{8}$/);
    const view = await ok(h.engine.device(first.deviceId));
    expect(view).toMatchObject({ kind: 'static', confirmed: true, backupCodesLeft: 10, userId: 'bob' });

    // The same command again: nothing new, and the codes are not shown again.
    const size = storeSize(h);
    expect(await ok(h.engine.issueBackupCodes({ userId: 'bob' }, { commandId: 'issue-1' }))).toEqual({
      deviceId: first.deviceId,
      persistentId: first.persistentId,
      codes: [],
      replayed: true,
    });
    expect(storeSize(h)).toBe(size);

    // Only digests are stored.
    const json = JSON.stringify(h.store.all());
    for (const c of first.codes) expect(json.toLowerCase()).not.toContain(c);

    const [c0, c1, c2, c3] = first.codes as [string, string, string, string];
    expect(await ok(h.engine.verify(first.deviceId, c0))).toMatchObject({ ok: true });
    expect(await ok(h.engine.verify(first.deviceId, c0))).toMatchObject({ ok: false, reason: 'invalid' });
    h.advance(1000);
    expect(await ok(h.engine.match('bob', c1))).toEqual({ ok: true, deviceId: first.deviceId, persistentId: first.persistentId });
    expect(await ok(h.engine.match('bob', c1))).toEqual({ ok: false, reason: 'no-match' });
    h.advance(1000);
    // Case and spaces do not matter.
    expect(await ok(h.engine.verify(first.deviceId, ` ${c2.slice(0, 4).toUpperCase()} ${c2.slice(4)} `))).toMatchObject({ ok: true });
    expect((await ok(h.engine.device(first.deviceId))).backupCodesLeft).toBe(7);

    // A new set replaces the old one, on the same device.
    const second = await ok(h.engine.issueBackupCodes({ userId: 'bob' }, { count: 5 }));
    expect(second.deviceId).toBe(first.deviceId);
    expect(second.codes).toHaveLength(5);
    expect((await ok(h.engine.device(first.deviceId))).backupCodesLeft).toBe(5);
    expect(await ok(h.engine.verify(first.deviceId, c3))).toMatchObject({ ok: false, reason: 'invalid' });
    h.advance(1000);
    expect(await ok(h.engine.verify(first.deviceId, second.codes[4]))).toMatchObject({ ok: true });
    expect((await ok(h.engine.userDevices('bob'))).map((d) => d.kind)).toEqual(['static']);
  });

  it('issueBackupCodes by device id, and not for other kinds', async () => {
    const h = setup();
    const s = await ok(h.engine.register({ kind: 'static', userId: 'bob' }));
    const r = await ok(h.engine.issueBackupCodes({ device: s.persistentId }, { count: 3 }));
    expect(r).toMatchObject({ deviceId: s.deviceId, replayed: false });
    expect(r.codes).toHaveLength(3);
    const t = await totpDevice(h, 'bob', 1);
    expect(await ko(h.engine.issueBackupCodes({ device: t.deviceId }))).toMatchObject({ code: 'wrong-kind' });
    expect(await ko(h.engine.issueBackupCodes({ device: s.deviceId }, { count: 0 }))).toMatchObject({ code: 'invalid-command', message: expect.stringContaining('count') });
  });
});

describe('side-channel challenges', () => {
  const email = async (h: Harness, destination = 'carol@example.com') =>
    (await ok(h.engine.register({ kind: 'email', userId: 'carol', destination, confirmed: true }))).deviceId;

  it('delivers the code to the sender, stores only a digest, and the delivered code verifies once', async () => {
    const h = setup();
    const deviceId = await email(h);
    expect(await ok(h.engine.challenge(deviceId))).toEqual({ ok: true, deviceId, validUntil: T0 + 300_000, replayed: false });
    expect(h.sender.deliveries).toEqual([{ deviceId, kind: 'email', destination: 'carol@example.com', code: expect.stringMatching(/^\d{6}$/), validUntil: T0 + 300_000 }]);
    const { code } = h.sender.deliveries[0]!;
    const events = await deviceEvents(h, deviceId);
    expect(events.at(-1)).toEqual({ type: 'ChallengeGenerated', data: { codeDigest: expect.stringMatching(/^[A-Za-z0-9_-]{16,}$/), validUntil: T0 + 300_000, at: T0 } });
    const json = JSON.stringify(h.store.all());
    expect(json).not.toMatch(new RegExp(`(^|[^0-9])${code}([^0-9]|$)`));
    expect(json).not.toContain('carol@example.com');

    h.advance(299_999); // usable strictly before expiry
    expect(await ok(h.engine.verify(deviceId, code))).toMatchObject({ ok: true });
    expect(await ok(h.engine.verify(deviceId, code))).toMatchObject({ ok: false, reason: 'no-challenge' });
  });

  it('a code is expired at validUntil', async () => {
    const h = setup();
    const deviceId = await email(h);
    await ok(h.engine.challenge(deviceId));
    h.advance(300_000);
    expect(await ok(h.engine.verify(deviceId, h.sender.deliveries[0]!.code))).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('an SMS goes to the normalised number', async () => {
    const h = setup();
    const r = await ok(h.engine.register({ kind: 'sms', userId: 'carol', destination: '+1 (415) 555-0100' }));
    await ok(h.engine.challenge(r.persistentId));
    expect(h.sender.deliveries[0]).toMatchObject({ kind: 'sms', destination: '+14155550100' });
    expect(JSON.stringify(h.store.all())).not.toContain('4155550100');
  });

  for (const mode of ['fail', 'throw'] as const) {
    it(`a sender that ${mode === 'fail' ? 'reports a failure' : 'throws'}: ChallengeDeliveryFailed, 'delivery-failed', cooldown released, nothing leaked`, async () => {
      const h = setup();
      const deviceId = await email(h);
      h.sender.mode = mode;
      const out = await ok(h.engine.challenge(deviceId));
      expect(out).toEqual({ ok: false, deviceId, reason: 'delivery-failed', message: expect.any(String) });
      const { code } = h.sender.deliveries[0]!;
      if (out.ok || out.reason !== 'delivery-failed') throw new Error('unreachable');
      expect(out.message).not.toContain(code);
      expect(out.message).not.toContain('carol@example.com');
      expect(out.message.length).toBeGreaterThan(0);

      const events = await deviceEvents(h, deviceId);
      expect(types(events)).toEqual(['DeviceRegistered', 'ChallengeGenerated', 'ChallengeDeliveryFailed']);
      expect(events.at(-1)).toEqual({ type: 'ChallengeDeliveryFailed', data: { reason: out.message, at: T0 } });
      const json = JSON.stringify(h.store.all());
      expect(json).not.toMatch(new RegExp(`(^|[^0-9])${code}([^0-9]|$)`));
      expect(json).not.toContain('carol@example.com');
      const view = await ok(h.engine.device(deviceId));
      expect(view.pendingCode).toBeNull();
      expect(view.cooldown).toEqual({ lastGeneratedAt: null, nextChallengeAt: null });
      // The undelivered code is void.
      expect(await ok(h.engine.verify(deviceId, code))).toMatchObject({ ok: false, reason: 'no-challenge' });

      // An immediate new challenge works.
      h.sender.mode = 'ok';
      h.advance(1000);
      expect(await ok(h.engine.challenge(deviceId))).toMatchObject({ ok: true });
      expect(h.sender.deliveries).toHaveLength(2);
    });
  }

  it('refuses a challenge during the cooldown with retryAt; a success releases it', async () => {
    const h = setup();
    const deviceId = await email(h);
    await ok(h.engine.challenge(deviceId));
    h.advance(10_000);
    expect(await ok(h.engine.challenge(deviceId))).toEqual({ ok: false, deviceId, reason: 'cooldown', retryAt: T0 + 60_001 });
    expect((await deviceEvents(h, deviceId)).at(-1)).toEqual({ type: 'ChallengeRefused', data: { reason: 'cooldown', retryAt: T0 + 60_001, at: T0 + 10_000 } });
    expect(h.sender.deliveries).toHaveLength(1);
    expect((await ok(h.engine.device(deviceId))).cooldown).toEqual({ lastGeneratedAt: T0, nextChallengeAt: T0 + 60_001 });
    h.at(T0 + 60_000);
    expect(await ok(h.engine.challenge(deviceId))).toMatchObject({ ok: false, reason: 'cooldown' });
    h.at(T0 + 60_001);
    expect(await ok(h.engine.challenge(deviceId))).toMatchObject({ ok: true });
    expect(await ok(h.engine.verify(deviceId, h.sender.deliveries[1]!.code))).toMatchObject({ ok: true });
    expect(await ok(h.engine.challenge(deviceId))).toMatchObject({ ok: true });
    expect(h.sender.deliveries).toHaveLength(3);
  });

  it('a challenge needs a side-channel device', async () => {
    const h = setup();
    const t = await totpDevice(h, 'carol', 1);
    expect(await ko(h.engine.challenge(t.deviceId))).toMatchObject({ code: 'wrong-kind' });
    expect(h.sender.deliveries).toHaveLength(0);
  });
});

describe('admin commands', () => {
  it('resetThrottle clears the failure count, recording actor and reason', async () => {
    const h = setup();
    const { deviceId, key } = await totpDevice(h, 'alice', 1);
    const bad = wrongCode([key], h.now());
    for (const wait of [0, 1000, 2000]) {
      h.advance(wait);
      expect(await ok(h.engine.verify(deviceId, bad))).toMatchObject({ ok: false, reason: 'invalid' });
    }
    const lastFailure = h.now();
    expect((await ok(h.engine.device(deviceId))).throttle).toEqual({ failureCount: 3, lockedUntil: lastFailure + 4000, lastFailureAt: lastFailure });
    const view = await ok(h.engine.resetThrottle(deviceId, 'user called support', { actor: 'admin:eve' }));
    expect(view.throttle).toEqual({ failureCount: 0, lockedUntil: null, lastFailureAt: null });
    const history = await ok(h.engine.history(deviceId));
    expect(history.at(-1)).toMatchObject({ event: { type: 'ThrottleReset', data: { reason: 'user called support', at: lastFailure } }, metadata: { actor: 'admin:eve' } });
    expect(await ok(h.engine.verify(deviceId, totpAt(key, h.now())))).toMatchObject({ ok: true });
    expect(await ko(h.engine.resetThrottle(deviceId, ''))).toMatchObject({ code: 'invalid-command', message: expect.stringContaining('reason') });
  });

  it('rename records the new name once', async () => {
    const h = setup();
    const { deviceId } = await totpDevice(h, 'alice', 1);
    expect((await ok(h.engine.rename(deviceId, 'Work phone'))).name).toBe('Work phone');
    const version = (await ok(h.engine.device(deviceId))).version;
    expect((await ok(h.engine.rename(deviceId, 'Work phone'))).version).toBe(version);
    expect(types(await deviceEvents(h, deviceId))).toEqual(['DeviceRegistered', 'DeviceRenamed']);
    expect(await ko(h.engine.rename(deviceId, 'x'.repeat(65)))).toMatchObject({ code: 'invalid-command', message: expect.stringContaining('name') });
  });

  it('after remove every command is a Left device-removed and the vault key is shredded', async () => {
    const h = setup();
    const { deviceId, key } = await totpDevice(h, 'alice', 1);
    const mail = (await ok(h.engine.register({ kind: 'email', userId: 'alice', destination: 'alice@example.com' }))).deviceId;
    const backup = await ok(h.engine.issueBackupCodes({ userId: 'alice' }));

    for (const id of [deviceId, mail, backup.deviceId]) {
      const removed = await ok(h.engine.remove(id, 'lost phone'));
      expect(removed.removed).toBe(true);
      expect((await deviceEvents(h, id)).at(-1)).toEqual({ type: 'DeviceRemoved', data: { at: T0, reason: 'lost phone' } });
    }
    const size = storeSize(h);
    const removedLeft = { code: 'device-removed', message: expect.any(String) };
    expect(await ko(h.engine.verify(deviceId, totpAt(key, h.now())))).toMatchObject(removedLeft);
    expect(await ko(h.engine.confirm(deviceId, totpAt(key, h.now())))).toMatchObject(removedLeft);
    expect(await ko(h.engine.rename(deviceId, 'Other'))).toMatchObject(removedLeft);
    expect(await ko(h.engine.resetThrottle(deviceId, 'why not'))).toMatchObject(removedLeft);
    expect(await ko(h.engine.remove(deviceId))).toMatchObject(removedLeft);
    expect(await ko(h.engine.challenge(mail))).toMatchObject(removedLeft);
    expect(await ko(h.engine.verify(mail, '123456'))).toMatchObject(removedLeft);
    expect(await ko(h.engine.issueBackupCodes({ device: backup.deviceId }))).toMatchObject(removedLeft);
    expect(await ko(h.engine.verify(backup.deviceId, backup.codes[0]))).toMatchObject(removedLeft);
    expect(storeSize(h)).toBe(size);
    expect(h.sender.deliveries).toHaveLength(0);

    // The history stays; the secrets are gone for good.
    expect((await ok(h.engine.device(deviceId))).removed).toBe(true);
    const reg = (await deviceEvents(h, deviceId))[0]!;
    const mailReg = (await deviceEvents(h, mail))[0]!;
    if (reg.type !== 'DeviceRegistered' || reg.data.config.kind !== 'totp') throw new Error('unexpected first event');
    if (mailReg.type !== 'DeviceRegistered' || mailReg.data.config.kind !== 'email') throw new Error('unexpected first event');
    await expect(h.vault.open(deviceId, reg.data.config.secret)).rejects.toBeInstanceOf(VaultError);
    await expect(h.vault.open(mail, mailReg.data.config.destination)).rejects.toMatchObject({ code: 'key-shredded' });
    await expect(h.vault.digester(backup.deviceId)).rejects.toMatchObject({ code: 'key-shredded' });

    // Removed devices are left out of the user's devices; new backup codes get a new device.
    expect(await ok(h.engine.userDevices('alice'))).toEqual([]);
    const again = await ok(h.engine.issueBackupCodes({ userId: 'alice' }));
    expect(again.deviceId).not.toBe(backup.deviceId);
  });
});

describe('time travel and history', () => {
  it('deviceAt(t) folds the stream up to t', async () => {
    const h = setup();
    const { deviceId, key } = await totpDevice(h, 'alice', 1);
    const bad = wrongCode([key], h.now());
    h.at(T0 + 1000);
    await ok(h.engine.verify(deviceId, bad));
    h.at(T0 + 3000);
    await ok(h.engine.verify(deviceId, bad));
    h.at(T0 + 100_000);

    const at = async (t: number) => {
      const v = await ok(h.engine.deviceAt(deviceId, t));
      return { version: v.version, throttle: v.throttle };
    };
    expect(await at(T0)).toEqual({ version: 1, throttle: { failureCount: 0, lockedUntil: null, lastFailureAt: null } });
    expect(await at(T0 + 999)).toEqual({ version: 1, throttle: { failureCount: 0, lockedUntil: null, lastFailureAt: null } });
    expect(await at(T0 + 1000)).toEqual({ version: 2, throttle: { failureCount: 1, lockedUntil: T0 + 2000, lastFailureAt: T0 + 1000 } });
    expect(await at(T0 + 2999)).toEqual({ version: 2, throttle: { failureCount: 1, lockedUntil: null, lastFailureAt: T0 + 1000 } });
    expect(await at(T0 + 3000)).toEqual({ version: 3, throttle: { failureCount: 2, lockedUntil: T0 + 5000, lastFailureAt: T0 + 3000 } });
    expect((await ok(h.engine.device(deviceId))).throttle).toEqual({ failureCount: 2, lockedUntil: null, lastFailureAt: T0 + 3000 });
    expect(await ko(h.engine.deviceAt(deviceId, T0 - 1))).toMatchObject({ code: 'device-not-found' });
    expect(await ko(h.engine.deviceAt(deviceId, Number.NaN))).toMatchObject({ code: 'invalid-command' });
  });

  it('history returns decoded events with their metadata', async () => {
    const h = setup();
    const client = { ip: '203.0.113.9', userAgent: 'Mozilla/5.0 (X11)' };
    const r = await ok(h.engine.register({ kind: 'totp', userId: 'alice' }, { commandId: 'reg-1', correlationId: 'login-7', actor: 'user:alice', client }));
    h.advance(5000);
    await ok(h.engine.verify(r.deviceId, totpAt(keyOf(r.otpauthUri), h.now()), { commandId: 'ver-1', correlationId: 'login-7', causationId: 'reg-1', actor: 'user:alice' }));
    const history = await ok(h.engine.history(r.persistentId));
    expect(history).toHaveLength(2);
    expect(history[0]).toEqual({
      version: 1,
      position: expect.any(String),
      recordedAt: T0,
      event: { type: 'DeviceRegistered', data: expect.objectContaining({ deviceId: r.deviceId, userId: 'alice', at: T0 }) },
      metadata: {
        eventId: eventIdFor('reg-1', 0, deviceStream(r.deviceId)),
        commandId: 'reg-1',
        correlationId: 'login-7',
        causationId: 'reg-1',
        actor: 'user:alice',
        client,
        prevHash: genesisHash(deviceStream(r.deviceId)),
      },
    });
    expect(history[1]).toEqual({
      version: 2,
      position: expect.any(String),
      recordedAt: T0 + 5000,
      event: { type: 'TokenVerified', data: { match: { kind: 'totp', step: Math.floor((T0 + 5000) / 30_000), drift: 0 }, at: T0 + 5000 } },
      metadata: {
        eventId: eventIdFor('ver-1', 0, deviceStream(r.deviceId)),
        commandId: 'ver-1',
        correlationId: 'login-7',
        causationId: 'reg-1',
        actor: 'user:alice',
        prevHash: eventHash({ ...history[0]!.event, eventId: history[0]!.metadata.eventId, metadata: history[0]!.metadata, streamName: deviceStream(r.deviceId), version: 1 }),
      },
    });
    expect(history[0]!.position < history[1]!.position).toBe(true);
    const user = await ok(h.engine.userHistory('alice'));
    expect(user).toEqual([
      expect.objectContaining({ version: 1, event: { type: 'DeviceAttached', data: { deviceId: r.deviceId, kind: 'totp', at: T0 } }, metadata: expect.objectContaining({ commandId: 'reg-1', actor: 'user:alice', client }) }),
    ]);
    // Without options: the actor is "system" and the ids default to a fresh command id.
    await ok(h.engine.rename(r.deviceId, 'Phone'));
    const m = (await ok(h.engine.history(r.deviceId))).at(-1)!.metadata;
    expect(m.actor).toBe('system');
    expect(m.commandId).toMatch(UUID);
    expect(m.correlationId).toBe(m.commandId);
    expect(m.causationId).toBe(m.commandId);
    expect(m.client).toBeUndefined();
  });
});

describe('idempotency: the same command id twice', () => {
  it('register writes nothing the second time and returns the same device and key', async () => {
    const h = setup();
    const first = await ok(h.engine.register({ kind: 'totp', userId: 'alice' }, { commandId: 'reg-1' }));
    const size = storeSize(h);
    const second = await ok(h.engine.register({ kind: 'totp', userId: 'alice' }, { commandId: 'reg-1' }));
    expect(storeSize(h)).toBe(size);
    expect(second).toEqual({ ...first, replayed: true });
    expect(second.secretBase32).toBe(first.secretBase32);
  });

  it('verify returns the first outcome again and writes nothing', async () => {
    const h = setup();
    const { deviceId, key } = await totpDevice(h, 'alice', 1);
    const code = totpAt(key, h.now());
    const first = await ok(h.engine.verify(deviceId, code, { commandId: 'v-1' }));
    expect(first).toMatchObject({ ok: true });
    const size = storeSize(h);
    expect(await ok(h.engine.verify(deviceId, code, { commandId: 'v-1' }))).toEqual(first);
    expect(storeSize(h)).toBe(size);

    const bad = wrongCode([key], h.now());
    const failed = await ok(h.engine.verify(deviceId, bad, { commandId: 'v-2' }));
    expect(failed).toEqual({ ok: false, deviceId, reason: 'invalid' });
    // Within the lock, the retried command still reports its own outcome, and counts once.
    expect(await ok(h.engine.verify(deviceId, bad, { commandId: 'v-2' }))).toEqual(failed);
    expect((await ok(h.engine.device(deviceId))).throttle.failureCount).toBe(1);
  });

  it('issueBackupCodes by device id: replayed, no codes shown again, nothing written', async () => {
    const h = setup();
    const s = await ok(h.engine.register({ kind: 'static', userId: 'bob' }));
    const first = await ok(h.engine.issueBackupCodes({ device: s.deviceId }, { commandId: 'i-1' }));
    const size = storeSize(h);
    expect(await ok(h.engine.issueBackupCodes({ device: s.deviceId }, { commandId: 'i-1' }))).toEqual({ ...first, codes: [], replayed: true });
    expect(storeSize(h)).toBe(size);
    expect(await ok(h.engine.verify(s.deviceId, first.codes[0]))).toMatchObject({ ok: true });
  });

  it('challenge and match are not applied twice either', async () => {
    const h = setup();
    const mail = (await ok(h.engine.register({ kind: 'email', userId: 'carol', destination: 'carol@example.com', confirmed: true }))).deviceId;
    const c1 = await ok(h.engine.challenge(mail, { commandId: 'c-1' }));
    const size = storeSize(h);
    expect(await ok(h.engine.challenge(mail, { commandId: 'c-1' }))).toEqual({ ...c1, replayed: true });
    expect(h.sender.deliveries).toHaveLength(1);
    expect(storeSize(h)).toBe(size);

    const code = h.sender.deliveries[0]!.code;
    const m1 = await ok(h.engine.match('carol', code, { commandId: 'm-1' }));
    expect(m1).toMatchObject({ ok: true, deviceId: mail });
    const size2 = storeSize(h);
    expect(await ok(h.engine.match('carol', code, { commandId: 'm-1' }))).toEqual(m1);
    expect(storeSize(h)).toBe(size2);

    const m2 = await ok(h.engine.match('carol', '000000', { commandId: 'm-2' }));
    expect(m2).toEqual({ ok: false, reason: 'no-match' });
    const size3 = storeSize(h);
    expect(await ok(h.engine.match('carol', '000000', { commandId: 'm-2' }))).toEqual(m2);
    expect(storeSize(h)).toBe(size3);
  });
});

describe('deterministic event ids', () => {
  const script = async (h: Harness) => {
    const r = await ok(h.engine.register({ kind: 'totp', userId: 'alice', secret: new Uint8Array(20).fill(3) }, { commandId: 'reg' }));
    await ok(h.engine.confirm(r.deviceId, totpAt(new Uint8Array(20).fill(3), h.now()), { commandId: 'conf' }));
    h.advance(30_000);
    await ok(h.engine.verify(r.deviceId, '000000', { commandId: 'bad' }));
    await ok(h.engine.issueBackupCodes({ userId: 'alice' }, { commandId: 'codes' }));
    await ok(h.engine.rename(r.deviceId, 'Phone', { commandId: 'ren' }));
    return h.store.all();
  };

  it('are the UUIDv5 of command id, stream and index, and the same on every run', async () => {
    const one = await script(setup({ random: seededRandom(1) }));
    const two = await script(setup({ random: seededRandom(2) }));
    expect(one.map((e) => e.eventId)).toEqual(two.map((e) => e.eventId));
    expect(one.map((e) => e.streamName)).toEqual(two.map((e) => e.streamName));
    expect(new Set(one.map((e) => e.eventId)).size).toBe(one.length);

    const index = new Map<string, number>();
    for (const e of one) {
      const m = e.metadata as { eventId: string; commandId: string };
      const k = `${e.streamName}\u0000${m.commandId}`;
      const i = index.get(k) ?? 0;
      index.set(k, i + 1);
      expect(e.eventId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(m.eventId).toBe(e.eventId);
      expect(e.eventId).toBe(eventIdFor(m.commandId, i, e.streamName));
    }
    // The confirmation wrote two events under one command id: indices 0 and 1.
    const conf = one.filter((e) => (e.metadata as { commandId: string }).commandId === 'conf');
    expect(conf.map((e) => e.type)).toEqual(['TokenVerified', 'DeviceConfirmed']);
    expect(one.filter((e) => e.streamName === userStream('alice')).map((e) => e.type)).toEqual(['DeviceAttached', 'DeviceAttached']);
  });
});
