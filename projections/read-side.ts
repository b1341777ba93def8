/**
 * The read-side API over a read store: what a dashboard, an admin screen or a login page asks.
 * Status (throttle, cooldown, pending code) is computed at query time from the stored state
 * with the domain's own rules, at `now` (default: the clock given here, else Date.now) and
 * under a Policy (default: the domain's defaultPolicy).
 */
import type { Kind } from '../domain/codecs.ts';
import { fromPersistentId } from '../domain/ids.ts';
import { makePolicy, type Policy, type PolicyOverrides } from '../domain/policies/policy.ts';
import { lockedAt, summarize, type DeviceSummary } from './device-snapshot.ts';
import { ProjectionError } from './errors.ts';
import { DEFAULT_MIN_DISTINCT_DAYS, DEFAULT_MIN_FAILURES } from './failure-streaks.ts';
import { hourOf } from './read-model.ts';
import { emptyHourly, type AuditEntry, type DeviceStatus, type FailureStreak, type HourlyRow, type ReadStore } from './read-store.ts';

export interface ReadSideOptions {
  readonly policy?: Policy | PolicyOverrides;
  readonly now?: () => number;
}

export interface PageRequest {
  /** 1–1000; default 50. */
  readonly limit?: number;
  /** From a previous page's nextCursor. */
  readonly cursor?: string | null;
  /** Skip this many entries (after the cursor, if any). */
  readonly offset?: number;
}

export interface AuditPage {
  /** Newest first (event time, then log order). */
  readonly entries: readonly AuditEntry[];
  /** Pass it back for the next page; null on the last page. */
  readonly nextCursor: string | null;
}

export type DeviceCounts = Readonly<Record<Kind, Readonly<Record<DeviceStatus, number>>>> & {
  readonly total: Readonly<Record<DeviceStatus, number>>;
};

export interface HourlyQuery {
  /** Any instant in the first hour. */
  readonly from: number;
  /** Any instant in the last hour (included). */
  readonly to: number;
  /** Include hours without events, as zeros (default true; at most 10 000 hours). */
  readonly fill?: boolean;
}

export interface Dashboard {
  readonly devices: DeviceCounts;
  readonly hourly: readonly HourlyRow[];
  readonly lockedDevices: readonly DeviceSummary[];
  readonly unusualFailures: readonly FailureStreak[];
}

export interface ReadSide {
  /** Like django-otp's devices_for_user: the user's devices, removed ones left out; all by default. */
  devicesForUser(userId: string, options?: { readonly confirmed?: boolean; readonly now?: number }): Promise<DeviceSummary[]>;
  userHasDevice(userId: string, options?: { readonly confirmed?: boolean }): Promise<boolean>;
  /** A device by id or persistent id, removed or not; null when the read model has none. */
  device(device: string, options?: { readonly now?: number }): Promise<DeviceSummary | null>;
  auditForUser(userId: string, page?: PageRequest): Promise<AuditPage>;
  auditForDevice(device: string, page?: PageRequest): Promise<AuditPage>;
  deviceCounts(): Promise<DeviceCounts>;
  verificationsPerHour(query: HourlyQuery): Promise<HourlyRow[]>;
  /** Devices throttled at `now`. */
  lockedDevices(options?: { readonly now?: number }): Promise<DeviceSummary[]>;
  /**
   * Users whose failures since their last success number at least `minFailures` (default 10)
   * spread over at least `minDistinctDays` UTC days (default 3): slow guessing.
   */
  unusualFailurePatterns(options?: { readonly minFailures?: number; readonly minDistinctDays?: number }): Promise<FailureStreak[]>;
  dashboard(options: { readonly from: number; readonly to: number; readonly now?: number }): Promise<Dashboard>;
}

const KINDS: readonly Kind[] = ['totp', 'hotp', 'static', 'email', 'sms'];
const HOUR_MS = 3_600_000;
const MAX_FILLED_HOURS = 10_000;

const invalid = (message: string) => new ProjectionError('invalid', message);

const encodeCursor = (e: AuditEntry): string => Buffer.from(JSON.stringify([e.at, e.position])).toString('base64url');
const decodeCursor = (cursor: string): { at: number; position: string } => {
  try {
    const [at, position] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    if (typeof at === 'number' && typeof position === 'string') return { at, position };
  } catch {
    // falls through
  }
  throw invalid('the cursor is not one this API returned; start again without it');
};

const pageOf = (limit: number, rows: AuditEntry[]): AuditPage => {
  const entries = rows.slice(0, limit);
  return { entries, nextCursor: rows.length > limit ? encodeCursor(entries[entries.length - 1]!) : null };
};

const deviceIdOf = (device: string): string => {
  if (!device.includes('/')) return device;
  const p = fromPersistentId(device);
  if (p._tag === 'Left') throw invalid(p.left);
  return p.right.deviceId;
};

const counts = (rows: { kind: string; status: DeviceStatus; count: number }[]): DeviceCounts => {
  const zero = () => ({ confirmed: 0, unconfirmed: 0, removed: 0 });
  const out = Object.fromEntries([...KINDS.map((k) => [k, zero()]), ['total', zero()]]) as Record<Kind | 'total', Record<DeviceStatus, number>>;
  for (const r of rows) {
    const byKind = out[r.kind as Kind];
    if (byKind) byKind[r.status] += r.count;
    out.total[r.status] += r.count;
  }
  return out as DeviceCounts;
};

const filled = (rows: HourlyRow[], from: number, to: number): HourlyRow[] => {
  const byHour = new Map(rows.map((r) => [r.hour, r]));
  const out: HourlyRow[] = [];
  for (let h = from; h < to; h += HOUR_MS) out.push(byHour.get(h) ?? { hour: h, ...emptyHourly });
  return out;
};

export const createReadSide = (store: ReadStore, options: ReadSideOptions = {}): ReadSide => {
  // A full Policy is also a valid set of overrides: makePolicy returns it unchanged.
  const policy: Policy = makePolicy(options.policy ?? {});
  const clock = options.now ?? (() => Date.now());

  const auditPage = async (filter: { userId?: string; deviceId?: string }, page: PageRequest = {}): Promise<AuditPage> => {
    const limit = page.limit ?? 50;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) throw invalid(`limit must be a whole number from 1 to 1000 (got ${limit})`);
    const offset = page.offset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0) throw invalid(`offset must be a whole number ≥ 0 (got ${offset})`);
    const before = page.cursor ? decodeCursor(page.cursor) : undefined;
    const rows = await store.audit({ ...filter, limit: limit + 1, offset, ...(before ? { before } : {}) });
    return pageOf(limit, rows);
  };

  const devicesForUser: ReadSide['devicesForUser'] = async (userId, o = {}) => {
    const now = o.now ?? clock();
    return (await store.devicesOfUser(userId))
      .filter((d) => !d.snapshot.removed && (o.confirmed === undefined || d.snapshot.confirmed === o.confirmed))
      .map((d) => summarize(d, now, policy));
  };

  const lockedDevices: ReadSide['lockedDevices'] = async (o = {}) => {
    const now = o.now ?? clock();
    return (await store.devicesWithFailures()).filter((d) => lockedAt(d, now, policy)).map((d) => summarize(d, now, policy));
  };

  const verificationsPerHour: ReadSide['verificationsPerHour'] = async (q) => {
    const from = hourOf(q.from);
    const to = hourOf(q.to) + HOUR_MS;
    if (!(to > from)) throw invalid('`to` must not be before `from`');
    const rows = await store.hourly(from, to);
    const fill = (q.fill ?? true) && (to - from) / HOUR_MS <= MAX_FILLED_HOURS;
    return fill ? filled(rows, from, to) : rows;
  };

  const unusualFailurePatterns: ReadSide['unusualFailurePatterns'] = (o = {}) =>
    store.failureStreaks(o.minFailures ?? DEFAULT_MIN_FAILURES, o.minDistinctDays ?? DEFAULT_MIN_DISTINCT_DAYS);

  return {
    devicesForUser,
    userHasDevice: async (userId, o = {}) => (await devicesForUser(userId, o)).length > 0,
    device: async (device, o = {}) => {
      const row = await store.device(deviceIdOf(device));
      return row ? summarize(row, o.now ?? clock(), policy) : null;
    },
    auditForUser: (userId, page) => auditPage({ userId }, page),
    auditForDevice: (device, page) => auditPage({ deviceId: deviceIdOf(device) }, page),
    deviceCounts: async () => counts(await store.deviceCounts()),
    verificationsPerHour,
    lockedDevices,
    unusualFailurePatterns,
    dashboard: async (o) => ({
      devices: counts(await store.deviceCounts()),
      hourly: await verificationsPerHour({ from: o.from, to: o.to }),
      lockedDevices: await lockedDevices(o.now === undefined ? {} : { now: o.now }),
      unusualFailures: await unusualFailurePatterns(),
    }),
  };
};
