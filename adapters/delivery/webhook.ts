/**
 * Delivers codes by POSTing them to an HTTP endpoint (an SMS gateway, or a service of yours
 * that relays them), signed so the receiver can tell the request came from factorstream.
 *
 * Request:
 *   POST <url>
 *   Content-Type: application/json
 *   X-Factorstream-Timestamp: <unix seconds>
 *   X-Factorstream-Signature: sha256=<hex HMAC-SHA256(secret, `${timestamp}.${body}`)>
 *   X-Factorstream-Delivery: <id>
 *   {"deviceId":…,"kind":"sms"|"email","destination":…,"code":…,"validUntil":"<ISO 8601>","id":"<uuid>"}
 *
 * Any 2xx answer is a delivery. Redirects are not followed (the code must not travel on to
 * wherever a redirect points); a 3xx, 4xx or 5xx, a timeout or a connection error is a failure
 * whose reason names the status or the error code, never the response body, the URL, the code
 * or the destination. The receiver checks requests with `verifyWebhookSignature`, against the
 * raw body, and should ignore an `id` it has seen already.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Delivery, DeliveryResult, TokenSender } from '../../domain/ports.ts';
import { redactUrl, scrubDeliveryText } from './redact.ts';

export const DEFAULT_WEBHOOK_TIMEOUT_MS = 5_000;
export const DEFAULT_SIGNATURE_TOLERANCE_SECONDS = 300;

export const TIMESTAMP_HEADER = 'X-Factorstream-Timestamp';
export const SIGNATURE_HEADER = 'X-Factorstream-Signature';
export const DELIVERY_ID_HEADER = 'X-Factorstream-Delivery';

export interface WebhookSenderOptions {
  /** An http: or https: URL. */
  readonly url: string | URL;
  /** The HMAC-SHA256 key shared with the receiver. */
  readonly secret: string | Uint8Array;
  /** Deadline for the whole request (ms). Default 5 000. */
  readonly timeoutMs?: number;
  /** Extra request headers (e.g. a gateway's Authorization). They cannot replace the signature headers. */
  readonly headers?: Readonly<Record<string, string>>;
  /** The clock for the timestamp header (ms since the epoch). Default Date.now. */
  readonly now?: () => number;
  /** The delivery id. Default crypto.randomUUID. */
  readonly newId?: () => string;
}

/** The JSON body of a webhook request. */
export interface WebhookPayload {
  readonly deviceId: string;
  readonly kind: Delivery['kind'];
  readonly destination: string;
  readonly code: string;
  /** ISO 8601, UTC. */
  readonly validUntil: string;
  /** Unique per delivery: a receiver that sees an id twice should deliver once. */
  readonly id: string;
}

/** `sha256=<hex>` over `${timestamp}.${body}`. */
export const signWebhookPayload = (secret: string | Uint8Array, timestamp: string | number, body: string | Uint8Array): string =>
  `sha256=${createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex')}`;

/**
 * Checks a webhook request as its receiver: `timestamp` and `signature` are the values of the
 * X-Factorstream-Timestamp and X-Factorstream-Signature headers, `body` the raw request body
 * (as received, before any JSON parsing). True when one of the signatures in the header (a
 * comma-separated list is accepted, for key rotation) is the HMAC of this body and timestamp,
 * compared in constant time, and the timestamp is within `toleranceSeconds` of `nowMs`.
 */
export const verifyWebhookSignature = (
  secret: string | Uint8Array,
  timestamp: string | number | null | undefined,
  body: string | Uint8Array,
  signature: string | null | undefined,
  toleranceSeconds: number = DEFAULT_SIGNATURE_TOLERANCE_SECONDS,
  nowMs: number = Date.now(),
): boolean => {
  if (timestamp === null || timestamp === undefined || signature === null || signature === undefined) return false;
  const ts = String(timestamp).trim();
  if (!/^\d{1,15}$/.test(ts)) return false;
  if (!(Math.abs(nowMs / 1000 - Number(ts)) <= toleranceSeconds)) return false;
  const expected = Buffer.from(signWebhookPayload(secret, ts, body).slice('sha256='.length), 'hex');
  let matched = false;
  for (const candidate of signature.split(',')) {
    const match = /^\s*sha256=([0-9a-fA-F]{64})\s*$/.exec(candidate);
    if (!match?.[1]) continue;
    // No early exit: every candidate is compared, each in constant time.
    if (timingSafeEqual(Buffer.from(match[1], 'hex'), expected)) matched = true;
  }
  return matched;
};

export const createWebhookSender = (options: WebhookSenderOptions): TokenSender => {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new TypeError(`the webhook sender's url is not a URL: "${redactUrl(String(options.url))}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new TypeError(`the webhook sender's url must be http: or https:, not "${redactUrl(url.href)}"`);
  if (options.secret.length === 0) throw new TypeError('the webhook sender needs a secret (the HMAC-SHA256 key)');
  const timeoutMs = options.timeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new TypeError(`the webhook sender's timeoutMs must be a positive number of milliseconds, not ${String(options.timeoutMs)}`);
  // fetch refuses URLs with credentials: send them as HTTP Basic authentication instead.
  const extraHeaders: Record<string, string> = { ...options.headers };
  if (url.username !== '' || url.password !== '') {
    const credentials = `${safeDecode(url.username)}:${safeDecode(url.password)}`;
    if (!Object.keys(extraHeaders).some((name) => name.toLowerCase() === 'authorization'))
      extraHeaders.Authorization = `Basic ${Buffer.from(credentials).toString('base64')}`;
    url.username = '';
    url.password = '';
  }
  const now = options.now ?? Date.now;
  const newId = options.newId ?? randomUUID;

  return {
    send: async (delivery: Delivery): Promise<DeliveryResult> => {
      let body: string;
      let id: string;
      try {
        id = newId();
        const payload: WebhookPayload = {
          deviceId: delivery.deviceId,
          kind: delivery.kind,
          destination: delivery.destination,
          code: delivery.code,
          validUntil: new Date(delivery.validUntil).toISOString(),
          id,
        };
        body = JSON.stringify(payload);
      } catch {
        return { ok: false, reason: 'the webhook request could not be built (invalid validUntil?)' };
      }
      const timestamp = String(Math.floor(now() / 1000));
      const headers = new Headers(extraHeaders);
      headers.set('Content-Type', 'application/json');
      headers.set('User-Agent', 'factorstream-webhook');
      headers.set(TIMESTAMP_HEADER, timestamp);
      headers.set(SIGNATURE_HEADER, signWebhookPayload(options.secret, timestamp, body));
      headers.set(DELIVERY_ID_HEADER, id);

      let response: Response;
      try {
        response = await fetch(url, {
          method: 'POST',
          headers,
          body,
          redirect: 'manual',
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (error) {
        return { ok: false, reason: webhookErrorReason(error, delivery, timeoutMs) };
      }
      // The body is never read (it could echo the code); release the connection.
      await response.body?.cancel().catch(() => undefined);
      if (response.status >= 200 && response.status < 300) return { ok: true };
      const notes = [
        STATUS_CODES[response.status],
        response.status >= 300 && response.status < 400 ? 'redirects are not followed' : undefined,
      ].filter((note): note is string => note !== undefined);
      return { ok: false, reason: `the webhook answered HTTP ${response.status}${notes.length > 0 ? ` (${notes.join(', ')})` : ''}` };
    },
  };
};

const safeDecode = (text: string): string => {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
};

const errorCode = (error: unknown): string | undefined => {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
};

const webhookErrorReason = (error: unknown, delivery: Delivery, timeoutMs: number): string => {
  const name = typeof error === 'object' && error !== null ? (error as { name?: unknown }).name : undefined;
  if (name === 'TimeoutError' || name === 'AbortError') return `the webhook did not answer within ${timeoutMs} ms`;
  // undici: TypeError('fetch failed') with the socket error as its cause.
  const cause = typeof error === 'object' && error !== null ? (error as { cause?: unknown }).cause : undefined;
  const code = errorCode(cause) ?? errorCode(error);
  return code
    ? `could not reach the webhook (${scrubDeliveryText(code, delivery, 40)})`
    : 'could not reach the webhook';
};
