/**
 * Every error leaves the server as `{"error": {"code", "message"}}` with the status that fits:
 * 400 bad input, 401 no or wrong token, 429 too many wrong tokens (with Retry-After), 403 refused origin or host, 404 unknown device or
 * endpoint, 409 a command the device's state does not allow (removed), 413/415 bad body,
 * 500 a fault, 503 a store that failed. Never a stack trace; never a secret.
 */
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { EngineError } from '../../app/engine.ts';
import { StoreError, VaultError } from '../../domain/ports.ts';
import { ProjectionError } from '../../projections/errors.ts';

export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    options: { readonly retryAfterSeconds?: number } = {},
  ) {
    super(message);
    if (options.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
  }
  /** Sent as Retry-After (a 429). */
  readonly retryAfterSeconds?: number;
}

export const badInput = (message: string): HttpError => new HttpError(400, 'invalid-input', message);

const clip = (s: string): string => s.replace(/\s+/g, ' ').slice(0, 500);

export const fromEngineError = (e: EngineError): HttpError => {
  switch (e.code) {
    case 'invalid-command':
      return new HttpError(400, 'invalid-input', clip(e.message));
    case 'device-not-found':
      return new HttpError(404, e.code, clip(e.message));
    case 'device-removed':
      return new HttpError(409, e.code, `${clip(e.message)}; a removed device cannot be changed (its history stays readable)`);
    case 'device-exists':
    case 'wrong-kind':
    case 'no-challenge':
      return new HttpError(409, e.code, clip(e.message));
    case 'conflict':
    case 'store-unavailable':
      return new HttpError(503, e.code, `${clip(e.message)}; try again`);
    case 'corrupt-event':
    case 'unstorable-event':
    case 'vault-error':
    case 'not-configured':
    case 'internal':
      return new HttpError(500, e.code, clip(e.message));
    default: {
      const unreachable: never = e.code;
      return unreachable;
    }
  }
};

/**
 * What a handler threw, as an HttpError. Errors of our own making carry safe messages; any
 * other exception (a driver's, say) is reported by kind only, and handed to `log`.
 */
export const fromThrown = (e: unknown, log: (line: string) => void): HttpError => {
  if (e instanceof HttpError) return e;
  if (e instanceof ProjectionError) {
    if (e.code === 'invalid') return badInput(clip(e.message));
    if (e.code === 'timeout') return new HttpError(503, 'timeout', clip(e.message));
    log(`read side failed: ${clip(e.message)}`);
    return new HttpError(503, 'read-store-unavailable', `the read models could not be read (${e.code}); try again, and see the server log`);
  }
  if (e instanceof StoreError) {
    log(`event store failed: ${clip(e.message)}`);
    return new HttpError(e.code === 'corrupt' ? 500 : 503, `store-${e.code}`, `the event store failed (${e.code}); see the server log`);
  }
  if (e instanceof VaultError) {
    log(`vault failed: ${clip(e.message)}`);
    return new HttpError(500, 'vault-error', 'the key store failed; see the server log');
  }
  const kind = e instanceof Error ? e.name : typeof e;
  log(`unexpected ${kind}: ${e instanceof Error ? clip(e.message) : 'no message'}`);
  // A store driver that threw (SQLite busy, a dropped connection) is the usual cause.
  return new HttpError(503, 'unavailable', `the server could not answer (${kind}); try again, and see the server log`);
};

export const errorBody = (e: HttpError) => ({ error: { code: e.code, message: e.message } });
