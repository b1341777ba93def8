/**
 * The standard read model: devices per user, the audit log, and dashboard statistics, fed
 * by one projection with one checkpoint (the audit log and the statistics need each device's
 * user, which the devices table gives them in the same transaction).
 *
 * Idempotency: the projection keeps the last version it applied of every stream and skips an
 * event at or below it, so an event delivered again changes nothing — the counters included.
 */
import type { DeviceEvent, UserEvent } from '../domain/events.ts';
import { deviceAuditEntry, quarantineAuditEntry, userAuditEntry } from './audit.ts';
import { evolveSnapshot } from './device-snapshot.ts';
import { streakAfterFailure } from './failure-streaks.ts';
import type { ProjectedEvent } from './projected-event.ts';
import type { HourlyCounts, Projection, ReadTx } from './read-store.ts';

export const READ_MODEL_PROJECTION = 'factorstream-read-model';

const HOUR_MS = 3_600_000;
export const hourOf = (at: number): number => Math.floor(at / HOUR_MS) * HOUR_MS;

type Stats = { readonly counts?: Partial<HourlyCounts>; readonly streak?: 'failure' | 'success' };

/** What a device event adds to the hourly counts, and whether it fails or ends a streak. */
const deviceStats = (e: DeviceEvent): Stats => {
  switch (e.type) {
    case 'TokenVerified':
      return { counts: { verified: 1 }, streak: 'success' };
    case 'VerificationFailed':
      return { counts: { failed: 1 }, streak: 'failure' };
    case 'VerificationRefused':
      return { counts: { refused: 1 } };
    case 'DeviceRegistered':
    case 'DeviceConfirmed':
    case 'DeviceRenamed':
    case 'DeviceRemoved':
    case 'StaticTokensIssued':
    case 'ChallengeGenerated':
    case 'ChallengeDeliveryFailed':
    case 'ChallengeRefused':
    case 'ThrottleReset': // an admin reset does not end a streak: that is the point of it
      return {};
    default: {
      const unreachable: never = e;
      return unreachable;
    }
  }
};

const userStats = (e: UserEvent): Stats => {
  switch (e.type) {
    case 'MatchSucceeded':
      return { streak: 'success' };
    case 'MatchFailed':
      return { counts: { matchFailed: 1 }, streak: 'failure' };
    case 'MatchRefused':
      return { counts: { matchRefused: 1 } };
    case 'DeviceAttached':
    case 'ThrottleReset':
      return {};
    default: {
      const unreachable: never = e;
      return unreachable;
    }
  }
};

const recordStats = (
  tx: ReadTx,
  userId: string | null,
  at: number,
  stats: Stats,
): void => {
  if (stats.counts) tx.addHourly(hourOf(at), stats.counts);
  if (userId === null || stats.streak === undefined) return;
  if (stats.streak === 'success') tx.deleteFailureStreak(userId);
  else tx.putFailureStreak(streakAfterFailure(tx.failureStreak(userId), userId, at));
};

const applyDevice = (tx: ReadTx, e: ProjectedEvent & { category: 'device' }): void => {
  const before = tx.device(e.deviceId)?.snapshot ?? null;
  const after = evolveSnapshot(before, e.event);
  if (after !== null) tx.putDevice({ version: e.version, snapshot: after });
  tx.addAudit(deviceAuditEntry(e, before, after));
  recordStats(tx, (after ?? before)?.userId ?? null, e.event.data.at, deviceStats(e.event));
};

const applyUser = (tx: ReadTx, e: ProjectedEvent & { category: 'user' }): void => {
  const entry = userAuditEntry(e);
  if (entry !== null) tx.addAudit(entry);
  recordStats(tx, e.userId, e.event.data.at, userStats(e.event));
};

export const applyToReadModel = (tx: ReadTx, e: ProjectedEvent): void => {
  if (e.version <= tx.streamVersion(e.streamName)) return;
  switch (e.category) {
    case 'device':
      applyDevice(tx, e);
      break;
    case 'user':
      applyUser(tx, e);
      break;
    case 'other':
      break;
    case 'quarantined':
      // Set aside: recorded for the operator; the stream's later events still apply.
      tx.addAudit(quarantineAuditEntry(e, e.deviceId === null ? null : (tx.device(e.deviceId)?.snapshot ?? null)));
      break;
    default: {
      const unreachable: never = e;
      return unreachable;
    }
  }
  tx.setStreamVersion(e.streamName, e.version);
};

export const readModelProjection: Projection = {
  name: READ_MODEL_PROJECTION,
  apply: applyToReadModel,
  reset: (tx) => tx.clearReadModel(),
};
