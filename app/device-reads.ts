/**
 * Reading devices from the write side: a device now, a device as it was at a past instant
 * (folded from its stream up to then), and a user's devices. Nothing is written.
 */
import { evolve, initialState, type DeviceState } from '../domain/device.ts';
import { checkedText, mustDevice } from './command-targets.ts';
import type { EngineContext } from './context.ts';
import { registeredOrFail, view, type DeviceView } from './device-view.ts';
import type { Engine } from './engine-api.ts';
import { err, Failure, run } from './errors.ts';

export const deviceReads = (ctx: EngineContext): Pick<Engine, 'device' | 'deviceAt' | 'userDevices'> => {
  const { clock, policy, streams } = ctx;

  const readDevice = (device: string, at?: number) =>
    run(async (): Promise<DeviceView> => {
      const ref = mustDevice(device);
      const { deviceId } = ref;
      if (at === undefined) {
        const loaded = await streams.loadDevice(ref);
        return view(registeredOrFail(loaded.state, deviceId), loaded.version, clock.now(), policy);
      }
      if (!Number.isFinite(at)) throw new Failure(err('invalid-command', 'the instant must be a number of ms since the epoch'));
      const loaded = await streams.loadDeviceEntries(ref);
      let s: DeviceState = initialState();
      let version = 0;
      for (const x of loaded.entries) {
        if (x.event.data.at > at) break;
        s = evolve(s, x.event);
        version = x.raw.version;
      }
      if (s.status === 'empty') throw new Failure(err('device-not-found', `device ${deviceId} did not exist at ${new Date(at).toISOString()}`));
      return view(s, version, at, policy);
    });

  return {
    device: (device) => readDevice(device),
    deviceAt: (device, at) => readDevice(device, at),
    userDevices: (userId, filter) =>
      run(async () => {
        const user = await streams.loadUser(checkedText('userId', userId, 128));
        const now = clock.now();
        const out: DeviceView[] = [];
        for (const { deviceId } of user.state.devices) {
          const loaded = await streams.loadDevice(deviceId);
          const d = loaded.state;
          if (d.status === 'empty' || d.removed) continue;
          if (filter?.confirmed !== undefined && d.confirmed !== filter.confirmed) continue;
          out.push(view(d, loaded.version, now, policy));
        }
        return out;
      }),
  };
};
