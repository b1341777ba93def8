/**
 * HOTP (RFC 4226) value computation, the primitive under TOTP (RFC 6238).
 *
 * node:crypto's HMAC is used directly in the hot path: it is deterministic and does no I/O,
 * so domain/ stays pure. otplib computes the same values and is the cross-check in the
 * tests (test/domain/kinds/oath.test.ts); otplib is also what builds and parses otpauth URIs.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Algorithm } from '../codecs.ts';

const hmacName: Record<Algorithm, string> = { SHA1: 'sha1', SHA256: 'sha256', SHA512: 'sha512' };
const POW10 = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000];

/** The HOTP value for one counter, as a number below 10^digits (not zero-padded). */
export const hotpValue = (key: Uint8Array, counter: number, digits: number, algorithm: Algorithm = 'SHA1'): number => {
  const message = Buffer.allocUnsafe(8);
  // Two 32-bit halves: counters are safe integers (< 2^53), which BigInt would make slow.
  message.writeUInt32BE(Math.floor(counter / 0x1_0000_0000), 0);
  message.writeUInt32BE(counter >>> 0, 4);
  const h = createHmac(hmacName[algorithm], key).update(message).digest();
  const o = h[h.length - 1]! & 0x0f;
  const bin = ((h[o]! & 0x7f) << 24) | (h[o + 1]! << 16) | (h[o + 2]! << 8) | h[o + 3]!;
  return bin % POW10[digits]!;
};

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
