/**
 * No event is appended that its own codec would not read back, every policy value is bounded
 * so that decisions stay inside the codecs' ranges, and an erasure works on a stream that
 * holds an event that does not decode (written before these checks, or edited in the database).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createMemoryEventStore } from '../../adapters/store/memory.ts';
import { createMemoryVault } from '../../adapters/vault/memory.ts';
import { eventHash } from '../../domain/chain.ts';
import { createEngine } from '../../app/engine.ts';
import { deviceStream } from '../../domain/ids.ts';
import { POLICY_BOUNDS, makePolicy, policyProblems, type PolicyOverrides } from '../../domain/policies/policy.ts';
import { decodeAll, ko, ok, setup, systemRandom } from './harness.ts';

/** The last millisecond a Date can hold. */
const END_OF_TIME = 8.64e15;

describe('the append boundary', () => {
  it('refuses to append an event that would not decode, and writes nothing', async () => {
    const h = setup({ start: END_OF_TIME - 1000 });
    const { deviceId } = await ok(h.engine.register({ kind: 'email', userId: 'alice', destination: 'alice@example.com' }));
    const before = await h.store.readStream(deviceStream(deviceId));
    // A code valid for 300 s from one second before the end of time ends past it.
    const e = await ko(h.engine.challenge(deviceId));
    expect(e.code).toBe('unstorable-event');
    expect(e.message).toContain(deviceStream(deviceId));
    expect(e.message).toContain('validUntil');
    expect(e.message).toContain('nothing was written');
    expect(e.message).not.toContain('alice@example.com');
    const after = await h.store.readStream(deviceStream(deviceId));
    expect(after.version).toBe(before.version);
    expect(h.sender.deliveries).toHaveLength(0);
    // Everything that was written reads back, and the device still works at a sane time.
    expect(() => decodeAll(after.events)).not.toThrow();
    h.at(Date.UTC(2030, 0, 1));
    expect((await ok(h.engine.challenge(deviceId))).ok).toBe(true);
  });
});

describe('policy bounds', () => {
  const cases: [string, PolicyOverrides, string][] = [
    ['a cooldown of 1e308 s', { cooldownSeconds: 1e308 }, 'cooldownSeconds'],
    ['a code validity of 1e20 s', { codeValiditySeconds: 99999999999999999999 }, 'codeValiditySeconds'],
    ['a code validity of 0.5 s', { codeValiditySeconds: 0.5 }, 'codeValiditySeconds'],
    ['a negative cooldown', { cooldownSeconds: -1 }, 'cooldownSeconds'],
    ['a throttle factor of a year', { throttle: { totp: { factor: 31_536_000 } } }, 'throttle.totp.factor'],
    ['a NaN throttle factor', { matchThrottle: { factor: Number.NaN } }, 'matchThrottle.factor'],
    ['an infinite ceiling', { throttle: { sms: { maxDelaySeconds: Number.POSITIVE_INFINITY } } }, 'throttle.sms.maxDelaySeconds'],
    ['a failure expiry of 0 s', { throttle: { email: { failureExpirySeconds: 0 } } }, 'throttle.email.failureExpirySeconds'],
    ['a fractional maxDrift', { maxDrift: 1.5 }, 'maxDrift'],
    ['a maxDrift of 101', { maxDrift: 101 }, 'maxDrift'],
    ['101 backup codes', { backupCodeCount: 101 }, 'backupCodeCount'],
    ['totpSync as text', { totpSync: 'yes' as unknown as boolean }, 'totpSync'],
  ];
  for (const [what, overrides, field] of cases)
    it(`refuses ${what}, naming the setting and its range`, () => {
      const problems = policyProblems(makePolicy(overrides));
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain(field);
      expect(problems[0]).toMatch(/from -?\d+ to \d+|must be true or false/);
      expect(() => createEngine({ store: createMemoryEventStore(), vault: createMemoryVault(), clock: { now: () => 0 }, random: systemRandom, policy: overrides })).toThrow(field);
    });

  it('takes every bound itself', () => {
    const at = (edge: 'min' | 'max') => {
      const b = (k: keyof typeof POLICY_BOUNDS) => POLICY_BOUNDS[k][edge];
      const throttle = { factor: b('factor'), maxDelaySeconds: b('maxDelaySeconds'), failureExpirySeconds: b('failureExpirySeconds') };
      return makePolicy({
        throttle: { totp: throttle, hotp: throttle, static: throttle, email: throttle, sms: throttle },
        matchThrottle: throttle,
        cooldownSeconds: b('cooldownSeconds'),
        codeValiditySeconds: b('codeValiditySeconds'),
        maxDrift: b('maxDrift'),
        backupCodeCount: b('backupCodeCount'),
      });
    };
    expect(policyProblems(at('min'))).toEqual([]);
    expect(policyProblems(at('max'))).toEqual([]);
  });

  it('any policy within the bounds, at any time from 1970 to 9999, writes only events that read back', async () => {
    const seconds = (k: keyof typeof POLICY_BOUNDS) => fc.double({ min: POLICY_BOUNDS[k].min, max: POLICY_BOUNDS[k].max, noNaN: true });
    const throttle = fc.record({
      factor: seconds('factor'),
      maxDelaySeconds: fc.option(seconds('maxDelaySeconds')),
      failureExpirySeconds: fc.option(seconds('failureExpirySeconds')),
    });
    await fc.assert(
      fc.asyncProperty(
        throttle,
        throttle,
        seconds('cooldownSeconds'),
        seconds('codeValiditySeconds'),
        fc.integer({ min: 0, max: Date.UTC(9999, 11, 31) - 86_400_000 * 400 }),
        fc.array(fc.integer({ min: 0, max: 10 ** 10 }), { minLength: 1, maxLength: 6 }),
        async (t, match, cooldownSeconds, codeValiditySeconds, start, steps) => {
          const policy = { throttle: { email: t, totp: t }, matchThrottle: match, cooldownSeconds, codeValiditySeconds };
          const h = setup({ policy, start });
          const email = await ok(h.engine.register({ kind: 'email', userId: 'u', destination: 'u@example.com', confirmed: true }));
          const totp = await ok(h.engine.register({ kind: 'totp', userId: 'u', confirmed: true }));
          for (const ms of steps) {
            h.advance(ms);
            await ok(h.engine.challenge(email.deviceId));
            await ok(h.engine.verify(email.deviceId, '000000'));
            await ok(h.engine.verify(totp.deviceId, '000000'));
            await ok(h.engine.match('u', '000000'));
          }
          const all = (await h.store.readAll()).events;
          expect(() => decodeAll(all)).not.toThrow();
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('erasure of a user whose device stream holds an event that does not decode', () => {
  const poison = async (h: ReturnType<typeof setup>, deviceId: string) => {
    const stream = deviceStream(deviceId);
    const read = await h.store.readStream(stream);
    const last = read.events[read.events.length - 1]!;
    const metadata = { eventId: 'poison', commandId: 'poison', correlationId: 'poison', causationId: 'poison', actor: 'system', prevHash: eventHash(last) };
    const bad = { eventId: 'poison', type: 'ChallengeGenerated', data: { codeDigest: 'A'.repeat(43), validUntil: 1e20, at: h.now() }, metadata };
    expect((await h.store.appendToStream(stream, [bad], read.version)).ok).toBe(true);
  };

  it('removes every device, destroys every key, keeps the chain whole, and a retry changes nothing', async () => {
    const h = setup();
    const email = await ok(h.engine.register({ kind: 'email', userId: 'bob', destination: 'bob@example.com', confirmed: true }));
    const totp = await ok(h.engine.register({ kind: 'totp', userId: 'bob', confirmed: true }));
    await poison(h, email.deviceId);
    expect((await ko(h.engine.device(email.deviceId))).code).toBe('corrupt-event');

    const erased = await ok(h.engine.eraseUser('bob', 'GDPR request 17', { commandId: 'erase-bob' }));
    expect([...erased.removed].sort()).toEqual([email.deviceId, totp.deviceId].sort());
    const stream = await h.store.readStream(deviceStream(email.deviceId));
    const removal = stream.events[stream.events.length - 1]!;
    expect(removal.type).toBe('DeviceRemoved');
    expect(removal.data).toMatchObject({ reason: 'GDPR request 17' });
    expect((await ok(h.engine.verifyChain({ device: email.deviceId }))).broken).toBeNull();
    for (const d of [email.deviceId, totp.deviceId]) await expect(h.vault.digester(d)).rejects.toMatchObject({ code: 'key-shredded' });
    expect((await ok(h.engine.device(totp.deviceId))).removed).toBe(true);

    // A retry (same command id) answers as the first call did and writes nothing.
    const again = await ok(h.engine.eraseUser('bob', 'GDPR request 17', { commandId: 'erase-bob' }));
    expect([...again.removed].sort()).toEqual([...erased.removed].sort());
    expect((await h.store.readStream(deviceStream(email.deviceId))).version).toBe(stream.version);
    // Another erasure finds nothing left to remove.
    expect((await ok(h.engine.eraseUser('bob', 'again', { commandId: 'erase-bob-2' }))).removed).toEqual([]);
  });
});
