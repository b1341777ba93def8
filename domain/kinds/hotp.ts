/**
 * HOTP (RFC 4226) with django-otp's rules: accepts a counter in [counter, counter+tolerance]
 * (look-ahead only, never behind), first match wins, the counter moves past the match.
 */
import type { HotpConfig } from '../events.ts';
import { hotpOfKey, sameValue } from './oath.ts';

export type HotpVerification = { readonly ok: true; readonly counter: number } | { readonly ok: false };

export const verifyHotp = (config: HotpConfig, counter: number, key: Uint8Array, token: number): HotpVerification => {
  let matched: number | null = null;
  const value = hotpOfKey(key, config.digits, config.algorithm);
  for (let c = counter; c <= counter + config.tolerance; c++) {
    if (sameValue(value(c), token) && matched === null) matched = c;
  }
  return matched === null ? { ok: false } : { ok: true, counter: matched };
};
