/**
 * Who may use the dashboard: the holder of the admin bearer token (FACTORSTREAM_ADMIN_TOKEN),
 * compared in constant time. The token is never logged and never echoed; events name the
 * admin by a fingerprint of it (a truncated SHA-256), which cannot be turned back into it.
 *
 * Server-sent events cannot carry an Authorization header from a browser's EventSource, so
 * the page trades its token for a ticket (POST /api/sse-ticket): an HMAC-signed, single-use
 * value valid for 60 s. Only that ticket ever appears in a URL; the token never does.
 */
import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

/** Shorter tokens are refused at start: they can be guessed. */
export const MIN_TOKEN_LENGTH = 16;

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Compares a presented token with the expected one in time independent of where they differ (or of their lengths). */
export const sameToken = (presented: string, expected: string): boolean => timingSafeEqual(sha256(presented), sha256(expected));

/** Names a token in events and logs without revealing it: `admin:` and 12 hex digits of its SHA-256. */
export const tokenFingerprint = (token: string): string => sha256(`factorstream-admin-token\u0000${token}`).toString('hex').slice(0, 12);

/** The token of an `Authorization: Bearer <token>` header, or null. */
export const bearerToken = (header: string | undefined | null): string | null => {
  if (!header) return null;
  const m = /^Bearer[ ]+([^\s]+)[ ]*$/i.exec(header);
  return m ? m[1]! : null;
};

export interface Ticket {
  readonly ticket: string;
  readonly expiresAt: number;
}

export interface TicketIssuer {
  issue(): Ticket;
  /** True once per ticket, while it is valid. */
  redeem(ticket: string | undefined | null): boolean;
}

/**
 * Tickets for opening an event stream: `<expiresAt>.<nonce>.<hmac>`. Signed with a key derived
 * from `secret` (the admin token) when given, so that every instance of the dashboard behind
 * one address accepts the tickets of the others (a ticket is single-use per instance); with
 * none, with a key drawn at start.
 */
export const createTicketIssuer = (
  options: { readonly ttlMs?: number; readonly now?: () => number; readonly secret?: string } = {},
): TicketIssuer => {
  const ttlMs = options.ttlMs ?? 60_000;
  const now = options.now ?? (() => Date.now());
  const key =
    options.secret === undefined
      ? randomBytes(32)
      : Buffer.from(hkdfSync('sha256', options.secret, 'factorstream dashboard', 'sse tickets v1', 32));
  const used = new Map<string, number>();
  const mac = (payload: string) => createHmac('sha256', key).update(payload).digest('base64url');
  const forget = (t: number) => {
    for (const [nonce, expiresAt] of used) if (expiresAt <= t) used.delete(nonce);
  };
  return {
    issue: () => {
      const expiresAt = now() + ttlMs;
      const payload = `${expiresAt}.${randomBytes(18).toString('base64url')}`;
      return { ticket: `${payload}.${mac(payload)}`, expiresAt };
    },
    redeem: (ticket) => {
      if (typeof ticket !== 'string' || ticket.length > 200) return false;
      const m = /^(\d{1,16})\.([A-Za-z0-9_-]{24})\.([A-Za-z0-9_-]{43})$/.exec(ticket);
      if (!m) return false;
      const [, expires, nonce, signature] = m as unknown as [string, string, string, string];
      const expected = Buffer.from(mac(`${expires}.${nonce}`));
      if (!timingSafeEqual(Buffer.from(signature), expected)) return false;
      const t = now();
      forget(t);
      const expiresAt = Number(expires);
      if (!(expiresAt > t) || used.has(nonce)) return false;
      used.set(nonce, expiresAt);
      return true;
    },
  };
};
