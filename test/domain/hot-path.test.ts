/**
 * The fast paths of the engine's hot path give exactly what their definitions give: the
 * canonical encoding of the hash chain (canonicalJsonReference), so hashes of stored chains
 * keep verifying; the one-pass UUIDv5 of event and device ids (the uuid package's v5); the
 * HOTP values over the prepared-key HMAC (createHmac).
 */
import fc from 'fast-check';
import { v5 as uuidv5 } from 'uuid';
import { describe, expect, it } from 'vitest';
import { canonicalJson, canonicalJsonReference } from '../../domain/chain.ts';
import { deviceIdFor, eventIdFor, uuidFromBytes, uuidV5 } from '../../domain/ids.ts';
import { hotpOfKey, hotpValue, hotpValueReference } from '../../domain/kinds/oath.ts';

const NAMESPACE = 'c5b7f1d2-4a0e-5e86-9d2b-6f1f3c0a7e41';

describe('canonicalJson', () => {
  it('equals the reference for any JSON value, keys of every kind included', () => {
    const key = fc.oneof(fc.string(), fc.constantFrom('0', '1', '2', '10', '01', '-1', '4294967294', '4294967295', '__proto__', 'toString', 'a', 'B', 'é', '\u0000', '"'));
    const value = fc.letrec((tie) => ({
      any: fc.oneof(
        { depthSize: 'small' },
        fc.string(),
        fc.string({ unit: 'grapheme' }),
        fc.string({ unit: 'binary' }),
        fc.double(),
        fc.integer(),
        fc.boolean(),
        fc.constant(null),
        fc.constant(undefined),
        fc.array(tie('any'), { maxLength: 4 }),
        fc.dictionary(key, tie('any'), { maxKeys: 6 }),
      ),
    })).any;
    fc.assert(
      fc.property(value, (v) => {
        expect(canonicalJson(v)).toBe(canonicalJsonReference(v));
      }),
      { numRuns: 2000 },
    );
  });

  it('equals the reference on values JSON treats specially', () => {
    const cases: unknown[] = [
      { b: 1, a: { d: [3, { z: 1, y: 2 }], c: undefined }, e: () => 1, f: Symbol('s') },
      [undefined, () => 1, Symbol('x'), Number.NaN, Infinity, -0],
      { when: new Date(Date.UTC(2024, 0, 1)), n: new Number(3), s: new String('x'), b: new Boolean(false) },
      { toJSON: () => ({ y: 1, x: 2 }) },
      Object.assign(Object.create(null), { b: 2, a: 1 }),
      { 10: 'ten', 2: 'two', b: 'b', a: 'a', '01': 'zero-one' },
      'lone \ud800 surrogate',
      { s: 'quote " backslash \\ newline \n tab \t nul \u0000 del \u007f line sep \u2028' },
      new (class Point {
        constructor(readonly y = 1, readonly x = 2) {}
      })(),
      [[[]], {}, [{}]],
      undefined,
      null,
      12.5e-7,
    ];
    for (const v of cases) expect(canonicalJson(v)).toBe(canonicalJsonReference(v));
    expect(() => canonicalJson({ n: 1n })).toThrow(TypeError);
  });
});

describe('ids', () => {
  it('uuidV5 equals the uuid package for any name', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' })), (name) => {
        expect(uuidV5(name)).toBe(uuidv5(name, NAMESPACE));
      }),
      { numRuns: 2000 },
    );
    expect(eventIdFor('cmd-1', 2, 'otpdevice-x')).toBe(uuidv5('cmd-1\u0000otpdevice-x\u00002', NAMESPACE));
    expect(deviceIdFor('cmd-1')).toBe(uuidv5('device\u0000cmd-1', NAMESPACE));
  });

  it('uuidV5 refuses a name that is not well-formed UTF-16, as the uuid package does', () => {
    expect(() => uuidv5('lone \ud800', NAMESPACE)).toThrow();
    expect(() => uuidV5('lone \ud800')).toThrow();
  });

  it('uuidFromBytes makes version-4 UUIDs from the bytes given', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => {
        const hex = Array.from(b, (x, i) => (i === 6 ? (x & 0x0f) | 0x40 : i === 8 ? (x & 0x3f) | 0x80 : x).toString(16).padStart(2, '0')).join('');
        expect(uuidFromBytes(b)).toBe(`${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`);
      }),
    );
  });
});

describe('HOTP values over the prepared-key HMAC', () => {
  it('equal createHmac for any key length (longer than a block too), counter, digits and algorithm', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 200 }),
        fc.maxSafeNat(),
        fc.constantFrom(6, 8),
        fc.constantFrom('SHA1' as const, 'SHA256' as const, 'SHA512' as const),
        (key, counter, digits, algorithm) => {
          expect(hotpValue(key, counter, digits, algorithm)).toBe(hotpValueReference(key, counter, digits, algorithm));
          // The prepared function gives the same for several counters in a row.
          const f = hotpOfKey(key, digits, algorithm);
          for (const c of [counter, Math.max(0, counter - 1), counter + 1 <= Number.MAX_SAFE_INTEGER ? counter + 1 : 0])
            expect(f(c)).toBe(hotpValueReference(key, c, digits, algorithm));
        },
      ),
      { numRuns: 1000 },
    );
  });
});
