/**
 * The EventStoreDB adapter without a server.
 *
 * Part 1 tests every pure mapping function against the client's own error classes and
 * constants: errors are built the way the client builds them (its constructors, or its
 * `convertToCommandError` applied to a gRPC-shaped error), never as look-alike objects.
 *
 * Part 2 drives the store through a scripted fake of the 6.x client (append, reads, $all
 * subscriptions). The fake encodes what the client and server are documented to do (and what
 * the installed client's source shows); it proves the adapter's control flow (conflicts,
 * idempotent retries, paging, resubscription, caught-up ordering), not the server's behaviour.
 * That is for test/conformance/eventstoredb.test.ts against a real server.
 */
import { Readable } from 'node:stream';
import {
  AccessDeniedError,
  BACKWARDS,
  DeadlineExceededError,
  END,
  EventStoreDBClient,
  MaxAppendSizeExceededError,
  NO_STREAM,
  START,
  StreamDeletedError,
  StreamNotFoundError,
  UnavailableError,
  UnknownError,
  WrongExpectedVersionError,
  convertToCommandError,
  type ResolvedEvent,
} from '@eventstore/db-client';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  POSITION_DIGITS,
  STREAM_PREFIXES,
  createEventStoreDbStore,
  eventCommitPosition,
  formatPosition,
  fromCurrentRevision,
  fromResolvedEvent,
  fromRevision,
  isConnectionError,
  isLogEvent,
  isLogStream,
  isStreamNotFound,
  isTransientError,
  mapAppendError,
  parsePosition,
  positionCommit,
  toExpectedRevision,
  toJsonEvent,
  toJsonEvents,
  toStoreError,
} from '../../../adapters/store/eventstoredb.ts';
import { StoreError, type EventStore, type NewEvent, type RecordedEvent } from '../../../domain/ports.ts';

// ---- helpers ---------------------------------------------------------------------------------

const U64_MAX = 2n ** 64n - 1n;
const MAX = Number.MAX_SAFE_INTEGER;
const SECRET = 'TOP-SECRET-4711-do-not-log';

/** A gRPC ServiceError as @grpc/grpc-js hands it to the client (code, details, metadata). */
const grpcError = (code: number, details: string, map: Record<string, string> = {}) =>
  Object.assign(new Error(`${code} ${details}`), { code, details, metadata: { getMap: () => map } });

/** What the client's own error conversion makes of a gRPC error. */
const fromGrpc = (code: number, details: string, map: Record<string, string> = {}) =>
  convertToCommandError(grpcError(code, details, map) as unknown as Error);

const catchError = (f: () => unknown): unknown => {
  try {
    f();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
};

const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

const newEvent = (n: number, data: unknown = { n }, metadata: unknown = { commandId: `c${n}` }): NewEvent => ({
  eventId: uuid(n),
  type: 'DeviceRenamed',
  data,
  metadata,
});

/** A resolved event shaped like the client's convertGrpcEvent output. */
const resolvedEvent = (over: {
  streamId?: string;
  revision?: bigint;
  id?: string;
  type?: string;
  data?: unknown;
  metadata?: unknown;
  isJson?: boolean;
  created?: Date;
  position?: { commit: bigint; prepare: bigint } | undefined;
  commitPosition?: bigint | undefined;
}): ResolvedEvent => {
  const commit = 'position' in over ? over.position?.commit : 1234n;
  return {
    event: {
      streamId: over.streamId ?? 'otpdevice-1',
      id: over.id ?? uuid(1),
      revision: over.revision ?? 0n,
      type: over.type ?? 'DeviceRenamed',
      data: 'data' in over ? over.data : { name: 'phone' },
      metadata: 'metadata' in over ? over.metadata : { actor: 'u1' },
      isJson: over.isJson ?? true,
      created: over.created ?? new Date(1_700_000_000_123),
      position: 'position' in over ? over.position : { commit: 1234n, prepare: 1234n },
    },
    commitPosition: 'commitPosition' in over ? over.commitPosition : commit,
  } as unknown as ResolvedEvent;
};

// ---- part 1: mapping functions ---------------------------------------------------------------

describe('toExpectedRevision', () => {
  it('maps version 0 to NO_STREAM and n to revision n − 1', () => {
    expect(toExpectedRevision(0)).toBe(NO_STREAM);
    expect(toExpectedRevision(1)).toBe(0n);
    expect(toExpectedRevision(2)).toBe(1n);
    expect(toExpectedRevision(MAX)).toBe(BigInt(MAX) - 1n);
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, MAX + 1])('refuses %s as StoreError(invalid)', (v) => {
    const error = catchError(() => toExpectedRevision(v));
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe('invalid');
  });
});

describe('fromRevision', () => {
  it('maps revision r to version r + 1, from 0n', () => {
    expect(fromRevision(0n)).toBe(1);
    expect(fromRevision(41n)).toBe(42);
    expect(fromRevision(BigInt(MAX) - 1n)).toBe(MAX);
  });

  it('refuses revisions whose version is not a safe integer, and negative ones', () => {
    for (const r of [BigInt(MAX), U64_MAX, 2n ** 70n, -1n]) {
      const error = catchError(() => fromRevision(r));
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).code).toBe('invalid');
    }
  });

  it('round-trips with toExpectedRevision for every version ≥ 1', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX }), (v) => fromRevision(toExpectedRevision(v) as bigint) === v),
    );
  });
});

describe('fromCurrentRevision', () => {
  it("maps the string 'no_stream' to 0 without BigInt() (Emmett's bug)", () => {
    const spy = vi.spyOn(globalThis, 'BigInt');
    try {
      expect(fromCurrentRevision('no_stream')).toBe(0);
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });

  it('maps a bigint revision to revision + 1', () => {
    expect(fromCurrentRevision(0n)).toBe(1);
    expect(fromCurrentRevision(9n)).toBe(10);
    expect(fromCurrentRevision(BigInt(MAX) - 1n)).toBe(MAX);
  });

  it('refuses anything else', () => {
    for (const v of ['any', 'stream_exists', undefined, null, '5', {}])
      expect(catchError(() => fromCurrentRevision(v))).toBeInstanceOf(StoreError);
  });
});

describe('mapAppendError', () => {
  it("turns a WrongExpectedVersionError with actual 'no_stream' into a conflict at version 0", () => {
    // How batchAppend builds it (fromWrongExpectedVersion, no current revision).
    const error = new WrongExpectedVersionError(undefined, { streamName: 'otpdevice-1', expected: 4n, current: NO_STREAM });
    expect(error.actualVersion).toBe('no_stream');
    expect(mapAppendError(error, 5, 'otpdevice-1')).toEqual({ ok: false, expectedVersion: 5, actualVersion: 0 });
  });

  it('turns a bigint actual revision into revision + 1, including 0n and large revisions', () => {
    const at = (current: bigint, expected: bigint | typeof NO_STREAM = NO_STREAM) =>
      new WrongExpectedVersionError(undefined, { streamName: 's', expected, current });
    expect(mapAppendError(at(0n), 0)).toEqual({ ok: false, expectedVersion: 0, actualVersion: 1 });
    expect(mapAppendError(at(6n, 2n), 3)).toEqual({ ok: false, expectedVersion: 3, actualVersion: 7 });
    expect(mapAppendError(at(BigInt(MAX) - 1n, 0n), 1)).toEqual({ ok: false, expectedVersion: 1, actualVersion: MAX });
    expect(catchError(() => mapAppendError(at(BigInt(MAX), 0n), 1))).toBeInstanceOf(StoreError);
  });

  it('reads the gRPC metadata form too (append without batchAppend)', () => {
    const noStream = fromGrpc(9, 'WrongExpectedVersion', {
      exception: 'wrong-expected-version',
      'stream-name': 'otpuser-1',
      'expected-version': '3',
    });
    expect(noStream).toBeInstanceOf(WrongExpectedVersionError);
    expect(mapAppendError(noStream, 4)).toEqual({ ok: false, expectedVersion: 4, actualVersion: 0 });
    const existing = fromGrpc(9, 'WrongExpectedVersion', {
      exception: 'wrong-expected-version',
      'stream-name': 'otpuser-1',
      'expected-version': '3',
      'actual-version': '7',
    });
    expect(mapAppendError(existing, 4)).toEqual({ ok: false, expectedVersion: 4, actualVersion: 8 });
  });

  it('recognises the error by its type tag when another copy of the client made it', () => {
    const foreign = { type: 'wrong-expected-version', actualVersion: 'no_stream', message: '' };
    expect(mapAppendError(foreign, 2)).toEqual({ ok: false, expectedVersion: 2, actualVersion: 0 });
  });

  it.each([
    ['UnavailableError (gRPC 14)', () => fromGrpc(14, 'UNAVAILABLE: No connection established')],
    ['UnavailableError (constructor)', () => new UnavailableError()],
    ['DeadlineExceededError (gRPC 4)', () => fromGrpc(4, 'DEADLINE_EXCEEDED: Deadline exceeded')],
    ['DeadlineExceededError (constructor)', () => new DeadlineExceededError()],
    ['TimeoutError (gRPC 10)', () => fromGrpc(10, 'ABORTED: timeout')],
    [
      'NotLeaderError',
      () =>
        fromGrpc(9, 'Leader info available', {
          exception: 'not-leader',
          'leader-endpoint-host': 'node2',
          'leader-endpoint-port': '2113',
        }),
    ],
    ['a failed discovery', () => new Error('Failed to discover after 10 attempts.')],
    ['a refused socket', () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:2113'), { code: 'ECONNREFUSED' })],
  ])('throws %s as StoreError(unavailable) naming the stream', (_, make) => {
    const error = catchError(() => mapAppendError(make(), 1, 'otpdevice-9'));
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe('unavailable');
    expect((error as StoreError).message).toContain('otpdevice-9');
    expect((error as StoreError).message).toMatch(/running and reachable/);
  });

  it('throws other client errors as StoreErrors that say what to check', () => {
    const denied = catchError(() => mapAppendError(new AccessDeniedError(), 1, 's')) as StoreError;
    expect(denied.code).toBe('invalid');
    expect(denied.message).toMatch(/credentials/);
    const deleted = catchError(() => mapAppendError(StreamDeletedError.fromStreamName('otpdevice-x'), 1, 'otpdevice-x')) as StoreError;
    expect(deleted.code).toBe('invalid');
    expect(deleted.message).toMatch(/"otpdevice-x" was deleted/);
    const big = catchError(() => mapAppendError(MaxAppendSizeExceededError.fromMaxAppendSize(1048576), 1, 's')) as StoreError;
    expect(big.message).toMatch(/1048576 bytes/);
    const unknown = catchError(() => mapAppendError(new UnknownError(undefined, 'server exploded'), 1, 's')) as StoreError;
    expect(unknown.code).toBe('unavailable');
    expect(unknown.message).toMatch(/server exploded/);
    const bug = new TypeError('x is not a function');
    const wrapped = catchError(() => mapAppendError(bug, 1, 's')) as StoreError;
    expect(wrapped).toBeInstanceOf(StoreError);
    expect(wrapped.code).toBe('invalid');
    expect(wrapped.message).toMatch(/unexpected TypeError \(x is not a function\)/);
    expect(wrapped.cause).toBe(bug);
  });

  it('passes StoreErrors through unchanged', () => {
    const original = new StoreError('corrupt', 'bad');
    expect(catchError(() => mapAppendError(original, 1))).toBe(original);
  });
});

describe('error classification', () => {
  it('knows which errors are transient', () => {
    expect(isTransientError(new UnavailableError())).toBe(true);
    expect(isTransientError(fromGrpc(14, 'UNAVAILABLE'))).toBe(true);
    expect(isTransientError(new DeadlineExceededError())).toBe(true);
    expect(isTransientError(fromGrpc(9, 'x', { exception: 'not-leader', 'leader-endpoint-host': 'h', 'leader-endpoint-port': '1' }))).toBe(true);
    expect(isTransientError(new Error('Failed to discover after 3 attempts.'))).toBe(true);
    expect(isTransientError(new StoreError('unavailable', 'x'))).toBe(true);
    expect(isTransientError(new AccessDeniedError())).toBe(false);
    expect(isTransientError(new UnknownError())).toBe(false);
    expect(isTransientError(new WrongExpectedVersionError(undefined, { streamName: 's', expected: 0n, current: NO_STREAM }))).toBe(false);
    expect(isTransientError(new StoreError('corrupt', 'x'))).toBe(false);
    expect(isTransientError(new TypeError('bug'))).toBe(false);
  });

  it('recognises connection errors the client does not wrap', () => {
    expect(isConnectionError(Object.assign(new Error('getaddrinfo ENOTFOUND esdb'), { code: 'ENOTFOUND' }))).toBe(true);
    expect(isConnectionError(new Error('Failed to discover after 10 attempts.'))).toBe(true);
    expect(isConnectionError(new Error('something else'))).toBe(false);
    expect(isConnectionError('ECONNREFUSED')).toBe(false);
  });

  it('recognises a missing stream as ReadStream reports it (StreamNotFoundError during iteration)', () => {
    expect(isStreamNotFound(new StreamNotFoundError(undefined, 'otpdevice-1'))).toBe(true);
    expect(isStreamNotFound(fromGrpc(5, 'not found', { exception: 'stream-not-found', 'stream-name': 's' }))).toBe(true);
    expect(isStreamNotFound(new UnavailableError())).toBe(false);
  });

  it('toStoreError names the action', () => {
    const error = toStoreError(new UnavailableError(undefined, '14 UNAVAILABLE: down'), 'read stream "otpuser-1"');
    expect(error.code).toBe('unavailable');
    expect(error.message).toContain('could not read stream "otpuser-1"');
    expect(error.message).toContain('14 UNAVAILABLE: down');
  });
});

describe('positions', () => {
  it('zero-pads commit positions to 20 digits', () => {
    expect(POSITION_DIGITS).toBe(20);
    expect(formatPosition(0n)).toBe('00000000000000000000');
    expect(formatPosition(123n)).toBe('00000000000000000123');
    expect(formatPosition(U64_MAX)).toBe('18446744073709551615');
  });

  it('refuses values that are no log position', () => {
    for (const p of [-1n, U64_MAX + 1n]) expect(catchError(() => formatPosition(p))).toBeInstanceOf(StoreError);
  });

  it('sorts as strings exactly like the commit positions sort as numbers', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: U64_MAX }), fc.bigInt({ min: 0n, max: U64_MAX }), (a, b) => {
        const byString = formatPosition(a) < formatPosition(b);
        return byString === a < b;
      }),
    );
  });

  it('parses back to { commit, prepare = commit }, and null/absent to START', () => {
    expect(parsePosition(null)).toBe(START);
    expect(parsePosition(undefined)).toBe(START);
    expect(parsePosition('')).toBe(START);
    expect(parsePosition('00000000000000000123')).toEqual({ commit: 123n, prepare: 123n });
    expect(positionCommit(null)).toBeNull();
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: U64_MAX }), (c) => {
        const p = parsePosition(formatPosition(c));
        return p !== START && p.commit === c && p.prepare === c;
      }),
    );
  });

  it.each(['abc', '-1', '1.5', ' 12', '1'.repeat(21), '99999999999999999999'])('refuses "%s"', (p) => {
    const error = catchError(() => parsePosition(p));
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe('invalid');
  });

  it("takes an event's own position, else the read's commit position", () => {
    expect(eventCommitPosition(resolvedEvent({ position: { commit: 5n, prepare: 5n }, commitPosition: 9n }))).toBe(5n);
    expect(eventCommitPosition(resolvedEvent({ position: undefined, commitPosition: 9n }))).toBe(9n);
    // Old servers send 2^64 − 1 for "no position".
    expect(eventCommitPosition(resolvedEvent({ position: { commit: U64_MAX, prepare: U64_MAX }, commitPosition: 7n }))).toBe(7n);
    expect(eventCommitPosition(resolvedEvent({ position: undefined, commitPosition: undefined }))).toBeNull();
  });
});

describe('toJsonEvent', () => {
  it('keeps the event id (idempotent retries), type, data and metadata, as JSON content', () => {
    const e = newEvent(7, { name: 'phone', at: 5 }, { commandId: 'c1', actor: 'u1' });
    const json = toJsonEvent(e);
    expect(json).toEqual({
      id: uuid(7),
      contentType: 'application/json',
      type: 'DeviceRenamed',
      data: { name: 'phone', at: 5 },
      metadata: { commandId: 'c1', actor: 'u1' },
    });
    // Fresh copies: a caller mutating its objects after the call changes nothing sent.
    expect(json.data).not.toBe(e.data);
    expect(json.metadata).not.toBe(e.metadata);
  });

  it('sends what JSON keeps (a Date becomes its ISO string), as the server would store it', () => {
    const json = toJsonEvent(newEvent(1, { at: new Date(0), gone: undefined }));
    expect(json.data).toEqual({ at: '1970-01-01T00:00:00.000Z' });
  });

  it.each([
    ['a non-UUID id', { ...newEvent(1), eventId: 'cmd-1/0' }, /not a lower-case UUID/],
    ['an upper-case UUID', { ...newEvent(1), eventId: 'ABCDEF00-0000-4000-8000-000000000001' }, /lower-case UUID/],
    ['an empty type', { ...newEvent(1), type: '' }, /type must be a non-empty string/],
    ['string data', newEvent(1, 'hello'), /data must be a JSON object/],
    ['array data', newEvent(1, [1, 2]), /data must be a JSON object/],
    ['null metadata', newEvent(1, { n: 1 }, null), /metadata must be a JSON object/],
  ])('refuses %s with StoreError(invalid)', (_, event, message) => {
    const error = catchError(() => toJsonEvent(event));
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe('invalid');
    expect((error as StoreError).message).toMatch(message);
  });

  it('refuses repeated ids within one append', () => {
    expect(catchError(() => toJsonEvents([newEvent(1), newEvent(1)]))).toBeInstanceOf(StoreError);
  });

  it('refuses data JSON cannot hold without quoting the data', () => {
    const cyclic: Record<string, unknown> = { secret: SECRET };
    cyclic.self = cyclic;
    for (const data of [{ secret: SECRET, n: 1n }, cyclic]) {
      const error = catchError(() => toJsonEvent(newEvent(1, data))) as StoreError;
      expect(error).toBeInstanceOf(StoreError);
      expect(error.code).toBe('invalid');
      expect(error.message).not.toContain(SECRET);
    }
  });
});

describe('fromResolvedEvent', () => {
  it('maps a JSON event: version = revision + 1, padded commit position, created → ms', () => {
    const recorded = fromResolvedEvent(resolvedEvent({ revision: 0n, position: { commit: 1234n, prepare: 1234n } }));
    expect(recorded).toEqual({
      streamName: 'otpdevice-1',
      version: 1,
      position: '00000000000000001234',
      recordedAt: 1_700_000_000_123,
      eventId: uuid(1),
      type: 'DeviceRenamed',
      data: { name: 'phone' },
      metadata: { actor: 'u1' },
    } satisfies RecordedEvent);
    expect(fromResolvedEvent(resolvedEvent({ revision: 41n })).version).toBe(42);
    expect(fromResolvedEvent(resolvedEvent({ revision: BigInt(MAX) - 1n })).version).toBe(MAX);
  });

  it('falls back on the read commit position when the record has none', () => {
    const recorded = fromResolvedEvent(resolvedEvent({ position: undefined, commitPosition: 77n }));
    expect(recorded.position).toBe('00000000000000000077');
  });

  it('refuses an event without any log position, saying which server is needed', () => {
    const error = catchError(() => fromResolvedEvent(resolvedEvent({ position: undefined, commitPosition: undefined })));
    expect((error as StoreError).message).toMatch(/22\.6/);
  });

  it('round-trips toJsonEvent through JSON like the client and server do', () => {
    const e = newEvent(3, { name: 'phone', nested: { a: [1, 2] } }, { commandId: 'c', ip: '127.0.0.1' });
    const sent = toJsonEvent(e);
    const stored = resolvedEvent({
      id: sent.id,
      type: sent.type,
      data: JSON.parse(JSON.stringify(sent.data)),
      metadata: JSON.parse(JSON.stringify(sent.metadata)),
    });
    const back = fromResolvedEvent(stored);
    expect({ eventId: back.eventId, type: back.type, data: back.data, metadata: back.metadata }).toEqual(e);
  });

  const corruptCases: Array<[string, Parameters<typeof resolvedEvent>[0], RegExp]> = [
    ['binary data', { isJson: false, data: new TextEncoder().encode(`{"code":"${SECRET}"}`) }, /data is binary/],
    // The client hands back the raw text when JSON.parse fails.
    ['unparseable JSON data', { data: `{"code":"${SECRET}"` }, /data is not valid JSON/],
    ['array data', { data: [SECRET] }, /data is not a JSON object/],
    ['null data', { data: null }, /data is not a JSON object/],
    ['binary (unparseable) metadata', { metadata: new TextEncoder().encode(SECRET) }, /metadata is not valid JSON/],
    ['missing metadata', { metadata: undefined }, /has no metadata/],
    ['string metadata', { metadata: SECRET }, /metadata is not a JSON object/],
  ];
  it.each(corruptCases)('reports %s as StoreError(corrupt) naming stream and revision, not the data', (_, over, message) => {
    const error = catchError(() => fromResolvedEvent(resolvedEvent({ streamId: 'otpdevice-abc', revision: 4n, ...over })));
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe('corrupt');
    expect((error as StoreError).message).toMatch(message);
    expect((error as StoreError).message).toContain('stream "otpdevice-abc" revision 4 (version 5');
    expect((error as StoreError).message).not.toContain(SECRET);
  });

  it('reports a link without its event as corrupt', () => {
    const error = catchError(() => fromResolvedEvent({ commitPosition: 10n } as ResolvedEvent));
    expect((error as StoreError).code).toBe('corrupt');
  });
});

describe('the global log filter', () => {
  it('exports the otpdevice-/otpuser- prefixes', () => {
    expect(STREAM_PREFIXES).toEqual(['otpdevice-', 'otpuser-']);
  });

  it('keeps only prefixed, non-system streams and non-$ events', () => {
    expect(isLogStream('otpdevice-1')).toBe(true);
    expect(isLogStream('otpuser-1')).toBe(true);
    expect(isLogStream('otpdevices')).toBe(false);
    expect(isLogStream('other-1')).toBe(false);
    expect(isLogStream('$ce-otpdevice')).toBe(false);
    expect(isLogStream('$$otpdevice-1')).toBe(false);
    expect(isLogEvent(resolvedEvent({ streamId: 'otpuser-1' }))).toBe(true);
    expect(isLogEvent(resolvedEvent({ streamId: 'otpuser-1', type: '$streamDeleted' }))).toBe(false);
    expect(isLogEvent({ commitPosition: 1n } as ResolvedEvent)).toBe(false);
  });
});

// ---- part 2: store flows over a scripted fake client -----------------------------------------

type Expected = typeof NO_STREAM | bigint | 'any' | 'stream_exists';

class FakeSubscription extends Readable {
  unsubscribed = false;
  live = false;
  constructor(
    readonly from: unknown,
    readonly prefixes: readonly string[],
    readonly filterOn: unknown,
  ) {
    super({ objectMode: true, read() {} });
  }
  async unsubscribe() {
    this.unsubscribed = true;
  }
}

/**
 * A scripted stand-in for EventStoreDBClient 6.x: streams with 0-based revisions, a `$all`
 * log with commit = prepare positions, WrongExpectedVersionError built like the client builds
 * it, StreamNotFoundError raised during iteration, readAll inclusive of its start, catch-up
 * subscriptions exclusive of theirs that replay, say caughtUp, then go live.
 */
class FakeClient {
  readonly streams = new Map<string, ResolvedEvent[]>();
  readonly log: ResolvedEvent[] = [];
  readonly subscriptions: FakeSubscription[] = [];
  readonly appendCalls: Array<{ streamName: string; expectedRevision: Expected; ids: string[] }> = [];
  readonly readAllCalls: unknown[] = [];
  private commit = 1000n;
  /** Whether the server acknowledges a retried append itself (true) or answers wrong-expected-version. */
  serverIdempotency = true;
  /** Thrown by the next append. */
  appendFailure: unknown = null;
  /** When a subscription replays and says caughtUp: before the stream flows (buffered) or after. */
  caughtUpTiming: 'microtask' | 'immediate' = 'immediate';
  /** Stream reads that still miss the newest event (a read index behind the writer). */
  laggingReads = 0;
  /** When set, every new subscription fails with it instead of replaying. */
  subscribeFailure: unknown = null;
  disposed = false;

  private record(streamName: string, revision: number, e: { id: string; type: string; data: unknown; metadata: unknown }, isJson = true) {
    const commit = this.commit;
    this.commit += 100n;
    const resolved = resolvedEvent({
      streamId: streamName,
      revision: BigInt(revision),
      id: e.id,
      type: e.type,
      data: e.data,
      metadata: e.metadata,
      isJson,
      created: new Date(1_700_000_000_000 + Number(commit)),
      position: { commit, prepare: commit },
      commitPosition: commit,
    });
    const stream = this.streams.get(streamName) ?? [];
    stream.push(resolved);
    this.streams.set(streamName, stream);
    this.log.push(resolved);
    for (const sub of this.subscriptions)
      if (sub.live && !sub.unsubscribed && sub.prefixes.some((p) => streamName.startsWith(p))) sub.push(resolved);
    return resolved;
  }

  /** Writes an event the adapter did not write (system events, other applications, bad data). */
  foreign(streamName: string, type = 'Other', data: unknown = { x: 1 }, isJson = true) {
    const revision = this.streams.get(streamName)?.length ?? 0;
    return this.record(streamName, revision, { id: uuid(900_000 + this.log.length), type, data, metadata: {} }, isJson);
  }

  appendToStream = async (
    streamName: string,
    events: Array<{ id: string; type: string; data: unknown; metadata: unknown }>,
    { expectedRevision }: { expectedRevision: Expected },
  ) => {
    this.appendCalls.push({ streamName, expectedRevision, ids: events.map((e) => e.id) });
    if (this.appendFailure) {
      const error = this.appendFailure;
      this.appendFailure = null;
      throw error;
    }
    const stream = this.streams.get(streamName) ?? [];
    const current: typeof NO_STREAM | bigint = stream.length === 0 ? NO_STREAM : BigInt(stream.length - 1);
    const start = expectedRevision === NO_STREAM ? 0 : Number(expectedRevision) + 1;
    const retried =
      stream.length >= start + events.length && events.every((e, i) => stream[start + i]?.event?.id === e.id);
    if (this.serverIdempotency && retried)
      return { success: true, nextExpectedRevision: BigInt(start + events.length - 1), position: undefined };
    if (expectedRevision !== current)
      throw new WrongExpectedVersionError(undefined, { streamName, expected: expectedRevision, current });
    // The JSON trip the real client makes (JSON.stringify on send, JSON.parse on read).
    const base = stream.length;
    const recorded = events.map((e, i) =>
      this.record(streamName, base + i, {
        ...e,
        data: JSON.parse(JSON.stringify(e.data)),
        metadata: JSON.parse(JSON.stringify(e.metadata)),
      }),
    );
    // Pessimistic: report the first event's position; the adapter must not take it for the last's.
    return { success: true, nextExpectedRevision: BigInt(base + events.length - 1), position: recorded[0]!.event!.position };
  };

  readStream = (
    streamName: string,
    o: { fromRevision?: bigint | typeof START | typeof END; direction?: string; maxCount?: number | bigint } = {},
  ) => {
    const stream = this.streams.get(streamName);
    if (!stream) {
      // Like ReadStream: the stream is destroyed with StreamNotFoundError while iterating.
      const r = new Readable({
        objectMode: true,
        read() {
          this.destroy(new StreamNotFoundError(undefined, streamName));
        },
      });
      return Object.assign(r, { cancel: async () => undefined });
    }
    let items: ResolvedEvent[];
    const visible = this.laggingReads > 0 ? stream.slice(0, -1) : stream;
    if (this.laggingReads > 0) this.laggingReads--;
    if (o.direction === BACKWARDS) items = [...visible].reverse();
    else items = visible.slice(typeof o.fromRevision === 'bigint' ? Number(o.fromRevision) : 0);
    items = items.slice(0, Number(o.maxCount ?? MAX));
    return Object.assign(Readable.from(items), { cancel: async () => undefined });
  };

  readAll = (o: { fromPosition?: { commit: bigint } | typeof START; maxCount?: number | bigint } = {}) => {
    this.readAllCalls.push(o);
    const from = o.fromPosition === undefined || o.fromPosition === START ? -1n : o.fromPosition.commit;
    const items = this.log.filter((r) => r.commitPosition! >= from).slice(0, Number(o.maxCount ?? MAX));
    return Object.assign(Readable.from(items), { cancel: async () => undefined });
  };

  subscribeToAll = (o: { fromPosition: { commit: bigint } | typeof START; filter: { prefixes: string[]; filterOn: unknown } }) => {
    const sub = new FakeSubscription(o.fromPosition, o.filter.prefixes, o.filter.filterOn);
    this.subscriptions.push(sub);
    const from = o.fromPosition === START ? -1n : o.fromPosition.commit;
    const replay = () => {
      if (sub.unsubscribed) return;
      if (this.subscribeFailure) {
        sub.emit('error', this.subscribeFailure);
        return;
      }
      for (const r of this.log)
        if (r.commitPosition! > from && sub.prefixes.some((p) => r.event!.streamId.startsWith(p))) sub.push(r);
      sub.live = true;
      sub.emit('caughtUp');
    };
    if (this.caughtUpTiming === 'microtask') queueMicrotask(replay);
    else setImmediate(replay);
    return sub;
  };

  dispose = async () => {
    this.disposed = true;
  };

  /** Breaks every live subscription with an error, as the client emits it. */
  breakSubscriptions(error: unknown) {
    for (const sub of this.subscriptions) if (!sub.unsubscribed) sub.emit('error', error);
  }
}

const stores: EventStore[] = [];
const storeOver = (fake: FakeClient, tuning: Parameters<typeof createEventStoreDbStore>[0] extends infer O ? Partial<O> : never = {}) => {
  const store = createEventStoreDbStore({
    client: fake as unknown as EventStoreDBClient,
    resubscribe: { minDelayMs: 1, maxDelayMs: 5 },
    ...tuning,
  } as Parameters<typeof createEventStoreDbStore>[0]);
  stores.push(store);
  return store;
};
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

const waitFor = async (check: () => boolean, what: string) => {
  for (let i = 0; i < 400; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
};

describe('appendToStream over the client', () => {
  it('sends NO_STREAM for version 0, then exact revisions, and keeps event ids', async () => {
    const fake = new FakeClient();
    const store = storeOver(fake);
    const first = await store.appendToStream('otpdevice-1', [newEvent(1)], 0);
    expect(first).toEqual({ ok: true, version: 1, position: '00000000000000001000' });
    const second = await store.appendToStream('otpdevice-1', [newEvent(2), newEvent(3)], 1);
    expect(fake.appendCalls.map((c) => c.expectedRevision)).toEqual([NO_STREAM, 0n]);
    expect(fake.appendCalls[1]!.ids).toEqual([uuid(2), uuid(3)]);
    // The position is the last event's, even though the fake reported the first one's.
    expect(second).toEqual({ ok: true, version: 3, position: '00000000000000001200' });
    expect((await store.readStream('otpdevice-1')).events.map((e) => e.version)).toEqual([1, 2, 3]);
  });

  it("reports a conflict, not an error, when the stream is missing ('no_stream') or moved on", async () => {
    const fake = new FakeClient();
    const store = storeOver(fake);
    expect(await store.appendToStream('otpdevice-1', [newEvent(1)], 2)).toEqual({
      ok: false,
      expectedVersion: 2,
      actualVersion: 0,
    });
    await store.appendToStream('otpdevice-1', [newEvent(1)], 0);
    expect(await store.appendToStream('otpdevice-1', [newEvent(2)], 0)).toEqual({
      ok: false,
      expectedVersion: 0,
      actualVersion: 1,
    });
    expect((await store.readStream('otpdevice-1')).version).toBe(1);
  });

  it('succeeds without duplicating when the server acknowledges a retried append', async () => {
    const fake = new FakeClient();
    const store = storeOver(fake);
    const original = await store.appendToStream('otpdevice-1', [newEvent(1), newEvent(2)], 0);
    await store.appendToStream('otpdevice-1', [newEvent(3)], 2);
    const retry = await store.appendToStream('otpdevice-1', [newEvent(1), newEvent(2)], 0);
    expect(retry).toEqual(original);
    expect((await store.readStream('otpdevice-1')).version).toBe(3);
  });

  it('succeeds without duplicating when the server answers a retry with wrong-expected-version', async () => {
    const fake = new FakeClient();
    fake.serverIdempotency = false;
    const store = storeOver(fake);
    const original = await store.appendToStream('otpdevice-1', [newEvent(1), newEvent(2)], 0);
    await store.appendToStream('otpdevice-1', [newEvent(3)], 2);
    expect(await store.appendToStream('otpdevice-1', [newEvent(1), newEvent(2)], 0)).toEqual(original);
    expect(await store.appendToStream('otpdevice-1', [newEvent(2)], 1)).toEqual({
      ok: true,
      version: 2,
      position: original.ok ? original.position : '',
    });
    // A partial match is a conflict.
    expect(await store.appendToStream('otpdevice-1', [newEvent(1), newEvent(9)], 0)).toEqual({
      ok: false,
      expectedVersion: 0,
      actualVersion: 3,
    });
    expect((await store.readStream('otpdevice-1')).version).toBe(3);
  });

  it('waits for a lagging read before calling a retried append a conflict', async () => {
    const fake = new FakeClient();
    fake.serverIdempotency = false;
    const store = storeOver(fake);
    const original = await store.appendToStream('otpdevice-1', [newEvent(1), newEvent(2)], 0);
    fake.laggingReads = 2;
    expect(await store.appendToStream('otpdevice-1', [newEvent(1), newEvent(2)], 0)).toEqual(original);
    expect(fake.laggingReads).toBe(0);
  });

  it('checks the version of an empty append without writing', async () => {
    const fake = new FakeClient();
    const store = storeOver(fake);
    expect(await store.appendToStream('otpdevice-1', [], 0)).toEqual({ ok: true, version: 0, position: formatPosition(0n) });
    await store.appendToStream('otpdevice-1', [newEvent(1)], 0);
    expect(await store.appendToStream('otpdevice-1', [], 1)).toEqual({ ok: true, version: 1, position: '00000000000000001000' });
    expect(await store.appendToStream('otpdevice-1', [], 0)).toEqual({ ok: false, expectedVersion: 0, actualVersion: 1 });
    expect(fake.appendCalls).toHaveLength(1);
  });

  it('rejects with StoreError(unavailable) when the server is unreachable', async () => {
    const fake = new FakeClient();
    fake.appendFailure = fromGrpc(14, 'UNAVAILABLE: No connection established');
    const store = storeOver(fake);
    await expect(store.appendToStream('otpdevice-1', [newEvent(1)], 0)).rejects.toMatchObject({
      name: 'StoreError',
      code: 'unavailable',
    });
  });

  it('refuses bad input before calling the server', async () => {
    const fake = new FakeClient();
    const store = storeOver(fake);
    await expect(store.appendToStream('otpdevice-1', [newEvent(1)], -1)).rejects.toMatchObject({ code: 'invalid' });
    await expect(store.appendToStream('otpdevice-1', [{ ...newEvent(1), eventId: 'x' }], 0)).rejects.toMatchObject({
      code: 'invalid',
    });
    expect(fake.appendCalls).toHaveLength(0);
  });
});

describe('readStream over the client', () => {
  it('returns version 0 and no events for a missing stream (StreamNotFoundError while iterating)', async () => {
    const store = storeOver(new FakeClient());
    expect(await store.readStream('otpdevice-none')).toEqual({ version: 0, events: [] });
  });

  it('returns the events with versions from 1 and JSON data', async () => {
    const store = storeOver(new FakeClient());
    await store.appendToStream('otpdevice-1', [newEvent(1, { a: 1 }), newEvent(2, { b: 2 })], 0);
    const read = await store.readStream('otpdevice-1');
    expect(read.version).toBe(2);
    expect(read.events.map((e) => [e.version, e.eventId, e.data])).toEqual([
      [1, uuid(1), { a: 1 }],
      [2, uuid(2), { b: 2 }],
    ]);
  });

  it('reports a stored event that is not JSON as corrupt', async () => {
    const fake = new FakeClient();
    const store = storeOver(fake);
    fake.foreign('otpdevice-1', 'DeviceRenamed', new Uint8Array([1, 2, 3]), false);
    await expect(store.readStream('otpdevice-1')).rejects.toMatchObject({ code: 'corrupt' });
  });
});

describe('readAll over the client', () => {
  it('returns only otpdevice-/otpuser- events, in order, after a position (exclusive), paging through $all', async () => {
    const fake = new FakeClient();
    const store = storeOver(fake, { readPageSize: 2 });
    fake.foreign('$stats-127.0.0.1:2113', '$statsCollected');
    await store.appendToStream('otpdevice-1', [newEvent(1)], 0);
    fake.foreign('orders-1');
    await store.appendToStream('otpuser-1', [newEvent(2), newEvent(3)], 0);
    fake.foreign('otpdevice-1', '$streamDeleted');
    await store.appendToStream('otpdevice-2', [newEvent(4)], 0);

    const all = await store.readAll();
    expect(all.events.map((e) => e.eventId)).toEqual([uuid(1), uuid(2), uuid(3), uuid(4)]);
    expect(all.last).toBe(all.events[3]!.position);
    expect(fake.readAllCalls.length).toBeGreaterThan(2);

    const after = await store.readAll({ after: all.events[1]!.position });
    expect(after.events.map((e) => e.eventId)).toEqual([uuid(3), uuid(4)]);

    const limited = await store.readAll({ after: all.events[0]!.position, limit: 2 });
    expect(limited.events.map((e) => e.eventId)).toEqual([uuid(2), uuid(3)]);
    expect(limited.last).toBe(all.events[2]!.position);

    const none = await store.readAll({ after: all.last });
    expect(none).toEqual({ events: [], last: all.last });
    expect(await store.readAll({ limit: 0 })).toEqual({ events: [], last: null });
  });

  it('refuses a position of another store', async () => {
    const store = storeOver(new FakeClient());
    await expect(store.readAll({ after: 'pg:123:45' })).rejects.toMatchObject({ code: 'invalid' });
  });
});

describe('subscribe over the client', () => {
  const collect = (store: EventStore, after: string | null = null) => {
    const seen: RecordedEvent[] = [];
    const log: string[] = [];
    const errors: unknown[] = [];
    let caughtUpAt: string | null | undefined;
    const sub = store.subscribe({
      after,
      onEvents: async (events) => {
        seen.push(...events);
        log.push(...events.map((e) => `event ${e.eventId}`));
      },
      onCaughtUp: (last) => {
        caughtUpAt = last;
        log.push('caught up');
      },
      onError: (error) => errors.push(error),
    });
    return { sub, seen, log, errors, caughtUp: () => caughtUpAt };
  };

  it.each(['immediate', 'microtask'] as const)(
    'delivers existing then live events in order, and onCaughtUp after the existing ones (%s)',
    async (timing) => {
      const fake = new FakeClient();
      fake.caughtUpTiming = timing;
      const store = storeOver(fake);
      await store.appendToStream('otpdevice-1', [newEvent(1), newEvent(2)], 0);
      fake.foreign('orders-1');
      await store.appendToStream('otpuser-1', [newEvent(3)], 0);
      const c = collect(store);
      await waitFor(() => c.log.includes('caught up'), 'caught up');
      await store.appendToStream('otpdevice-1', [newEvent(4)], 2);
      await waitFor(() => c.seen.length === 4, 'the live event');
      expect(c.log).toEqual([`event ${uuid(1)}`, `event ${uuid(2)}`, `event ${uuid(3)}`, 'caught up', `event ${uuid(4)}`]);
      expect(c.caughtUp()).toBe(c.seen[2]!.position);
      const sub = fake.subscriptions[0]!;
      expect(sub.from).toBe(START);
      expect(sub.prefixes).toEqual(['otpdevice-', 'otpuser-']);
      expect(sub.filterOn).toBe('streamName');
      await c.sub.close();
      expect(sub.unsubscribed).toBe(true);
      expect(c.errors).toEqual([]);
    },
  );

  it('resumes after a stored position (exclusive) and reports caught up with it on an empty tail', async () => {
    const fake = new FakeClient();
    const store = storeOver(fake);
    await store.appendToStream('otpdevice-1', [newEvent(1), newEvent(2), newEvent(3)], 0);
    const { events } = await store.readAll();
    const c = collect(store, events[1]!.position);
    await waitFor(() => c.log.includes('caught up'), 'caught up');
    expect(c.seen.map((e) => e.eventId)).toEqual([uuid(3)]);
    expect(fake.subscriptions[0]!.from).toEqual({ commit: 1100n, prepare: 1100n });

    const tail = collect(store, events[2]!.position);
    await waitFor(() => tail.log.includes('caught up'), 'caught up at the end');
    expect(tail.seen).toEqual([]);
    expect(tail.caughtUp()).toBe(events[2]!.position);
  });

  it('resubscribes from the last delivered position after a transient error, without duplicates', async () => {
    const fake = new FakeClient();
    const store = storeOver(fake);
    await store.appendToStream('otpdevice-1', [newEvent(1), newEvent(2)], 0);
    const c = collect(store);
    await waitFor(() => c.log.includes('caught up'), 'caught up');
    fake.breakSubscriptions(fromGrpc(14, 'UNAVAILABLE: Connection dropped'));
    await store.appendToStream('otpdevice-1', [newEvent(3)], 2);
    await waitFor(() => c.seen.length === 3, 'the event written during the outage');
    expect(fake.subscriptions).toHaveLength(2);
    expect(fake.subscriptions[0]!.unsubscribed).toBe(true);
    expect(fake.subscriptions[1]!.from).toEqual({ commit: 1100n, prepare: 1100n });
    // The server re-sending an event already delivered changes nothing.
    fake.subscriptions[1]!.push(fake.log[1]!);
    await store.appendToStream('otpdevice-1', [newEvent(4)], 3);
    await waitFor(() => c.seen.length === 4, 'the next live event');
    expect(c.seen.map((e) => e.version)).toEqual([1, 2, 3, 4]);
    expect(c.log.filter((l) => l === 'caught up')).toHaveLength(1);
    expect(c.errors).toEqual([]);
  });

  it('resubscribes when the server ends the subscription', async () => {
    const fake = new FakeClient();
    const store = storeOver(fake);
    const c = collect(store);
    await waitFor(() => c.log.includes('caught up'), 'caught up');
    fake.subscriptions[0]!.push(null);
    await waitFor(() => fake.subscriptions.length === 2, 'a new subscription');
    await store.appendToStream('otpuser-1', [newEvent(1)], 0);
    await waitFor(() => c.seen.length === 1, 'the event');
    expect(c.errors).toEqual([]);
  });

  it('gives up with onError on a non-transient error', async () => {
    const fake = new FakeClient();
    const store = storeOver(fake);
    const c = collect(store);
    await waitFor(() => c.log.includes('caught up'), 'caught up');
    fake.breakSubscriptions(new AccessDeniedError());
    await waitFor(() => c.errors.length === 1, 'onError');
    expect(c.errors[0]).toMatchObject({ name: 'StoreError', code: 'invalid' });
    expect(fake.subscriptions).toHaveLength(1);
    expect(fake.subscriptions[0]!.unsubscribed).toBe(true);
  });

  it('gives up after maxAttempts consecutive failed resubscriptions', async () => {
    const fake = new FakeClient();
    const store = storeOver(fake, { resubscribe: { minDelayMs: 1, maxDelayMs: 1, maxAttempts: 2 } });
    const c = collect(store);
    await waitFor(() => c.log.includes('caught up'), 'caught up');
    fake.subscribeFailure = new UnavailableError(undefined, '14 UNAVAILABLE: still down');
    fake.breakSubscriptions(new UnavailableError());
    await waitFor(() => c.errors.length === 1, 'onError');
    // The original subscription and two failed attempts.
    expect(fake.subscriptions).toHaveLength(3);
    expect(c.errors[0]).toMatchObject({ code: 'unavailable' });
    expect((c.errors[0] as StoreError).message).toContain('still down');
  });

  it('counts failures afresh once a resubscription catches up', async () => {
    const fake = new FakeClient();
    const store = storeOver(fake, { resubscribe: { minDelayMs: 1, maxDelayMs: 1, maxAttempts: 1 } });
    const c = collect(store);
    await waitFor(() => c.log.includes('caught up'), 'caught up');
    for (let i = 0; i < 3; i++) {
      fake.breakSubscriptions(new UnavailableError());
      await waitFor(() => fake.subscriptions.length === i + 2 && fake.subscriptions[i + 1]!.live, `resubscription ${i + 1}`);
    }
    expect(c.errors).toEqual([]);
  });

  it("stops with the handler's error when a handler throws", async () => {
    const fake = new FakeClient();
    const store = storeOver(fake);
    await store.appendToStream('otpdevice-1', [newEvent(1)], 0);
    const boom = new Error('projection failed');
    const errors: unknown[] = [];
    store.subscribe({ onEvents: async () => Promise.reject(boom), onError: (e) => errors.push(e) });
    await waitFor(() => errors.length === 1, 'onError');
    expect(errors[0]).toBe(boom);
    expect(fake.subscriptions[0]!.unsubscribed).toBe(true);
  });

  it('stops with StoreError(corrupt) on an event that is not JSON, never skipping it', async () => {
    const fake = new FakeClient();
    const store = storeOver(fake);
    fake.foreign('otpdevice-1', 'DeviceRenamed', new Uint8Array([1]), false);
    const c = collect(store);
    await waitFor(() => c.errors.length === 1, 'onError');
    expect(c.errors[0]).toMatchObject({ code: 'corrupt' });
    expect(c.seen).toEqual([]);
  });

  it('close() waits for the running handler and nothing is delivered after it', async () => {
    const fake = new FakeClient();
    const store = storeOver(fake);
    await store.appendToStream('otpdevice-1', [newEvent(1)], 0);
    let release!: () => void;
    let calls = 0;
    let finished = false;
    const sub = store.subscribe({
      onEvents: async () => {
        calls++;
        await new Promise<void>((r) => (release = r));
        finished = true;
      },
    });
    await waitFor(() => calls === 1, 'the handler');
    const closing = sub.close();
    await store.appendToStream('otpdevice-1', [newEvent(2)], 1);
    release();
    await closing;
    expect(finished).toBe(true);
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toBe(1);
  });

  it('closing the store ends active subscriptions with StoreError(closed) and leaves a passed-in client open', async () => {
    const fake = new FakeClient();
    const store = storeOver(fake);
    const c = collect(store);
    await waitFor(() => c.log.includes('caught up'), 'caught up');
    await store.close();
    expect(c.errors).toHaveLength(1);
    expect(c.errors[0]).toMatchObject({ code: 'closed' });
    expect(fake.disposed).toBe(false);
    await expect(store.readStream('otpdevice-1')).rejects.toMatchObject({ code: 'closed' });
    await expect(store.appendToStream('otpdevice-1', [newEvent(1)], 0)).rejects.toMatchObject({ code: 'closed' });
    await expect(store.readAll()).rejects.toMatchObject({ code: 'closed' });
  });
});

describe('createEventStoreDbStore', () => {
  it('creates and disposes its own client from a connection string, without a server', async () => {
    const store = createEventStoreDbStore({ connectionString: 'esdb://localhost:1?tls=false' });
    await store.close();
    await store.close();
  });

  it('refuses a malformed connection string without echoing its password', () => {
    const error = catchError(() => createEventStoreDbStore({ connectionString: 'esdb://admin:hunter2@localhost:2113?tls=hunter2' }));
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe('invalid');
    expect((error as StoreError).message).toMatch(/esdb:\/\/localhost:2113\?tls=false/);
    expect((error as StoreError).message).not.toContain('hunter2');
  });

  it('refuses prefixes that would match system streams', () => {
    expect(catchError(() => createEventStoreDbStore({ client: new FakeClient() as unknown as EventStoreDBClient, streamPrefixes: ['$ce-'] }))).toBeInstanceOf(StoreError);
  });
});
