/**
 * A device as it was at a past instant, folded from its own stream with the domain's
 * `evolve` (through the same redacting snapshot as the read model). Like the engine's
 * deviceAt, the fold stops at the first event whose `at` is after the instant.
 */
import { deviceStream, fromPersistentId } from '../domain/ids.ts';
import type { EventStore } from '../domain/ports.ts';
import { defaultPolicy, type Policy } from '../domain/policies/policy.ts';
import { evolveSnapshot, summarize, type DeviceSnapshot, type DeviceSummary } from './device-snapshot.ts';
import { ProjectionError } from './errors.ts';
import { decodeRecorded } from './projected-event.ts';

/** Folds the device's stream from its first event while `take` says so. */
const foldWhile = async (
  store: EventStore,
  device: string,
  take: (at: number, version: number) => boolean,
): Promise<{ readonly snapshot: DeviceSnapshot | null; readonly version: number; readonly at: number }> => {
  const deviceId = device.includes('/') ? resolve(device) : device;
  const { events } = await store.readStream(deviceStream(deviceId));
  let snapshot: DeviceSnapshot | null = null;
  let version = 0;
  let at = 0;
  for (const raw of events) {
    const decoded = decodeRecorded(raw);
    if (decoded._tag === 'Left') throw decoded.left;
    const e = decoded.right;
    if (e.category !== 'device' || !take(e.event.data.at, e.version)) break;
    snapshot = evolveSnapshot(snapshot, e.event);
    version = e.version;
    at = e.event.data.at;
  }
  return { snapshot, version, at };
};

export const deviceStateAt = async (
  store: EventStore,
  device: string,
  instant: number,
  options: { readonly policy?: Policy } = {},
): Promise<DeviceSummary | null> => {
  if (!Number.isFinite(instant)) throw new ProjectionError('invalid', 'the instant must be a number of ms since the epoch');
  const { snapshot, version } = await foldWhile(store, device, (at) => at <= instant);
  return snapshot === null ? null : summarize({ version, snapshot }, instant, options.policy ?? defaultPolicy);
};

/**
 * A device right after the event at `version` of its stream (an audit entry's event, say),
 * with its lock and cooldown as they stood at that event's instant. Null when the stream is
 * shorter. Unlike deviceStateAt, events with the same instant that came later are left out.
 */
export const deviceStateAfter = async (
  store: EventStore,
  device: string,
  version: number,
  options: { readonly policy?: Policy } = {},
): Promise<{ readonly at: number; readonly device: DeviceSummary } | null> => {
  if (!Number.isSafeInteger(version) || version < 1) throw new ProjectionError('invalid', 'the version must be a whole number ≥ 1');
  const folded = await foldWhile(store, device, (_, v) => v <= version);
  if (folded.snapshot === null || folded.version !== version) return null;
  return { at: folded.at, device: summarize({ version, snapshot: folded.snapshot }, folded.at, options.policy ?? defaultPolicy) };
};

const resolve = (pid: string): string => {
  const p = fromPersistentId(pid);
  if (p._tag === 'Left') throw new ProjectionError('invalid', p.left);
  return p.right.deviceId;
};
