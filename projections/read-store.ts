/**
 * The read store port: where projections keep their read models and checkpoints, and how
 * several runner instances agree on which one applies events.
 *
 * Implementations: stores/memory.ts (tests), stores/sqlite.ts, stores/postgres.ts. The
 * projection code is written once against ReadTx; each store turns a batch into one
 * transaction that also moves the checkpoint.
 */
import type { GlobalPosition } from '../domain/ports.ts';
import type { DeviceRow } from './device-snapshot.ts';
import type { ProjectedEvent } from './projected-event.ts';

// ---- rows -------------------------------------------------------------------------------------

export type AuditAction =
  | 'device-enrolled'
  | 'device-confirmed'
  | 'device-renamed'
  | 'device-removed'
  | 'backup-codes-issued'
  | 'challenge-generated'
  | 'challenge-delivery-failed'
  | 'challenge-refused'
  | 'verification-accepted'
  | 'verification-failed'
  | 'verification-refused'
  | 'throttle-reset'
  | 'match-succeeded'
  | 'match-failed'
  | 'match-refused'
  /** A stored event that does not decode, set aside so that the rest of the log goes on. */
  | 'event-quarantined';

export type AuditDetails = Readonly<Record<string, string | number | boolean | null>>;

export interface AuditEntry {
  readonly eventId: string;
  readonly position: GlobalPosition;
  readonly streamName: string;
  readonly version: number;
  /** The user the event concerns (null only for an event of a device the model never saw registered). */
  readonly userId: string | null;
  /** Device events only. */
  readonly deviceId: string | null;
  readonly persistentId: string | null;
  readonly type: string;
  readonly action: AuditAction;
  /** Why: the failure or refusal reason, the reset's or removal's reason. */
  readonly reason: string | null;
  /** When it happened (the event's `at`). */
  readonly at: number;
  readonly recordedAt: number;
  /** Who (metadata.actor). */
  readonly actor: string;
  /** The caller's client context (metadata.client). */
  readonly ip: string | null;
  readonly userAgent: string | null;
  /** Non-secret particulars (new name, codes issued, lockedUntil, …). */
  readonly details: AuditDetails;
}

/** Counts of one hour, bucketed by the events' `at`. */
export interface HourlyCounts {
  /** TokenVerified. */
  readonly verified: number;
  /** VerificationFailed. */
  readonly failed: number;
  /** VerificationRefused (throttled). */
  readonly refused: number;
  /** MatchFailed (user stream). */
  readonly matchFailed: number;
  /** MatchRefused (user stream). */
  readonly matchRefused: number;
}

export interface HourlyRow extends HourlyCounts {
  /** Start of the hour, ms since the epoch (UTC). */
  readonly hour: number;
}

/** A user's failures since their last success. */
export interface FailureStreak {
  readonly userId: string;
  readonly failures: number;
  /** Distinct UTC days (days since the epoch) with a failure, ascending. */
  readonly days: readonly number[];
  readonly firstFailureAt: number;
  readonly lastFailureAt: number;
}

export type DeviceStatus = 'confirmed' | 'unconfirmed' | 'removed';

export interface DeviceCount {
  readonly kind: string;
  readonly status: DeviceStatus;
  readonly count: number;
}

// ---- writing ----------------------------------------------------------------------------------

/**
 * What a projection may read and write while it applies a batch. Synchronous: a store
 * loads what the batch can touch before the handlers run (see stores/buffered-tx.ts), so
 * that SQLite's write transaction never spans an await.
 */
export interface ReadTx {
  /** The last version of the stream this projection applied (0: none). */
  streamVersion(streamName: string): number;
  setStreamVersion(streamName: string, version: number): void;
  device(deviceId: string): DeviceRow | null;
  putDevice(row: DeviceRow): void;
  failureStreak(userId: string): FailureStreak | null;
  putFailureStreak(streak: FailureStreak): void;
  deleteFailureStreak(userId: string): void;
  /** Ignored when an entry with the same event id exists. */
  addAudit(entry: AuditEntry): void;
  addHourly(hour: number, delta: Partial<HourlyCounts>): void;
  /** A general-purpose counter (custom projections, tests). */
  bump(name: string, key: string, by?: number): void;
  /** Empties the devices, audit, hourly and failure-streak tables. */
  clearReadModel(): void;
  clearCounters(name: string): void;
  /** Forgets every stream version of this projection. */
  clearStreamVersions(): void;
}

export interface Projection {
  readonly name: string;
  /** Applies one event. Delivery is at least once: applying an event again must change nothing. */
  apply(tx: ReadTx, event: ProjectedEvent): void;
  /** Removes what the projection wrote, before a rebuild. */
  reset(tx: ReadTx): void;
}

// ---- one active instance -------------------------------------------------------------------

export interface ClaimOptions {
  /** Identifies this runner instance. */
  readonly owner: string;
  /** Lease stores (SQLite, memory): how long a claim holds without renewal. */
  readonly leaseMs: number;
  /** Clock for leases. */
  readonly now: () => number;
}

export interface CommitRequest {
  /** The checkpoint the batch starts from; the commit fails if the stored one differs. */
  readonly expected: GlobalPosition | null;
  /** The checkpoint stored with the batch. */
  readonly next: GlobalPosition | null;
  /** The batch (the store loads what it can touch). */
  readonly events: readonly ProjectedEvent[];
  readonly work: (tx: ReadTx) => void;
  /**
   * The batch belongs to a rebuild (its reset, then the replay). No one needs a complete read
   * model before the rebuild ends, so a store may make reads slower until `finishRebuild`
   * (the SQLite store drops its read-only indexes) to make these writes faster.
   */
  readonly rebuild?: boolean;
}

export type CommitResult = 'committed' | 'not-active' | 'checkpoint-moved';

/** One runner instance's handle on a projection in a read store. */
export interface Claim {
  /** Becomes (or stays, renewing a lease) the one instance that applies events. */
  acquire(): Promise<boolean>;
  /**
   * In one transaction: checks that this instance is still the active one and that the
   * checkpoint is still `expected`, runs `work`, stores `next`. Nothing is written unless
   * the result is 'committed'; an exception from `work` rolls everything back and is rethrown.
   */
  commit(request: CommitRequest): Promise<CommitResult>;
  /** Gives the projection up (another instance may take it at once). */
  release(): Promise<void>;
  /**
   * Does what `rebuild` batches deferred, so that reads are fast again. The runner calls it
   * when a rebuild ends, whether the rebuild succeeded or not; a store that defers nothing
   * leaves it out. A store must not depend on it: the process may die first (the SQLite store
   * catches up when it is next opened, or when another instance claims the projection).
   */
  finishRebuild?(): Promise<void>;
}

// ---- reading ----------------------------------------------------------------------------------

export interface AuditQuery {
  readonly userId?: string;
  readonly deviceId?: string;
  /** Only entries of this action (e.g. `event-quarantined`: the quarantine list). */
  readonly action?: AuditAction;
  readonly limit: number;
  /** Entries strictly older than this (at, then position), newest first. */
  readonly before?: { readonly at: number; readonly position: GlobalPosition };
  readonly offset?: number;
}

/** Every row of every read-model table, normalised (for tests and tools). */
export interface ReadModelDump {
  readonly checkpoints: readonly { readonly projection: string; readonly position: GlobalPosition | null }[];
  readonly streamVersions: readonly { readonly projection: string; readonly streamName: string; readonly version: number }[];
  readonly devices: readonly DeviceRow[];
  readonly audit: readonly AuditEntry[];
  readonly hourly: readonly HourlyRow[];
  readonly failureStreaks: readonly FailureStreak[];
  readonly counters: readonly { readonly name: string; readonly key: string; readonly value: number }[];
}

export interface ReadStore {
  readonly kind: 'memory' | 'sqlite' | 'postgres';
  claim(projection: string, options: ClaimOptions): Claim;
  checkpoint(projection: string): Promise<GlobalPosition | null>;
  devicesOfUser(userId: string): Promise<DeviceRow[]>;
  device(deviceId: string): Promise<DeviceRow | null>;
  /** Devices not removed with at least one counted failure (candidates for "locked now"). */
  devicesWithFailures(): Promise<DeviceRow[]>;
  deviceCounts(): Promise<DeviceCount[]>;
  audit(query: AuditQuery): Promise<AuditEntry[]>;
  /** Hours in [fromHour, toHour), ascending. */
  hourly(fromHour: number, toHour: number): Promise<HourlyRow[]>;
  failureStreaks(minFailures: number, minDays: number): Promise<FailureStreak[]>;
  counters(name: string): Promise<ReadonlyMap<string, number>>;
  dump(): Promise<ReadModelDump>;
  close(): Promise<void>;
}

export const emptyHourly: HourlyCounts = { verified: 0, failed: 0, refused: 0, matchFailed: 0, matchRefused: 0 };

export const addCounts = (a: HourlyCounts, b: Partial<HourlyCounts>): HourlyCounts => ({
  verified: a.verified + (b.verified ?? 0),
  failed: a.failed + (b.failed ?? 0),
  refused: a.refused + (b.refused ?? 0),
  matchFailed: a.matchFailed + (b.matchFailed ?? 0),
  matchRefused: a.matchRefused + (b.matchRefused ?? 0),
});

export const deviceStatus = (row: DeviceRow): DeviceStatus =>
  row.snapshot.removed ? 'removed' : row.snapshot.confirmed ? 'confirmed' : 'unconfirmed';

/** Newest first: `at` descending, then position descending. */
export const auditOrder = (a: AuditEntry, b: AuditEntry): number =>
  b.at - a.at || (a.position < b.position ? 1 : a.position > b.position ? -1 : 0);

const byText =
  <T>(...keys: ((x: T) => string)[]) =>
  (a: T, b: T): number => {
    for (const k of keys) {
      const x = k(a);
      const y = k(b);
      if (x !== y) return x < y ? -1 : 1;
    }
    return 0;
  };

/** A dump in a fixed order (by primary key, compared as JS strings), whatever the store. */
export const sortDump = (d: ReadModelDump): ReadModelDump => ({
  checkpoints: [...d.checkpoints].sort(byText((r) => r.projection)),
  streamVersions: [...d.streamVersions].sort(byText((r) => r.projection, (r) => r.streamName)),
  devices: [...d.devices].sort(byText((r) => r.snapshot.deviceId)),
  audit: [...d.audit].sort(byText((r) => r.eventId)),
  hourly: [...d.hourly].sort((a, b) => a.hour - b.hour),
  failureStreaks: [...d.failureStreaks].sort(byText((r) => r.userId)),
  counters: [...d.counters].sort(byText((r) => r.name, (r) => r.key)),
});
