/**
 * Ports: what the engine needs from the world. Adapters implement them; domain code never
 * performs I/O itself.
 */

// ---- event store -----------------------------------------------------------------------------

/**
 * A position in the store's global order. Opaque and store-specific; positions of one store
 * compare correctly as strings (the stores zero-pad them). `null` means "before the first event".
 */
export type GlobalPosition = string;

export interface NewEvent {
  readonly eventId: string;
  readonly type: string;
  readonly data: unknown;
  readonly metadata: unknown;
}

export interface RecordedEvent extends NewEvent {
  readonly streamName: string;
  /** 1 for the first event of a stream; equals the stream's version after this event. */
  readonly version: number;
  readonly position: GlobalPosition;
  /** When the store recorded the event (ms since the epoch). */
  readonly recordedAt: number;
}

export interface StreamRead {
  /** The number of events in the stream; 0 when the stream does not exist. */
  readonly version: number;
  readonly events: readonly RecordedEvent[];
}

export type AppendResult =
  | {
      readonly ok: true;
      readonly version: number;
      readonly position: GlobalPosition;
      /**
       * True when this call wrote the events; false when the very same event ids were already
       * stored (an idempotent retry: what is stored may be another attempt's version of them);
       * absent when the store cannot tell. The engine's state cache trusts its own events only
       * when this is true. Stores set it as a non-enumerable property, so that a retry's result
       * still equals the first call's (adapters/store/stored-event.ts, `appended`).
       */
      readonly written?: boolean;
    }
  | {
      readonly ok: false;
      readonly expectedVersion: number;
      readonly actualVersion: number;
      /**
       * When the stream is longer than expected: the events after `expectedVersion` (versions
       * expectedVersion+1 … actualVersion, in order), read with the version check, in the same
       * transaction and round trip. Absent when the store did not read them (a store without
       * `tailOnConflict`, or a tail too long to be worth carrying).
       */
      readonly tail?: readonly RecordedEvent[];
    };

export interface ReadAllOptions {
  /** Read events after this position; null or absent: from the start. */
  readonly after?: GlobalPosition | null;
  /** At most this many events (the store may return fewer). */
  readonly limit?: number;
}

export interface ReadAllResult {
  readonly events: readonly RecordedEvent[];
  /** Position of the last event returned, or `after` when none was. */
  readonly last: GlobalPosition | null;
}

export interface SubscribeOptions {
  readonly after?: GlobalPosition | null;
  /** Called with batches in global order; the next batch waits for the returned promise. */
  readonly onEvents: (events: readonly RecordedEvent[]) => Promise<void>;
  /** Called once the subscription has delivered everything present when it was caught up. */
  readonly onCaughtUp?: (last: GlobalPosition | null) => void;
  /** Called when the subscription stops on an error (a handler's or the store's). */
  readonly onError?: (error: unknown) => void;
}

export interface Subscription {
  /** Stops delivery; resolves once no handler call is running. */
  close(): Promise<void>;
}

export interface EventStore {
  readStream(streamName: string): Promise<StreamRead>;
  /**
   * Optional: the events of the stream after version `afterVersion` (versions afterVersion+1,
   * +2, …, in order) and the stream's current version. The engine uses it to bring a cached
   * state up to date without reading the whole stream. When the stream holds fewer than
   * `afterVersion` events the result says so (`version` < afterVersion, no events).
   */
  readStreamFrom?(streamName: string, afterVersion: number): Promise<StreamRead>;
  /**
   * Appends atomically if the stream's version equals `expectedVersion` (0 = the stream must
   * not exist). A retry of an append whose event ids are already at those versions succeeds
   * without writing anything (idempotency).
   */
  appendToStream(streamName: string, events: readonly NewEvent[], expectedVersion: number): Promise<AppendResult>;
  /**
   * True when an append refused for a stream that moved on reports what it missed
   * (`AppendResult.tail`). The engine then decides on its cached state without reading first
   * (see EngineOptions.optimisticCache): a stale cache costs no more round trips than a read
   * before every command, and a current one saves that read.
   */
  readonly tailOnConflict?: boolean;
  readAll(options?: ReadAllOptions): Promise<ReadAllResult>;
  subscribe(options: SubscribeOptions): Subscription;
  close(): Promise<void>;
}

/** The store could not do what was asked (unreachable, corrupt row, …). */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    readonly code: 'unavailable' | 'corrupt' | 'invalid' | 'closed',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

// ---- vault -----------------------------------------------------------------------------------

export type { EventSigner } from './event-mac.ts';
import type { EventSigner } from './event-mac.ts';

/** A keyed, constant-output-length digest of a code, bound to one device's data key. */
export type Digester = (code: string) => string;

export interface Vault {
  /** Creates the device's data key if it has none. */
  createDeviceKey(deviceId: string): Promise<void>;
  /** Seals bytes under the device's data key. */
  seal(deviceId: string, plaintext: Uint8Array): Promise<string>;
  /** Opens a sealed value; rejects with a VaultError when the key is gone or data was altered. */
  open(deviceId: string, sealed: string): Promise<Uint8Array>;
  /** A digest function keyed by the device's data key. */
  digester(deviceId: string): Promise<Digester>;
  /** Destroys the device's data key: everything sealed under it is unrecoverable. */
  shred(deviceId: string): Promise<void>;
  /**
   * The signer of new events (domain/event-mac.ts): HMAC-SHA256 under a key derived from the
   * master key, never stored in the event store. Its id is recorded in each event it signs.
   */
  eventSigner(): Promise<EventSigner>;
  /**
   * The signer of key `keyId`, the current one or one in force before a master key rotation
   * (the vault keeps those, wrapped like data keys), to verify the events it signed; null when
   * this vault never knew it.
   */
  eventVerifier(keyId: string): Promise<EventSigner | null>;
}

export class VaultError extends Error {
  override readonly name = 'VaultError';
  constructor(
    readonly code: 'key-shredded' | 'no-key' | 'tampered' | 'wrong-master-key' | 'unavailable',
    message: string,
  ) {
    super(message);
  }
}

// ---- delivery, clock, randomness -------------------------------------------------------------

export interface Delivery {
  readonly deviceId: string;
  readonly kind: 'email' | 'sms';
  /** The plaintext destination (address or phone number). Never log it. */
  readonly destination: string;
  /** The plaintext code. Never log it. */
  readonly code: string;
  readonly validUntil: number;
}

export type DeliveryResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export interface TokenSender {
  /** Delivers a code. A failure is reported as a value; it must not contain the code or destination. */
  send(delivery: Delivery): Promise<DeliveryResult>;
}

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export interface Random {
  bytes(n: number): Uint8Array;
}
