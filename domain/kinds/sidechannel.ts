/**
 * Side-channel codes (e-mail, SMS): one pending code per device, usable strictly before its
 * expiry and consumed on success. A failed attempt neither clears nor expires it.
 */
import { sameString } from './oath.ts';

export interface PendingCode {
  readonly codeDigest: string | null;
  readonly validUntil: number | null;
}

export type SideChannelVerification =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: 'no-challenge' | 'expired' | 'invalid' };

export const verifySideChannel = (pending: PendingCode, digest: string, nowMs: number): SideChannelVerification => {
  if (pending.codeDigest === null || pending.validUntil === null) return { ok: false, reason: 'no-challenge' };
  if (!(nowMs < pending.validUntil)) return { ok: false, reason: 'expired' };
  return sameString(pending.codeDigest, digest) ? { ok: true } : { ok: false, reason: 'invalid' };
};
