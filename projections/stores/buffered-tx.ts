/**
 * A ReadTx over rows loaded before the handlers run, with writes buffered until the store
 * flushes them in its transaction. Every store uses it: loading first keeps the handlers
 * synchronous (SQLite's write transaction never spans an await), and nothing is written when
 * a handler throws.
 *
 * A batch can only touch the rows of its own streams, devices and users; `keysOf` and
 * `userIdsOf` say which, and reading anything else is a programming error.
 */
import type { DeviceRow } from '../device-snapshot.ts';
import type { ProjectedEvent } from '../projected-event.ts';
import { addCounts, emptyHourly, type AuditEntry, type FailureStreak, type HourlyCounts, type ReadTx } from '../read-store.ts';

export interface Loaded {
  readonly streamVersions: ReadonlyMap<string, number>;
  readonly devices: ReadonlyMap<string, DeviceRow | null>;
  readonly streaks: ReadonlyMap<string, FailureStreak | null>;
}

export interface Changes {
  readonly clearedReadModel: boolean;
  readonly clearedStreamVersions: boolean;
  readonly clearedCounters: ReadonlySet<string>;
  readonly streamVersions: ReadonlyMap<string, number>;
  readonly devices: ReadonlyMap<string, DeviceRow>;
  /** null: delete. */
  readonly streaks: ReadonlyMap<string, FailureStreak | null>;
  /** By position. */
  readonly audit: ReadonlyMap<string, AuditEntry>;
  readonly hourly: ReadonlyMap<number, HourlyCounts>;
  readonly counters: ReadonlyMap<string, { readonly name: string; readonly key: string; readonly by: number }>;
}

// ---- which rows a batch can touch ----------------------------------------------------------------

const unique = <T>(xs: Iterable<T>): T[] => [...new Set(xs)];

export const keysOf = (events: readonly ProjectedEvent[]): { streams: string[]; deviceIds: string[] } => ({
  streams: unique(events.map((e) => e.streamName)),
  deviceIds: unique(events.flatMap((e) => (e.category === 'device' || (e.category === 'quarantined' && e.deviceId !== null) ? [e.deviceId!] : []))),
});

/** The users a batch can touch: its user streams, devices registered in it, and the devices' owners. */
export const userIdsOf = (events: readonly ProjectedEvent[], devices: Iterable<DeviceRow | null>): string[] => {
  const ids: string[] = [];
  for (const e of events) {
    if (e.category === 'user' || (e.category === 'quarantined' && e.userId !== null)) ids.push(e.userId!);
    if (e.category === 'device' && e.event.type === 'DeviceRegistered') ids.push(e.event.data.userId);
  }
  for (const d of devices) if (d) ids.push(d.snapshot.userId);
  return unique(ids);
};

export interface RowLoader<F extends 'sync' | 'async'> {
  streamVersions(streams: readonly string[]): F extends 'sync' ? Map<string, number> : Promise<Map<string, number>>;
  devices(ids: readonly string[]): F extends 'sync' ? Map<string, DeviceRow> : Promise<Map<string, DeviceRow>>;
  streaks(userIds: readonly string[]): F extends 'sync' ? Map<string, FailureStreak> : Promise<Map<string, FailureStreak>>;
}

const complete = <V>(keys: readonly string[], found: ReadonlyMap<string, V>, missing: V): Map<string, V> =>
  new Map(keys.map((k) => [k, found.get(k) ?? missing]));

const loaded = (
  keys: { streams: string[]; deviceIds: string[] },
  versions: Map<string, number>,
  devices: Map<string, DeviceRow | null>,
  userIds: string[],
  streaks: Map<string, FailureStreak>,
): Loaded => ({
  streamVersions: complete(keys.streams, versions, 0),
  devices,
  streaks: complete<FailureStreak | null>(userIds, streaks, null),
});

export const loadSync = (loader: RowLoader<'sync'>, events: readonly ProjectedEvent[]): Loaded => {
  const keys = keysOf(events);
  const devices = complete<DeviceRow | null>(keys.deviceIds, loader.devices(keys.deviceIds), null);
  const userIds = userIdsOf(events, devices.values());
  return loaded(keys, loader.streamVersions(keys.streams), devices, userIds, loader.streaks(userIds));
};

export const loadAsync = async (loader: RowLoader<'async'>, events: readonly ProjectedEvent[]): Promise<Loaded> => {
  const keys = keysOf(events);
  const devices = complete<DeviceRow | null>(keys.deviceIds, await loader.devices(keys.deviceIds), null);
  const userIds = userIdsOf(events, devices.values());
  return loaded(keys, await loader.streamVersions(keys.streams), devices, userIds, await loader.streaks(userIds));
};

// ---- the transaction ----------------------------------------------------------------------------

const notLoaded = (what: string, key: string): Error =>
  new Error(`internal: ${what} "${key.slice(0, 80)}" was not loaded for this batch (a projection read outside its events' rows)`);

class BufferedTx implements ReadTx {
  clearedReadModel = false;
  clearedStreamVersions = false;
  readonly clearedCounters = new Set<string>();
  readonly versions = new Map<string, number>();
  readonly devices = new Map<string, DeviceRow>();
  readonly streaks = new Map<string, FailureStreak | null>();
  readonly audit = new Map<string, AuditEntry>();
  readonly hourly = new Map<number, HourlyCounts>();
  readonly counters = new Map<string, { name: string; key: string; by: number }>();

  constructor(private readonly base: Loaded) {}

  private read<V>(pending: Map<string, V>, base: ReadonlyMap<string, V>, cleared: boolean, key: string, what: string, none: V): V {
    if (pending.has(key)) return pending.get(key)!;
    if (cleared) return none;
    if (!base.has(key)) throw notLoaded(what, key);
    return base.get(key)!;
  }

  streamVersion(streamName: string): number {
    return this.read(this.versions, this.base.streamVersions, this.clearedStreamVersions, streamName, 'the version of stream', 0);
  }
  setStreamVersion(streamName: string, version: number): void {
    this.versions.set(streamName, version);
  }
  device(deviceId: string): DeviceRow | null {
    return this.read<DeviceRow | null>(this.devices, this.base.devices, this.clearedReadModel, deviceId, 'device', null);
  }
  putDevice(row: DeviceRow): void {
    this.devices.set(row.snapshot.deviceId, row);
  }
  failureStreak(userId: string): FailureStreak | null {
    return this.read(this.streaks, this.base.streaks, this.clearedReadModel, userId, 'the failure streak of user', null);
  }
  putFailureStreak(streak: FailureStreak): void {
    this.streaks.set(streak.userId, streak);
  }
  deleteFailureStreak(userId: string): void {
    // No stored row (a user with no failures, the usual case, or a read model emptied in this
    // batch): forgetting a pending put is all there is to do, and the store writes nothing.
    if (this.clearedReadModel || this.base.streaks.get(userId) === null) this.streaks.delete(userId);
    else this.streaks.set(userId, null);
  }
  /** Keyed by position, as the SQL stores' rm_audit is: one row per event of the log. */
  addAudit(entry: AuditEntry): void {
    if (!this.audit.has(entry.position)) this.audit.set(entry.position, entry);
  }
  addHourly(hour: number, delta: Partial<HourlyCounts>): void {
    this.hourly.set(hour, addCounts(this.hourly.get(hour) ?? emptyHourly, delta));
  }
  bump(name: string, key: string, by = 1): void {
    const id = `${name}\u0000${key}`;
    this.counters.set(id, { name, key, by: (this.counters.get(id)?.by ?? 0) + by });
  }
  clearReadModel(): void {
    this.clearedReadModel = true;
    this.devices.clear();
    this.streaks.clear();
    this.audit.clear();
    this.hourly.clear();
  }
  clearCounters(name: string): void {
    this.clearedCounters.add(name);
    for (const [id, c] of this.counters) if (c.name === name) this.counters.delete(id);
  }
  clearStreamVersions(): void {
    this.clearedStreamVersions = true;
    this.versions.clear();
  }

  changes(): Changes {
    return {
      clearedReadModel: this.clearedReadModel,
      clearedStreamVersions: this.clearedStreamVersions,
      clearedCounters: this.clearedCounters,
      streamVersions: this.versions,
      devices: this.devices,
      streaks: this.streaks,
      audit: this.audit,
      hourly: this.hourly,
      counters: this.counters,
    };
  }
}

/** Runs the handlers over the loaded rows; returns what to write. Throws what they throw. */
export const runBuffered = (base: Loaded, work: (tx: ReadTx) => void): Changes => {
  const tx = new BufferedTx(base);
  work(tx);
  return tx.changes();
};
