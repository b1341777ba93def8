/**
 * The EventStoreDB event store, through `@eventstore/db-client` 6.x (gRPC).
 *
 * Everything that depends on the client's shapes sits in the small pure functions exported
 * below (revisions, positions, errors, events), so that they can be tested without a server
 * and so that a move to `@kurrent/kurrentdb-client` (which renames `expectedRevision` to
 * `streamState` and `actualVersion` to `actualState`) touches this file only.
 *
 * - Versions. factorstream counts events (version 0 = no stream, 1 after the first event);
 *   EventStoreDB numbers them from 0 and says `NO_STREAM` for "none". Every append carries an
 *   exact expected revision, so the server's idempotency check is deterministic.
 * - Idempotency. Event ids are kept (they are deterministic UUIDs), so the server acknowledges
 *   a retried append without duplicating it. When it answers with a wrong-expected-version
 *   instead (a partial retry, or a retry after further appends), the events at the expected
 *   versions are read and compared by id, as every other store does, before a conflict is
 *   reported. EventStoreDB checks event ids per stream only: unlike the SQL stores, it does not
 *   refuse an event id that is already stored in another stream.
 * - Positions. The global order is the `$all` commit position, zero-padded to 20 digits (the
 *   width of the largest unsigned 64-bit number) so that positions sort as strings. Every event
 *   appended through gRPC has commit = prepare position; only events written by legacy TCP
 *   explicit transactions share a commit position, and none are written by this adapter.
 * - Global reads. `readAll` and `subscribe` see only streams named with STREAM_PREFIXES
 *   (`otpdevice-`, `otpuser-`), never system streams or `$`-typed events. Subscriptions filter
 *   on the server (`streamNameFilter`); the 6.x client's `readAll` takes no filter (it always
 *   sends `NoFilter`), so `readAll` pages through `$all` and filters here.
 * - Subscriptions are catch-up subscriptions to `$all`, started after the last delivered
 *   position (exclusive). A transient failure (server unavailable, deadline, not leader, the
 *   server ending the subscription) resubscribes from there with a growing delay; anything
 *   else ends the subscription with onError. `onCaughtUp` is driven by the server's
 *   `caughtUp` message, which needs EventStoreDB 23.10 or later.
 * - Payloads. Data and metadata must be JSON objects, as on the SQL stores (`encodeEvents`).
 *   On the way out, anything that is not a JSON object is `StoreError('corrupt')` naming the
 *   stream and revision; the error never quotes the payload.
 * - Reading `$all` needs the `$ops`/admin role on a secure server; the insecure development
 *   server allows it to everyone.
 */
import {
  BACKWARDS,
  END,
  ErrorType,
  EventStoreDBClient,
  FORWARDS,
  NO_STREAM,
  START,
  StreamNotFoundError,
  WrongExpectedVersionError,
  jsonEvent,
  streamNameFilter,
  type AllStreamSubscription,
  type AppendResult as EsdbAppendResult,
  type JSONEventData,
  type Position,
  type ResolvedEvent,
} from '@eventstore/db-client';
import { DEVICE_CATEGORY, USER_CATEGORY } from '../../domain/ids.ts';
import {
  StoreError,
  type AppendResult,
  type EventStore,
  type GlobalPosition,
  type NewEvent,
  type ReadAllOptions,
  type ReadAllResult,
  type RecordedEvent,
  type StreamRead,
  type SubscribeOptions,
  type Subscription,
} from '../../domain/ports.ts';
import { checkExpectedVersion, checkLimit, encodeEvents, isRetryOf } from './stored-event.ts';

// ---- constants -------------------------------------------------------------------------------

/** The stream-name prefixes that make up factorstream's global log on a shared server. */
export const STREAM_PREFIXES: readonly string[] = [`${DEVICE_CATEGORY}-`, `${USER_CATEGORY}-`];

/** Digits of a formatted position: 2^64 − 1 has 20. */
export const POSITION_DIGITS = 20;

const U64_MAX = 2n ** 64n - 1n;
const LOWER_CASE_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// ---- versions and revisions ------------------------------------------------------------------

/** The conflict value of AppendResult. */
export type AppendConflict = Extract<AppendResult, { ok: false }>;

/** factorstream version → EventStoreDB expected revision: 0 → NO_STREAM, n → revision n − 1. */
export const toExpectedRevision = (version: number): typeof NO_STREAM | bigint => {
  checkExpectedVersion(version);
  return version === 0 ? NO_STREAM : BigInt(version - 1);
};

/** EventStoreDB revision (0-based) → factorstream version (revision + 1). */
export const fromRevision = (revision: bigint): number => {
  if (typeof revision !== 'bigint' || revision < 0n)
    throw new StoreError('invalid', `EventStoreDB returned an impossible stream revision: ${String(revision).slice(0, 40)}`);
  if (revision >= BigInt(Number.MAX_SAFE_INTEGER))
    throw new StoreError(
      'invalid',
      `stream revision ${revision} is beyond the largest version factorstream can count (${Number.MAX_SAFE_INTEGER})`,
    );
  return Number(revision) + 1;
};

/**
 * A WrongExpectedVersionError's `actualVersion` → factorstream version. The client gives the
 * string 'no_stream' when the stream does not exist (never BigInt() it) or a bigint revision.
 */
export const fromCurrentRevision = (current: unknown): number => {
  if (current === NO_STREAM) return 0;
  if (typeof current === 'bigint') return current === -1n ? 0 : fromRevision(current);
  if (typeof current === 'number' && Number.isSafeInteger(current) && current >= -1) return current + 1;
  throw new StoreError('invalid', `EventStoreDB reported an unreadable current revision: ${String(current).slice(0, 40)}`);
};

// ---- positions -------------------------------------------------------------------------------

/** A `$all` commit position → a GlobalPosition that sorts as a string. */
export const formatPosition = (commit: bigint): GlobalPosition => {
  if (typeof commit !== 'bigint' || commit < 0n || commit > U64_MAX)
    throw new StoreError('invalid', `not an EventStoreDB log position: ${String(commit).slice(0, 40)}`);
  return commit.toString().padStart(POSITION_DIGITS, '0');
};

/** The commit position in a GlobalPosition; null for "before the first event". */
export const positionCommit = (position: GlobalPosition | null | undefined): bigint | null => {
  if (position === null || position === undefined || position === '') return null;
  if (typeof position !== 'string' || !/^\d{1,20}$/.test(position))
    throw new StoreError('invalid', `not a position of an EventStoreDB store: "${String(position).slice(0, 40)}"`);
  const commit = BigInt(position);
  if (commit > U64_MAX) throw new StoreError('invalid', `not a position of an EventStoreDB store: "${position}"`);
  return commit;
};

/** A GlobalPosition → a `$all` read position (prepare = commit); START for none. */
export const parsePosition = (position: GlobalPosition | null | undefined): Position | typeof START => {
  const commit = positionCommit(position);
  return commit === null ? START : { commit, prepare: commit };
};

/**
 * The commit position of a resolved event: the record's own position (servers ≥ 22.6) or the
 * read's commitPosition. Old servers send 2^64 − 1 for "none".
 */
export const eventCommitPosition = (resolved: ResolvedEvent): bigint | null => {
  const own = resolved.event?.position?.commit;
  if (typeof own === 'bigint' && own >= 0n && own < U64_MAX) return own;
  const read = resolved.commitPosition;
  if (typeof read === 'bigint' && read >= 0n && read < U64_MAX) return read;
  return null;
};

// ---- streams ---------------------------------------------------------------------------------

/** Whether a stream belongs to the global log: named with a prefix, and not a system stream. */
export const isLogStream = (streamName: string, prefixes: readonly string[] = STREAM_PREFIXES): boolean =>
  !streamName.startsWith('$') && prefixes.some((p) => streamName.startsWith(p));

/** Whether a resolved event from `$all` is one of ours (not a link, not a `$` system event). */
export const isLogEvent = (resolved: ResolvedEvent, prefixes: readonly string[] = STREAM_PREFIXES): boolean =>
  resolved.event !== undefined && !resolved.event.type.startsWith('$') && isLogStream(resolved.event.streamId, prefixes);

// ---- events ----------------------------------------------------------------------------------

const isJsonObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);

/**
 * NewEvents → the client's JSON events. Checks them like every store does (non-empty distinct
 * ids, a type, JSON-object data and metadata) plus EventStoreDB's own rule that an event id is
 * a UUID; lower case, because the server hands ids back in lower case and idempotency compares
 * them. Data and metadata are sent as fresh copies of what was checked. The event id is kept:
 * it is what makes a retried append idempotent on the server.
 */
export const toJsonEvents = (events: readonly NewEvent[]): JSONEventData[] =>
  encodeEvents(events).map((e) => {
    if (!LOWER_CASE_UUID.test(e.eventId))
      throw new StoreError(
        'invalid',
        `event id "${e.eventId.slice(0, 60)}" is not a lower-case UUID; EventStoreDB needs UUID event ids`,
      );
    return jsonEvent({
      id: e.eventId,
      type: e.type,
      data: JSON.parse(e.data) as Record<string, unknown>,
      metadata: JSON.parse(e.metadata) as Record<string, unknown>,
    });
  });

/** One NewEvent → the client's JSON event (see toJsonEvents). */
export const toJsonEvent = (event: NewEvent): JSONEventData => toJsonEvents([event])[0]!;

const corrupt = (streamName: string, revision: bigint, eventId: string, problem: string) =>
  new StoreError(
    'corrupt',
    `stored event at stream "${streamName}" revision ${revision} (version ${revision + 1n}, id ${eventId}) is corrupt: ` +
      `${problem}. The event was left untouched; repair or remove it by hand.`,
  );

/**
 * A resolved event read from EventStoreDB → RecordedEvent. Data and metadata must be JSON
 * objects: binary content, and JSON the client could not parse (it then hands back the raw
 * text), are StoreError('corrupt') naming stream and revision, never quoting the payload.
 */
export const fromResolvedEvent = (resolved: ResolvedEvent): RecordedEvent => {
  const event = resolved.event;
  if (!event) {
    const at = resolved.commitPosition === undefined ? '' : ` at log position ${resolved.commitPosition}`;
    throw new StoreError('corrupt', `EventStoreDB returned a link without its event${at}`);
  }
  const { streamId, revision, id } = event;
  if (!event.isJson || event.data instanceof Uint8Array)
    throw corrupt(streamId, revision, id, 'its data is binary, not JSON');
  if (typeof event.data === 'string') throw corrupt(streamId, revision, id, 'its data is not valid JSON');
  if (!isJsonObject(event.data)) throw corrupt(streamId, revision, id, 'its data is not a JSON object');
  if (event.metadata === undefined) throw corrupt(streamId, revision, id, 'it has no metadata');
  if (event.metadata instanceof Uint8Array) throw corrupt(streamId, revision, id, 'its metadata is not valid JSON');
  if (!isJsonObject(event.metadata)) throw corrupt(streamId, revision, id, 'its metadata is not a JSON object');
  const commit = eventCommitPosition(resolved);
  if (commit === null)
    throw new StoreError(
      'invalid',
      `EventStoreDB returned no log position for stream "${streamId}" revision ${revision}; EventStoreDB 22.6 or later is required`,
    );
  return {
    streamName: streamId,
    version: fromRevision(revision),
    position: formatPosition(commit),
    recordedAt: event.created.getTime(),
    eventId: id,
    type: event.type,
    data: event.data,
    metadata: event.metadata,
  };
};

// ---- errors ----------------------------------------------------------------------------------

/** The client's error type tag; also works when two copies of the client are loaded. */
const commandErrorType = (error: unknown): string | undefined => {
  if (typeof error !== 'object' || error === null) return undefined;
  const type = (error as { type?: unknown }).type;
  return typeof type === 'string' ? type : undefined;
};

const isWrongExpectedVersion = (error: unknown): error is WrongExpectedVersionError =>
  error instanceof WrongExpectedVersionError || commandErrorType(error) === ErrorType.WRONG_EXPECTED_VERSION;

/** A read of a stream that does not exist (surfaces while iterating, not at the call). */
export const isStreamNotFound = (error: unknown): error is StreamNotFoundError =>
  error instanceof StreamNotFoundError || commandErrorType(error) === ErrorType.STREAM_NOT_FOUND;

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT', 'EAI_AGAIN', 'EHOSTUNREACH', 'EPIPE']);

/** Network-level failures that the client does not wrap (discovery, sockets). */
export const isConnectionError = (error: unknown): boolean => {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && CONNECTION_CODES.has(code)) return true;
  return /^Failed to discover after \d+ attempts/.test(error.message) || /\b(ECONNREFUSED|ECONNRESET|ENOTFOUND|EHOSTUNREACH)\b/.test(error.message);
};

const TRANSIENT_TYPES: ReadonlySet<string> = new Set([
  ErrorType.UNAVAILABLE,
  ErrorType.DEADLINE_EXCEEDED,
  ErrorType.TIMEOUT,
  ErrorType.NOT_LEADER,
  ErrorType.CANCELLED,
]);

/** Failures worth retrying (a subscription resubscribes after them). */
export const isTransientError = (error: unknown): boolean => {
  if (error instanceof StoreError) return error.code === 'unavailable';
  const type = commandErrorType(error);
  return (type !== undefined && TRANSIENT_TYPES.has(type)) || isConnectionError(error);
};

const detailOf = (error: unknown): string => {
  const message = error instanceof Error ? error.message : String(error);
  const short = message.length > 200 ? `${message.slice(0, 200)}…` : message;
  return short === '' ? (error instanceof Error ? error.name : 'no detail') : short;
};

/**
 * Any error of the client → StoreError, saying what could not be done and what to check.
 * `action` reads like "append to stream "x"". StoreErrors pass through unchanged.
 */
export const toStoreError = (error: unknown, action: string): StoreError => {
  if (error instanceof StoreError) return error;
  const type = commandErrorType(error);
  const detail = detailOf(error);
  const options = { cause: error };
  if ((type !== undefined && TRANSIENT_TYPES.has(type)) || isConnectionError(error))
    return new StoreError(
      'unavailable',
      `EventStoreDB is unavailable, could not ${action} (${detail}); check that the server is running and reachable, then retry`,
      options,
    );
  switch (type) {
    case ErrorType.UNKNOWN:
      return new StoreError('unavailable', `EventStoreDB failed to ${action} (${detail})`, options);
    case ErrorType.ACCESS_DENIED:
      return new StoreError(
        'invalid',
        `EventStoreDB denied access, could not ${action}; check the credentials in the connection string (reading $all needs the $ops or $admins role)`,
        options,
      );
    case ErrorType.STREAM_DELETED:
      return new StoreError(
        'invalid',
        `could not ${action}: stream "${(error as { streamName?: string }).streamName ?? '?'}" was deleted (tombstoned) in EventStoreDB`,
        options,
      );
    case ErrorType.MAXIMUM_APPEND_SIZE_EXCEEDED:
      return new StoreError(
        'invalid',
        `could not ${action}: the events exceed EventStoreDB's maximum append size (${(error as { maxAppendSize?: number }).maxAppendSize ?? '?'} bytes)`,
        options,
      );
    case ErrorType.STREAM_NOT_FOUND:
      return new StoreError('invalid', `could not ${action}: the stream does not exist`, options);
    case ErrorType.WRONG_EXPECTED_VERSION:
      return new StoreError('invalid', `could not ${action}: the stream is not at the expected version`, options);
  }
  const kind = type ?? (error instanceof Error ? error.name : typeof error);
  return new StoreError('invalid', `could not ${action} in EventStoreDB: unexpected ${kind} (${detail})`, options);
};

/**
 * An append's error → the conflict value for a wrong expected version (the actual version is
 * 0 for 'no_stream', revision + 1 otherwise); any other error is thrown as a StoreError.
 */
export const mapAppendError = (error: unknown, expectedVersion: number, streamName = '?'): AppendConflict => {
  if (isWrongExpectedVersion(error))
    return { ok: false, expectedVersion, actualVersion: fromCurrentRevision(error.actualVersion) };
  throw toStoreError(error, `append to stream "${streamName}"`);
};

/** Removes the user:password of a connection string from a text (a parse error may echo it). */
const redactCredentials = (text: string, connectionString: string): string => {
  const userInfo = /^[a-z+]+:\/\/([^@/?]*)@/i.exec(connectionString)?.[1];
  if (!userInfo) return text;
  let out = text;
  for (const secret of [userInfo, ...userInfo.split(':')].filter((s) => s.length > 0)) out = out.split(secret).join('***');
  return out;
};

// ---- the store -------------------------------------------------------------------------------

export interface EventStoreDbTuning {
  /** Stream-name prefixes of the global log (readAll, subscribe). Default STREAM_PREFIXES. */
  readonly streamPrefixes?: readonly string[];
  /** Events per `$all` page read by readAll. Default 1000. */
  readonly readPageSize?: number;
  /** Resubscription after a transient failure: delay min·1.5^(n−1) capped at max. */
  readonly resubscribe?: {
    readonly minDelayMs?: number;
    readonly maxDelayMs?: number;
    /** Consecutive failed attempts before giving up with onError. Default: never give up. */
    readonly maxAttempts?: number;
  };
}

export type EventStoreDbStoreOptions = (
  | {
      /** e.g. `esdb://localhost:2113?tls=false`. The store creates the client and disposes it on close. */
      readonly connectionString: string;
      readonly client?: undefined;
    }
  | {
      /** A client the caller owns: close() leaves it open. Keep its default throwOnAppendFailure. */
      readonly client: EventStoreDBClient;
      readonly connectionString?: undefined;
    }
) &
  EventStoreDbTuning;

const BATCH_SIZE = 500;
/** Waits between re-reads while the read index catches up after an append (ms). */
const READ_SETTLE_DELAYS_MS = [5, 20, 100, 300];
const QUEUE_HIGH_WATER = 2000;
const QUEUE_LOW_WATER = 200;

type QueueItem = { readonly kind: 'event'; readonly resolved: ResolvedEvent } | { readonly kind: 'caughtUp' };

export const createEventStoreDbStore = (options: EventStoreDbStoreOptions): EventStore => {
  const prefixes = [...(options.streamPrefixes ?? STREAM_PREFIXES)];
  if (prefixes.length === 0 || prefixes.some((p) => typeof p !== 'string' || p === '' || p.startsWith('$')))
    throw new StoreError('invalid', 'streamPrefixes must be non-empty strings that do not start with "$"');
  const pageSize = options.readPageSize ?? 1000;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1)
    throw new StoreError('invalid', `readPageSize must be a whole number ≥ 1, got ${pageSize}`);
  const minDelayMs = options.resubscribe?.minDelayMs ?? 100;
  const maxDelayMs = options.resubscribe?.maxDelayMs ?? 5000;
  const maxAttempts = options.resubscribe?.maxAttempts ?? Number.POSITIVE_INFINITY;
  const owned = options.client === undefined;
  const client = options.client ?? connect(options.connectionString);
  let closed = false;
  const active = new Set<{ stop: (error: StoreError | null) => Promise<void> }>();

  const checkOpen = () => {
    if (closed) throw new StoreError('closed', 'the event store is closed');
  };

  /** Reads up to `count` events of a stream from a revision; [] when the stream does not exist. */
  const readFrom = async (streamName: string, fromRevision: bigint, count: number): Promise<RecordedEvent[]> => {
    const events: RecordedEvent[] = [];
    try {
      for await (const resolved of client.readStream(streamName, { fromRevision, maxCount: count, direction: FORWARDS }))
        events.push(fromResolvedEvent(resolved));
    } catch (error) {
      if (isStreamNotFound(error)) return [];
      throw toStoreError(error, `read stream "${streamName}"`);
    }
    return events;
  };

  /** The stream's last event, or null when there is none. */
  const readLast = async (streamName: string): Promise<RecordedEvent | null> => {
    try {
      for await (const resolved of client.readStream(streamName, { fromRevision: END, direction: BACKWARDS, maxCount: 1 }))
        return fromResolvedEvent(resolved);
    } catch (error) {
      if (isStreamNotFound(error)) return null;
      throw toStoreError(error, `read stream "${streamName}"`);
    }
    return null;
  };

  /**
   * Reads events right after an append was decided on the server, waiting briefly while the
   * read index catches up with the writer (the check and the read are two round trips).
   */
  const readSettled = async (streamName: string, fromRevision: bigint, count: number, enough: number) => {
    let events = await readFrom(streamName, fromRevision, count);
    for (const ms of READ_SETTLE_DELAYS_MS) {
      if (events.length >= enough) break;
      await new Promise((resolve) => setTimeout(resolve, ms));
      events = await readFrom(streamName, fromRevision, count);
    }
    return events;
  };

  /** After a refused append: a retry of an append that already happened succeeds, else the conflict. */
  const settleConflict = async (
    streamName: string,
    events: readonly NewEvent[],
    conflict: AppendConflict,
  ): Promise<AppendResult> => {
    const { expectedVersion, actualVersion } = conflict;
    if (events.length > 0 && actualVersion > expectedVersion) {
      const visible = Math.min(events.length, actualVersion - expectedVersion);
      const stored = await readSettled(streamName, BigInt(expectedVersion), events.length, visible);
      if (isRetryOf(stored, events)) {
        const lastOne = stored[events.length - 1]!;
        return { ok: true, version: lastOne.version, position: lastOne.position };
      }
    }
    return conflict;
  };

  const appendToStream = async (
    streamName: string,
    events: readonly NewEvent[],
    expectedVersion: number,
  ): Promise<AppendResult> => {
    checkOpen();
    const expectedRevision = toExpectedRevision(expectedVersion);
    const data = toJsonEvents(events);
    if (data.length === 0) {
      // Nothing to write: only the version check. The position is the stream's last event's.
      const last = await readLast(streamName);
      const actualVersion = last?.version ?? 0;
      if (actualVersion !== expectedVersion) return { ok: false, expectedVersion, actualVersion };
      return { ok: true, version: actualVersion, position: last?.position ?? formatPosition(0n) };
    }
    let result: EsdbAppendResult;
    try {
      result = await client.appendToStream(streamName, data, { expectedRevision });
    } catch (error) {
      return settleConflict(streamName, events, mapAppendError(error, expectedVersion, streamName));
    }
    if (!result.success) {
      // Only when the client was built with throwOnAppendFailure: false; its revision is then unreliable.
      const last = await readLast(streamName);
      return settleConflict(streamName, events, { ok: false, expectedVersion, actualVersion: last?.version ?? 0 });
    }
    const version = expectedVersion + events.length;
    // A fresh single-event write reports that event's own position. Otherwise (several events,
    // or the server acknowledging a retried append) read the last event back for its position.
    if (data.length === 1 && result.position && result.nextExpectedRevision === BigInt(version - 1))
      return { ok: true, version, position: formatPosition(result.position.commit) };
    const [lastOne] = await readSettled(streamName, BigInt(version - 1), 1, 1);
    if (lastOne && lastOne.eventId === events[events.length - 1]!.eventId)
      return { ok: true, version, position: lastOne.position };
    if (result.position) return { ok: true, version, position: formatPosition(result.position.commit) };
    throw new StoreError(
      'unavailable',
      `EventStoreDB acknowledged the append to stream "${streamName}" but its events could not be read back; ` +
        'read the stream to see its state before retrying',
    );
  };

  const readStream = async (streamName: string): Promise<StreamRead> => {
    checkOpen();
    const events = await readFrom(streamName, 0n, Number.MAX_SAFE_INTEGER);
    events.forEach((e, i) => {
      if (e.version !== i + 1)
        throw new StoreError(
          'corrupt',
          `stream "${streamName}" has a gap: expected version ${i + 1}, found ${e.version} ` +
            '(was it truncated or deleted outside factorstream?)',
        );
    });
    return { version: events.length, events };
  };

  const readAll = async (o: ReadAllOptions = {}): Promise<ReadAllResult> => {
    checkOpen();
    checkLimit(o.limit);
    const after = positionCommit(o.after);
    const limit = o.limit ?? Number.MAX_SAFE_INTEGER;
    const events: RecordedEvent[] = [];
    let seen = after; // highest commit position looked at
    let from: Position | typeof START = after === null ? START : { commit: after, prepare: after };
    try {
      while (events.length < limit) {
        const seenBefore = seen;
        let count = 0;
        let full = false;
        const page = client.readAll({ fromPosition: from, maxCount: pageSize, direction: FORWARDS, resolveLinkTos: false });
        try {
          for await (const resolved of page) {
            count++;
            const commit = eventCommitPosition(resolved);
            if (commit === null) throw new StoreError('invalid', 'EventStoreDB returned an event of $all without a log position');
            // Reads of $all start at the given position inclusive: skip what was seen already.
            if (seen !== null && commit <= seen) continue;
            seen = commit;
            if (!isLogEvent(resolved, prefixes)) continue;
            events.push(fromResolvedEvent(resolved));
            if (events.length >= limit) {
              full = true;
              break;
            }
          }
        } finally {
          if (full) await page.cancel().catch(() => undefined);
        }
        if (full || count < pageSize || seen === null) break;
        // A whole page at or before the last position (only legacy TCP transactions share one).
        if (seen === seenBefore)
          throw new StoreError('invalid', `$all did not advance past log position ${seen}; raise readPageSize`);
        from = { commit: seen, prepare: seen };
      }
    } catch (error) {
      throw toStoreError(error, 'read the global log ($all)');
    }
    return { events, last: events.length ? events[events.length - 1]!.position : (o.after ?? null) };
  };

  const subscribe = (o: SubscribeOptions): Subscription => {
    let lastCommit: bigint | null = null;
    let lastPosition: GlobalPosition | null = o.after ?? null;
    let stopped = false;
    let stopError: StoreError | null = null;
    let failure: { error: unknown } | null = null;
    let caughtUpSent = false;
    let attempts = 0;
    let generation = 0;
    let current: AllStreamSubscription | null = null;
    // Everything the server sent, in order: events and where it said "caught up".
    const queue: QueueItem[] = [];
    let received = 0;
    let caughtUpAfter: number | null = null;
    let wakeUp: (() => void) | null = null;
    let wakeSleep: (() => void) | null = null;
    const wake = () => {
      const w = wakeUp;
      wakeUp = null;
      w?.();
    };
    const fail = (error: unknown) => {
      failure ??= { error };
      wake();
    };

    const detach = () => {
      generation++;
      const sub = current;
      current = null;
      queue.length = 0;
      received = 0;
      caughtUpAfter = null;
      if (sub) void sub.unsubscribe().catch(() => undefined);
    };

    const attach = () => {
      const gen = ++generation;
      const fromPosition: Position | typeof START =
        lastCommit === null ? START : { commit: lastCommit, prepare: lastCommit };
      let sub: AllStreamSubscription;
      try {
        sub = client.subscribeToAll({ fromPosition, resolveLinkTos: false, filter: streamNameFilter({ prefixes }) });
      } catch (error) {
        fail(error);
        return;
      }
      current = sub;
      sub.on('data', (resolved: ResolvedEvent) => {
        if (gen !== generation) return;
        received++;
        queue.push({ kind: 'event', resolved });
        if (caughtUpAfter !== null && received >= caughtUpAfter) {
          queue.push({ kind: 'caughtUp' });
          caughtUpAfter = null;
        }
        if (queue.length >= QUEUE_HIGH_WATER) sub.pause();
        wake();
      });
      // The server says "caught up" after the events before it, but some of those may still sit
      // in the stream's buffer: the marker goes in after them.
      sub.on('caughtUp', () => {
        if (gen !== generation) return;
        const buffered = sub.readableLength;
        if (buffered === 0) queue.push({ kind: 'caughtUp' });
        else caughtUpAfter = received + buffered;
        wake();
      });
      sub.on('error', (error: unknown) => {
        if (gen === generation) fail(error);
      });
      sub.on('end', () => {
        if (gen === generation) fail(new StoreError('unavailable', 'EventStoreDB ended the subscription'));
      });
    };

    const sleep = (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          wakeSleep = null;
          resolve();
        }
        wakeSleep = done;
      });

    const run = async () => {
      await null; // callbacks never run inside subscribe()
      try {
        checkOpen();
        lastCommit = positionCommit(o.after);
        attach();
        while (!stopped) {
          if (failure) {
            const { error } = failure;
            failure = null;
            detach();
            if (!isTransientError(error) || attempts >= maxAttempts)
              throw toStoreError(error, 'subscribe to the global log ($all)');
            attempts++;
            await sleep(Math.min(maxDelayMs, minDelayMs * 1.5 ** (attempts - 1)));
            if (!stopped) attach();
            continue;
          }
          const head = queue[0];
          if (!head) {
            await new Promise<void>((resolve) => {
              wakeUp = resolve;
            });
            continue;
          }
          if (head.kind === 'caughtUp') {
            queue.shift();
            attempts = 0;
            if (!caughtUpSent) {
              caughtUpSent = true;
              o.onCaughtUp?.(lastPosition);
            }
            continue;
          }
          const batch: RecordedEvent[] = [];
          let batchCommit = lastCommit;
          while (batch.length < BATCH_SIZE && queue[0]?.kind === 'event') {
            const { resolved } = queue.shift() as Extract<QueueItem, { kind: 'event' }>;
            const commit = eventCommitPosition(resolved);
            if (commit === null) throw new StoreError('invalid', 'EventStoreDB sent an event of $all without a log position');
            // The start is exclusive on the server; this also drops anything seen before a resubscription.
            if (batchCommit !== null && commit <= batchCommit) continue;
            if (!isLogEvent(resolved, prefixes)) continue;
            batch.push(fromResolvedEvent(resolved));
            batchCommit = commit;
          }
          if (queue.length <= QUEUE_LOW_WATER && current?.isPaused()) current.resume();
          if (batch.length > 0) {
            attempts = 0;
            await o.onEvents(batch);
            lastCommit = batchCommit;
            lastPosition = batch[batch.length - 1]!.position;
          }
        }
        if (stopError) o.onError?.(stopError);
      } catch (error) {
        // A handler's error, a non-transient store error, or a corrupt event ends the subscription.
        if (!stopped || stopError) o.onError?.(stopError ?? error);
      } finally {
        stopped = true;
        detach();
        active.delete(entry);
      }
    };

    const stop = async (error: StoreError | null) => {
      if (!stopped) {
        stopped = true;
        stopError = error;
      }
      wake();
      wakeSleep?.();
      detach();
      await running;
    };
    const entry = { stop };
    active.add(entry);
    const running = run();
    return { close: () => stop(null) };
  };

  return {
    appendToStream,
    readStream,
    readAll,
    subscribe,
    close: async () => {
      if (closed) return;
      closed = true;
      await Promise.all([...active].map((s) => s.stop(new StoreError('closed', 'the event store was closed'))));
      if (owned) await client.dispose();
    },
  };
};

const connect = (connectionString: string): EventStoreDBClient => {
  try {
    return EventStoreDBClient.connectionString(connectionString);
  } catch (error) {
    throw new StoreError(
      'invalid',
      `invalid EventStoreDB connection string (${redactCredentials(detailOf(error), connectionString)}); ` +
        'expected e.g. esdb://localhost:2113?tls=false',
    );
  }
};
