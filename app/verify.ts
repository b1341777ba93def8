/**
 * Verifying a code on a device (and confirming a device with its first code): the command
 * decided with the device's opened secrets, and the outcome read from the events it wrote.
 */
import type { DeviceCommand } from '../domain/commands.ts';
import type { DeviceState } from '../domain/device.ts';
import type { DeviceEvent } from '../domain/events.ts';
import { persistentId } from '../domain/ids.ts';
import { mustDevice } from './command-targets.ts';
import type { EngineContext } from './context.ts';
import { registeredOrFail } from './device-view.ts';
import type { Options, VerifyOutcome } from './engine-api.ts';
import { err, Failure, must, run } from './errors.ts';

/** The outcome of a verification, from the events the command wrote (or had written). */
export const verifyOutcome = (deviceId: string, state: DeviceState, events: readonly DeviceEvent[]): VerifyOutcome => {
  const d = registeredOrFail(state, deviceId);
  for (const e of events) {
    if (e.type === 'TokenVerified')
      return { ok: true, deviceId, persistentId: persistentId(d.k.kind, deviceId), confirmed: d.confirmed };
    if (e.type === 'VerificationFailed') return { ok: false, deviceId, reason: e.data.reason };
    if (e.type === 'VerificationRefused')
      return { ok: false, deviceId, reason: 'throttled', retryAt: e.data.lockedUntil, failureCount: e.data.failureCount };
  }
  throw new Failure(err('internal', 'the verification produced no outcome'));
};

export const verifyWith = (ctx: EngineContext, confirming: boolean) => {
  const { meta, streams, secrets } = ctx;
  return (device: string, token: unknown, options?: Options) =>
    run(async (): Promise<VerifyOutcome> => {
      const ref = mustDevice(device);
      const { deviceId } = ref;
      const m = must(meta(options));
      const command: DeviceCommand = confirming ? { type: 'ConfirmDevice', token } : { type: 'VerifyToken', token };
      const done = await streams.onDevice(ref, m, command, secrets.keysFor);
      return verifyOutcome(deviceId, done.state, done.events);
    });
};
