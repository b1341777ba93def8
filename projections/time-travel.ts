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

export const deviceStateAt = async (
  store: EventStore,
  device: string,
  instant: number,
  options: { readonly policy?: Policy } = {},
): Promise<DeviceSummary | null> => {
  if (!Number.isFinite(instant)) throw new ProjectionError('invalid', 'the instant must be a number of ms since the epoch');
  const deviceId = device.includes('/') ? resolve(device) : device;
  const { events } = await store.readStream(deviceStream(deviceId));
  let snapshot: DeviceSnapshot | null = null;
  let version = 0;
  for (const raw of events) {
    const decoded = decodeRecorded(raw);
    if (decoded._tag === 'Left') throw decoded.left;
    const e = decoded.right;
    if (e.category !== 'device' || e.event.data.at > instant) break;
    snapshot = evolveSnapshot(snapshot, e.event);
    version = e.version;
  }
  return snapshot === null ? null : summarize({ version, snapshot }, instant, options.policy ?? defaultPolicy);
};

const resolve = (pid: string): string => {
  const p = fromPersistentId(pid);
  if (p._tag === 'Left') throw new ProjectionError('invalid', p.left);
  return p.right.deviceId;
};
