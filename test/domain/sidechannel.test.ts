/**
 * E-mail and SMS codes (django-otp's SideChannelDevice + EmailDevice 1.3+ CooldownMixin):
 * a challenge draws a code valid 300 s, usable strictly before expiry, consumed on success;
 * a second challenge waits out a 60 s cooldown (strict >) that a success or a failed
 * delivery releases.
 */
import { describe, expect, it } from 'vitest';
import type { Kind } from '../../domain/codecs.ts';
import type { RegisteredDevice } from '../../domain/device.ts';
import type { DeviceEvent } from '../../domain/events.ts';
import { T0, challenge, configFor, digest, failed, failures, refused, registered, verified } from './fixtures.ts';
import { given, policy, run } from './spec.ts';

const G = T0 + 10_000; // when the pending code was generated
const CODE = '428913';
const OTHER = '771045';
const generate = { type: 'GenerateChallenge' } as const;
const verify = (token: unknown) => ({ type: 'VerifyToken', token }) as const;
const ok = (at: number) => verified({ kind: 'sidechannel' }, at);
const generated = (code: string, at: number, validUntil = at + 300_000): DeviceEvent => challenge(code, at, validUntil);
const cooling = (retryAt: number, at: number): DeviceEvent => ({ type: 'ChallengeRefused', data: { reason: 'cooldown', retryAt, at } });
const pending = (s: unknown) => {
  const d = s as RegisteredDevice;
  if (d.k.kind !== 'email' && d.k.kind !== 'sms') throw new Error('not a side-channel device');
  return { codeDigest: d.k.codeDigest, validUntil: d.k.validUntil, lastGeneratedAt: d.cooldown.lastGeneratedAt };
};

describe.each(['email', 'sms'] as const)('%s device', (kind) => {
  const device: DeviceEvent[] = [registered(configFor(kind))];
  const withCode: DeviceEvent[] = [...device, generated(CODE, G)];

  describe('challenge', () => {
    it('GenerateChallenge records ChallengeGenerated with the code’s digest and validUntil = now + 300 s', () => {
      const s = given(device).when(generate, { now: G, digest, challengeCode: CODE }).then([generated(CODE, G)]);
      expect(pending(s)).toEqual({ codeDigest: digest(CODE), validUntil: G + 300_000, lastGeneratedAt: G });
    });

    it('the event never holds the code in plaintext', () => {
      const events = given(device).when(generate, { now: G, digest, challengeCode: CODE }).events();
      expect(JSON.stringify(events)).not.toContain(CODE);
    });

    it('the validity comes from the policy at decision time (codeValiditySeconds 600)', () => {
      given(device)
        .when(generate, { now: G, digest, challengeCode: CODE, policy: policy({ codeValiditySeconds: 600 }) })
        .then([generated(CODE, G, G + 600_000)]);
    });

    it('GenerateChallenge without a drawn code or the digest key is an internal error (Left)', () => {
      given(device).when(generate, { now: G, digest }).thenFails('invalid-command');
      given(device).when(generate, { now: G, challengeCode: CODE }).thenFails('invalid-command');
    });

    it('a new challenge replaces the pending code: the old code fails, the new one works', () => {
      const history = run(withCode, [{ command: generate, context: { now: G + 60_001, digest, challengeCode: OTHER } }]);
      expect(history.slice(-1)).toEqual([generated(OTHER, G + 60_001)]);
      given(history).when(verify(CODE), { now: G + 60_002, digest }).then([failed(G + 60_002, 'invalid')]);
      given(history).when(verify(OTHER), { now: G + 60_002, digest }).then([ok(G + 60_002)]);
    });

    it('a challenge does not lift a throttle lock (django-otp: generation leaves throttling alone)', () => {
      const history = [...device, ...failures(3, G)];
      const after = run(history, [{ command: generate, context: { now: G + 1, digest, challengeCode: CODE } }]);
      expect((given(after).state() as RegisteredDevice).throttle).toEqual({ failureCount: 3, lastFailureAt: G });
      given(after).when(verify(CODE), { now: G + 2, digest }).then([refused(3, G + 4000, G + 2)]);
    });
  });

  describe('verification', () => {
    it('strictly before validUntil (1 ms before) the code works and is consumed', () => {
      const at = G + 299_999;
      const s = given(withCode).when(verify(CODE), { now: at, digest }).then([ok(at)]);
      expect(pending(s)).toEqual({ codeDigest: null, validUntil: null, lastGeneratedAt: null });
      expect((s as RegisteredDevice).lastUsedAt).toBe(at);
    });

    it('at validUntil exactly the code is expired', () => {
      given(withCode).when(verify(CODE), { now: G + 300_000, digest }).then([failed(G + 300_000, 'expired')]);
    });

    it('after validUntil the code is expired, and an expired attempt counts as a failure', () => {
      const s = given(withCode).when(verify(CODE), { now: G + 400_000, digest }).then([failed(G + 400_000, 'expired')]);
      expect((s as RegisteredDevice).throttle).toEqual({ failureCount: 1, lastFailureAt: G + 400_000 });
    });

    it('single use: the same code a second time → no-challenge', () => {
      given([...withCode, ok(G + 1000)]).when(verify(CODE), { now: G + 2000, digest }).then([failed(G + 2000, 'no-challenge')]);
    });

    it('a failed attempt neither clears nor expires the code: the right code works once the throttle allows', () => {
      const afterWrong = run(withCode, [{ command: verify(OTHER), context: { now: G + 1000, digest } }]);
      expect(afterWrong.slice(-1)).toEqual([failed(G + 1000, 'invalid')]);
      expect(pending(given(afterWrong).state())).toEqual({ codeDigest: digest(CODE), validUntil: G + 300_000, lastGeneratedAt: G });
      given(afterWrong).when(verify(CODE), { now: G + 1999, digest }).then([refused(1, G + 2000, G + 1999)]);
      given(afterWrong).when(verify(CODE), { now: G + 2000, digest }).then([ok(G + 2000)]);
    });

    it('no challenge → no-challenge (counted as a failure)', () => {
      const s = given(device).when(verify(CODE), { now: G, digest }).then([failed(G, 'no-challenge')]);
      expect((s as RegisteredDevice).throttle.failureCount).toBe(1);
    });

    it.each(['', '42891', '4289134', 'abcdef', '４２８９１３', null, 428913])('malformed %j → malformed', (token) => {
      given(withCode).when(verify(token), { now: G + 1, digest }).then([failed(G + 1, 'malformed')]);
    });

    it('whitespace is ignored', () => {
      given(withCode).when(verify(' 428 913\t'), { now: G + 1, digest }).then([ok(G + 1)]);
    });

    it('codeDigits 8 (policy): an 8-digit code works, a 6-digit one is malformed', () => {
      const p = policy({ codeDigits: 8 });
      const history = [...device, generated('04281913', G)];
      given(history).when(verify('04281913'), { now: G + 1, digest, policy: p }).then([ok(G + 1)]);
      given(history).when(verify(CODE), { now: G + 1, digest, policy: p }).then([failed(G + 1, 'malformed')]);
    });

    it('a well-formed code without the digest key is an internal error (Left)', () => {
      given(withCode).when(verify(CODE), { now: G + 1 }).thenFails('invalid-command');
    });
  });

  describe('cooldown', () => {
    it('a second challenge within 60 s → ChallengeRefused with retryAt, and no state change', () => {
      const g = given(withCode);
      const s = g.when(generate, { now: G + 30_000, digest, challengeCode: OTHER }).then([cooling(G + 60_001, G + 30_000)]);
      expect(s).toEqual(g.state());
    });

    it('strict > as django-otp: refused at exactly lastGeneratedAt + 60 s; retryAt is the first allowed ms', () => {
      given(withCode).when(generate, { now: G + 60_000, digest, challengeCode: OTHER }).then([cooling(G + 60_001, G + 60_000)]);
      given(withCode).when(generate, { now: G + 60_001, digest, challengeCode: OTHER }).then([generated(OTHER, G + 60_001)]);
    });

    it('the cooldown comes from the policy at decision time (120 s, and 0 s)', () => {
      given(withCode)
        .when(generate, { now: G + 60_001, digest, challengeCode: OTHER, policy: policy({ cooldownSeconds: 120 }) })
        .then([cooling(G + 120_001, G + 60_001)]);
      const zero = policy({ cooldownSeconds: 0 });
      given(withCode).when(generate, { now: G, digest, challengeCode: OTHER, policy: zero }).then([cooling(G + 1, G)]);
      given(withCode).when(generate, { now: G + 1, digest, challengeCode: OTHER, policy: zero }).then([generated(OTHER, G + 1)]);
    });

    it('a success releases the cooldown: a new challenge is allowed at once', () => {
      given([...withCode, ok(G + 5000)])
        .when(generate, { now: G + 5000, digest, challengeCode: OTHER })
        .then([generated(OTHER, G + 5000)]);
    });

    it('a failed verification does not release the cooldown', () => {
      given([...withCode, failed(G + 5000)])
        .when(generate, { now: G + 10_000, digest, challengeCode: OTHER })
        .then([cooling(G + 60_001, G + 10_000)]);
    });
  });

  describe('delivery failure', () => {
    const deliveryFailed = (at: number): DeviceEvent => ({ type: 'ChallengeDeliveryFailed', data: { reason: 'SMTP 550 mailbox unavailable', at } });

    it('RecordDeliveryFailure records ChallengeDeliveryFailed, voids the code and releases the cooldown', () => {
      const s = given(withCode)
        .when({ type: 'RecordDeliveryFailure', reason: 'SMTP 550 mailbox unavailable' }, { now: G + 10 })
        .then([deliveryFailed(G + 10)]);
      expect(pending(s)).toEqual({ codeDigest: null, validUntil: null, lastGeneratedAt: null });
    });

    it('after a failed delivery the code is void (no-challenge) and a new challenge is allowed at once', () => {
      const history = [...withCode, deliveryFailed(G + 10)];
      given(history).when(verify(CODE), { now: G + 20, digest }).then([failed(G + 20, 'no-challenge')]);
      given(history).when(generate, { now: G + 20, digest, challengeCode: OTHER }).then([generated(OTHER, G + 20)]);
    });

    it('RecordDeliveryFailure without a pending code → error no-challenge', () => {
      given(device).when({ type: 'RecordDeliveryFailure', reason: 'timeout' }, { now: G }).thenFails('no-challenge');
      given([...withCode, ok(G + 1)]).when({ type: 'RecordDeliveryFailure', reason: 'timeout' }, { now: G + 2 }).thenFails('no-challenge');
    });
  });
});

describe('side-channel commands on other kinds', () => {
  it.each<Kind>(['totp', 'hotp', 'static'])('GenerateChallenge on a %s device → wrong-kind', (kind) => {
    given([registered(configFor(kind))]).when(generate, { now: G, digest, challengeCode: CODE }).thenFails('wrong-kind');
  });

  it.each<Kind>(['totp', 'hotp', 'static'])('RecordDeliveryFailure on a %s device → wrong-kind', (kind) => {
    given([registered(configFor(kind))]).when({ type: 'RecordDeliveryFailure', reason: 'x' }, { now: G }).thenFails('wrong-kind');
  });
});
