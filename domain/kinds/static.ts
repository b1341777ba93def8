/**
 * Backup codes: each code works once, in any order. Only keyed digests are stored; the typed
 * code's digest is compared with each of them in constant time.
 */
import { sameString } from './oath.ts';

/** The stored digest that equals `digest`, or null. Every digest is compared. */
export const findDigest = (digests: readonly string[], digest: string): string | null => {
  let found: string | null = null;
  for (const d of digests) if (sameString(d, digest) && found === null) found = d;
  return found;
};

/** The digests left after one use of `used` (one occurrence removed). */
export const withoutDigest = (digests: readonly string[], used: string): readonly string[] => {
  const i = digests.indexOf(used);
  return i < 0 ? digests : [...digests.slice(0, i), ...digests.slice(i + 1)];
};
