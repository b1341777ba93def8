/**
 * Why a projection stopped. A ProjectionError names the stream, version and position of the
 * event it stopped at when there is one, and never carries event data (it may be secret).
 */
import type { GlobalPosition } from '../domain/ports.ts';

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
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const describeLocation = (e: EventLocation): string =>
  `stream "${e.streamName}" version ${e.version} (position ${e.position})`;

/** A short, data-free description of something thrown. */
export const describeCause = (e: unknown): string =>
  e instanceof Error ? `${e.name}: ${e.message.slice(0, 300)}` : `a non-error value was thrown (${typeof e})`;
