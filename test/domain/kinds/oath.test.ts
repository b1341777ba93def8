/**
 * HOTP/TOTP value computation against otplib 13 as the cross-check, and otpauth:// URIs.
 */
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { isLeft, isRight } from 'fp-ts/lib/Either.js';
import { createGuardrails, generateSync } from 'otplib';
import { describe, expect, it } from 'vitest';
import { formatCode, hotpCode, hotpValue } from '../../../domain/kinds/oath.ts';
import { otpauthUri, parseOtpauthUri, toBase32 } from '../../../domain/kinds/uri.ts';

type Alg = 'SHA1' | 'SHA256' | 'SHA512';
const ALGS: readonly Alg[] = ['SHA1', 'SHA256', 'SHA512'];

/** otplib 13 refuses keys under 16 bytes by default; django-otp imports have 10-byte keys. */
const shortKeys = createGuardrails({ MIN_SECRET_BYTES: 10 });

const otplibHotp = (key: Uint8Array, counter: number, digits: 6 | 8, algorithm: Alg): string =>
  generateSync({
    strategy: 'hotp',
    secret: key,
    counter,
    digits,
    algorithm: algorithm.toLowerCase() as 'sha1' | 'sha256' | 'sha512',
    guardrails: shortKeys,
  });

/** RFC 4226 section 5.3, written out with BigInt: an implementation independent of both. */
const referenceHotp = (key: Uint8Array, counter: number, digits: number, algorithm: Alg): string => {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const h = createHmac(algorithm.toLowerCase(), key).update(msg).digest();
  const offset = h[h.length - 1]! & 0xf;
  const bin = h.readUInt32BE(offset) & 0x7fffffff;
  return String(bin % 10 ** digits).padStart(digits, '0');
};

const RFC4226_KEY = Buffer.from('12345678901234567890');
const RFC4226 = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];

describe('hotpValue / hotpCode', () => {
  it('gives the ten values of RFC 4226 appendix D', () => {
    expect(RFC4226.map((_, c) => hotpCode(RFC4226_KEY, c, 6))).toEqual(RFC4226);
    expect(RFC4226.map((_, c) => hotpValue(RFC4226_KEY, c, 6))).toEqual(RFC4226.map(Number));
  });

  it('equals otplib for random keys of 10–64 bytes, counters up to 2^40, 6/8 digits, SHA1/256/512', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 10, maxLength: 64 }),
        fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 2 ** 40 }), fc.constantFrom(2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 40)),
        fc.constantFrom<6 | 8>(6, 8),
        fc.constantFrom(...ALGS),
        (key, counter, digits, algorithm) => {
          const ours = hotpCode(key, counter, digits, algorithm);
          expect(ours).toBe(otplibHotp(key, counter, digits, algorithm));
          expect(ours).toHaveLength(digits);
          expect(hotpValue(key, counter, digits, algorithm)).toBe(Number(ours));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('equals an independent node:crypto computation for 10–15-byte keys (below otplib’s default minimum)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 10, maxLength: 15 }),
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.constantFrom<6 | 8>(6, 8),
        fc.constantFrom(...ALGS),
        (key, counter, digits, algorithm) => {
          expect(hotpCode(key, counter, digits, algorithm)).toBe(referenceHotp(key, counter, digits, algorithm));
        },
      ),
      { numRuns: 200 },
    );
    // A fixed 10-byte vector, so that a change in both implementations at once is noticed too.
    const key10 = Buffer.from('3132333435363738393a', 'hex');
    expect([0, 1, 2 ** 32 + 7].map((c) => hotpCode(key10, c, 6))).toEqual([0, 1, 2 ** 32 + 7].map((c) => referenceHotp(key10, c, 6, 'SHA1')));
  });

  it('zero-pads small values', () => {
    expect(formatCode(42, 6)).toBe('000042');
    expect(formatCode(7, 8)).toBe('00000007');
    // Find a counter whose value starts with a 0 and check the code keeps its length.
    let c = 0;
    while (hotpValue(RFC4226_KEY, c, 6) >= 100_000) c++;
    expect(hotpCode(RFC4226_KEY, c, 6)).toHaveLength(6);
    expect(hotpCode(RFC4226_KEY, c, 6)).toBe(otplibHotp(RFC4226_KEY, c, 6, 'SHA1'));
  });
});

describe('otpauth URIs', () => {
  const base = { kind: 'totp' as const, key: new Uint8Array(20).fill(7), account: 'alice', issuer: 'ACME', algorithm: 'SHA1' as const, digits: 6 as const };

  it('states algorithm, digits and period (totp) or counter (hotp) explicitly, even at their defaults', () => {
    const totp = new URL(otpauthUri({ ...base, step: 30 }));
    expect(totp.protocol).toBe('otpauth:');
    expect(totp.host).toBe('totp');
    expect(totp.searchParams.get('algorithm')).toBe('SHA1');
    expect(totp.searchParams.get('digits')).toBe('6');
    expect(totp.searchParams.get('period')).toBe('30');
    expect(totp.searchParams.get('counter')).toBeNull();
    expect(totp.searchParams.get('secret')).toBe(toBase32(base.key));
    expect(totp.searchParams.get('issuer')).toBe('ACME');

    const hotp = new URL(otpauthUri({ ...base, kind: 'hotp', counter: 0, algorithm: 'SHA512', digits: 8 }));
    expect(hotp.host).toBe('hotp');
    expect(hotp.searchParams.get('counter')).toBe('0');
    expect(hotp.searchParams.get('algorithm')).toBe('SHA512');
    expect(hotp.searchParams.get('digits')).toBe('8');
    expect(hotp.searchParams.get('period')).toBeNull();
  });

  it('round-trips an issuer with ":" and spaces (the ":" removed, as django-otp does) and escapes the label', () => {
    const key = Uint8Array.from({ length: 32 }, (_, i) => i * 7);
    const uri = otpauthUri({ kind: 'totp', key, account: 'alice smith@example.com/?#&%', issuer: 'ACME: Big Co', algorithm: 'SHA256', digits: 8, step: 60 });
    expect(uri).not.toMatch(/ /);
    expect(uri.startsWith('otpauth://totp/ACME%20Big%20Co:alice%20smith%40example.com%2F%3F%23%26%25?')).toBe(true);
    const parsed = parseOtpauthUri(uri);
    if (isLeft(parsed)) throw new Error(parsed.left);
    expect(parsed.right).toEqual({
      kind: 'totp',
      key: expect.any(Uint8Array),
      account: 'alice smith@example.com/?#&%',
      issuer: 'ACME Big Co',
      algorithm: 'SHA256',
      digits: 8,
      step: 60,
      counter: null,
    });
    expect(Buffer.from(parsed.right.key).equals(Buffer.from(key))).toBe(true);
  });

  it('round-trips key, account, issuer, algorithm, digits and period/counter (property)', () => {
    const text = fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }));
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 10, maxLength: 64 }),
        fc.constantFrom<'totp' | 'hotp'>('totp', 'hotp'),
        text,
        fc.option(text, { nil: '' }),
        fc.constantFrom(...ALGS),
        fc.constantFrom<6 | 8>(6, 8),
        fc.integer({ min: 1, max: 3600 }),
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        (key, kind, account0, issuer, algorithm, digits, step, counter) => {
          const cleanIssuer = issuer.replace(/:/g, '');
          // Without an issuer the label's first ":" would be read as one: the format is ambiguous.
          const account = cleanIssuer ? account0 : account0.replace(/:/g, '_');
          const uri = otpauthUri({ kind, key, account, issuer, algorithm, digits, ...(kind === 'totp' ? { step } : { counter }) });
          const parsed = parseOtpauthUri(uri);
          if (isLeft(parsed)) throw new Error(parsed.left);
          const p = parsed.right;
          expect(Buffer.from(p.key).equals(Buffer.from(key))).toBe(true);
          expect(p.kind).toBe(kind);
          expect(p.account).toBe(account);
          expect(p.issuer).toBe(cleanIssuer === '' ? null : cleanIssuer);
          expect(p.algorithm).toBe(algorithm);
          expect(p.digits).toBe(digits);
          expect(p.step).toBe(kind === 'totp' ? step : null);
          expect(p.counter).toBe(kind === 'hotp' ? counter : null);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('reads a URI written by otplib with parameters left at their defaults', () => {
    const parsed = parseOtpauthUri('otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example');
    expect(isRight(parsed) && parsed.right).toMatchObject({ kind: 'totp', account: 'alice@google.com', issuer: 'Example', algorithm: 'SHA1', digits: 6, step: null, counter: null });
  });

  describe('parse errors never contain the secret', () => {
    const key = Uint8Array.from({ length: 20 }, (_, i) => 200 - i);
    const secret = toBase32(key);
    const good = otpauthUri({ kind: 'totp', key, account: 'alice', issuer: 'ACME', algorithm: 'SHA1', digits: 6, step: 30 });

    const secretForms = [secret, secret.toLowerCase(), Buffer.from(key).toString('hex'), Buffer.from(key).toString('base64')];
    const expectClean = (message: string) => {
      for (const s of secretForms) expect(message.toLowerCase()).not.toContain(s.toLowerCase().slice(0, 10));
    };

    const bad: Record<string, string> = {
      'wrong scheme': good.replace('otpauth://', 'otpauths://'),
      'no scheme': good.replace('otpauth://', ''),
      'no type separator': good.replace('otpauth://totp/', 'otpauth://totp'),
      'unknown type': good.replace('otpauth://totp/', 'otpauth://motp/'),
      'bad algorithm': good.replace('algorithm=SHA1', 'algorithm=MD5'),
      'bad digits': good.replace('digits=6', 'digits=9'),
      'bad period': good.replace('period=30', 'period=-1'),
      'bad percent-encoding in the label': good.replace('ACME', 'AC%ZZME'),
      'bad percent-encoding in a parameter': good.replace('issuer=ACME', 'issuer=%E0%A4%A'),
      'secret not base32': good.replace(`secret=${secret}`, `secret=${secret.slice(0, 10)}1890${secret.slice(10)}`),
      'encoded parameter key': good.replace('otpauth://', 'otpauths://').replace('secret=', 'secre%74='),
      'over-long': good + '&x=' + 'a'.repeat(3000),
      'the bare secret': secret,
      'the secret with a prefix': `otpauth:${secret}`,
    };
    for (const [what, uri] of Object.entries(bad)) {
      it(what, () => {
        const r = parseOtpauthUri(uri);
        expect(isLeft(r)).toBe(true);
        if (isLeft(r)) {
          expect(r.left).toMatch(/^the otpauth URI/);
          expectClean(r.left);
        }
      });
    }

    it('for random corruptions of a valid URI (property)', () => {
      fc.assert(
        fc.property(fc.nat({ max: good.length - 1 }), fc.nat({ max: 40 }), fc.string({ maxLength: 6 }), (at, drop, insert) => {
          const uri = good.slice(0, at) + insert + good.slice(at + drop);
          const r = parseOtpauthUri(uri);
          if (isLeft(r)) expectClean(r.left);
        }),
        { numRuns: 300 },
      );
    });
  });
});
