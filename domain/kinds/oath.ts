/**
 * HOTP (RFC 4226) value computation, the primitive under TOTP (RFC 6238).
 *
 * node:crypto is used directly in the hot path: it is deterministic and does no I/O, so
 * domain/ stays pure. otplib computes the same values and is the cross-check in the tests
 * (test/domain/kinds/oath.test.ts); otplib is also what builds and parses otpauth URIs.
 *
 * The HMAC (RFC 2104: H(K⊕opad ‖ H(K⊕ipad ‖ counter))) is assembled here over node:crypto's
 * one-shot hash, with the key's two padded blocks prepared once per verification rather than
 * by createHmac for every code of the window: createHmac sets up a keyed context per call,
 * which costs several times the two hashes themselves. Where crypto.hash is missing (Node
 * before 20.12) it falls back to createHmac. The tests hold both to createHmac and otplib.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { oneShotHash } from '../one-shot-hash.ts';
import type { Algorithm } from '../codecs.ts';

/** A local const, so that its check narrows inside the closures below (see one-shot-hash.ts). */
const oneShot = oneShotHash;

const hmacName: Record<Algorithm, string> = { SHA1: 'sha1', SHA256: 'sha256', SHA512: 'sha512' };
const BLOCK_BYTES: Record<Algorithm, number> = { SHA1: 64, SHA256: 64, SHA512: 128 };
const DIGEST_BYTES: Record<Algorithm, number> = { SHA1: 20, SHA256: 32, SHA512: 64 };
const POW10 = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000];

/** RFC 4226 dynamic truncation of an HMAC given as bytes (`at(i)` is byte i of `length`). */
const truncate = (at: (i: number) => number, length: number, digits: number): number => {
  const o = at(length - 1) & 0x0f;
  const bin = ((at(o) & 0x7f) << 24) | (at(o + 1) << 16) | (at(o + 2) << 8) | at(o + 3);
  return bin % POW10[digits]!;
};

/** HOTP values of one key: `(counter) => value`, the key's HMAC blocks prepared once. */
export type HotpOfKey = (counter: number) => number;

export const hotpOfKey = (key: Uint8Array, digits: number, algorithm: Algorithm = 'SHA1'): HotpOfKey => {
  const name = hmacName[algorithm];
  if (!oneShot) return (counter) => hotpValueWithCreateHmac(key, counter, digits, algorithm);
  const block = BLOCK_BYTES[algorithm];
  // A key longer than the block is replaced by its hash; a shorter one is padded with zeros.
  const k = key.length > block ? createHash(name).update(key).digest() : key;
  const inner = Buffer.alloc(block + 8);
  const outer = Buffer.alloc(block + DIGEST_BYTES[algorithm]);
  for (let i = 0; i < block; i++) {
    const b = i < k.length ? k[i]! : 0;
    inner[i] = b ^ 0x36;
    outer[i] = b ^ 0x5c;
  }
  return (counter) => {
    // Two 32-bit halves: counters are safe integers (< 2^53), which BigInt would make slow.
    inner.writeUInt32BE(Math.floor(counter / 0x1_0000_0000), block);
    inner.writeUInt32BE(counter >>> 0, block + 4);
    // 'latin1' output (one char per byte) is the one-shot hash's fastest form.
    outer.write(oneShot(name, inner, 'latin1'), block, 'latin1');
    const h = oneShot(name, outer, 'latin1');
    return truncate((i) => h.charCodeAt(i), h.length, digits);
  };
};

const hotpValueWithCreateHmac = (key: Uint8Array, counter: number, digits: number, algorithm: Algorithm): number => {
  const message = Buffer.allocUnsafe(8);
  message.writeUInt32BE(Math.floor(counter / 0x1_0000_0000), 0);
  message.writeUInt32BE(counter >>> 0, 4);
  const h = createHmac(hmacName[algorithm], key).update(message).digest();
  return truncate((i) => h[i]!, h.length, digits);
};

/** The HOTP value for one counter, as a number below 10^digits (not zero-padded). */
export const hotpValue = (key: Uint8Array, counter: number, digits: number, algorithm: Algorithm = 'SHA1'): number =>
  hotpOfKey(key, digits, algorithm)(counter);

/** The same through createHmac: the reference the tests hold hotpValue to. */
export const hotpValueReference = (key: Uint8Array, counter: number, digits: number, algorithm: Algorithm = 'SHA1'): number =>
  hotpValueWithCreateHmac(key, counter, digits, algorithm);

export const formatCode = (value: number, digits: number): string => String(value).padStart(digits, '0');

/** The HOTP code for one counter, zero-padded to `digits`. */
export const hotpCode = (key: Uint8Array, counter: number, digits: number, algorithm: Algorithm = 'SHA1'): string =>
  formatCode(hotpValue(key, counter, digits, algorithm), digits);

/** Equality of two small non-negative integers without a data-dependent branch. */
export const sameValue = (a: number, b: number): boolean => ((a ^ b) | 0) === 0;

/** Constant-time equality of two strings (length is not secret). */
export const sameString = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/** Minimum and maximum key sizes accepted for an existing key, in bytes. */
export const MIN_KEY_BYTES = 10;
export const MAX_KEY_BYTES = 128;

/** Size of a newly generated key for each algorithm (the HMAC's output size). */
export const newKeyBytes: Record<Algorithm, number> = { SHA1: 20, SHA256: 32, SHA512: 64 };
