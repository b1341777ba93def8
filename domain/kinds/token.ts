/**
 * Token input. Whitespace anywhere is ignored; anything else that is not exactly the expected
 * form is malformed. A malformed token is a failed verification, never an exception.
 */

/** Longer input is malformed without looking further at it. */
export const MAX_TOKEN_INPUT = 256;

const WHITESPACE = /\s+/gu;
const ASCII_DIGITS = /^[0-9]+$/;
const BACKUP_ALPHABET = /^[a-z0-9]+$/;

const compact = (raw: unknown): string | null => {
  if (typeof raw !== 'string' || raw.length > MAX_TOKEN_INPUT) return null;
  return raw.replace(WHITESPACE, '');
};

/** Exactly `digits` ASCII digits (after whitespace removal), as a string; null if malformed. */
export const parseDigits = (raw: unknown, digits: number): string | null => {
  const s = compact(raw);
  return s !== null && s.length === digits && ASCII_DIGITS.test(s) ? s : null;
};

/** Exactly `digits` ASCII digits, as a number (for HOTP/TOTP comparison); null if malformed. */
export const parseNumericToken = (raw: unknown, digits: number): number | null => {
  const s = parseDigits(raw, digits);
  return s === null ? null : Number(s);
};

/** Backup codes are case-insensitive base32 like django-otp's (8 chars of a–z2–7); imported ones may be 4–16 of a–z0–9. */
export const BACKUP_CODE_MIN = 4;
export const BACKUP_CODE_MAX = 16;

export const parseBackupCode = (raw: unknown): string | null => {
  const s = compact(raw);
  if (s === null || s.length < BACKUP_CODE_MIN || s.length > BACKUP_CODE_MAX) return null;
  const lower = s.toLowerCase();
  return BACKUP_ALPHABET.test(lower) ? lower : null;
};

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** A backup code from 5 random bytes: 8 characters of a–z2–7 (40 bits), as django-otp's StaticToken.random_token. */
export const backupCodeFromBytes = (bytes: Uint8Array, offset = 0): string => {
  let bits = 0n;
  for (let i = 0; i < 5; i++) bits = (bits << 8n) | BigInt(bytes[offset + i] ?? 0);
  let out = '';
  for (let i = 7; i >= 0; i--) out += BASE32[Number((bits >> BigInt(i * 5)) & 31n)];
  return out;
};

/** Random bytes needed for one numeric code by numericCodeFromBytes. */
export const NUMERIC_CODE_BYTES = 32;

/**
 * A uniformly distributed code of `digits` digits from random bytes: 32-bit draws with
 * rejection of the biased top range (falls back to the last draw, bias < 10^-30).
 */
export const numericCodeFromBytes = (bytes: Uint8Array, digits: number): string => {
  const range = 10 ** digits;
  const limit = Math.floor(0x1_0000_0000 / range) * range;
  let value = 0;
  for (let i = 0; i + 4 <= bytes.length; i += 4) {
    value = ((bytes[i]! << 24) | (bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!) >>> 0;
    if (value < limit) break;
  }
  return String(value % range).padStart(digits, '0');
};
