/**
 * A recorded event decoded for projections: its payload through the event catalog, its
 * metadata through the metadata codec, and its stream category checked against its type.
 * Anything that does not decode is a Left naming stream, version and position.
 */
import { left, right, type Either } from 'fp-ts/lib/Either.js';
import { decodeWith } from '../domain/codecs.ts';
import {
  EventMetadata,
  decodeEvent,
  deviceEventCodecs,
  userEventCodecs,
  type DeviceEvent,
  type FactorEvent,
  type UserEvent,
} from '../domain/events.ts';
import { DEVICE_CATEGORY, USER_CATEGORY } from '../domain/ids.ts';
import type { GlobalPosition, RecordedEvent } from '../domain/ports.ts';
import { ProjectionError, describeLocation } from './errors.ts';

interface Envelope {
  readonly eventId: string;
  readonly streamName: string;
  readonly version: number;
  readonly position: GlobalPosition;
  readonly recordedAt: number;
  readonly metadata: EventMetadata;
}

export type DecodedEvent = Envelope &
  (
    | { readonly category: 'device'; readonly deviceId: string; readonly event: DeviceEvent }
    | { readonly category: 'user'; readonly userId: string; readonly event: UserEvent }
    /** A catalog event in a stream of another category: decoded, checkpointed, not projected. */
    | { readonly category: 'other'; readonly event: FactorEvent }
  );

/**
 * A stored event that does not decode, set aside (the runner's `undecodable: 'quarantine'`):
 * where it is and what is wrong with it, never its data. Projections record it (the standard
 * read model as an `event-quarantined` audit entry) and go on with the events after it.
 */
export interface QuarantinedEvent {
  readonly category: 'quarantined';
  readonly eventId: string;
  readonly streamName: string;
  readonly version: number;
  readonly position: GlobalPosition;
  readonly recordedAt: number;
  /** The stored type, cut to 64 characters. */
  readonly type: string;
  /** The device or user its stream belongs to, when the stream name says. */
  readonly deviceId: string | null;
  readonly userId: string | null;
  /** The actor named in its metadata, when that is readable text. */
  readonly actor: string | null;
  /** What failed to decode (field and rule; no value). */
  readonly problem: string;
}

export type ProjectedEvent = DecodedEvent | QuarantinedEvent;

const idOf = (streamName: string, category: string): string | null =>
  streamName.startsWith(`${category}-`) ? streamName.slice(category.length + 1) : null;

const problem = (raw: RecordedEvent, what: string): ProjectionError =>
  new ProjectionError(
    'undecodable-event',
    `${describeLocation(raw)} does not decode: ${what}. Repair or remove the stored event, then restart the projection.`,
    { streamName: raw.streamName, version: raw.version, position: raw.position },
    { detail: what },
  );

export const decodeRecorded = (raw: RecordedEvent): Either<ProjectionError, DecodedEvent> => {
  const decoded = decodeEvent(String(raw.type), raw.data);
  if (decoded._tag === 'Left') return left(problem(raw, decoded.left));
  const metadata = decodeWith(EventMetadata, raw.metadata);
  if (metadata._tag === 'Left') return left(problem(raw, `metadata: ${metadata.left}`));
  // Explicit object literals, not spreads of a common envelope: this runs for every event of
  // a replay.
  const { eventId, streamName, version, position, recordedAt } = raw;
  const meta = metadata.right;
  const event = decoded.right;
  const deviceId = idOf(streamName, DEVICE_CATEGORY);
  if (deviceId !== null) {
    if (!Object.hasOwn(deviceEventCodecs, event.type))
      return left(problem(raw, `a ${event.type} event does not belong in a device stream`));
    return right({ eventId, streamName, version, position, recordedAt, metadata: meta, category: 'device', deviceId, event: event as DeviceEvent });
  }
  const userId = idOf(streamName, USER_CATEGORY);
  if (userId !== null) {
    if (!Object.hasOwn(userEventCodecs, event.type))
      return left(problem(raw, `a ${event.type} event does not belong in a user stream`));
    return right({ eventId, streamName, version, position, recordedAt, metadata: meta, category: 'user', userId, event: event as UserEvent });
  }
  return right({ eventId, streamName, version, position, recordedAt, metadata: meta, category: 'other', event });
};

/** The quarantine record of `raw`, which failed to decode with `error`. */
export const quarantined = (raw: RecordedEvent, error: ProjectionError): QuarantinedEvent => {
  const meta = raw.metadata as { actor?: unknown } | null;
  const actor = typeof meta === 'object' && meta !== null && typeof meta.actor === 'string' ? meta.actor.slice(0, 128) : null;
  return {
    category: 'quarantined',
    eventId: String(raw.eventId),
    streamName: raw.streamName,
    version: raw.version,
    position: raw.position,
    recordedAt: raw.recordedAt,
    type: String(raw.type).slice(0, 64),
    deviceId: idOf(raw.streamName, DEVICE_CATEGORY),
    userId: idOf(raw.streamName, USER_CATEGORY),
    actor,
    problem: error.detail,
  };
};
