/**
 * An attacker who holds the first factor guesses 6-digit TOTP codes as fast as the throttle
 * allows, for 30 simulated days. The number of guesses the engine lets through must be the
 * number the formula predicts: after n failures the next guess waits factor·2^(n−1) s, so
 * guess k+1 comes 2^k − 1 s after the first (factor 1), and 30 days allow 22 guesses.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createMemoryEventStore } from '../../adapters/store/memory.ts';
import { createMemoryVault } from '../../adapters/vault/memory.ts';
import { createEngine } from '../../app/engine.ts';
import { hotpCode } from '../../domain/kinds/oath.ts';
import type { PolicyOverrides } from '../../domain/policies/policy.ts';

const DAY = 86_400_000;
const KEY = Buffer.from('12345678901234567890');

/** Guesses that are certainly wrong at `now` (not any code of the ±1 window, nor the one before). */
const wrongGuess = (now: number, n: number): string => {
  const t = Math.floor(now / 30_000);
  const live = new Set([-2, -1, 0, 1].map((o) => hotpCode(KEY, t + o, 6)));
  let g = n;
  for (;;) {
    const code = String(g % 1_000_000).padStart(6, '0');
    if (!live.has(code)) return code;
    g += 7919;
  }
};

const attack = async (days: number, policy: PolicyOverrides = {}) => {
  const start = 1_800_000_000_000;
  let now = start;
  const engine = createEngine({
    store: createMemoryEventStore(),
    vault: createMemoryVault(),
    random: { bytes: (n) => randomBytes(n) },
    clock: { now: () => now },
    policy,
  });
  const reg = await engine.register({ kind: 'totp', userId: 'victim', secret: KEY, confirmed: true })();
  if (reg._tag === 'Left') throw new Error(reg.left.message);
  let guesses = 0;
  let refusals = 0;
  const end = start + days * DAY;
  while (now < end) {
    const r = await engine.verify(reg.right.deviceId, wrongGuess(now, guesses))();
    if (r._tag === 'Left') throw new Error(r.left.message);
    if (r.right.ok) throw new Error('a wrong guess was accepted');
    if (r.right.reason === 'throttled') {
      refusals++;
      // The attacker learns retryAt from the refusal and comes back exactly then.
      now = r.right.retryAt!;
    } else guesses++;
  }
  return { guesses, refusals };
};

/** Guesses allowed within `seconds` at factor f with no ceiling: the largest n with f·(2^(n−1) − 1) ≤ seconds. */
const predicted = (seconds: number, factor = 1) => {
  let n = 1;
  while (factor * (2 ** n - 1) <= seconds) n++;
  return n;
};

describe('brute force against the default throttle', () => {
  it('30 days of guessing as fast as allowed gives exactly the predicted number of guesses', async () => {
    const { guesses } = await attack(30);
    expect(predicted(30 * 86_400)).toBe(22);
    expect(guesses).toBe(22);
  });

  it('a year gives 25 guesses: with 3 live codes per guess, P(success) ≈ 25 · 3/10^6 = 7.5·10^-5 per year', async () => {
    const { guesses } = await attack(365);
    expect(guesses).toBe(predicted(365 * 86_400));
    expect(guesses).toBe(25);
    expect(guesses * 3e-6).toBeLessThan(1e-4);
  });

  it('a throttle ceiling changes the budget as its formula says (maxDelay 1 h: 2^12 s > 3600, so ~24 guesses a day after the first 13)', async () => {
    const { guesses } = await attack(10, { throttle: { totp: { maxDelaySeconds: 3600 } } });
    // 13 guesses take 1+2+…+2048 = 4095 s < 1 day; from then on every wait is 3600 s.
    const afterRamp = Math.floor((10 * 86_400 - 4095) / 3600);
    expect(guesses).toBe(13 + afterRamp);
  });
});
