/**
 * Cooldown between two challenges of a side-channel device, as django-otp 1.3+'s
 * CooldownMixin: generation is allowed when no code was generated yet or strictly more than
 * `cooldown` seconds have passed since the last one. A successful verification or a failed
 * delivery releases it.
 */
export interface CooldownState {
  readonly lastGeneratedAt: number | null;
}

export const initialCooldown: CooldownState = { lastGeneratedAt: null };

export const cooldownStarted = (at: number): CooldownState => ({ lastGeneratedAt: at });

export const cooldownReleased = (): CooldownState => initialCooldown;

export type CooldownCheck = { readonly allowed: true } | { readonly allowed: false; readonly retryAt: number };

export const checkCooldown = (s: CooldownState, now: number, cooldownSeconds: number): CooldownCheck => {
  if (s.lastGeneratedAt === null) return { allowed: true };
  // Rounded to whole microseconds (django-otp's resolution): 16.048 s is 16048 ms, not 16047.999999999998.
  const cooldownMs = Math.round(cooldownSeconds * 1e6) / 1e3;
  if (now - s.lastGeneratedAt > cooldownMs) return { allowed: true };
  // django-otp's test is strict (elapsed > cooldown): the first allowed whole millisecond.
  return { allowed: false, retryAt: Math.floor(s.lastGeneratedAt + cooldownMs) + 1 };
};
