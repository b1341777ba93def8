/**
 * How an event appears in the audit log: what happened, why, to which device, by whom and
 * from where. Only non-secret particulars are copied; digests and sealed values never are.
 */
import { persistentId } from '../domain/ids.ts';
import type { DeviceEvent, UserEvent } from '../domain/events.ts';
import type { DeviceSnapshot } from './device-snapshot.ts';
import type { DecodedEvent, QuarantinedEvent } from './projected-event.ts';
import type { AuditAction, AuditDetails, AuditEntry } from './read-store.ts';

interface Described {
  readonly action: AuditAction;
  readonly reason?: string;
  readonly details?: AuditDetails;
}

const describeDevice = (e: DeviceEvent, before: DeviceSnapshot | null): Described => {
  switch (e.type) {
    case 'DeviceRegistered':
      return {
        action: 'device-enrolled',
        details: {
          kind: e.data.config.kind,
          name: e.data.name,
          confirmed: e.data.confirmed,
          ...(e.data.origin ? { originSystem: e.data.origin.system, originReference: e.data.origin.reference } : {}),
        },
      };
    case 'DeviceConfirmed':
      return { action: 'device-confirmed' };
    case 'DeviceRenamed':
      return { action: 'device-renamed', details: { from: before?.name ?? null, to: e.data.name } };
    case 'DeviceRemoved':
      return { action: 'device-removed', ...(e.data.reason ? { reason: e.data.reason } : {}) };
    case 'StaticTokensIssued':
      return { action: 'backup-codes-issued', details: { count: e.data.digests.length } };
    case 'ChallengeGenerated':
      return { action: 'challenge-generated', details: { validUntil: e.data.validUntil } };
    case 'ChallengeDeliveryFailed':
      return { action: 'challenge-delivery-failed', reason: e.data.reason };
    case 'ChallengeRefused':
      return { action: 'challenge-refused', reason: e.data.reason, details: { retryAt: e.data.retryAt } };
    case 'TokenVerified':
      return { action: 'verification-accepted', details: { method: e.data.match.kind } };
    case 'VerificationFailed':
      return { action: 'verification-failed', reason: e.data.reason };
    case 'VerificationRefused':
      return {
        action: 'verification-refused',
        reason: e.data.reason,
        details: { failureCount: e.data.failureCount, lockedUntil: e.data.lockedUntil },
      };
    case 'ThrottleReset':
      return { action: 'throttle-reset', reason: e.data.reason };
    default: {
      const unreachable: never = e;
      return unreachable;
    }
  }
};

/** Null for DeviceAttached: the device's own DeviceRegistered is the enrolment entry. */
const describeUser = (e: UserEvent): Described | null => {
  switch (e.type) {
    case 'DeviceAttached':
      return null;
    case 'MatchSucceeded':
      return { action: 'match-succeeded', details: { deviceId: e.data.deviceId } };
    case 'MatchFailed':
      return { action: 'match-failed', details: { devicesTried: e.data.devicesTried } };
    case 'MatchRefused':
      return {
        action: 'match-refused',
        reason: e.data.reason,
        details: { failureCount: e.data.failureCount, lockedUntil: e.data.lockedUntil },
      };
    case 'ThrottleReset':
      return { action: 'throttle-reset', reason: e.data.reason };
    default: {
      const unreachable: never = e;
      return unreachable;
    }
  }
};

/**
 * The client context is whatever the caller passed: control characters (which PostgreSQL
 * cannot store, and which can forge lines in a log viewer) become U+FFFD, and it is capped.
 */
// eslint-disable-next-line no-control-regex
const clientText = (s: string | undefined): string | null => (s === undefined ? null : s.replace(/[\u0000-\u001f\u007f]/g, '\ufffd').slice(0, 512));

const entry = (
  e: DecodedEvent,
  d: Described,
  who: { userId: string | null; deviceId: string | null; persistentId: string | null },
): AuditEntry => ({
  eventId: e.eventId,
  position: e.position,
  streamName: e.streamName,
  version: e.version,
  ...who,
  type: e.event.type,
  action: d.action,
  reason: d.reason ?? null,
  at: e.event.data.at,
  recordedAt: e.recordedAt,
  actor: e.metadata.actor,
  ip: clientText(e.metadata.client?.ip),
  userAgent: clientText(e.metadata.client?.userAgent),
  details: e.metadata.onBehalfOf === undefined ? (d.details ?? {}) : { ...d.details, onBehalfOf: e.metadata.onBehalfOf },
});

/**
 * The audit entry of a device event. `before` is the device before the event, `after` after
 * it (either may be null when the model never saw the device registered).
 */
export const deviceAuditEntry = (
  e: DecodedEvent & { category: 'device' },
  before: DeviceSnapshot | null,
  after: DeviceSnapshot | null,
): AuditEntry => {
  const owner = after ?? before;
  return entry(e, describeDevice(e.event, before), {
    userId: owner?.userId ?? null,
    deviceId: e.deviceId,
    persistentId: owner ? persistentId(owner.k.kind, e.deviceId) : null,
  });
};

export const userAuditEntry = (e: DecodedEvent & { category: 'user' }): AuditEntry | null => {
  const d = describeUser(e.event);
  return d === null ? null : entry(e, d, { userId: e.userId, deviceId: null, persistentId: null });
};

/**
 * The audit entry of an event set aside because it does not decode: where it is, what failed,
 * and the user its device belongs to as far as the model knows. This is the operator's
 * quarantine list (`action: 'event-quarantined'`); a rebuild after a repair makes it again.
 */
export const quarantineAuditEntry = (e: QuarantinedEvent, owner: DeviceSnapshot | null): AuditEntry => ({
  eventId: e.eventId,
  position: e.position,
  streamName: e.streamName,
  version: e.version,
  userId: e.userId ?? owner?.userId ?? null,
  deviceId: e.deviceId,
  persistentId: owner && e.deviceId !== null ? persistentId(owner.k.kind, e.deviceId) : null,
  type: e.type,
  action: 'event-quarantined',
  reason: e.problem.slice(0, 500),
  at: e.recordedAt,
  recordedAt: e.recordedAt,
  actor: e.actor ?? 'unknown',
  ip: null,
  userAgent: null,
  details: {},
});
