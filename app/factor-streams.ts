/**
 * factorstream's two kinds of stream, device and user, as the command handler takes them:
 * their event types, initial states, evolve and codecs; how each is loaded (a device looked
 * up under a persistent id of another kind is not found); and a command decided on each with
 * the domain's deciders (domain/decide.ts, domain/user.ts).
 */
import { isLeft, left, right } from 'fp-ts/lib/Either.js';
import { sha256 } from '../domain/chain.ts';
import type { Kind } from '../domain/codecs.ts';
import type { DeviceCommand, UserCommand } from '../domain/commands.ts';
import { decide, type DecideContext } from '../domain/decide.ts';
import { evolve, initialState, type DeviceState, type RegisteredDevice } from '../domain/device.ts';
import { decodeEvent, encodeChecked, type AccessEvent, type DeviceEvent, type UserEvent } from '../domain/events.ts';
import { accessStream, deviceStream, userStream } from '../domain/ids.ts';
import type { Policy } from '../domain/policies/policy.ts';
import { CommandIndex, type StreamHead } from '../domain/stream-cache.ts';
import { decideUser, evolveUser, initialUserState, type UserState } from '../domain/user.ts';
import type { CommandHandler } from './command-handler.ts';
import type { Meta } from './command-metadata.ts';
import { notFound, refOf, type DeviceRef } from './command-targets.ts';
import type { Loaded, LoadedEntries, StateCache, StreamType } from './state-cache.ts';

const DEVICE_TYPES = new Set<string>([
  'DeviceRegistered',
  'DeviceConfirmed',
  'DeviceRenamed',
  'DeviceRemoved',
  'StaticTokensIssued',
  'ChallengeGenerated',
  'ChallengeDeliveryFailed',
  'ChallengeRefused',
  'TokenVerified',
  'VerificationFailed',
  'VerificationRefused',
  'ThrottleReset',
]);
const USER_TYPES = new Set<string>(['DeviceAttached', 'MatchSucceeded', 'MatchFailed', 'MatchRefused', 'ThrottleReset']);

export const deviceStreamType: StreamType<DeviceState, DeviceEvent> = {
  types: DEVICE_TYPES,
  initial: initialState,
  evolve,
  decode: (type, data) => decodeEvent(type, data) as ReturnType<StreamType<DeviceState, DeviceEvent>['decode']>,
  encode: encodeChecked,
};

export const userStreamType: StreamType<UserState, UserEvent> = {
  types: USER_TYPES,
  initial: initialUserState,
  evolve: evolveUser,
  decode: (type, data) => decodeEvent(type, data) as ReturnType<StreamType<UserState, UserEvent>['decode']>,
  encode: encodeChecked,
};

/** A client address's refused admin tokens: the state is how many were recorded. */
export const accessStreamType: StreamType<number, AccessEvent> = {
  types: new Set(['AdminTokenRefused']),
  initial: () => 0,
  evolve: (n) => n + 1,
  decode: (type, data) => decodeEvent(type, data) as ReturnType<StreamType<number, AccessEvent>['decode']>,
  encode: encodeChecked,
};

/** The stream of an address: named by a digest of it (an address may hold ":" or "%"). */
export const accessStreamOf = (address: string): string => accessStream(sha256(`factorstream access\u0000${address}`).slice(0, 32));

const kindHidden = (state: DeviceState, kind: Kind | null) => kind !== null && state.status === 'registered' && state.k.kind !== kind;

/** The same stream position with the device hidden: no state, no commands. */
const hide = (head: StreamHead<DeviceState, DeviceEvent>): Loaded<DeviceState, DeviceEvent> => ({
  ...head,
  state: initialState(),
  commands: new CommandIndex<DeviceEvent>(),
  hidden: true,
});

export type FactorStreams = ReturnType<typeof createFactorStreams>;

export const createFactorStreams = (cache: StateCache, handler: CommandHandler, policy: Policy) => {
  /** A device of another kind than its persistent id names is not found under that id. */
  const loadDevice = async (target: string | DeviceRef, check = true): Promise<Loaded<DeviceState, DeviceEvent>> => {
    const { deviceId, kind } = refOf(target);
    const loaded = await cache.load(deviceStream(deviceId), deviceStreamType, check);
    return kindHidden(loaded.state, kind) ? hide(loaded) : loaded;
  };
  const loadDeviceEntries = async (target: string | DeviceRef): Promise<LoadedEntries<DeviceState, DeviceEvent>> => {
    const { deviceId, kind } = refOf(target);
    const loaded = await cache.loadEntries(deviceStream(deviceId), deviceStreamType);
    return kindHidden(loaded.head.state, kind) ? { head: hide(loaded.head), entries: [] } : loaded;
  };
  const loadUser = (userId: string, check = true) => cache.load(userStream(userId), userStreamType, check);
  const loadUserEntries = (userId: string) => cache.loadEntries(userStream(userId), userStreamType);

  /** Decides `command` on the device's stream; `context` opens what the decider needs of its secrets. */
  const onDevice = (
    target: string | DeviceRef,
    m: Meta,
    command: DeviceCommand,
    context: (d: RegisteredDevice) => Promise<Partial<DecideContext>>,
    confirmWritten = false,
  ) =>
    handler.handle({
      stream: deviceStream(refOf(target).deviceId),
      type: deviceStreamType,
      load: (check) => loadDevice(target, check),
      loadAll: () => loadDeviceEntries(target),
      meta: m,
      decide: async (state) => {
        // Secrets are opened only for a device that can take the command.
        const extra = state.status === 'registered' && !state.removed ? await context(state) : {};
        const decision = decide(command, state, { now: m.now, policy, ...extra });
        // The decider does not know the id it was asked about; the message should name it.
        return isLeft(decision) && decision.left.code === 'device-not-found' ? left(notFound(refOf(target))) : decision;
      },
      confirmWritten,
    });

  const onUser = (userId: string, m: Meta, command: UserCommand) =>
    handler.handle({
      stream: userStream(userId),
      type: userStreamType,
      load: (check) => loadUser(userId, check),
      loadAll: () => loadUserEntries(userId),
      meta: m,
      decide: async (state) => decideUser(command, state, { now: m.now, policy }),
    });

  /** Appends a refused admin token to its address's stream (every attempt is its own command). */
  const onAccess = (m: Meta, refused: Omit<AccessEvent['data'], 'at'>) => {
    const stream = accessStreamOf(refused.address);
    return handler.handle({
      stream,
      type: accessStreamType,
      load: (check) => cache.load(stream, accessStreamType, check),
      loadAll: () => cache.loadEntries(stream, accessStreamType),
      meta: m,
      decide: async () => right([{ type: 'AdminTokenRefused' as const, data: { ...refused, at: m.now } }]),
    });
  };

  return { loadDevice, loadDeviceEntries, loadUser, loadUserEntries, onDevice, onUser, onAccess };
};
