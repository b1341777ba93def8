/**
 * The engine: load -> fold -> decide -> append at the expected version -> on a conflict,
 * reload and decide again (bounded). The only asynchronous file of domain/; it touches the
 * world only through the ports it is given.
 *
 * Every public method returns an fp-ts TaskEither. A rejected or refused verification is a
 * Right outcome (`{ ok: false, reason }`); Left is for errors: invalid input, unknown or
 * removed device, store or vault failure, conflicts exhausted.
 */
import { isLeft, left, right, type Either } from 'fp-ts/lib/Either.js';
import type { TaskEither } from 'fp-ts/lib/TaskEither.js';
import { decodeWith, type Kind } from './codecs.ts';
import type { DeviceCommand, UserCommand } from './commands.ts';
import { eventHash, genesisHash, verifyChain, type ChainBreak } from './chain.ts';
import { CommandIndex, ClockCache, type StreamHead } from './stream-cache.ts';
import { decide, type DecideContext } from './decide.ts';
import { evolve, initialState, type DeviceState, type RegisteredDevice } from './device.ts';
import type { DomainError, DomainErrorCode } from './errors.ts';
import {
  decodeEvent,
  encodeChecked,
  encodeEvent,
  EventMetadata,
  type ClientContext,
  type DeviceConfig,
  type DeviceEvent,
  type FactorEvent,
  type FailureReason,
  type UserEvent,
} from './events.ts';
import { deviceIdFor, deviceStream, eventIdFor, fromPersistentId, persistentId, userStream, uuidFromBytes } from './ids.ts';
import { CommandOptions, KindInput, registerInputCodecs, type RegisterInput } from './inputs.ts';
import { newKeyBytes } from './kinds/oath.ts';
import { backupCodeFromBytes, NUMERIC_CODE_BYTES, numericCodeFromBytes, parseBackupCode } from './kinds/token.ts';
import { otpauthUri, toBase32 } from './kinds/uri.ts';
import { makePolicy, policyProblems, type Policy, type PolicyOverrides } from './policies/policy.ts';
import { checkCooldown } from './policies/cooldown.ts';
import { throttleStatus } from './policies/throttle.ts';
import {
  StoreError,
  VaultError,
  type AppendResult,
  type Clock,
  type EventStore,
  type NewEvent,
  type Random,
  type RecordedEvent,
  type StreamRead,
  type TokenSender,
  type Vault,
} from './ports.ts';
import { decideUser, evolveUser, initialUserState, type UserState } from './user.ts';

// ---- public types ----------------------------------------------------------------------------

export type EngineErrorCode =
  | DomainErrorCode
  | 'conflict'
  | 'store-unavailable'
  | 'corrupt-event'
  /** A decision made an event that its own codec would not read back: nothing was appended. */
  | 'unstorable-event'
  | 'vault-error'
  | 'not-configured'
  | 'internal';

export interface EngineError {
  readonly code: EngineErrorCode;
  readonly message: string;
}

export interface EngineOptions {
  readonly store: EventStore;
  readonly vault: Vault;
  readonly sender?: TokenSender;
  /** The time of decisions (adapters/system.ts has the system clock). */
  readonly clock: Clock;
  /** Random bytes for keys, codes and ids (adapters/system.ts has node:crypto's). */
  readonly random: Random;
  readonly policy?: Policy | PolicyOverrides;
  /** How many times a command is decided again after losing a race (default 100). */
  readonly maxConflictRetries?: number;
  /** The issuer named in otpauth URIs (default "factorstream"; "" for none). */
  readonly issuer?: string;
  /**
   * How many streams the engine keeps folded in memory (with their last event's hash and
   * command ids), and how many opened TOTP/HOTP keys. A command on a cached stream reads only
   * the events appended since (one indexed query), whoever appended them; the expected version
   * of every append still guards against writers the cache has not seen. Default 10 000;
   * 0 turns both caches off.
   */
  readonly cacheSize?: number;
  /**
   * Decide a command on the cached state of its stream without first reading what was
   * appended since (reads still do). Nothing stale is ever written: the append carries the
   * cached version as its expected version, so a stale state costs a conflict and a second
   * decision. On a store with `tailOnConflict` (memory, SQLite, PostgreSQL) the refused append
   * brings back what the cache missed, so a stale cache costs the same two round trips as a
   * read before every command, and a current one saves the read; on a store without it
   * (EventStoreDB) a stale cache costs a third round trip, a reload. Default: the store's
   * `tailOnConflict`.
   */
  readonly optimisticCache?: boolean;
}

export type Options = CommandOptions;

export interface Registered {
  readonly deviceId: string;
  readonly persistentId: string;
  readonly kind: Kind;
  /** totp/hotp: the otpauth:// URI and the key in base32, for the user's app. Shown once. */
  readonly otpauthUri?: string;
  readonly secretBase32?: string;
  /** True when this command id had already registered the device (nothing new was written). */
  readonly replayed: boolean;
}

export type VerifyOutcome =
  | { readonly ok: true; readonly deviceId: string; readonly persistentId: string; readonly confirmed: boolean }
  | {
      readonly ok: false;
      readonly deviceId: string;
      readonly reason: FailureReason | 'throttled';
      /** When refused: the instant from which an attempt is allowed again. */
      readonly retryAt?: number;
      readonly failureCount?: number;
    };

export type MatchOutcome =
  | { readonly ok: true; readonly deviceId: string; readonly persistentId: string }
  | { readonly ok: false; readonly reason: 'no-match' | 'throttled'; readonly retryAt?: number; readonly failureCount?: number };

export type ChallengeOutcome =
  | { readonly ok: true; readonly deviceId: string; readonly validUntil: number; readonly replayed: boolean }
  | { readonly ok: false; readonly deviceId: string; readonly reason: 'cooldown'; readonly retryAt: number }
  | { readonly ok: false; readonly deviceId: string; readonly reason: 'delivery-failed'; readonly message: string };

export interface BackupCodes {
  readonly deviceId: string;
  readonly persistentId: string;
  /** The codes, shown this once. Empty when the command id had already issued them. */
  readonly codes: readonly string[];
  readonly replayed: boolean;
}

export interface DeviceView {
  readonly deviceId: string;
  readonly persistentId: string;
  readonly userId: string;
  readonly kind: Kind;
  readonly name: string;
  readonly confirmed: boolean;
  readonly removed: boolean;
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
  readonly version: number;
  readonly throttle: { readonly failureCount: number; readonly lockedUntil: number | null; readonly lastFailureAt: number | null };
  readonly cooldown: { readonly lastGeneratedAt: number | null; readonly nextChallengeAt: number | null };
  readonly totp?: {
    readonly algorithm: string;
    readonly digits: number;
    readonly step: number;
    readonly t0: number;
    readonly tolerance: number;
    readonly drift: number;
    readonly lastStep: number;
  };
  readonly hotp?: { readonly algorithm: string; readonly digits: number; readonly tolerance: number; readonly counter: number };
  readonly backupCodesLeft?: number;
  readonly pendingCode?: { readonly validUntil: number } | null;
  readonly origin: { readonly system: string; readonly reference: string } | null;
}

export interface HistoryEntry {
  readonly version: number;
  readonly position: string;
  readonly recordedAt: number;
  readonly event: FactorEvent;
  readonly metadata: EventMetadata;
}

export interface Engine {
  readonly policy: Policy;
  register(input: RegisterInput, options?: Options): TaskEither<EngineError, Registered>;
  confirm(device: string, token: unknown, options?: Options): TaskEither<EngineError, VerifyOutcome>;
  verify(device: string, token: unknown, options?: Options): TaskEither<EngineError, VerifyOutcome>;
  match(userId: string, token: unknown, options?: Options): TaskEither<EngineError, MatchOutcome>;
  challenge(device: string, options?: Options): TaskEither<EngineError, ChallengeOutcome>;
  /**
   * Draws `count` new codes, or takes the given `codes` instead (an import of existing ones:
   * 1–100 codes of 4–16 letters and digits, stored as digests like drawn ones).
   */
  issueBackupCodes(
    target: { readonly device: string } | { readonly userId: string; readonly name?: string },
    options?: Options & { readonly count?: number; readonly codes?: readonly string[] },
  ): TaskEither<EngineError, BackupCodes>;
  resetThrottle(device: string, reason: string, options?: Options): TaskEither<EngineError, DeviceView>;
  resetUserThrottle(userId: string, reason: string, options?: Options): TaskEither<EngineError, void>;
  rename(device: string, name: string, options?: Options): TaskEither<EngineError, DeviceView>;
  remove(device: string, reason?: string, options?: Options): TaskEither<EngineError, DeviceView>;
  device(device: string): TaskEither<EngineError, DeviceView>;
  /** The device as it was at `at` (ms since the epoch), folded from its stream. */
  deviceAt(device: string, at: number): TaskEither<EngineError, DeviceView>;
  history(device: string): TaskEither<EngineError, readonly HistoryEntry[]>;
  userHistory(userId: string): TaskEither<EngineError, readonly HistoryEntry[]>;
  /** The user's devices (removed ones left out), from the user stream and each device's stream. */
  userDevices(userId: string, filter?: { readonly confirmed?: boolean }): TaskEither<EngineError, readonly DeviceView[]>;
  /**
   * Erasure of a user (GDPR): removes every device of theirs, destroying each data key. The
   * events stay and still replay; secrets, destinations and codes are unrecoverable.
   */
  eraseUser(userId: string, reason: string, options?: Options): TaskEither<EngineError, { readonly removed: readonly string[] }>;
  /** Checks the hash chain of a device's or a user's stream; null when every link holds. */
  verifyChain(target: { readonly device: string } | { readonly userId: string }): TaskEither<EngineError, ChainReport>;
}

export interface ChainReport {
  readonly streamName: string;
  readonly checked: number;
  readonly broken: ChainBreak | null;
}

// ---- helpers -----------------------------------------------------------------------------------

const err = (code: EngineErrorCode, message: string): EngineError => ({ code, message });
const fromDomain = (e: DomainError): EngineError => ({ code: e.code, message: e.message });

class Failure extends Error {
  constructor(readonly error: EngineError) {
    super(error.message);
  }
}

/** Maps anything thrown by a port to an EngineError whose message carries no event data. */
const toEngineError = (e: unknown): EngineError => {
  if (e instanceof Failure) return e.error;
  if (e instanceof StoreError)
    return err(e.code === 'corrupt' ? 'corrupt-event' : e.code === 'invalid' ? 'internal' : 'store-unavailable', e.message);
  if (e instanceof VaultError) return err('vault-error', e.message);
  return err('internal', `unexpected error: ${e instanceof Error ? e.name + ': ' + e.message.slice(0, 200) : 'unknown'}`);
};

const DEFAULT_NAMES: Record<Kind, string> = {
  totp: 'Authenticator app',
  hotp: 'Hardware token',
  static: 'Backup codes',
  email: 'E-mail',
  sms: 'SMS',
};

/** A device as a command names it: by id, or by persistent id (which also names its kind). */
interface DeviceRef {
  readonly deviceId: string;
  readonly kind: Kind | null;
}
const refOf = (x: string | DeviceRef): DeviceRef => (typeof x === 'string' ? { deviceId: x, kind: null } : x);
const notFound = (r: DeviceRef): EngineError =>
  err('device-not-found', r.kind === null ? `no device with id ${r.deviceId}` : `no ${r.kind} device with id ${r.deviceId}`);

/** A stream as a command sees it: its folded state at a version (see stream-cache.ts). */
interface Loaded<S, E> extends StreamHead<S, E> {
  /** Set when the state is hidden (a device looked up under another kind): never cached. */
  readonly hidden?: true;
}

interface Entry<E> {
  readonly event: E;
  readonly metadata: EventMetadata;
  readonly raw: RecordedEvent;
}

/** A stream read in full, every event decoded (history, deviceAt, confirmWritten). */
interface LoadedEntries<S, E> {
  readonly head: Loaded<S, E>;
  readonly entries: readonly Entry<E>[];
}

interface Executed<S, E> {
  readonly state: S;
  readonly version: number;
  /** The events this command wrote, or had written before when it is replayed. */
  readonly events: readonly E[];
  readonly replayed: boolean;
}

interface Meta {
  readonly commandId: string;
  readonly correlationId: string;
  readonly causationId: string;
  readonly actor: string;
  readonly client?: ClientContext;
  readonly now: number;
}

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

// ---- the engine ------------------------------------------------------------------------------

export const createEngine = (o: EngineOptions): Engine => {
  const { store, vault, sender } = o;
  const { clock, random } = o;
  const policy: Policy = isFullPolicy(o.policy) ? o.policy : makePolicy(o.policy ?? {});
  const problems = policyProblems(policy);
  if (problems.length > 0) throw new Error(`invalid policy: ${problems.join('; ')}`);
  const maxRetries = o.maxConflictRetries ?? 100;
  const issuer = o.issuer ?? 'factorstream';
  const cacheSize = o.cacheSize ?? 10_000;
  if (!Number.isSafeInteger(cacheSize) || cacheSize < 0) throw new Error(`invalid cacheSize: ${cacheSize} (a whole number ≥ 0)`);
  const heads = new ClockCache<StreamHead<unknown, FactorEvent>>(cacheSize);
  const optimistic = o.optimisticCache ?? store.tailOnConflict === true;
  /** Opened TOTP/HOTP keys by device, with the sealed value they came from. */
  const openedKeys = new ClockCache<{ readonly sealed: string; readonly key: Uint8Array }>(cacheSize);


  // -- input and metadata

  // Command ids are random UUIDs drawn from the Random port 256 at a time: a small draw costs
  // about as much as a large one (a system call), and one is needed for every command the
  // caller gives no id.
  let idBytes: Uint8Array = new Uint8Array(0);
  let idOffset = 0;
  const newCommandId = (): string => {
    if (idOffset + 16 > idBytes.length) {
      idBytes = random.bytes(16 * 256);
      idOffset = 0;
    }
    idOffset += 16;
    return uuidFromBytes(idBytes.subarray(idOffset - 16, idOffset));
  };

  const meta = (options: Options | undefined): Either<EngineError, Meta> => {
    if (options === undefined) {
      const commandId = newCommandId();
      return right({ commandId, correlationId: commandId, causationId: commandId, actor: 'system', now: clock.now() });
    }
    const decoded = decodeWith(CommandOptions, options);
    if (isLeft(decoded)) return left(err('invalid-command', `invalid options: ${decoded.left}`));
    const op = decoded.right;
    const commandId = op.commandId ?? newCommandId();
    return right({
      commandId,
      correlationId: op.correlationId ?? commandId,
      causationId: op.causationId ?? commandId,
      actor: op.actor ?? 'system',
      ...(op.client ? { client: op.client } : {}),
      now: op.now ?? clock.now(),
    });
  };

  /** A device id, or a persistent id whose kind must match the device's (as in django-otp). */
  const resolveDevice = (device: string): Either<EngineError, DeviceRef> => {
    if (typeof device !== 'string') return left(err('invalid-command', 'device must be a device id or a persistent id'));
    if (device.includes('/')) {
      const p = fromPersistentId(device);
      return isLeft(p) ? left(err('invalid-command', p.left)) : right(p.right);
    }
    return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(device)
      ? right({ deviceId: device, kind: null })
      : left(err('invalid-command', `"${device.slice(0, 80)}" is not a device id (a lower-case UUID) or persistent id (<kind>/<uuid>)`));
  };

  // -- loading

  /** Decodes one stored event of `stream`; a stored event that does not decode is an error naming it. */
  const decodeStored = <E extends FactorEvent>(stream: string, types: Set<string>, raw: RecordedEvent): Entry<E> => {
    const decoded = types.has(raw.type) ? decodeEvent(raw.type, raw.data) : left(`event type "${raw.type.slice(0, 64)}" does not belong in this stream`);
    if (isLeft(decoded))
      throw new Failure(err('corrupt-event', `stream ${stream} version ${raw.version} holds an event that does not decode: ${decoded.left}`));
    const m = decodeWith(EventMetadata, raw.metadata);
    if (isLeft(m))
      throw new Failure(err('corrupt-event', `stream ${stream} version ${raw.version} has metadata that does not decode: ${m.left}`));
    return { event: decoded.right as E, metadata: m.right, raw };
  };

  /** The head after folding `events` (the stream's events right after `base`) onto `base`. */
  const advance = <S, E extends FactorEvent>(
    stream: string,
    types: Set<string>,
    step: (s: S, e: E) => S,
    base: StreamHead<S, E>,
    events: readonly RecordedEvent[],
    entries?: Entry<E>[],
  ): StreamHead<S, E> => {
    let { state, version } = base;
    for (const raw of events) {
      if (raw.version !== version + 1)
        throw new Failure(err('corrupt-event', `stream ${stream} has version ${raw.version} after version ${version}: an event is missing`));
      const entry = decodeStored<E>(stream, types, raw);
      state = step(state, entry.event);
      version = raw.version;
      base.commands.add(entry.metadata.commandId, version, entry.event);
      entries?.push(entry);
    }
    const last = events[events.length - 1];
    return last ? { version, state, prevHash: eventHash(last), lastEventId: last.eventId, commands: base.commands } : base;
  };

  const emptyHead = <S, E>(stream: string, init: () => S): StreamHead<S, E> => ({
    version: 0,
    state: init(),
    prevHash: genesisHash(stream),
    lastEventId: null,
    commands: new CommandIndex<E>(),
  });

  /** Keeps `head` unless the cache already holds a later one of the stream (or `replace`). */
  const remember = (stream: string, head: StreamHead<unknown, FactorEvent>, replace = false) => {
    if (head.version === 0) return; // no stream (yet): nothing worth keeping
    const current = heads.peek(stream);
    if (replace || current === undefined || current.version <= head.version) heads.set(stream, head);
  };

  /** Reads the whole stream, decoding every event; refreshes the cache with what it read. */
  const loadEntries = async <S, E extends FactorEvent>(
    stream: string,
    types: Set<string>,
    init: () => S,
    step: (s: S, e: E) => S,
    read?: StreamRead,
  ): Promise<LoadedEntries<S, E>> => {
    const { events } = read ?? (await store.readStream(stream));
    const entries: Entry<E>[] = [];
    const head = advance(stream, types, step, emptyHead<S, E>(stream, init), events, entries);
    remember(stream, head as StreamHead<unknown, FactorEvent>, true);
    return { head, entries };
  };

  /**
   * The stream's current head: the cached one brought up to date with the events appended
   * since (by this engine or any other writer), or the whole stream read when it is not cached.
   */
  const load = async <S, E extends FactorEvent>(
    stream: string,
    types: Set<string>,
    init: () => S,
    step: (s: S, e: E) => S,
    /** False: the cached head as it is, unchecked (optimisticCache, first attempt of a command). */
    check = true,
  ): Promise<Loaded<S, E>> => {
    const cached = heads.get(stream) as StreamHead<S, E> | undefined;
    if (cached === undefined) return (await loadEntries(stream, types, init, step)).head;
    if (!check) return cached;
    if (store.readStreamFrom) {
      const tail = await store.readStreamFrom(stream, cached.version);
      if (tail.version === cached.version + tail.events.length) {
        if (tail.events.length === 0) return cached;
        const head = advance(stream, types, step, cached, tail.events);
        remember(stream, head as StreamHead<unknown, FactorEvent>);
        return head;
      }
      // The stream is not what the cache knew (shorter, or a gap): start again from the store.
      return (await loadEntries(stream, types, init, step)).head;
    }
    const read = await store.readStream(stream);
    const sameStart = read.version >= cached.version && (cached.version === 0 || read.events[cached.version - 1]?.eventId === cached.lastEventId);
    if (!sameStart) return (await loadEntries(stream, types, init, step, read)).head;
    const head = advance(stream, types, step, cached, read.events.slice(cached.version));
    remember(stream, head as StreamHead<unknown, FactorEvent>);
    return head;
  };

  const kindHidden = (state: DeviceState, kind: Kind | null) => kind !== null && state.status === 'registered' && state.k.kind !== kind;
  /** The same stream position with the device hidden: no state, no commands. */
  const hide = (head: StreamHead<DeviceState, DeviceEvent>): Loaded<DeviceState, DeviceEvent> => ({
    ...head,
    state: initialState(),
    commands: new CommandIndex<DeviceEvent>(),
    hidden: true,
  });

  /** A device of another kind than its persistent id names is not found under that id. */
  const loadDevice = async (target: string | DeviceRef, check = true): Promise<Loaded<DeviceState, DeviceEvent>> => {
    const { deviceId, kind } = refOf(target);
    const loaded = await load<DeviceState, DeviceEvent>(deviceStream(deviceId), DEVICE_TYPES, initialState, evolve, check);
    return kindHidden(loaded.state, kind) ? hide(loaded) : loaded;
  };
  const loadDeviceEntries = async (target: string | DeviceRef): Promise<LoadedEntries<DeviceState, DeviceEvent>> => {
    const { deviceId, kind } = refOf(target);
    const loaded = await loadEntries<DeviceState, DeviceEvent>(deviceStream(deviceId), DEVICE_TYPES, initialState, evolve);
    return kindHidden(loaded.head.state, kind) ? { head: hide(loaded.head), entries: [] } : loaded;
  };
  const loadUser = (userId: string, check = true) =>
    load<UserState, UserEvent>(userStream(userId), USER_TYPES, initialUserState, evolveUser, check);
  const loadUserEntries = (userId: string) =>
    loadEntries<UserState, UserEvent>(userStream(userId), USER_TYPES, initialUserState, evolveUser);

  // -- the command loop

  /**
   * The events of one append as the store takes them: deterministic ids, the command's
   * metadata, and each event linked to the one before it (domain/chain.ts).
   */
  const chained = (
    stream: string,
    loaded: Loaded<unknown, FactorEvent>,
    events: readonly FactorEvent[],
    m: Meta,
  ): { readonly toStore: NewEvent[]; readonly lastHash: string } => {
    let prevHash = loaded.prevHash;
    const toStore = events.map((e, i) => {
      const checked = encodeChecked(e);
      if (isLeft(checked))
        throw new Failure(err('unstorable-event', `refused to append to stream ${stream}: the event would not decode (${checked.left}); nothing was written`));
      const encoded = checked.right;
      // Keys in sorted order, as the chain's canonical encoding writes them: nothing to sort.
      const metadata: EventMetadata = m.client
        ? {
            actor: m.actor,
            causationId: m.causationId,
            client: m.client,
            commandId: m.commandId,
            correlationId: m.correlationId,
            eventId: eventIdFor(m.commandId, i, stream),
            prevHash,
          }
        : {
            actor: m.actor,
            causationId: m.causationId,
            commandId: m.commandId,
            correlationId: m.correlationId,
            eventId: eventIdFor(m.commandId, i, stream),
            prevHash,
          };
      const metaBack = decodeWith(EventMetadata, metadata);
      if (isLeft(metaBack))
        throw new Failure(err('unstorable-event', `refused to append to stream ${stream}: the metadata would not decode (${metaBack.left}); nothing was written`));
      const stored = { eventId: metadata.eventId, type: encoded.type, data: encoded.data, metadata };
      prevHash = eventHash({ streamName: stream, version: loaded.version + i + 1, ...stored });
      return stored;
    });
    return { toStore, lastHash: prevHash };
  };

  /**
   * Appends `events` at the loaded version. When the store says it wrote exactly these events,
   * the cache moves on to the head they make (the state folded here, the hash computed for the
   * chain); otherwise (an idempotent retry, or a store that cannot tell) the next load reads
   * them back from the store.
   */
  const appendTo = async <S, E extends FactorEvent>(
    stream: string,
    loaded: Loaded<S, E>,
    events: readonly E[],
    m: Meta,
    step: (s: S, e: E) => S,
  ): Promise<{ readonly result: AppendResult; readonly state: S }> => {
    const { toStore, lastHash } = chained(stream, loaded as Loaded<unknown, FactorEvent>, events, m);
    const result = await store.appendToStream(stream, toStore, loaded.version);
    let state = loaded.state;
    if (!result.ok) return { result, state };
    for (const e of events) state = step(state, e);
    if (result.written === true && result.version === loaded.version + toStore.length && !loaded.hidden) {
      events.forEach((e, i) => loaded.commands.add(m.commandId, loaded.version + i + 1, e));
      const head: StreamHead<S, E> = { version: result.version, state, prevHash: lastHash, lastEventId: toStore[toStore.length - 1]!.eventId, commands: loaded.commands };
      remember(stream, head as StreamHead<unknown, FactorEvent>);
    }
    return { result, state };
  };

  const execute = async <S, E extends FactorEvent>(
    stream: string,
    types: Set<string>,
    /** The stream's head; `check` false: the cached one unchecked (see optimisticCache). */
    loader: (check: boolean) => Promise<Loaded<S, E>>,
    /** The whole stream, decoded (only for confirmWritten). */
    loadAll: () => Promise<LoadedEntries<S, E>>,
    step: (s: S, e: E) => S,
    m: Meta,
    decideOn: (state: S) => Promise<Either<DomainError | EngineError, E[]>>,
    /**
     * For commands whose events hold freshly drawn values (a sealed key, code digests): read
     * the events back after the append. A concurrent attempt of the same command id writes
     * the same event ids, and the store then reports the loser's append as an idempotent
     * success although the stored events are the winner's; the loser must act on those.
     */
    confirmWritten = false,
  ): Promise<Executed<S, E>> => {
    /** Read what was appended since the cached version before deciding. */
    let check = !optimistic;
    /** The state decided on is known to be current (read, or reported by a refused append). */
    let current = check;
    for (let attempt = 0; attempt <= maxRetries; attempt++) {
      if (!current && heads.peek(stream) === undefined) current = true; // not cached: it is read
      const loaded = await loader(check);
      const done = loaded.commands.eventsOf(m.commandId, loaded.version);
      if (done.length > 0) return { state: loaded.state, version: loaded.version, events: done, replayed: true };
      let decision: Either<DomainError | EngineError, E[]>;
      try {
        decision = await decideOn(loaded.state);
      } catch (e) {
        if (current) throw e;
        check = current = true; // e.g. the key of a device removed since: say so from the checked state
        continue;
      }
      // A decision on a state not known to be current is only final once an append confirms
      // it: a refusal or a decision to write nothing is taken again on the checked state.
      if (!current && (isLeft(decision) || decision.right.length === 0)) {
        check = current = true;
        continue;
      }
      if (isLeft(decision)) throw new Failure(decision.left as EngineError);
      const events = decision.right;
      if (events.length === 0) return { state: loaded.state, version: loaded.version, events, replayed: false };
      check = current = true; // after a conflict, read what was appended since
      const { result, state } = await appendTo(stream, loaded, events, m, step);
      if (!result.ok && result.tail !== undefined && !loaded.hidden && cacheSize > 0) {
        // The refusal brought back what this attempt missed, read with the version check:
        // the cached head moves on with it and the next attempt decides without a read.
        remember(stream, advance(stream, types, step, loaded, result.tail) as StreamHead<unknown, FactorEvent>);
        check = false;
      }
      if (result.ok) {
        if (confirmWritten) {
          const after = await loadAll();
          const stored = after.entries.slice(loaded.version, loaded.version + events.length);
          const ours =
            stored.length === events.length &&
            stored.every((x, i) => x.event.type === events[i]!.type && canonicalJson(x.raw.data) === canonicalJson(encodeEvent(events[i]!).data));
          if (!ours) {
            const theirs = after.entries.filter((x) => x.metadata.commandId === m.commandId).map((x) => x.event);
            return { state: after.head.state, version: after.head.version, events: theirs, replayed: true };
          }
        }
        return { state, version: result.version, events, replayed: false };
      }
    }
    throw new Failure(err('conflict', `stream ${stream} kept changing; gave up after ${maxRetries + 1} attempts`));
  };

  const onDevice = (
    target: string | DeviceRef,
    m: Meta,
    command: DeviceCommand,
    context: (d: RegisteredDevice) => Promise<Partial<DecideContext>>,
    confirmWritten = false,
  ) =>
    execute<DeviceState, DeviceEvent>(deviceStream(refOf(target).deviceId), DEVICE_TYPES, (check) => loadDevice(target, check), () => loadDeviceEntries(target), evolve, m, async (state) => {
      // Secrets are opened only for a device that can take the command.
      const extra = state.status === 'registered' && !state.removed ? await context(state) : {};
      const decision = decide(command, state, { now: m.now, policy, ...extra });
      // The decider does not know the id it was asked about; the message should name it.
      return isLeft(decision) && decision.left.code === 'device-not-found'
        ? left(notFound(refOf(target)))
        : decision;
    }, confirmWritten);

  const onUser = (userId: string, m: Meta, command: UserCommand) =>
    execute<UserState, UserEvent>(userStream(userId), USER_TYPES, (check) => loadUser(userId, check), () => loadUserEntries(userId), evolveUser, m, async (state) =>
      decideUser(command, state, { now: m.now, policy }),
    );

  /** The device's TOTP/HOTP key, opened by the vault once and then kept (see cacheSize). */
  const openKey = async (deviceId: string, sealed: string): Promise<Uint8Array> => {
    const cached = openedKeys.get(deviceId);
    if (cached !== undefined && cached.sealed === sealed) return cached.key;
    const key = await vault.open(deviceId, sealed);
    openedKeys.set(deviceId, { sealed, key });
    return key;
  };
  /** Forgets what the engine holds of a device whose key is being destroyed. */
  const forgetKey = (deviceId: string) => openedKeys.delete(deviceId);

  const keysFor = async (d: RegisteredDevice): Promise<Partial<DecideContext>> => {
    switch (d.k.kind) {
      case 'totp':
      case 'hotp':
        return { secret: await openKey(d.deviceId, d.k.config.secret) };
      case 'static':
      case 'email':
      case 'sms':
        return { digest: await vault.digester(d.deviceId) };
    }
  };

  const run = <A>(f: () => Promise<A>): TaskEither<EngineError, A> => async () => {
    try {
      return right(await f());
    } catch (e) {
      return left(toEngineError(e));
    }
  };
  const must = <A>(e: Either<EngineError, A>): A => {
    if (isLeft(e)) throw new Failure(e.left);
    return e.right;
  };
  const mustDevice = (d: string): DeviceRef => must(resolveDevice(d));

  // -- views

  const view = (d: RegisteredDevice, version: number, now: number): DeviceView => {
    const k = d.k;
    const t = throttleStatus(d.throttle, now, policy.throttle[k.kind]);
    const cooling = checkCooldown(d.cooldown, now, policy.cooldownSeconds);
    return {
      deviceId: d.deviceId,
      persistentId: persistentId(k.kind, d.deviceId),
      userId: d.userId,
      kind: k.kind,
      name: d.name,
      confirmed: d.confirmed,
      removed: d.removed,
      createdAt: d.createdAt,
      lastUsedAt: d.lastUsedAt,
      version,
      throttle: { failureCount: t.failureCount, lockedUntil: t.lockedUntil, lastFailureAt: d.throttle.lastFailureAt },
      cooldown: { lastGeneratedAt: d.cooldown.lastGeneratedAt, nextChallengeAt: cooling.allowed ? null : cooling.retryAt },
      ...(k.kind === 'totp'
        ? {
            totp: {
              algorithm: k.config.algorithm,
              digits: k.config.digits,
              step: k.config.step,
              t0: k.config.t0,
              tolerance: k.config.tolerance,
              drift: k.drift,
              lastStep: k.lastStep,
            },
          }
        : {}),
      ...(k.kind === 'hotp'
        ? { hotp: { algorithm: k.config.algorithm, digits: k.config.digits, tolerance: k.config.tolerance, counter: k.counter } }
        : {}),
      ...(k.kind === 'static' ? { backupCodesLeft: k.digests.length } : {}),
      ...(k.kind === 'email' || k.kind === 'sms'
        ? { pendingCode: k.validUntil !== null && now < k.validUntil ? { validUntil: k.validUntil } : null }
        : {}),
      origin: d.origin,
    };
  };

  const registeredOrFail = (state: DeviceState, deviceId: string): RegisteredDevice => {
    if (state.status === 'empty') throw new Failure(err('device-not-found', `no device with id ${deviceId}`));
    return state;
  };

  const verifyOutcome = (deviceId: string, state: DeviceState, events: readonly DeviceEvent[]): VerifyOutcome => {
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

  // -- commands

  const register = (input: RegisterInput, options?: Options) =>
    run(async (): Promise<Registered> => {
      const m = must(meta(options));
      const kind = decodeWith(KindInput, (input as { kind?: unknown } | null)?.kind);
      if (isLeft(kind)) throw new Failure(err('invalid-command', kind.left));
      const decoded = decodeWith(registerInputCodecs[kind.right] as unknown as import('io-ts').Decoder<unknown, RegisterInput>, input);
      if (isLeft(decoded)) throw new Failure(err('invalid-command', decoded.left));
      const i = decoded.right;
      const deviceId = deviceIdFor(m.commandId);
      await vault.createDeviceKey(deviceId);

      let config: DeviceConfig;
      let key: Uint8Array | undefined;
      switch (i.kind) {
        case 'totp': {
          const algorithm = i.algorithm ?? 'SHA1';
          key = i.secret ?? random.bytes(newKeyBytes[algorithm]);
          config = {
            kind: 'totp',
            secret: await vault.seal(deviceId, key),
            algorithm,
            digits: i.digits ?? 6,
            step: i.step ?? 30,
            t0: i.t0 ?? 0,
            tolerance: i.tolerance ?? 1,
            drift: i.drift ?? 0,
            lastStep: i.lastStep ?? -1,
          };
          break;
        }
        case 'hotp': {
          const algorithm = i.algorithm ?? 'SHA1';
          key = i.secret ?? random.bytes(newKeyBytes[algorithm]);
          config = {
            kind: 'hotp',
            secret: await vault.seal(deviceId, key),
            algorithm,
            digits: i.digits ?? 6,
            tolerance: i.tolerance ?? 5,
            counter: i.counter ?? 0,
          };
          break;
        }
        case 'static':
          config = { kind: 'static' };
          break;
        case 'email':
        case 'sms':
          config = { kind: i.kind, destination: await vault.seal(deviceId, Buffer.from(i.destination, 'utf8')) };
          break;
      }
      // The user stream first: a crash in between leaves a reference to a device that does
      // not exist yet (skipped by readers), never a device its user cannot find.
      await onUser(i.userId, m, { type: 'AttachDevice', deviceId, kind: i.kind });
      const done = await onDevice(deviceId, m, {
        type: 'RegisterDevice',
        deviceId,
        userId: i.userId,
        name: i.name ?? DEFAULT_NAMES[i.kind],
        confirmed: i.confirmed ?? i.kind === 'static',
        config,
        ...(i.origin ? { origin: i.origin } : {}),
        ...(i.throttle ? { throttle: i.throttle } : {}),
      }, async () => ({}), true);
      const d = registeredOrFail(done.state, deviceId);
      const base = { deviceId, persistentId: persistentId(d.k.kind, deviceId), kind: d.k.kind, replayed: done.replayed };
      if (d.k.kind === 'totp' || d.k.kind === 'hotp') {
        // On a replay the key is the stored one, not the one drawn for this attempt.
        const stored = done.replayed ? await vault.open(deviceId, d.k.config.secret) : key!;
        const c = d.k.config;
        const uri = otpauthUri({
          kind: d.k.kind,
          key: stored,
          account: d.userId,
          issuer,
          algorithm: c.algorithm,
          digits: c.digits,
          ...(c.kind === 'totp' ? { step: c.step } : { counter: c.counter }),
        });
        return { ...base, otpauthUri: uri, secretBase32: toBase32(stored) };
      }
      return base;
    });

  const verifyWith = (confirming: boolean) => (device: string, token: unknown, options?: Options) =>
    run(async (): Promise<VerifyOutcome> => {
      const ref = mustDevice(device);
      const { deviceId } = ref;
      const m = must(meta(options));
      const command: DeviceCommand = confirming ? { type: 'ConfirmDevice', token } : { type: 'VerifyToken', token };
      const done = await onDevice(ref, m, command, keysFor);
      return verifyOutcome(deviceId, done.state, done.events);
    });

  const match = (userId: string, token: unknown, options?: Options) =>
    run(async (): Promise<MatchOutcome> => {
      const m = must(meta(options));
      if (typeof userId !== 'string' || userId.length === 0 || userId.length > 128)
        throw new Failure(err('invalid-command', 'userId must be 1–128 characters long'));
      for (let attempt = 0; attempt <= maxRetries; attempt++) {
        const user = await loadUser(userId);
        const previous = user.commands.eventsOf(m.commandId, user.version);
        const earlier = previous.find((e) => e.type === 'MatchSucceeded' || e.type === 'MatchFailed' || e.type === 'MatchRefused');
        if (earlier?.type === 'MatchSucceeded')
          return { ok: true, deviceId: earlier.data.deviceId, persistentId: persistentId(kindOfAttached(user.state, earlier.data.deviceId), earlier.data.deviceId) };
        if (earlier?.type === 'MatchFailed') return { ok: false, reason: 'no-match' };
        if (earlier?.type === 'MatchRefused')
          return { ok: false, reason: 'throttled', retryAt: earlier.data.lockedUntil, failureCount: earlier.data.failureCount };
        if (user.state.devices.length === 0) throw new Failure(err('device-not-found', `user ${userId.slice(0, 128)} has no devices`));

        // A retried command whose code was already accepted by a device reports that success
        // again: a success leaves no trace on the user stream when there were no failures, and
        // trying the consumed code again would count it as a failed match.
        const loadedDevices: { deviceId: string; loaded: Loaded<DeviceState, DeviceEvent>; deviceMeta: Meta; tried: boolean }[] = [];
        for (const { deviceId } of user.state.devices) {
          const loaded = await loadDevice(deviceId);
          const deviceMeta: Meta = { ...m, commandId: `${m.commandId}:device:${deviceId}` };
          const prior = loaded.commands.eventsOf(deviceMeta.commandId, loaded.version);
          if (prior.some((e) => e.type === 'TokenVerified') && loaded.state.status === 'registered')
            return { ok: true, deviceId, persistentId: persistentId(loaded.state.k.kind, deviceId) };
          loadedDevices.push({ deviceId, loaded, deviceMeta, tried: prior.length > 0 });
        }

        const check = must(mapDomain(decideUser({ type: 'CheckMatchAllowed' }, user.state, { now: m.now, policy })));
        if (check.length > 0) {
          const r = await appendUser(userId, user, check, m);
          if (!r) continue;
          const refused = check.find((e) => e.type === 'MatchRefused');
          return refused?.type === 'MatchRefused'
            ? { ok: false, reason: 'throttled', retryAt: refused.data.lockedUntil, failureCount: refused.data.failureCount }
            : { ok: false, reason: 'throttled' };
        }

        let tried = 0;
        for (const { deviceId, loaded, deviceMeta, tried: triedBefore } of loadedDevices) {
          const d = loaded.state;
          if (d.status === 'empty' || d.removed || !d.confirmed) continue;
          tried++;
          if (triedBefore) continue; // this command already lost a race for the code on this device
          // A trial decision: is this the device the code belongs to? Nothing is written for
          // the devices that do not match, so their throttles are left alone.
          const ctx: DecideContext = { now: m.now, policy, ...(await keysFor(d)) };
          const trial = decide({ type: 'VerifyToken', token }, d, ctx);
          if (isLeft(trial) || !trial.right.some((e) => e.type === 'TokenVerified')) continue;
          const done = await onDevice(deviceId, deviceMeta, { type: 'VerifyToken', token }, keysFor);
          const outcome = verifyOutcome(deviceId, done.state, done.events);
          if (!outcome.ok) continue; // lost a race for this code: it counts as not matching
          const success = must(mapDomain(decideUser({ type: 'RecordMatchSuccess', deviceId }, user.state, { now: m.now, policy })));
          if (success.length > 0) await onUser(userId, m, { type: 'RecordMatchSuccess', deviceId });
          return { ok: true, deviceId, persistentId: persistentId(d.k.kind, deviceId) };
        }
        const failed = must(mapDomain(decideUser({ type: 'RecordMatchFailure', devicesTried: tried }, user.state, { now: m.now, policy })));
        if (await appendUser(userId, user, failed, m)) return { ok: false, reason: 'no-match' };
      }
      throw new Failure(err('conflict', `the user stream of ${userId.slice(0, 128)} kept changing; gave up`));
    });

  const kindOfAttached = (s: UserState, deviceId: string): Kind => s.devices.find((d) => d.deviceId === deviceId)?.kind ?? 'totp';

  const mapDomain = <A>(e: Either<DomainError, A>): Either<EngineError, A> => (isLeft(e) ? left(fromDomain(e.left)) : e);

  /** Appends user events decided outside `execute`; false on a conflict. */
  const appendUser = async (userId: string, user: Loaded<UserState, UserEvent>, events: readonly UserEvent[], m: Meta): Promise<boolean> => {
    const { result } = await appendTo(userStream(userId), user, events, m, evolveUser);
    return result.ok;
  };

  const challenge = (device: string, options?: Options) =>
    run(async (): Promise<ChallengeOutcome> => {
      const ref = mustDevice(device);
      const { deviceId } = ref;
      const m = must(meta(options));
      if (!sender) throw new Failure(err('not-configured', 'no TokenSender is configured: the engine cannot deliver codes'));
      const code = numericCodeFromBytes(random.bytes(NUMERIC_CODE_BYTES), policy.codeDigits);
      const done = await onDevice(ref, m, { type: 'GenerateChallenge' }, async (d) => ({
        ...(await keysFor(d)),
        challengeCode: code,
      }), true);
      const d = registeredOrFail(done.state, deviceId);
      const generated = done.events.find((e) => e.type === 'ChallengeGenerated');
      const refused = done.events.find((e) => e.type === 'ChallengeRefused');
      if (refused?.type === 'ChallengeRefused') return { ok: false, deviceId, reason: 'cooldown', retryAt: refused.data.retryAt };
      if (generated?.type !== 'ChallengeGenerated') throw new Failure(err('internal', 'the challenge produced no outcome'));
      if (done.replayed) return { ok: true, deviceId, validUntil: generated.data.validUntil, replayed: true };
      if (d.k.kind !== 'email' && d.k.kind !== 'sms') throw new Failure(err('wrong-kind', 'not a side-channel device'));
      const destination = Buffer.from(await vault.open(deviceId, d.k.config.destination)).toString('utf8');
      let delivered: { ok: true } | { ok: false; reason: string };
      try {
        delivered = await sender.send({ deviceId, kind: d.k.kind, destination, code, validUntil: generated.data.validUntil });
      } catch (e) {
        delivered = { ok: false, reason: `the sender failed: ${e instanceof Error ? e.name : 'unknown error'}` };
      }
      if (delivered.ok) return { ok: true, deviceId, validUntil: generated.data.validUntil, replayed: false };
      const reason = scrub(delivered.reason, [code, destination]);
      await onDevice(deviceId, { ...m, commandId: `${m.commandId}:delivery-failed`, causationId: m.commandId }, { type: 'RecordDeliveryFailure', reason }, async () => ({}));
      return { ok: false, deviceId, reason: 'delivery-failed', message: reason };
    });

  const issueBackupCodes = (
    target: { readonly device: string } | { readonly userId: string; readonly name?: string },
    options?: Options & { readonly count?: number; readonly codes?: readonly string[] },
  ) =>
    run(async (): Promise<BackupCodes> => {
      const { count, codes: given, ...rest } = options ?? {};
      const m = must(meta(rest));
      if (given !== undefined && (count !== undefined || !Array.isArray(given)))
        throw new Failure(err('invalid-command', 'codes must be a list of codes, given without count'));
      const n = given?.length ?? count ?? policy.backupCodeCount;
      if (!Number.isSafeInteger(n) || n < 1 || n > 100)
        throw new Failure(err('invalid-command', `count must be a whole number from 1 to 100 (got ${String(n).slice(0, 20)})`));
      let deviceId: string;
      let ref: DeviceRef | null = null;
      if ('device' in target) {
        ref = mustDevice(target.device);
        deviceId = ref.deviceId;
      }
      else {
        const found = await findStaticDevice(target.userId);
        if (found) deviceId = found;
        else {
          const r = await register(
            { kind: 'static', userId: target.userId, confirmed: true, ...(target.name ? { name: target.name } : {}) },
            { ...rest, commandId: `${m.commandId}:register` },
          )();
          if (isLeft(r)) throw new Failure(r.left);
          deviceId = r.right.deviceId;
        }
      }
      const codes =
        given?.map((c, i) => {
          const code = parseBackupCode(c);
          if (code === null) throw new Failure(err('invalid-command', `codes[${i}] is not a backup code: 4–16 letters and digits`));
          return code;
        }) ?? Array.from({ length: n }, () => backupCodeFromBytes(random.bytes(5)));
      const done = await onDevice(ref ?? deviceId, m, { type: 'IssueStaticTokens' }, async (d) => ({ ...(await keysFor(d)), staticCodes: codes }), true);
      const d = registeredOrFail(done.state, deviceId);
      return { deviceId, persistentId: persistentId(d.k.kind, deviceId), codes: done.replayed ? [] : codes, replayed: done.replayed };
    });

  const findStaticDevice = async (userId: string): Promise<string | null> => {
    const user = await loadUser(userId);
    for (const d of user.state.devices) {
      if (d.kind !== 'static') continue;
      const loaded = await loadDevice(d.deviceId);
      if (loaded.state.status === 'registered' && !loaded.state.removed) return d.deviceId;
    }
    return null;
  };

  const simple = (command: (o: Options | undefined) => DeviceCommand, after?: (deviceId: string) => Promise<void>) =>
    (device: string, options: Options | undefined) =>
      run(async (): Promise<DeviceView> => {
        const ref = mustDevice(device);
        const { deviceId } = ref;
        const m = must(meta(options));
        const done = await onDevice(ref, m, command(options), async () => ({}));
        if (after) await after(deviceId);
        return view(registeredOrFail(done.state, deviceId), done.version, m.now);
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
    heads.delete(stream);
    for (let attempt = 0; attempt <= maxRetries; attempt++) {
      const read = await store.readStream(stream);
      const last = read.events[read.events.length - 1];
      if (last === undefined || read.events[0]!.type !== 'DeviceRegistered')
        throw new Failure(err('corrupt-event', `stream ${stream} does not start with a DeviceRegistered event; it was left as it is`));
      const removal0 = read.events.find((r) => r.type === 'DeviceRemoved');
      // Removed already: by this command (a retry, which answers as the first call did) or another.
      if (removal0 !== undefined) return (removal0.metadata as { commandId?: unknown } | null)?.commandId === m.commandId;
      const removal: DeviceEvent = { type: 'DeviceRemoved', data: { at: m.now, reason } };
      const { toStore } = chained(stream, { version: read.version, prevHash: eventHash(last) } as Loaded<unknown, FactorEvent>, [removal], m);
      const result = await store.appendToStream(stream, toStore, read.version);
      if (result.ok) return result.written !== false;
    }
    throw new Failure(err('conflict', `stream ${stream} kept changing; gave up after ${maxRetries + 1} attempts`));
  };

  const checkedText = (what: string, value: unknown, max: number): string => {
    if (typeof value !== 'string' || value.trim().length === 0 || value.length > max)
      throw new Failure(err('invalid-command', `${what} must be 1–${max} characters long`));
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(value)) throw new Failure(err('invalid-command', `${what} must not contain control characters`));
    return value;
  };

  const readDevice = (device: string, at?: number) =>
    run(async (): Promise<DeviceView> => {
      const ref = mustDevice(device);
      const { deviceId } = ref;
      if (at === undefined) {
        const loaded = await loadDevice(ref);
        return view(registeredOrFail(loaded.state, deviceId), loaded.version, clock.now());
      }
      if (!Number.isFinite(at)) throw new Failure(err('invalid-command', 'the instant must be a number of ms since the epoch'));
      const loaded = await loadDeviceEntries(ref);
      let s: DeviceState = initialState();
      let version = 0;
      for (const x of loaded.entries) {
        if (x.event.data.at > at) break;
        s = evolve(s, x.event);
        version = x.raw.version;
      }
      if (s.status === 'empty') throw new Failure(err('device-not-found', `device ${deviceId} did not exist at ${new Date(at).toISOString()}`));
      return view(s, version, at);
    });

  const historyOf = (loaded: LoadedEntries<unknown, FactorEvent>): HistoryEntry[] =>
    loaded.entries.map((x) => ({
      version: x.raw.version,
      position: x.raw.position,
      recordedAt: x.raw.recordedAt,
      event: x.event,
      metadata: x.metadata,
    }));

  return {
    policy,
    register,
    confirm: verifyWith(true),
    verify: verifyWith(false),
    match,
    challenge,
    issueBackupCodes,
    resetThrottle: (device, reason, options) =>
      simple(() => ({ type: 'ResetThrottle', reason: checkedText('reason', reason, 500) }))(device, options),
    resetUserThrottle: (userId, reason, options) =>
      run(async () => {
        const m = must(meta(options));
        await onUser(checkedText('userId', userId, 128), m, { type: 'ResetUserThrottle', reason: checkedText('reason', reason, 500) });
      }),
    rename: (device, name, options) => simple(() => ({ type: 'RenameDevice', name: checkedText('name', name, 64) }))(device, options),
    remove: (device, reason, options) =>
      simple(
        () => ({ type: 'RemoveDevice', ...(reason === undefined ? {} : { reason: checkedText('reason', reason, 500) }) }),
        // The key goes after the removal is recorded; a crash in between leaves a removed
        // device whose key a retried remove (same command id) destroys.
        (deviceId) => {
          forgetKey(deviceId);
          return vault.shred(deviceId);
        },
      )(device, options),
    device: (device) => readDevice(device),
    deviceAt: (device, at) => readDevice(device, at),
    history: (device) => run(async () => historyOf(await loadDeviceEntries(mustDevice(device)))),
    userHistory: (userId) => run(async () => historyOf(await loadUserEntries(checkedText('userId', userId, 128)))),
    eraseUser: (userId, reason, options) =>
      run(async () => {
        const m = must(meta(options));
        const why = checkedText('reason', reason, 500);
        const user = await loadUser(checkedText('userId', userId, 128));
        const removed: string[] = [];
        for (const { deviceId } of user.state.devices) {
          // A retried erasure (same command id) finishes what a crash interrupted: the removal is
          // replayed and the key shredded again.
          const deviceMeta: Meta = { ...m, commandId: `${m.commandId}:erase:${deviceId}` };
          let loaded: Loaded<DeviceState, DeviceEvent>;
          try {
            loaded = await loadDevice(deviceId);
          } catch (e) {
            if (!(e instanceof Failure && e.error.code === 'corrupt-event')) throw e;
            // An erasure must not depend on every event of the user being readable.
            if (await removeUnreadable(deviceId, deviceMeta, why)) removed.push(deviceId);
            forgetKey(deviceId);
            await vault.shred(deviceId);
            continue;
          }
          if (loaded.state.status !== 'registered') continue;
          const already = loaded.state.removed && loaded.commands.eventsOf(deviceMeta.commandId, loaded.version).length === 0;
          if (already) {
            forgetKey(deviceId);
            await vault.shred(deviceId);
            continue;
          }
          await onDevice(deviceId, deviceMeta, { type: 'RemoveDevice', reason: why }, async () => ({}));
          forgetKey(deviceId);
          await vault.shred(deviceId);
          removed.push(deviceId);
        }
        return { removed };
      }),
    verifyChain: (target) =>
      run(async () => {
        const streamName = 'device' in target ? deviceStream(mustDevice(target.device).deviceId) : userStream(checkedText('userId', target.userId, 128));
        const read = await store.readStream(streamName);
        return { streamName, checked: read.events.length, broken: verifyChain(read.events) };
      }),
    userDevices: (userId, filter) =>
      run(async () => {
        const user = await loadUser(checkedText('userId', userId, 128));
        const now = clock.now();
        const out: DeviceView[] = [];
        for (const { deviceId } of user.state.devices) {
          const loaded = await loadDevice(deviceId);
          const d = loaded.state;
          if (d.status === 'empty' || d.removed) continue;
          if (filter?.confirmed !== undefined && d.confirmed !== filter.confirmed) continue;
          out.push(view(d, loaded.version, now));
        }
        return out;
      }),
  };
};

const isFullPolicy = (p: unknown): p is Policy =>
  typeof p === 'object' && p !== null && 'throttle' in p && 'matchThrottle' in p && 'cooldownSeconds' in p &&
  'codeValiditySeconds' in p && 'codeDigits' in p && 'maxDrift' in p && 'totpSync' in p && 'backupCodeCount' in p &&
  ['totp', 'hotp', 'static', 'email', 'sms'].every((k) => k in (p as Policy).throttle);

/** JSON with object keys sorted, so that stores that reorder keys (jsonb) compare equal. */
const canonicalJson = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  );

/** Removes any occurrence of the given secrets from a message. */
const scrub = (message: string, secrets: readonly string[]): string => {
  let out = String(message).slice(0, 300);
  for (const s of secrets) if (s) out = out.split(s).join('[redacted]');
  return out.length > 0 ? out : 'delivery failed';
};

