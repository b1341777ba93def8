/**
 * HOTP (RFC 4226) with django-otp's rules: accepts counter … counter+tolerance (look-ahead
 * only), first match wins, the counter moves past the match.
 */
import { describe, expect, it } from 'vitest';
import type { RegisteredDevice } from '../../domain/device.ts';
import type { DeviceEvent, HotpConfig } from '../../domain/events.ts';
import { hotpCode } from '../../domain/kinds/oath.ts';
import { RFC4226, RFC_KEY, SHORT_KEY, T0, failed, hotpConfig, registered, verified } from './fixtures.ts';
import { given, run } from './spec.ts';

const N = T0 + 10_000;
const verify = (token: unknown) => ({ type: 'VerifyToken', token }) as const;
const device = (o: Partial<HotpConfig> = {}): DeviceEvent[] => [registered(hotpConfig(o))];
const match = (counter: number, at: number) => verified({ kind: 'hotp', counter }, at);
const counterOf = (s: unknown) => {
  const d = s as RegisteredDevice;
  if (d.k.kind !== 'hotp') throw new Error('not an HOTP device');
  return d.k.counter;
};

describe('HOTP look-ahead', () => {
  it('the RFC 4226 test values are what the domain computes', () => {
    expect(RFC4226.map((_, c) => hotpCode(RFC_KEY, c, 6))).toEqual(RFC4226);
  });

  it.each([0, 1, 2, 3, 4, 5])('look-ahead 5: the code for counter+%i is accepted and the counter moves past it', (c) => {
    const s = given(device()).when(verify(RFC4226[c]), { now: N, secret: RFC_KEY }).then([match(c, N)]);
    expect(counterOf(s)).toBe(c + 1);
  });

  it('look-ahead 5: the code for counter+6 is rejected and the counter stays', () => {
    const s = given(device()).when(verify(RFC4226[6]), { now: N, secret: RFC_KEY }).then([failed(N)]);
    expect(counterOf(s)).toBe(0);
  });

  it('nothing behind the counter: codes below it are permanently dead', () => {
    const g = given(device({ counter: 3 }));
    for (const c of [0, 1, 2]) g.when(verify(RFC4226[c]), { now: N, secret: RFC_KEY }).then([failed(N)]);
    g.when(verify(RFC4226[3]), { now: N, secret: RFC_KEY }).then([match(3, N)]);
  });

  it('a used code is rejected the second time (the counter moved past it)', () => {
    const history = run(device(), [{ command: verify(RFC4226[0]), context: { now: N, secret: RFC_KEY } }]);
    given(history).when(verify(RFC4226[0]), { now: N + 5000, secret: RFC_KEY }).then([failed(N + 5000)]);
  });

  it('skipping ahead inside the window resyncs: after counter 4, the window is 5 … 10', () => {
    const history = run(device(), [{ command: verify(RFC4226[4]), context: { now: N, secret: RFC_KEY } }]);
    expect(counterOf(given(history).state())).toBe(5);
    const g = given(history);
    g.when(verify(RFC4226[3]), { now: N + 1, secret: RFC_KEY }).then([failed(N + 1)]);
    g.when(verify(RFC4226[5]), { now: N + 1, secret: RFC_KEY }).then([match(5, N + 1)]);
    g.when(verify(hotpCode(RFC_KEY, 10, 6)), { now: N + 1, secret: RFC_KEY }).then([match(10, N + 1)]);
    g.when(verify(hotpCode(RFC_KEY, 11, 6)), { now: N + 1, secret: RFC_KEY }).then([failed(N + 1)]);
  });

  it('tolerance 0: only the code for the counter itself', () => {
    const g = given(device({ tolerance: 0 }));
    g.when(verify(RFC4226[1]), { now: N, secret: RFC_KEY }).then([failed(N)]);
    g.when(verify(RFC4226[0]), { now: N, secret: RFC_KEY }).then([match(0, N)]);
  });

  it('8 digits: the RFC 6238 SHA1 vector at counter 1 (94287082) is accepted', () => {
    given(device({ digits: 8, counter: 1, tolerance: 0 }))
      .when(verify('94287082'), { now: N, secret: RFC_KEY })
      .then([match(1, N)]);
  });

  it('8 digits: a 6-digit code is malformed', () => {
    given(device({ digits: 8 })).when(verify(RFC4226[0]), { now: N, secret: RFC_KEY }).then([failed(N, 'malformed')]);
  });

  it('a large counter (beyond 2^32) still verifies', () => {
    const c = 2 ** 40 + 7;
    given(device({ counter: c })).when(verify(hotpCode(RFC_KEY, c + 2, 6)), { now: N, secret: RFC_KEY }).then([match(c + 2, N)]);
  });

  it('a 10-byte key verifies', () => {
    given(device()).when(verify(hotpCode(SHORT_KEY, 2, 6)), { now: N, secret: SHORT_KEY }).then([match(2, N)]);
  });

  it.each(['', '12345', '1234567', 'abcdef', '１２３４５６'])(
    'malformed token %j → VerificationFailed malformed, counter unchanged',
    (token) => {
      const s = given(device()).when(verify(token), { now: N, secret: RFC_KEY }).then([failed(N, 'malformed')]);
      expect(counterOf(s)).toBe(0);
    },
  );

  it('whitespace is ignored', () => {
    given(device()).when(verify(` 755 224 `), { now: N, secret: RFC_KEY }).then([match(0, N)]);
  });
});
