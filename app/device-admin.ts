/**
 * The administrative commands on devices and users: reset a throttle, rename, remove (the
 * device's key destroyed after the removal is recorded), and erase a user (GDPR: every device
 * removed and its key destroyed, even a device whose stream no longer decodes).
 */
import type { DeviceCommand } from '../domain/commands.ts';
import { eventHash } from '../domain/chain.ts';
import type { DeviceState } from '../domain/device.ts';
import { encodeChecked, type DeviceEvent } from '../domain/events.ts';
import { deviceStream } from '../domain/ids.ts';
import { chained } from './chained-events.ts';
import type { Meta } from './command-metadata.ts';
import { checkedText, mustDevice } from './command-targets.ts';
import type { EngineContext } from './context.ts';
import { registeredOrFail, view, type DeviceView } from './device-view.ts';
import type { Engine, Options } from './engine-api.ts';
import { conflictExhausted, err, Failure, must, run } from './errors.ts';
import type { Loaded } from './state-cache.ts';

type Admin = Pick<Engine, 'resetThrottle' | 'resetUserThrottle' | 'rename' | 'remove' | 'eraseUser'>;

export const deviceAdmin = (ctx: EngineContext): Admin => {
  const { store, policy, meta, cache, streams, secrets } = ctx;
  const maxRetries = ctx.handler.maxRetries;

  /** A command on one device that answers with the device's view afterwards. */
  const simple = (command: () => DeviceCommand, after?: (deviceId: string) => Promise<void>) =>
    (device: string, options: Options | undefined) =>
      run(async (): Promise<DeviceView> => {
        const ref = mustDevice(device);
        const { deviceId } = ref;
        const m = must(meta(options));
        const done = await streams.onDevice(ref, m, command(), async () => ({}));
        if (after) await after(deviceId);
        return view(registeredOrFail(done.state, deviceId), done.version, m.now, policy);
      });

  /**
   * Removes a device whose stream holds an event that does not decode (written by an older
   * version, or edited in the database): its state cannot be folded, but a removal needs none.
   * DeviceRemoved is appended at the stream's version and linked to its last event; the bad
   * event stays where it is for an operator to see. False when another command had removed the
   * device already (a retry of this one answers true again, as the first call did). Only a stream that starts with a DeviceRegistered is taken
   * for a device.
   */
  const removeUnreadable = async (deviceId: string, m: Meta, reason: string): Promise<boolean> => {
    const stream = deviceStream(deviceId);
    cache.forget(stream);
    for (let attempt = 0; attempt <= maxRetries; attempt++) {
      const read = await store.readStream(stream);
      const last = read.events[read.events.length - 1];
      if (last === undefined || read.events[0]!.type !== 'DeviceRegistered')
        throw new Failure(err('corrupt-event', `stream ${stream} does not start with a DeviceRegistered event; it was left as it is`));
      const removal0 = read.events.find((r) => r.type === 'DeviceRemoved');
      // Removed already: by this command (a retry, which answers as the first call did) or another.
      if (removal0 !== undefined) return (removal0.metadata as { commandId?: unknown } | null)?.commandId === m.commandId;
      const removal: DeviceEvent = { type: 'DeviceRemoved', data: { at: m.now, reason } };
      const { toStore } = chained(stream, { version: read.version, prevHash: eventHash(last) }, [removal], encodeChecked, m);
      const result = await store.appendToStream(stream, toStore, read.version);
      if (result.ok) return result.written !== false;
    }
    throw conflictExhausted(stream, maxRetries + 1);
  };

  return {
    resetThrottle: (device, reason, options) => simple(() => ({ type: 'ResetThrottle', reason: checkedText('reason', reason, 500) }))(device, options),
    resetUserThrottle: (userId, reason, options) =>
      run(async () => {
        const m = must(meta(options));
        await streams.onUser(checkedText('userId', userId, 128), m, { type: 'ResetUserThrottle', reason: checkedText('reason', reason, 500) });
      }),
    rename: (device, name, options) => simple(() => ({ type: 'RenameDevice', name: checkedText('name', name, 64) }))(device, options),
    remove: (device, reason, options) =>
      simple(
        () => ({ type: 'RemoveDevice', ...(reason === undefined ? {} : { reason: checkedText('reason', reason, 500) }) }),
        // The key goes after the removal is recorded; a crash in between leaves a removed
        // device whose key a retried remove (same command id) destroys.
        (deviceId) => secrets.shred(deviceId),
      )(device, options),
    eraseUser: (userId, reason, options) =>
      run(async () => {
        const m = must(meta(options));
        const why = checkedText('reason', reason, 500);
        const user = await streams.loadUser(checkedText('userId', userId, 128));
        const removed: string[] = [];
        for (const { deviceId } of user.state.devices) {
          // A retried erasure (same command id) finishes what a crash interrupted: the removal is
          // replayed and the key shredded again.
          const deviceMeta: Meta = { ...m, commandId: `${m.commandId}:erase:${deviceId}` };
          let loaded: Loaded<DeviceState, DeviceEvent>;
          try {
            loaded = await streams.loadDevice(deviceId);
          } catch (e) {
            if (!(e instanceof Failure && e.error.code === 'corrupt-event')) throw e;
            // An erasure must not depend on every event of the user being readable.
            if (await removeUnreadable(deviceId, deviceMeta, why)) removed.push(deviceId);
            await secrets.shred(deviceId);
            continue;
          }
          if (loaded.state.status !== 'registered') continue;
          const already = loaded.state.removed && loaded.commands.eventsOf(deviceMeta.commandId, loaded.version).length === 0;
          if (already) {
            await secrets.shred(deviceId);
            continue;
          }
          await streams.onDevice(deviceId, deviceMeta, { type: 'RemoveDevice', reason: why }, async () => ({}));
          await secrets.shred(deviceId);
          removed.push(deviceId);
        }
        return { removed };
      }),
  };
};
