/**
 * Why a projection stopped. A ProjectionError names the stream, version and position of the
 * event it stopped at when there is one, and never carries event data (it may be secret).
 */
import { StoreError, type GlobalPosition } from '../domain/ports.ts';

export type ProjectionErrorCode =
  /** A stored event does not decode through the catalog (or its metadata does not). */
  | 'undecodable-event'
  /** A projection handler threw. */
  | 'handler-failed'
  /** The event store failed (unreachable, closed, corrupt row). */
  | 'event-store-failed'
  /** The read store failed. */
  | 'read-store-failed'
  /** A wait (whenCaughtUp, waitForPosition, rebuild) ran out of time. */
  | 'timeout'
  /** The runner was closed while something waited for it. */
  | 'closed'
  /** Bad configuration or a call the runner cannot take in its state. */
  | 'invalid';

export interface EventLocation {
  readonly streamName: string;
  readonly version: number;
  readonly position: GlobalPosition;
}

export class ProjectionError extends Error {
  override readonly name = 'ProjectionError';
  constructor(
    readonly code: ProjectionErrorCode,
    message: string,
    readonly event: EventLocation | null = null,
    options?: { cause?: unknown; detail?: string },
  ) {
    super(message, options);
    this.detail = options?.detail ?? message;
  }
  /** What went wrong, without where (undecodable-event: the field and the rule that failed). */
  readonly detail: string;
}

export const describeLocation = (e: EventLocation): string =>
  `stream "${e.streamName}" version ${e.version} (position ${e.position})`;

/** A short, data-free description of something thrown. */
export const describeCause = (e: unknown): string =>
  e instanceof Error ? `${e.name}: ${e.message.slice(0, 300)}` : `a non-error value was thrown (${typeof e})`;

/** PostgreSQL SQLSTATEs of a lost or refused connection, a restart, or a lost race. */
const TRANSIENT_SQLSTATE = /^(08|57P0[123]$|53300$|40001$|40P01$)/;
const TRANSIENT_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
/** What pg says when a connection went away (its errors carry no code then). */
const TRANSIENT_MESSAGE = /Connection terminated|not queryable|timeout exceeded when trying to connect/i;

/**
 * Whether a failure may pass by itself (a database restarting, a connection cut, a lock held
 * for a while) rather than needing someone to act: the runner waits and tries again instead
 * of stopping. Decided from the causes: the event store's StoreError "unavailable", the
 * drivers' connection errors, SQLite's busy and locked. An event that does not decode, a
 * handler that throws, a closed store are not.
 */
export const isTransient = (e: ProjectionError): boolean => {
  if (e.code !== 'read-store-failed' && e.code !== 'event-store-failed') return false;
  let cause: unknown = e.cause;
  for (let depth = 0; depth < 8 && cause !== undefined && cause !== null; depth++) {
    if (cause instanceof StoreError) return cause.code === 'unavailable';
    const c = cause as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof c.code === 'string' && (TRANSIENT_SQLSTATE.test(c.code) || TRANSIENT_ERRNO.has(c.code) || /^SQLITE_(BUSY|LOCKED)/.test(c.code)))
      return true;
    if (typeof c.message === 'string' && TRANSIENT_MESSAGE.test(c.message) && !(cause instanceof ProjectionError)) return true;
    cause = c.cause;
  }
  return false;
};

