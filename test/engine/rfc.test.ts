/**
 * The RFC test vectors, typed in from the RFCs, verified end to end through the engine.
 */
import { describe, expect, it } from 'vitest';
import { deviceEvents, ok, setup, types } from './harness.ts';

describe('RFC 4226 appendix D through engine.verify', () => {
  it('accepts the ten HOTP values of key "12345678901234567890" one after another', async () => {
    const h = setup();
    const { deviceId } = await ok(h.engine.register({ kind: 'hotp', userId: 'rfc', secret: Buffer.from('12345678901234567890') }));
    const values = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
    for (const [counter, value] of values.entries()) {
      expect(await ok(h.engine.verify(deviceId, value))).toEqual({ ok: true, deviceId, persistentId: `hotp/${deviceId}`, confirmed: false });
      const last = (await deviceEvents(h, deviceId)).at(-1);
      expect(last).toEqual({ type: 'TokenVerified', data: { match: { kind: 'hotp', counter }, at: h.now() } });
    }
    expect((await ok(h.engine.device(deviceId))).hotp?.counter).toBe(10);
    expect(types(await deviceEvents(h, deviceId))).toEqual(['DeviceRegistered', ...values.map(() => 'TokenVerified')]);
    // Each value worked once: the first one again is now behind the counter.
    expect(await ok(h.engine.verify(deviceId, values[0]))).toMatchObject({ ok: false, reason: 'invalid' });
  });
});

describe('RFC 6238 appendix B through engine.verify', () => {
  const keys = {
    SHA1: Buffer.from('12345678901234567890'),
    SHA256: Buffer.from('12345678901234567890123456789012'),
    SHA512: Buffer.from('1234567890123456789012345678901234567890123456789012345678901234'),
  } as const;
  // Time (s), SHA1, SHA256, SHA512 — the table of RFC 6238 appendix B.
  const table: readonly [number, string, string, string][] = [
    [59, '94287082', '46119246', '90693936'],
    [1111111109, '07081804', '68084774', '25091201'],
    [1111111111, '14050471', '67062674', '99943326'],
    [1234567890, '89005924', '91819424', '93441116'],
    [2000000000, '69279037', '90698825', '38618901'],
    [20000000000, '65353130', '77737706', '47863826'],
  ];
  const cases = table.flatMap(([time, sha1, sha256, sha512]) => [
    { time, algorithm: 'SHA1' as const, code: sha1 },
    { time, algorithm: 'SHA256' as const, code: sha256 },
    { time, algorithm: 'SHA512' as const, code: sha512 },
  ]);

  it('has all 18 values', () => expect(cases).toHaveLength(18));

  for (const { time, algorithm, code } of cases) {
    it(`T = ${time} s, ${algorithm}: ${code}`, async () => {
      const h = setup({ start: time * 1000 });
      // Tolerance 0: the code must belong to exactly this time step.
      const { deviceId } = await ok(
        h.engine.register({ kind: 'totp', userId: 'rfc', secret: keys[algorithm], algorithm, digits: 8, tolerance: 0 }),
      );
      expect(await ok(h.engine.verify(deviceId, code))).toMatchObject({ ok: true, deviceId });
      const step = Math.floor(time / 30);
      expect((await deviceEvents(h, deviceId)).at(-1)).toEqual({
        type: 'TokenVerified',
        data: { match: { kind: 'totp', step, drift: 0 }, at: time * 1000 },
      });
      // And the same code is a replay afterwards.
      expect(await ok(h.engine.verify(deviceId, code))).toMatchObject({ ok: false, reason: 'replay' });
    });
  }

  it('a code of the neighbouring step is rejected with tolerance 0', async () => {
    const h = setup({ start: 1111111111 * 1000 + 30_000 });
    const { deviceId } = await ok(h.engine.register({ kind: 'totp', userId: 'rfc', secret: keys.SHA1, digits: 8, tolerance: 0 }));
    expect(await ok(h.engine.verify(deviceId, '14050471'))).toMatchObject({ ok: false, reason: 'invalid' });
  });
});
