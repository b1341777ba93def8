/**
 * The in-memory read store (tests, demos). Same semantics as the SQL stores: a batch and its
 * checkpoint change together or not at all, and one instance at a time holds a lease.
 * Everything handed out is a copy.
 */
import type { GlobalPosition } from '../../domain/ports.ts';
import type { DeviceRow } from '../device-snapshot.ts';
import { ProjectionError } from '../errors.ts';
import {
  addCounts,
  auditOrder,
  deviceStatus,
  emptyHourly,
  sortDump,
  type AuditEntry,
  type Claim,
  type ClaimOptions,
  type CommitRequest,
  type CommitResult,
  type DeviceCount,
  type FailureStreak,
  type HourlyCounts,
  type ReadStore,
} from '../read-store.ts';
import { loadSync, runBuffered, type Changes, type RowLoader } from './buffered-tx.ts';

const copy = <T>(x: T): T => structuredClone(x);
const pick = <K, V>(map: ReadonlyMap<K, V>, keys: readonly K[]): Map<K, V> => {
  const out = new Map<K, V>();
  for (const k of keys) if (map.has(k)) out.set(k, map.get(k)!);
  return out;
};

export const createMemoryReadStore = (): ReadStore => {
  const checkpoints = new Map<string, GlobalPosition | null>();
  const leases = new Map<string, { owner: string; expiresAt: number }>();
  const versions = new Map<string, Map<string, number>>();
  const devices = new Map<string, DeviceRow>();
  const audit = new Map<string, AuditEntry>();
  const hourly = new Map<number, HourlyCounts>();
  const streaks = new Map<string, FailureStreak>();
  const counters = new Map<string, { name: string; key: string; value: number }>();
  let closed = false;

  const checkOpen = () => {
    if (closed) throw new ProjectionError('read-store-failed', 'the memory read store is closed');
  };
  const versionsOf = (projection: string) => {
    if (!versions.has(projection)) versions.set(projection, new Map());
    return versions.get(projection)!;
  };

  const loader = (projection: string): RowLoader<'sync'> => ({
    streamVersions: (streams) => pick(versionsOf(projection), streams),
    devices: (ids) => new Map([...pick(devices, ids)].map(([k, v]) => [k, copy(v)])),
    streaks: (ids) => new Map([...pick(streaks, ids)].map(([k, v]) => [k, copy(v)])),
  });

  const flush = (projection: string, c: Changes) => {
    if (c.clearedReadModel) for (const m of [devices, audit, hourly, streaks]) m.clear();
    if (c.clearedStreamVersions) versionsOf(projection).clear();
    for (const name of c.clearedCounters) for (const [id, x] of counters) if (x.name === name) counters.delete(id);
    for (const [s, v] of c.streamVersions) versionsOf(projection).set(s, v);
    for (const [id, row] of c.devices) devices.set(id, copy(row));
    for (const [id, s] of c.streaks) s === null ? streaks.delete(id) : streaks.set(id, copy(s));
    for (const [id, e] of c.audit) if (!audit.has(id)) audit.set(id, copy(e));
    for (const [h, d] of c.hourly) hourly.set(h, addCounts(hourly.get(h) ?? emptyHourly, d));
    for (const [id, x] of c.counters)
      counters.set(id, { name: x.name, key: x.key, value: (counters.get(id)?.value ?? 0) + x.by });
  };

  const claim = (projection: string, o: ClaimOptions): Claim => {
    const lease = () => leases.get(projection);
    const holds = () => lease()?.owner === o.owner && lease()!.expiresAt >= o.now();
    const renew = () => leases.set(projection, { owner: o.owner, expiresAt: o.now() + o.leaseMs });
    return {
      acquire: async () => {
        checkOpen();
        const l = lease();
        if (l && l.owner !== o.owner && l.expiresAt >= o.now()) return false;
        renew();
        if (!checkpoints.has(projection)) checkpoints.set(projection, null);
        return true;
      },
      // Synchronous from the checks to the flush: nothing else runs in between.
      commit: async (req: CommitRequest): Promise<CommitResult> => {
        checkOpen();
        if (!holds()) return 'not-active';
        if ((checkpoints.get(projection) ?? null) !== req.expected) return 'checkpoint-moved';
        const changes = runBuffered(loadSync(loader(projection), req.events), req.work);
        flush(projection, changes);
        checkpoints.set(projection, req.next);
        renew();
        return 'committed';
      },
      release: async () => {
        if (lease()?.owner === o.owner) leases.delete(projection);
      },
    };
  };

  const read = async <T>(f: () => T): Promise<T> => {
    checkOpen();
    return copy(f());
  };
  const live = () => [...devices.values()];

  return {
    kind: 'memory',
    claim,
    checkpoint: (projection) => read(() => checkpoints.get(projection) ?? null),
    devicesOfUser: (userId) =>
      read(() =>
        live()
          .filter((d) => d.snapshot.userId === userId)
          .sort((a, b) => a.snapshot.createdAt - b.snapshot.createdAt || (a.snapshot.deviceId < b.snapshot.deviceId ? -1 : 1)),
      ),
    device: (deviceId) => read(() => devices.get(deviceId) ?? null),
    devicesWithFailures: () => read(() => live().filter((d) => d.snapshot.throttle.failureCount > 0 && !d.snapshot.removed)),
    deviceCounts: () =>
      read(() => {
        const counts = new Map<string, DeviceCount>();
        for (const d of live()) {
          const key = `${d.snapshot.k.kind}/${deviceStatus(d)}`;
          const c = counts.get(key) ?? { kind: d.snapshot.k.kind, status: deviceStatus(d), count: 0 };
          counts.set(key, { ...c, count: c.count + 1 });
        }
        return [...counts.values()];
      }),
    audit: (q) =>
      read(() =>
        [...audit.values()]
          .filter((e) => q.userId === undefined || e.userId === q.userId)
          .filter((e) => q.deviceId === undefined || e.deviceId === q.deviceId)
          .filter((e) => q.action === undefined || e.action === q.action)
          .filter((e) => !q.before || e.at < q.before.at || (e.at === q.before.at && e.position < q.before.position))
          .sort(auditOrder)
          .slice(q.offset ?? 0, (q.offset ?? 0) + q.limit),
      ),
    hourly: (from, to) =>
      read(() =>
        [...hourly.entries()]
          .filter(([h]) => h >= from && h < to)
          .sort(([a], [b]) => a - b)
          .map(([hour, c]) => ({ hour, ...c })),
      ),
    failureStreaks: (minFailures, minDays) =>
      read(() =>
        [...streaks.values()]
          .filter((s) => s.failures >= minFailures && s.days.length >= minDays)
          .sort((a, b) => b.failures - a.failures || (a.userId < b.userId ? -1 : 1)),
      ),
    counters: (name) => read(() => new Map([...counters.values()].filter((c) => c.name === name).map((c) => [c.key, c.value]))),
    dump: () =>
      read(() =>
        sortDump({
          checkpoints: [...checkpoints].map(([projection, position]) => ({ projection, position })),
          streamVersions: [...versions].flatMap(([projection, m]) => [...m].map(([streamName, version]) => ({ projection, streamName, version }))),
          devices: [...devices.values()],
          audit: [...audit.values()],
          hourly: [...hourly].map(([hour, c]) => ({ hour, ...c })),
          failureStreaks: [...streaks.values()],
          counters: [...counters.values()],
        }),
      ),
    close: async () => {
      closed = true;
    },
  };
};
