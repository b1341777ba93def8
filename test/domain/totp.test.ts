/**
 * TOTP (RFC 6238) with django-otp's rules: window t+drift−tol … t+drift+tol, first match in
 * ascending order, replay guard, drift learned on success (bounded here by maxDrift).
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Algorithm } from '../../domain/codecs.ts';
import type { RegisteredDevice } from '../../domain/device.ts';
import type { DeviceEvent, TotpConfig } from '../../domain/events.ts';
import { hotpCode } from '../../domain/kinds/oath.ts';
import { verifyTotp } from '../../domain/kinds/totp.ts';
import {
  RFC_KEY,
  RFC_KEY_SHA256,
  RFC_KEY_SHA512,
  SHORT_KEY,
  STEP0,
  T0,
  failed,
  otherCode,
  refused,
  registered,
  totpConfig,
  verified,
} from './fixtures.ts';
import { given, policy, run } from './spec.ts';

const k = STEP0; // the step at T0 … T0 + 29.999 s
const N = T0 + 10_000; // 10 s into step k
const code = (step: number, key: Uint8Array = RFC_KEY, digits = 6, algorithm: Algorithm = 'SHA1') =>
  hotpCode(key, step, digits, algorithm);
const verify = (token: unknown) => ({ type: 'VerifyToken', token }) as const;
const device = (o: Partial<TotpConfig> = {}): DeviceEvent[] => [registered(totpConfig(o))];
const totpState = (s: ReturnType<ReturnType<typeof given>['state']>) => {
  const d = s as RegisteredDevice;
  if (d.k.kind !== 'totp') throw new Error('not a TOTP device');
  return { drift: d.k.drift, lastStep: d.k.lastStep, failureCount: d.throttle.failureCount };
};
const match = (step: number, drift: number, at: number) => verified({ kind: 'totp', step, drift }, at);

describe('TOTP window', () => {
  it.each([-1, 0, 1])('tolerance 1 (default): the code for t%+d is accepted, drift learned = offset', (o) => {
    const s = given(device()).when(verify(code(k + o)), { now: N, secret: RFC_KEY }).then([match(k + o, o, N)]);
    expect(totpState(s)).toEqual({ drift: o, lastStep: k + o, failureCount: 0 });
  });

  it.each([-2, 2])('tolerance 1 (default): the code for t%+d is rejected as invalid', (o) => {
    const s = given(device()).when(verify(code(k + o)), { now: N, secret: RFC_KEY }).then([failed(N, 'invalid')]);
    expect(totpState(s)).toEqual({ drift: 0, lastStep: -1, failureCount: 1 });
  });

  it('tolerance 0: only the code for t is accepted', () => {
    const g = given(device({ tolerance: 0 }));
    g.when(verify(code(k)), { now: N, secret: RFC_KEY }).then([match(k, 0, N)]);
    g.when(verify(code(k - 1)), { now: N, secret: RFC_KEY }).then([failed(N)]);
    g.when(verify(code(k + 1)), { now: N, secret: RFC_KEY }).then([failed(N)]);
  });

  it('tolerance 2: t−2 … t+2 are accepted, t±3 are not', () => {
    const g = given(device({ tolerance: 2 }));
    for (const o of [-2, -1, 0, 1, 2]) g.when(verify(code(k + o)), { now: N, secret: RFC_KEY }).then([match(k + o, o, N)]);
    for (const o of [-3, 3]) g.when(verify(code(k + o)), { now: N, secret: RFC_KEY }).then([failed(N)]);
  });

  it('first match in ascending order: a code that two steps of the window share matches the earlier step', () => {
    // Found by search: with the RFC key, steps s and s+2 share a 6-digit code and s+1 differs.
    const s = 61_331_809;
    expect([code(s), code(s + 2)]).toEqual(['768734', '768734']);
    expect(code(s + 1)).not.toBe('768734');
    const now = (s + 1) * 30_000 + 5000; // t = s+1: window s … s+2
    given(device()).when(verify('768734'), { now, secret: RFC_KEY }).then([match(s, -1, now)]);
  });

  it('a code shared by a used step and the next step is accepted at the next step (min_t skips the used one)', () => {
    const s = 59_061_240; // steps s and s+1 share 963181
    expect([code(s), code(s + 1)]).toEqual(['963181', '963181']);
    const now = (s + 1) * 30_000 + 5000;
    given([...device(), match(s, 0, s * 30_000 + 1000)])
      .when(verify('963181'), { now, secret: RFC_KEY })
      .then([match(s + 1, 0, now)]);
  });
});

describe('TOTP time steps', () => {
  it('the step changes exactly at t0 + k·step: at 29.999 s the window is still k−1 … k+1', () => {
    const now = T0 + 29_999;
    given(device()).when(verify(code(k - 1)), { now, secret: RFC_KEY }).then([match(k - 1, -1, now)]);
    given(device()).when(verify(code(k + 2)), { now, secret: RFC_KEY }).then([failed(now)]);
  });

  it('the step changes exactly at t0 + k·step: at 30.000 s the window is k … k+2', () => {
    const now = T0 + 30_000;
    given(device()).when(verify(code(k - 1)), { now, secret: RFC_KEY }).then([failed(now)]);
    given(device()).when(verify(code(k + 2)), { now, secret: RFC_KEY }).then([match(k + 2, 1, now)]);
  });

  it('t0 offset: with t0 = 10 s the steps start at 10 s, 40 s, … past each half minute', () => {
    const t0 = 10;
    // At T0 + 39.999 s: (T0/1000 + 39 − 10) / 30 → step k; at T0 + 40 s → step k+1.
    given(device({ t0 })).when(verify(code(k + 2)), { now: T0 + 39_999, secret: RFC_KEY }).then([failed(T0 + 39_999)]);
    given(device({ t0 })).when(verify(code(k + 2)), { now: T0 + 40_000, secret: RFC_KEY }).then([match(k + 2, 1, T0 + 40_000)]);
    // At T0 + 5 s the step is k−1 (5 − 10 < 0 within this half minute), so k−2 is still in the window.
    given(device({ t0 })).when(verify(code(k - 2)), { now: T0 + 5000, secret: RFC_KEY }).then([match(k - 2, -1, T0 + 5000)]);
  });

  it('t0 in the future: steps below 0 are skipped rather than crashing', () => {
    const t0 = T0 / 1000 + 3600; // an hour from now: t = −120
    const r = given(device({ t0 })).when(verify(code(0)), { now: T0, secret: RFC_KEY });
    r.then([failed(T0)]);
  });

  it('t0 in the future: at t = −1 the window −2 … 0 has only step 0 left, and it matches', () => {
    const t0 = T0 / 1000 + 3600;
    const now = t0 * 1000 - 1; // t = −1
    given(device({ t0 })).when(verify(code(0)), { now, secret: RFC_KEY }).then([match(0, 1, now)]);
    given(device({ t0 })).when(verify(code(1)), { now, secret: RFC_KEY }).then([failed(now)]);
  });

  it('t0 exactly now: t = 0, window −1 … 1 verifies step 0 and step 1', () => {
    const t0 = T0 / 1000;
    given(device({ t0 })).when(verify(code(0)), { now: T0, secret: RFC_KEY }).then([match(0, 0, T0)]);
    given(device({ t0 })).when(verify(code(1)), { now: T0, secret: RFC_KEY }).then([match(1, 1, T0)]);
  });

  it('a 60-second step: the window spans three minutes', () => {
    const j = Math.floor(N / 60_000 - 0); // step of N with step 60, t0 0
    given(device({ step: 60 })).when(verify(code(j + 1)), { now: N, secret: RFC_KEY }).then([match(j + 1, 1, N)]);
    given(device({ step: 60 })).when(verify(code(k + 1)), { now: N, secret: RFC_KEY }).then([failed(N)]);
  });
});

describe('TOTP replay guard', () => {
  it('the same code twice: the second is VerificationFailed reason replay, counted as a failure', () => {
    const history = run(device(), [{ command: verify(code(k)), context: { now: N, secret: RFC_KEY } }]);
    expect(history.slice(1)).toEqual([match(k, 0, N)]);
    const s = given(history).when(verify(code(k)), { now: N + 1000, secret: RFC_KEY }).then([failed(N + 1000, 'replay')]);
    expect(totpState(s)).toEqual({ drift: 0, lastStep: k, failureCount: 1 });
  });

  it('a replay counts as a failure: the next attempt within 1 s is refused', () => {
    given([...device(), match(k, 0, N), failed(N + 1000, 'replay')])
      .when(verify(code(k + 1)), { now: N + 1999, secret: RFC_KEY })
      .then([refused(1, N + 2000, N + 1999)]);
  });

  it('once t+1 was accepted, the code for t (and t+1 again) is rejected as replay', () => {
    const g = given([...device(), match(k + 1, 1, N)]);
    g.when(verify(code(k)), { now: N + 5000, secret: RFC_KEY }).then([failed(N + 5000, 'replay')]);
    g.when(verify(code(k + 1)), { now: N + 5000, secret: RFC_KEY }).then([failed(N + 5000, 'replay')]);
    // … while t+2, still in the window centred on t+1, is fine.
    g.when(verify(code(k + 2)), { now: N + 5000, secret: RFC_KEY }).then([match(k + 2, 2, N + 5000)]);
  });

  it('an imported lastStep is honoured: codes at or below it are replays', () => {
    const g = given(device({ lastStep: k }));
    g.when(verify(code(k)), { now: N, secret: RFC_KEY }).then([failed(N, 'replay')]);
    g.when(verify(code(k + 1)), { now: N, secret: RFC_KEY }).then([match(k + 1, 1, N)]);
  });
});

describe('TOTP drift', () => {
  it('drift is learned on success: accepting t+1 sets drift 1 and lastStep t+1', () => {
    const s = given(device()).when(verify(code(k + 1)), { now: N, secret: RFC_KEY }).then([match(k + 1, 1, N)]);
    expect(totpState(s)).toEqual({ drift: 1, lastStep: k + 1, failureCount: 0 });
  });

  it('the next window is centred on t + drift: five minutes later t+2 is accepted, t−1 is not', () => {
    const later = N + 300_000; // t' = k + 10
    const g = given([...device(), match(k + 1, 1, N)]);
    g.when(verify(code(k + 12)), { now: later, secret: RFC_KEY }).then([match(k + 12, 2, later)]);
    g.when(verify(code(k + 9)), { now: later, secret: RFC_KEY }).then([failed(later)]);
    // An on-time code at the window's lower edge re-learns towards 0.
    g.when(verify(code(k + 10)), { now: later, secret: RFC_KEY }).then([match(k + 10, 0, later)]);
  });

  it('drift learning is bounded by maxDrift (deliberate difference: django-otp lets a prover walk it without limit)', () => {
    // A prover running ahead sends, every step, the highest code the window accepts.
    let history = device();
    const drifts: number[] = [];
    for (let i = 1; i <= 8; i++) {
      const now = N + i * 30_000;
      const drift = totpState(given(history).state()).drift;
      history = run(history, [{ command: verify(code(k + i + drift + 1)), context: { now, secret: RFC_KEY } }]);
      const last = history[history.length - 1]!;
      expect(last.type).toBe('TokenVerified');
      drifts.push(totpState(given(history).state()).drift);
    }
    expect(drifts).toEqual([1, 2, 3, 4, 4, 4, 4, 4]); // django-otp: [1, 2, 3, 4, 5, 6, 7, 8]
    // The window stays t+3 … t+5: a code 6 steps ahead is out of reach.
    const now = N + 9 * 30_000;
    given(history).when(verify(code(k + 9 + 6)), { now, secret: RFC_KEY }).then([failed(now)]);
  });

  it('drift learning is bounded by maxDrift on the slow side too (a prover running behind)', () => {
    let history = device();
    const drifts: number[] = [];
    for (let i = 1; i <= 6; i++) {
      const now = N + i * 60_000; // two steps per round, so the prover's code is never a replay
      const drift = totpState(given(history).state()).drift;
      history = run(history, [{ command: verify(code(k + 2 * i + drift - 1)), context: { now, secret: RFC_KEY } }]);
      drifts.push(totpState(given(history).state()).drift);
    }
    expect(drifts).toEqual([-1, -2, -3, -4, -4, -4]);
  });

  it('maxDrift from the policy at decision time: maxDrift 1 stops the walk at 1', () => {
    const p = policy({ maxDrift: 1 });
    const s = given([...device(), match(k + 1, 1, N)])
      .when(verify(code(k + 3)), { now: N + 30_000, secret: RFC_KEY, policy: p }) // t = k+1, window k+1 … k+3
      .then([match(k + 3, 1, N + 30_000)]); // learned 2, bounded to 1
    expect(totpState(s).drift).toBe(1);
  });

  it('totpSync false keeps drift: accepting t+1 leaves drift 0 (lastStep still moves)', () => {
    const s = given(device())
      .when(verify(code(k + 1)), { now: N, secret: RFC_KEY, policy: policy({ totpSync: false }) })
      .then([match(k + 1, 0, N)]);
    expect(totpState(s)).toEqual({ drift: 0, lastStep: k + 1, failureCount: 0 });
  });

  it('totpSync false keeps an imported drift, even one beyond maxDrift (django-otp: drift never changes)', () => {
    const s = given(device({ drift: 6 }))
      .when(verify(code(k + 6)), { now: N, secret: RFC_KEY, policy: policy({ totpSync: false }) })
      .then([match(k + 6, 6, N)]);
    expect(totpState(s).drift).toBe(6);
  });
});

describe('TOTP algorithms and digits', () => {
  // RFC 6238 Appendix B: 8 digits, the RFC's keys per algorithm.
  const vectors: [number, Algorithm, Uint8Array, string][] = [];
  const table: [number, string, string, string][] = [
    [59, '94287082', '46119246', '90693936'],
    [1111111109, '07081804', '68084774', '25091201'],
    [1111111111, '14050471', '67062674', '99943326'],
    [1234567890, '89005924', '91819424', '93441116'],
    [2000000000, '69279037', '90698825', '38618901'],
    [20000000000, '65353130', '77737706', '47863826'],
  ];
  for (const [time, sha1, sha256, sha512] of table) {
    vectors.push([time, 'SHA1', RFC_KEY, sha1], [time, 'SHA256', RFC_KEY_SHA256, sha256], [time, 'SHA512', RFC_KEY_SHA512, sha512]);
  }

  it.each(vectors)('RFC 6238 vector: at %i s, %s, 8 digits, accepts the RFC code', (time, algorithm, key, expected) => {
    const now = time * 1000;
    given(device({ algorithm, digits: 8 }))
      .when(verify(expected), { now, secret: key })
      .then([match(Math.floor(time / 30), 0, now)]);
  });

  it.each([
    ['SHA256', RFC_KEY_SHA256],
    ['SHA512', RFC_KEY_SHA512],
  ] as const)('%s with 6 digits verifies, and the SHA1 code of the same step does not', (algorithm, key) => {
    const g = given(device({ algorithm }));
    g.when(verify(code(k, key, 6, algorithm)), { now: N, secret: key }).then([match(k, 0, N)]);
    const sha1 = code(k, key, 6, 'SHA1');
    if (sha1 !== code(k, key, 6, algorithm)) g.when(verify(sha1), { now: N, secret: key }).then([failed(N)]);
  });

  it('an 8-digit device takes a 6-digit token as malformed, and a 6-digit device an 8-digit token', () => {
    given(device({ digits: 8 })).when(verify(code(k)), { now: N, secret: RFC_KEY }).then([failed(N, 'malformed')]);
    given(device()).when(verify(code(k, RFC_KEY, 8)), { now: N, secret: RFC_KEY }).then([failed(N, 'malformed')]);
  });

  it('keys of 10 bytes verify (short django-otp keys), with codes computed independently of the domain', () => {
    const independent = (key: Buffer, counter: number) => {
      const msg = Buffer.alloc(8);
      msg.writeBigUInt64BE(BigInt(counter));
      const h = createHmac('sha1', key).update(msg).digest();
      const o = h[19]! & 15;
      return String((h.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, '0');
    };
    expect(SHORT_KEY.length).toBe(10);
    expect(code(k, SHORT_KEY)).toBe(independent(SHORT_KEY, k));
    given(device()).when(verify(independent(SHORT_KEY, k)), { now: N, secret: SHORT_KEY }).then([match(k, 0, N)]);
  });
});

describe('TOTP token input', () => {
  const right = code(k);
  const malformed: [string, unknown][] = [
    ['empty string', ''],
    ['five digits', '12345'],
    ['seven digits', '1234567'],
    ['letters', 'abcdef'],
    ['full-width digits', '１２３４５６'],
    ['Arabic-Indic digits', '١٢٣٤٥٦'],
    ['a 10,000-character string', '1'.repeat(10_000)],
    ['the right code padded to 10,000 characters with spaces', right + ' '.repeat(9_994)],
    ['a leading plus (django-otp’s int() accepts it)', `+${right.slice(1)}`],
    ['an underscore (django-otp’s int() accepts it)', `${right.slice(0, 3)}_${right.slice(3)}`],
    ['a dash', `${right.slice(0, 3)}-${right.slice(3)}`],
    ['null', null],
    ['undefined', undefined],
    ['the right code as a number', Number(right)],
    ['NaN', Number.NaN],
    ['an object', { token: right }],
    ['an object whose toString gives the right code', { toString: () => right }],
    ['an array', [right]],
    ['a boolean', true],
    ['a bigint', 123456n],
  ];

  it.each(malformed)('%s → VerificationFailed malformed (counted), never an exception', (_, token) => {
    const s = given(device()).when(verify(token), { now: N, secret: RFC_KEY }).then([failed(N, 'malformed')]);
    expect(totpState(s).failureCount).toBe(1);
  });

  it.each([
    ['spaces and a tab', `${right.slice(0, 2)} ${right.slice(2, 4)}\t${right.slice(4)}`],
    ['leading and trailing whitespace with a newline', `  ${right}\n`],
    ['a no-break space', `${right.slice(0, 3)}\u00a0${right.slice(3)}`],
    ['an ideographic space', `${right.slice(0, 3)}\u3000${right.slice(3)}`],
  ])('whitespace is ignored: %s around the right digits is accepted', (_, token) => {
    given(device()).when(verify(token), { now: N, secret: RFC_KEY }).then([match(k, 0, N)]);
  });

  it('whitespace around wrong digits is an ordinary invalid code', () => {
    const wrong = otherCode([-1, 0, 1].map((o) => code(k + o)));
    given(device()).when(verify(` ${wrong} `), { now: N, secret: RFC_KEY }).then([failed(N, 'invalid')]);
  });

  it('a well-formed token without the opened key is an internal error (Left), not a verification', () => {
    given(device()).when(verify(right), { now: N }).thenFails('invalid-command');
  });
});

describe('an imported drift beyond maxDrift', () => {
  it('is kept as the limit: learning neither cuts it to maxDrift nor grows past it', () => {
    const key = Buffer.from('12345678901234567890');
    const config = { kind: 'totp', secret: 'v1.a.b.c', algorithm: 'SHA1', digits: 6, step: 30, t0: 0, tolerance: 1, drift: 0, lastStep: -1 } as const;
    const now = 1_700_000_000_000;
    const t = Math.floor(now / 30_000);
    // The prover runs 6 steps ahead (django-otp learned that); maxDrift is 4.
    const at = (s: number) => Number(hotpCode(key, s, 6));
    const same = verifyTotp(config, { drift: 6, lastStep: t }, key, at(t + 6), now, { maxDrift: 4, sync: true });
    expect(same).toEqual({ ok: true, step: t + 6, drift: 6 });
    const further = verifyTotp(config, { drift: 6, lastStep: t }, key, at(t + 7), now, { maxDrift: 4, sync: true });
    expect(further).toEqual({ ok: true, step: t + 7, drift: 6 });
    const back = verifyTotp(config, { drift: 6, lastStep: t }, key, at(t + 5), now, { maxDrift: 4, sync: true });
    expect(back).toEqual({ ok: true, step: t + 5, drift: 5 });
  });
});
