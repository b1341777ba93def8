/**
 * Backup codes (django-otp's StaticDevice): each code works once, in any order. Only keyed
 * digests are stored; the codes are shown once, at issue.
 */
import { describe, expect, it } from 'vitest';
import type { Kind } from '../../domain/codecs.ts';
import type { RegisteredDevice } from '../../domain/device.ts';
import type { DeviceEvent } from '../../domain/events.ts';
import { findDigest, withoutDigest } from '../../domain/kinds/static.ts';
import { T0, configFor, digest, failed, issued, registered, verified } from './fixtures.ts';
import { given, run } from './spec.ts';

const N = T0 + 10_000;
const CODES = ['abcdefgh', 'ijklmnop', 'qrstuv23'];
const verify = (token: unknown) => ({ type: 'VerifyToken', token }) as const;
const issue = { type: 'IssueStaticTokens' } as const;
const device: DeviceEvent[] = [registered(configFor('static'))];
const withCodes: DeviceEvent[] = [...device, issued(CODES, T0 + 1)];
const used = (code: string, at: number) => verified({ kind: 'static', digest: digest(code) }, at);
const left = (s: unknown): number => {
  const d = s as RegisteredDevice;
  if (d.k.kind !== 'static') throw new Error('not a static device');
  return d.k.digests.length;
};

describe('issuing backup codes', () => {
  it('IssueStaticTokens records StaticTokensIssued with the keyed digests of the drawn codes, in order', () => {
    const s = given(device)
      .when(issue, { now: N, digest, staticCodes: CODES })
      .then([{ type: 'StaticTokensIssued', data: { digests: CODES.map(digest), at: N } }]);
    expect(left(s)).toBe(3);
  });

  it('the event never holds a code in plaintext', () => {
    const events = given(device).when(issue, { now: N, digest, staticCodes: CODES }).events();
    const json = JSON.stringify(events);
    for (const c of CODES) expect(json).not.toContain(c);
  });

  it('a new issue replaces the old set: old codes fail, new ones work, codes left = the new count', () => {
    const fresh = ['zyxwvuts', 'rqponmlk'];
    const history = run(withCodes, [{ command: issue, context: { now: N, digest, staticCodes: fresh } }]);
    expect(left(given(history).state())).toBe(2);
    given(history).when(verify(CODES[0]), { now: N + 1, digest }).then([failed(N + 1, 'invalid')]);
    given(history).when(verify(fresh[1]), { now: N + 1, digest }).then([used(fresh[1]!, N + 1)]);
  });

  it.each<Kind>(['totp', 'hotp', 'email', 'sms'])('IssueStaticTokens on a %s device → wrong-kind', (kind) => {
    given([registered(configFor(kind))]).when(issue, { now: N, digest, staticCodes: CODES }).thenFails('wrong-kind');
  });

  it('IssueStaticTokens without drawn codes or the digest key is an internal error (Left)', () => {
    given(device).when(issue, { now: N, digest }).thenFails('invalid-command');
    given(device).when(issue, { now: N, staticCodes: CODES }).thenFails('invalid-command');
  });
});

describe('using backup codes', () => {
  it('each code works once, in any order, and the codes left count down', () => {
    let history = withCodes;
    const counts: number[] = [];
    for (const [i, c] of [CODES[2]!, CODES[0]!, CODES[1]!].entries()) {
      const at = N + i * 10_000;
      given(history).when(verify(c), { now: at, digest }).then([used(c, at)]);
      history = run(history, [{ command: verify(c), context: { now: at, digest } }]);
      counts.push(left(given(history).state()));
    }
    expect(counts).toEqual([2, 1, 0]);
  });

  it('a used code fails invalid afterwards (and counts as a failure)', () => {
    const s = given([...withCodes, used(CODES[1]!, N)])
      .when(verify(CODES[1]), { now: N + 5000, digest })
      .then([failed(N + 5000, 'invalid')]);
    expect((s as RegisteredDevice).throttle).toEqual({ failureCount: 1, lastFailureAt: N + 5000 });
    expect(left(s)).toBe(2);
  });

  it('no codes issued: a well-formed code is invalid', () => {
    given(device).when(verify('abcdefgh'), { now: N, digest }).then([failed(N, 'invalid')]);
  });

  it.each([
    ['upper case', 'ABCDEFGH'],
    ['mixed case', 'AbCdEfGh'],
    ['spaces inside and around', ' abcd efgh '],
    ['a tab, a newline and upper case', 'ABCD\tEF\nGH'],
  ])('input is case-insensitive and whitespace is ignored: %s', (_, token) => {
    given(withCodes).when(verify(token), { now: N, digest }).then([used('abcdefgh', N)]);
  });

  it('imported codes of 4 and of 16 characters from a–z0–9 work', () => {
    const imported = ['ab01', '0123456789abcdef'];
    const g = given([...device, issued(imported, T0)]);
    g.when(verify('AB01'), { now: N, digest }).then([used('ab01', N)]);
    g.when(verify('0123 4567 89AB CDEF'), { now: N, digest }).then([used('0123456789abcdef', N)]);
  });

  it.each<[string, unknown]>([
    ['empty', ''],
    ['only whitespace', ' \t '],
    ['too short (3)', 'abc'],
    ['too long (17)', 'abcdefghijklmnopq'],
    ['a dash', 'abcd-efgh'],
    ['a symbol', 'abcdefg!'],
    ['full-width letters', 'ａｂｃｄｅｆｇｈ'],
    ['accented letters', 'abcdéfgh'],
    ['10,000 characters', 'a'.repeat(10_000)],
    ['null', null],
    ['a number', 12345678],
    ['an object', { code: 'abcdefgh' }],
  ])('malformed: %s → VerificationFailed malformed, no code used', (_, token) => {
    const s = given(withCodes).when(verify(token), { now: N, digest }).then([failed(N, 'malformed')]);
    expect(left(s)).toBe(3);
  });

  it('duplicated codes: one use removes one occurrence, the twin still works once', () => {
    const history = [...device, issued(['abcdefgh', 'abcdefgh'], T0)];
    const after = run(history, [{ command: verify('abcdefgh'), context: { now: N, digest } }]);
    expect(left(given(after).state())).toBe(1);
    const after2 = run(after, [{ command: verify('abcdefgh'), context: { now: N + 1, digest } }]);
    expect(after2.slice(-1)).toEqual([used('abcdefgh', N + 1)]);
    expect(left(given(after2).state())).toBe(0);
  });

  it('a well-formed code without the digest key is an internal error (Left)', () => {
    given(withCodes).when(verify('abcdefgh'), { now: N }).thenFails('invalid-command');
  });
});

describe('static reducers (domain/kinds/static.ts)', () => {
  it('findDigest returns the stored digest that equals the typed one, or null', () => {
    const ds = CODES.map(digest);
    expect(findDigest(ds, digest('ijklmnop'))).toBe(ds[1]);
    expect(findDigest(ds, digest('nothere1'))).toBeNull();
    expect(findDigest([], digest('abcdefgh'))).toBeNull();
  });

  it('withoutDigest removes exactly one occurrence, and nothing when absent', () => {
    expect(withoutDigest(['a', 'b', 'a'], 'a')).toEqual(['b', 'a']);
    expect(withoutDigest(['a', 'b'], 'c')).toEqual(['a', 'b']);
  });
});
