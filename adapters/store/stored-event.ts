/**
 * How the SQL stores (SQLite, PostgreSQL) turn events into rows and rows back into events.
 *
 * An event's data and metadata are stored as JSON text and must be JSON objects: every event
 * codec and the metadata codec encode to objects, so anything else is refused on the way in
 * (`StoreError('invalid')`) and reported as `StoreError('corrupt')` on the way out. A corrupt
 * row is never skipped and never deleted: the error names the stream and version so that an
 * operator can find and repair it.
 */
import { StoreError, type AppendResult, type GlobalPosition, type NewEvent, type RecordedEvent } from '../../domain/ports.ts';

/** An event ready to be written: data and metadata serialised to JSON object text. */
export interface EncodedEvent {
  readonly eventId: string;
  readonly type: string;
  readonly data: string;
  readonly metadata: string;
}

const isJsonObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const encodeObject = (value: unknown, field: 'data' | 'metadata', event: NewEvent): string => {
  const what = `event ${event.eventId} (${event.type})`;
  if (!isJsonObject(value)) throw new StoreError('invalid', `${what}: ${field} must be a JSON object`);
  try {
    return JSON.stringify(value);
  } catch (cause) {
    // A bigint or a cycle: JSON cannot represent it.
    throw new StoreError('invalid', `${what}: ${field} cannot be serialised as JSON (${(cause as Error).message})`, {
      cause,
    });
  }
};

/**
 * Checks and serialises the events of one append. Refuses empty or repeated event ids and
 * non-object payloads before anything touches the database.
 */
export const encodeEvents = (events: readonly NewEvent[]): EncodedEvent[] => {
  const seen = new Set<string>();
  return events.map((event) => {
    if (typeof event.eventId !== 'string' || event.eventId === '')
      throw new StoreError('invalid', 'every event needs a non-empty string eventId');
    if (typeof event.type !== 'string' || event.type === '')
      throw new StoreError('invalid', `event ${event.eventId}: type must be a non-empty string`);
    if (seen.has(event.eventId)) throw new StoreError('invalid', `event id ${event.eventId} appears twice in one append`);
    seen.add(event.eventId);
    return {
      eventId: event.eventId,
      type: event.type,
      data: encodeObject(event.data, 'data', event),
      metadata: encodeObject(event.metadata, 'metadata', event),
    };
  });
};

/** A row as read from a SQL store, with integers already converted to numbers. */
export interface StoredRow {
  readonly streamName: string;
  readonly version: number;
  readonly position: string;
  readonly eventId: string;
  readonly type: string;
  readonly data: string;
  readonly metadata: string;
  readonly recordedAt: number;
}

const corrupt = (row: Pick<StoredRow, 'streamName' | 'version' | 'position'>, problem: string, cause?: unknown) =>
  new StoreError(
    'corrupt',
    `stored event at stream "${row.streamName}" version ${row.version} (position ${row.position}) is corrupt: ` +
      `${problem}. The row was left untouched; repair or remove it by hand.`,
    { cause },
  );

const decodeObject = (row: StoredRow, field: 'data' | 'metadata'): Record<string, unknown> => {
  let value: unknown;
  try {
    value = JSON.parse(row[field]);
  } catch (cause) {
    throw corrupt(row, `its ${field} is not valid JSON`, cause);
  }
  if (!isJsonObject(value)) throw corrupt(row, `its ${field} is not a JSON object`);
  return value;
};

/** Turns a stored row back into an event; throws StoreError('corrupt') naming stream and version. */
export const decodeRow = (row: StoredRow): RecordedEvent => ({
  streamName: row.streamName,
  version: row.version,
  position: row.position,
  recordedAt: row.recordedAt,
  eventId: row.eventId,
  type: row.type,
  data: decodeObject(row, 'data'),
  metadata: decodeObject(row, 'metadata'),
});

/**
 * Decodes a whole stream read in version order and checks that the versions run 1, 2, 3, …
 * without a gap (a gap means rows were removed behind the store's back).
 */
export const decodeStream = (rows: readonly StoredRow[]): RecordedEvent[] =>
  rows.map((row, i) => {
    if (row.version !== i + 1) throw corrupt(row, `expected version ${i + 1} here: the stream has a gap`);
    return decodeRow(row);
  });

/**
 * Converts an integer read from a database (number, bigint or decimal string) to a number,
 * refusing anything that is not a safe integer. Keeps bigints from leaking into events.
 * `what` names the value in the error (a function: built only when there is an error).
 */
export const toSafeInteger = (value: unknown, what: string | (() => string)): number => {
  // A bigint whose Number() is a safe integer converted exactly (a larger one rounds to an
  // unsafe one): no need to convert back to compare.
  const n =
    typeof value === 'number' || typeof value === 'bigint' ? Number(value)
    : typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value)
    : Number.NaN;
  if (!Number.isSafeInteger(n))
    throw new StoreError('corrupt', `${typeof what === 'string' ? what : what()} is not a safe integer: ${String(value).slice(0, 40)}`);
  return n;
};

/** Checks an expected version given by a caller. */
export const checkExpectedVersion = (expectedVersion: number): void => {
  if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0)
    throw new StoreError('invalid', `expected version must be a whole number ≥ 0, got ${expectedVersion}`);
};

/** Checks the version a caller reads a stream after (readStreamFrom). */
export const checkAfterVersion = (afterVersion: number): void => {
  if (!Number.isSafeInteger(afterVersion) || afterVersion < 0)
    throw new StoreError('invalid', `afterVersion must be a whole number ≥ 0, got ${afterVersion}`);
};

/** Checks a readAll limit given by a caller; undefined means "no limit". */
export const checkLimit = (limit: number | undefined): void => {
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0))
    throw new StoreError('invalid', `readAll limit must be a whole number ≥ 0, got ${limit}`);
};

/**
 * The idempotency rule shared by every store: an append whose event ids already sit, in the
 * same order, right after `expectedVersion` is a retry of an append that succeeded.
 * `stored` are the stream's events from version expectedVersion + 1 on, in version order.
 */
export const isRetryOf = (
  stored: readonly { readonly eventId: string }[],
  events: readonly { readonly eventId: string }[],
): boolean => events.length > 0 && stored.length >= events.length && events.every((e, i) => stored[i]!.eventId === e.eventId);

/**
 * A successful append's result. `written` (did this call write the events, or were they
 * already stored?) is set as a non-enumerable property: it describes this call, not the
 * outcome, so a retry's result still equals the first call's (same version, same position),
 * as the port promises; the engine's cache reads it.
 */
export const appended = (version: number, position: GlobalPosition, written: boolean): AppendResult =>
  Object.defineProperty({ ok: true as const, version, position }, 'written', { value: written, enumerable: false });

/**
 * The most events a refused append carries back as its `tail`: a cache further behind than
 * this reads the stream itself, outside the write.
 */
export const MAX_CONFLICT_TAIL = 256;

/**
 * `rows` decoded, when their versions run `first`, `first` + 1, … without a gap; undefined
 * when they do not. A row that does not decode throws, as in every read.
 */
export const decodeRun = (rows: readonly StoredRow[], first: number): RecordedEvent[] | undefined => {
  const events: RecordedEvent[] = [];
  for (let i = 0; i < rows.length; i++) {
    if (rows[i]!.version !== first + i) return undefined;
    events.push(decodeRow(rows[i]!));
  }
  return events;
};

/**
 * A refused append's tail: the rows after `expectedVersion`, decoded, when they are exactly
 * versions expectedVersion+1 … actualVersion; undefined otherwise (a gap, or a row that does
 * not decode, is for the read that follows to report).
 */
const conflictTail = (rows: readonly StoredRow[], expectedVersion: number, actualVersion: number): RecordedEvent[] | undefined => {
  if (rows.length !== actualVersion - expectedVersion || rows.length > MAX_CONFLICT_TAIL) return undefined;
  try {
    return decodeRun(rows, expectedVersion + 1);
  } catch {
    return undefined;
  }
};

/**
 * What an append refused at `expectedVersion` amounts to, from the stored rows after that
 * version (in version order, read with the version check): a retry of this very append
 * (success, nothing written), or a conflict, reporting its tail when the rows are all of it.
 */
export const afterMismatch = (
  stored: readonly StoredRow[],
  events: readonly { readonly eventId: string }[],
  expectedVersion: number,
  actualVersion: number,
): AppendResult => {
  if (isRetryOf(stored, events)) {
    const lastOne = stored[events.length - 1]!;
    return appended(lastOne.version, lastOne.position, false);
  }
  const tail = conflictTail(stored, expectedVersion, actualVersion);
  return tail ? { ok: false, expectedVersion, actualVersion, tail } : { ok: false, expectedVersion, actualVersion };
};

