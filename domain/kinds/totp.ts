/**
 * TOTP (RFC 6238) with django-otp's rules: window t+drift−tolerance … t+drift+tolerance,
 * first match in ascending order, a replay guard (a step at or below the last accepted one
 * is refused) and drift learned on success — bounded here by maxDrift.
 */
import type { TotpConfig } from '../events.ts';
import { hotpOfKey, sameValue } from './oath.ts';

export interface TotpState {
  readonly drift: number;
  readonly lastStep: number;
}

/** The time step at `nowMs` (now floored to whole seconds, as django-otp does). */
export const timeStep = (nowMs: number, step: number, t0: number): number =>
  Math.floor((Math.floor(nowMs / 1000) - t0) / step);

export type TotpVerification =
  | { readonly ok: true; readonly step: number; readonly drift: number }
  | { readonly ok: false; readonly reason: 'invalid' | 'replay' };

export const verifyTotp = (
  config: TotpConfig,
  state: TotpState,
  key: Uint8Array,
  token: number,
  nowMs: number,
  options: { readonly maxDrift: number; readonly sync: boolean },
): TotpVerification => {
  const t = timeStep(nowMs, config.step, config.t0);
  let matched: number | null = null;
  let replayed = false;
  const value = hotpOfKey(key, config.digits, config.algorithm);
  // Every step of the window is computed, so timing does not tell which one matched.
  for (let o = -config.tolerance; o <= config.tolerance; o++) {
    const s = t + state.drift + o;
    if (s < 0) continue;
    const same = sameValue(value(s), token);
    if (same && s <= state.lastStep) replayed = true;
    else if (same && matched === null) matched = s;
  }
  if (matched !== null) {
    // Without sync the drift never changes (django-otp's OTP_TOTP_SYNC=False). With sync, learning
    // never takes it beyond maxDrift; a larger drift the device already had (imported from
    // django-otp, which has no bound) is kept as a limit, so that device stays in its window.
    const bound = Math.max(options.maxDrift, Math.abs(state.drift));
    const drift = options.sync ? Math.max(-bound, Math.min(bound, matched - t)) : state.drift;
    return { ok: true, step: matched, drift };
  }
  return { ok: false, reason: replayed ? 'replay' : 'invalid' };
};
