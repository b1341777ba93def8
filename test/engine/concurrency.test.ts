/**
 * Races on the memory store: every caller appends at the version it read, the loser of an
 * append re-reads and decides again.
 */
import { describe, expect, it } from 'vitest';
import { isLeft } from 'fp-ts/lib/Either.js';
import { parseOtpauthUri } from '../../domain/kinds/uri.ts';
import type { VerifyOutcome } from '../../app/engine.ts';
import { deviceEvents, foldedMatchesEngine, ok, setup, totpAt, types, type Harness } from './harness.ts';

const N = 50;

const race = async (h: Harness) => {
  const key = new Uint8Array(20).fill(9);
  const { deviceId } = await ok(h.engine.register({ kind: 'totp', userId: 'alice', secret: key, confirmed: true }));
  const code = totpAt(key, h.now());
  const outcomes = await Promise.all(Array.from({ length: N }, () => ok(h.engine.verify(deviceId, code))));
  return { deviceId, outcomes };
};

const count = (outcomes: readonly VerifyOutcome[], f: (o: VerifyOutcome) => boolean) => outcomes.filter(f).length;

describe(`${N} concurrent verifications of one TOTP code`, () => {
  it('without throttling: exactly one succeeds, every other one is a replay', async () => {
    const h = setup({ policy: { throttle: { totp: { factor: 0 } } } });
    const { deviceId, outcomes } = await race(h);
    expect(count(outcomes, (o) => o.ok)).toBe(1);
    expect(count(outcomes, (o) => !o.ok && o.reason === 'replay')).toBe(N - 1);
    const events = await deviceEvents(h, deviceId);
    expect(types(events)).toEqual(['DeviceRegistered', 'TokenVerified', ...Array(N - 1).fill('VerificationFailed')]);
    expect(events.slice(2).every((e) => e.type === 'VerificationFailed' && e.data.reason === 'replay')).toBe(true);
    const { folded, engine, version, engineVersion } = await foldedMatchesEngine(h, deviceId);
    expect(engine).toEqual(folded);
    expect(engineVersion).toBe(version);
    expect(engine.failureCount).toBe(N - 1);
  });

  it('with the default throttle: one success, one replay, and the rest throttled', async () => {
    const h = setup();
    const { deviceId, outcomes } = await race(h);
    expect(count(outcomes, (o) => o.ok)).toBe(1);
    expect(count(outcomes, (o) => !o.ok && o.reason === 'replay')).toBe(1);
    expect(count(outcomes, (o) => !o.ok && o.reason === 'throttled')).toBe(N - 2);
    for (const o of outcomes) if (!o.ok && o.reason === 'throttled') expect(o).toMatchObject({ retryAt: h.now() + 1000, failureCount: 1 });
    const events = await deviceEvents(h, deviceId);
    expect(types(events)).toEqual(['DeviceRegistered', 'TokenVerified', 'VerificationFailed', ...Array(N - 2).fill('VerificationRefused')]);
    const { folded, engine, version, engineVersion } = await foldedMatchesEngine(h, deviceId);
    expect(engine).toEqual(folded);
    expect(engineVersion).toBe(version);
    expect(engine.failureCount).toBe(1);
  });

  it('one backup code used concurrently works once', async () => {
    const h = setup({ policy: { throttle: { static: { factor: 0 } } } });
    const issued = await ok(h.engine.issueBackupCodes({ userId: 'bob' }));
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => ok(h.engine.verify(issued.deviceId, issued.codes[0]))));
    expect(count(outcomes, (o) => o.ok)).toBe(1);
    expect(count(outcomes, (o) => !o.ok && o.reason === 'invalid')).toBe(19);
    expect((await ok(h.engine.device(issued.deviceId))).backupCodesLeft).toBe(9);
  });

  it('one code matched concurrently across a user’s devices is accepted once', async () => {
    const h = setup({ policy: { throttle: { totp: { factor: 0 } }, matchThrottle: { factor: 0 } } });
    const key = new Uint8Array(20).fill(4);
    await ok(h.engine.register({ kind: 'totp', userId: 'alice', secret: new Uint8Array(20).fill(5), confirmed: true }));
    const b = await ok(h.engine.register({ kind: 'totp', userId: 'alice', secret: key, confirmed: true }));
    const code = totpAt(key, h.now());
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => ok(h.engine.match('alice', code))));
    expect(outcomes.filter((o) => o.ok)).toEqual([{ ok: true, deviceId: b.deviceId, persistentId: b.persistentId }]);
    expect(outcomes.filter((o) => !o.ok && o.reason === 'no-match')).toHaveLength(19);
    expect(types(await deviceEvents(h, b.deviceId)).filter((t) => t === 'TokenVerified')).toHaveLength(1);
  });
});

describe('concurrent first registrations with the same command id', () => {
  it('create one device, and both callers get its key', async () => {
    const h = setup();
    const [one, two] = await Promise.all([
      ok(h.engine.register({ kind: 'totp', userId: 'alice' }, { commandId: 'reg-1' })),
      ok(h.engine.register({ kind: 'totp', userId: 'alice' }, { commandId: 'reg-1' })),
    ]);
    expect(two.deviceId).toBe(one.deviceId);
    expect(types(await deviceEvents(h, one.deviceId))).toEqual(['DeviceRegistered']);
    expect(h.store.all().map((e) => e.type)).toEqual(['DeviceAttached', 'DeviceRegistered']);
    expect((await ok(h.engine.userDevices('alice'))).map((d) => d.deviceId)).toEqual([one.deviceId]);
    // Whatever each caller was shown is the key the device holds.
    for (const r of [one, two]) {
      const p = parseOtpauthUri(r.otpauthUri!);
      if (isLeft(p)) throw new Error(p.left);
      h.advance(30_000);
      expect(await ok(h.engine.verify(r.deviceId, totpAt(p.right.key, h.now())))).toMatchObject({ ok: true });
    }
  });

  it('issue one set of backup codes, and every code shown works', async () => {
    const h = setup();
    const s = await ok(h.engine.register({ kind: 'static', userId: 'bob' }));
    const [one, two] = await Promise.all([
      ok(h.engine.issueBackupCodes({ device: s.deviceId }, { commandId: 'issue-1' })),
      ok(h.engine.issueBackupCodes({ device: s.deviceId }, { commandId: 'issue-1' })),
    ]);
    expect(types(await deviceEvents(h, s.deviceId))).toEqual(['DeviceRegistered', 'StaticTokensIssued']);
    for (const code of [...one.codes, ...two.codes]) expect(await ok(h.engine.verify(s.deviceId, code))).toMatchObject({ ok: true });
  });

  it('deliver one challenge code, and the delivered code works', async () => {
    const h = setup();
    const { deviceId } = await ok(h.engine.register({ kind: 'email', userId: 'carol', destination: 'carol@example.com' }));
    await Promise.all([ok(h.engine.challenge(deviceId, { commandId: 'c-1' })), ok(h.engine.challenge(deviceId, { commandId: 'c-1' }))]);
    expect(types(await deviceEvents(h, deviceId))).toEqual(['DeviceRegistered', 'ChallengeGenerated']);
    expect(h.sender.deliveries).toHaveLength(1);
    expect(await ok(h.engine.verify(deviceId, h.sender.deliveries[0]!.code))).toMatchObject({ ok: true });
  });
});
