/**
 * Wrong admin tokens are slowed per client address, and nobody is locked out: after n
 * consecutive failures a client waits min(0.5 s · 2^(n−1), 10 s) before its next attempt is
 * looked at (0.5, 1, 2, 4, 8, 10, 10 … s). While it waits, its requests are answered 429 with
 * Retry-After, and not checked. A right token after the wait clears the count; a client that
 * has not failed is never delayed.
 *
 * A client's attempts are serialised: `admit` holds the client's slot until the attempt is
 * settled (`settle(ok)`), and a second request of the same client waits for it, so that a burst
 * of wrong tokens sent at once is judged one after another, each after the one before it was
 * counted (not all against the count before the burst).
 *
 * Memory is bounded: at most `maxClients` addresses are tracked (the least recently failed
 * ones are forgotten first), and a client is forgotten `forgetAfterMs` after its last failure.
 */

export const BACKOFF = { firstDelayMs: 500, maxDelayMs: 10_000, maxClients: 10_000, forgetAfterMs: 15 * 60_000 } as const;

export interface BackoffOptions {
  readonly firstDelayMs?: number;
  readonly maxDelayMs?: number;
  readonly maxClients?: number;
  readonly forgetAfterMs?: number;
  readonly now?: () => number;
}

/** A failed attempt, as it is recorded. */
export interface RefusedAttempt {
  readonly address: string;
  /** Consecutive failures of this address, this one included. */
  readonly failureCount: number;
  /** How long the address now waits before its next attempt is looked at. */
  readonly delayMs: number;
  readonly at: number;
}

export type Admission =
  /** settle(true): a right token; false: a wrong one (counted, and returned); null: no attempt (nothing changes). */
  | { readonly admitted: true; settle(ok: boolean | null): RefusedAttempt | null }
  | { readonly admitted: false; readonly retryAfterMs: number; readonly failureCount: number };

export interface AuthBackoff {
  /** Waits for the client's slot; then either admits the attempt (settle it, always) or says how long to wait. */
  admit(address: string): Promise<Admission>;
  /** The consecutive failures of an address (0 when none or forgotten). */
  failures(address: string): number;
}

interface ClientState {
  failureCount: number;
  lastFailureAt: number;
  /** Resolves when the attempt holding the slot settles. */
  slot: Promise<void>;
}

export const delayAfter = (failureCount: number, firstDelayMs: number = BACKOFF.firstDelayMs, maxDelayMs: number = BACKOFF.maxDelayMs): number =>
  failureCount <= 0 ? 0 : Math.min(firstDelayMs * 2 ** Math.min(failureCount - 1, 40), maxDelayMs);

export const createAuthBackoff = (options: BackoffOptions = {}): AuthBackoff => {
  const firstDelayMs = options.firstDelayMs ?? BACKOFF.firstDelayMs;
  const maxDelayMs = options.maxDelayMs ?? BACKOFF.maxDelayMs;
  const maxClients = options.maxClients ?? BACKOFF.maxClients;
  const forgetAfterMs = options.forgetAfterMs ?? BACKOFF.forgetAfterMs;
  const now = options.now ?? (() => Date.now());
  /** In order of last failure (re-inserted on each), so the first is the one to forget. */
  const clients = new Map<string, ClientState>();

  const current = (address: string, t: number): ClientState | undefined => {
    const c = clients.get(address);
    if (c !== undefined && c.failureCount > 0 && t - c.lastFailureAt > forgetAfterMs) c.failureCount = 0;
    return c;
  };

  const admit = async (address: string): Promise<Admission> => {
    let c = current(address, now());
    // Wait for the attempt before this one (of the same address) to settle.
    while (c !== undefined) {
      const held = c.slot;
      await held;
      c = current(address, now());
      if (c === undefined || c.slot === held) break;
    }
    const t = now();
    if (c !== undefined && c.failureCount > 0) {
      const wait = c.lastFailureAt + delayAfter(c.failureCount, firstDelayMs, maxDelayMs) - t;
      if (wait > 0) return { admitted: false, retryAfterMs: wait, failureCount: c.failureCount };
    }
    let release: () => void = () => undefined;
    const slot = new Promise<void>((resolve) => (release = resolve));
    if (c === undefined) {
      c = { failureCount: 0, lastFailureAt: 0, slot };
      clients.set(address, c);
    } else c.slot = slot;
    const state = c;
    let settled = false;
    return {
      admitted: true,
      settle: (ok) => {
        if (settled) return null;
        settled = true;
        release();
        if (ok === null) {
          if (state.failureCount === 0 && clients.get(address) === state && state.slot === slot) clients.delete(address);
          return null;
        }
        if (ok) {
          // A client with no failures to remember is not kept.
          if (clients.get(address) === state && state.slot === slot) clients.delete(address);
          else state.failureCount = 0;
          return null;
        }
        const at = now();
        state.failureCount += 1;
        state.lastFailureAt = at;
        clients.delete(address);
        clients.set(address, state);
        while (clients.size > maxClients) clients.delete(clients.keys().next().value!);
        return { address, failureCount: state.failureCount, delayMs: delayAfter(state.failureCount, firstDelayMs, maxDelayMs), at };
      },
    };
  };

  return { admit, failures: (address) => current(address, now())?.failureCount ?? 0 };
};
