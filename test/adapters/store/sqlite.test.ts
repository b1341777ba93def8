/**
 * SQLite-specific behaviour that the conformance suite cannot show: durability across a
 * killed process, several processes writing one file, corrupt rows, schema versioning.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NewEvent, RecordedEvent } from '../../../domain/ports.ts';
import { SQLITE_SCHEMA_VERSION, createSqliteEventStore } from '../../../adapters/store/sqlite.ts';

const projectRoot = fileURLToPath(new URL('../../../', import.meta.url));
const writerScript = fileURLToPath(new URL('./fixtures/sqlite-writer.ts', import.meta.url));

const event = (data: Record<string, unknown> = {}): NewEvent => {
  const eventId = randomUUID();
  return { eventId, type: 'Tested', data, metadata: { eventId } };
};

/** A writer process and the lines it has printed so far. */
interface Writer {
  readonly child: ChildProcessWithoutNullStreams;
  readonly lines: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once a printed line satisfies `test`. */
  waitForLine(test: (lines: readonly string[]) => boolean, what: string, ms?: number): Promise<void>;
  stderr(): string;
}

const startWriter = (args: string[]): Writer => {
  const child = spawn(process.execPath, ['--import', 'tsx', writerScript, ...args], { cwd: projectRoot });
  const lines: string[] = [];
  let err = '';
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    for (const w of waiters) w();
  });
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      resolve({ code, signal });
      for (const w of waiters) w();
    }),
  );
  const waitForLine = (test: (lines: readonly string[]) => boolean, what: string, ms = 20_000) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`timed out waiting for ${what}; stderr: ${err}`)), ms);
      const check = () => {
        if (test(lines)) done();
        else if (child.exitCode !== null || child.signalCode !== null)
          done(new Error(`writer exited before ${what}; output: ${lines.slice(-3).join(' | ')}; stderr: ${err}`));
      };
      function done(error?: Error) {
        clearTimeout(timer);
        waiters.delete(check);
        if (error) reject(error);
        else resolve();
      }
      waiters.add(check);
      check();
    });
  return { child, lines, exited, waitForLine, stderr: () => err };
};

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'factorstream-sqlite-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('SQLite event store: durability', () => {
  it('keeps every acknowledged append, none torn, after the writer is killed with SIGKILL (3 times)', async () => {
    const path = join(dir, 'durable.db');
    const acknowledged = new Map<string, number>();
    for (let round = 0; round < 3; round++) {
      const writer = startWriter(['durability', path]);
      const target = 200 + round * 70;
      await writer.waitForLine((lines) => lines.length >= target, `${target} acknowledged appends`);
      writer.child.kill('SIGKILL');
      expect((await writer.exited).signal).toBe('SIGKILL');
      for (const line of writer.lines) {
        const [word, stream, version] = line.split(' ');
        expect(word, `writer said: ${line}`).toBe('ack');
        acknowledged.set(stream!, Math.max(acknowledged.get(stream!) ?? 0, Number(version)));
      }

      const store = createSqliteEventStore({ path });
      try {
        let total = 0;
        for (const [stream, version] of acknowledged) {
          const read = await store.readStream(stream);
          // Acknowledged means stored: at most the one unacknowledged append in flight is extra.
          expect(read.version).toBeGreaterThanOrEqual(version);
          expect(read.version - version).toBeLessThanOrEqual(3);
          // Not torn: every append was 3 events, and each batch is whole and in order.
          expect(read.version % 3).toBe(0);
          for (let i = 0; i < read.events.length; i += 3) {
            const batch = read.events.slice(i, i + 3).map((e) => e.data as { batch: number; part: number });
            expect(batch.map((d) => d.part)).toEqual([0, 1, 2]);
            expect(new Set(batch.map((d) => d.batch)).size).toBe(1);
          }
          total += read.version;
        }
        // The global log holds exactly the streams' events, each once.
        const all = (await store.readAll()).events;
        expect(all).toHaveLength(total);
        expect(new Set(all.map((e) => e.eventId)).size).toBe(total);
        // And the store still takes appends.
        const [stream, version] = [...acknowledged][0]!;
        const current = (await store.readStream(stream)).version;
        expect(current).toBeGreaterThanOrEqual(version);
        expect(await store.appendToStream(stream, [0, 1, 2].map((part) => event({ batch: -1 - round, part })), current)).toMatchObject({
          ok: true,
          version: current + 3,
        });
      } finally {
        await store.close();
      }
    }
  }, 90_000);
});

describe('SQLite event store: several processes on one file', () => {
  it('lets exactly one writer win each version, and no writer fails with SQLITE_BUSY', async () => {
    const path = join(dir, 'race.db'); // does not exist yet: the writers also race to create it
    const rounds = 150;
    const writers = Array.from({ length: 6 }, (_, i) => startWriter(['race', path, `w${i}`, String(rounds)]));
    await Promise.all(writers.map((w) => w.waitForLine((lines) => lines.includes('ready'), 'ready')));
    for (const w of writers) w.child.stdin.write('go\n');
    const exits = await Promise.all(writers.map((w) => w.exited));

    const outputs = writers.map((w) => w.lines.filter((l) => l !== 'ready'));
    for (const [i, out] of outputs.entries()) {
      expect(out.filter((l) => l.startsWith('error')), `writer ${i} errors; stderr: ${writers[i]!.stderr()}`).toEqual([]);
      expect(exits[i]).toEqual({ code: 0, signal: null });
      expect(out).toHaveLength(rounds);
    }
    const wins = new Map<number, string[]>();
    for (const line of outputs.flat()) {
      const [word, v, id] = line.split(' ');
      if (word === 'win') wins.set(Number(v), [...(wins.get(Number(v)) ?? []), id!]);
      else expect(word).toBe('lose');
    }
    expect([...wins.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: rounds }, (_, v) => v));
    for (const winners of wins.values()) expect(winners).toHaveLength(1);

    const store = createSqliteEventStore({ path });
    try {
      const read = await store.readStream('race-1');
      expect(read.version).toBe(rounds);
      // The event at version v+1 is the one its winner reported.
      expect(read.events.map((e) => e.eventId)).toEqual(read.events.map((_, v) => wins.get(v)![0]));
    } finally {
      await store.close();
    }
  }, 90_000);

  it("delivers another process's appends to a subscription, in order, without gaps", async () => {
    const path = join(dir, 'watched.db');
    const store = createSqliteEventStore({ path, pollIntervalMs: 20 });
    const received: RecordedEvent[] = [];
    const subscription = store.subscribe({
      onEvents: async (batch) => {
        received.push(...batch);
      },
    });
    const writer = startWriter(['durability', path]);
    try {
      await writer.waitForLine((lines) => lines.length >= 50, '50 acknowledged appends');
      writer.child.kill('SIGKILL');
      await writer.exited;
      const all = (await store.readAll()).events;
      const deadline = Date.now() + 10_000;
      while (received.length < all.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(received.map((e) => e.eventId)).toEqual(all.map((e) => e.eventId));
      expect(all.length).toBeGreaterThanOrEqual(150);
    } finally {
      writer.child.kill('SIGKILL');
      await subscription.close();
      await store.close();
    }
  }, 60_000);
});

describe('SQLite event store: corrupt rows', () => {
  it('reports a row whose JSON does not parse as StoreError("corrupt") naming stream and version, and keeps it', async () => {
    const path = join(dir, 'corrupt.db');
    const store = createSqliteEventStore({ path });
    try {
      await store.appendToStream('healthy-1', [event(), event()], 0);
      await store.appendToStream('broken-1', [event(), event(), event()], 0);
      await store.appendToStream('healthy-1', [event()], 2);
      await store.appendToStream('oddmeta-1', [event()], 0);

      const raw = new Database(path);
      raw.prepare(`UPDATE events SET data = '{"unterminated": ' WHERE stream_name = 'broken-1' AND version = 2`).run();
      raw.prepare(`UPDATE events SET metadata = '[1, 2]' WHERE stream_name = 'oddmeta-1' AND version = 1`).run();
      const rowsBefore = raw.prepare('SELECT position, stream_name, version, data, metadata FROM events ORDER BY position').all();

      const brokenData = {
        name: 'StoreError',
        code: 'corrupt',
        message: expect.stringMatching(/stream "broken-1" version 2\b.*data is not valid JSON/),
      };
      await expect(store.readStream('broken-1')).rejects.toMatchObject(brokenData);
      await expect(store.readAll()).rejects.toMatchObject(brokenData);
      await expect(store.readStream('oddmeta-1')).rejects.toMatchObject({
        code: 'corrupt',
        message: expect.stringMatching(/stream "oddmeta-1" version 1\b.*metadata is not a JSON object/),
      });

      // Everything else keeps working.
      expect((await store.readStream('healthy-1')).version).toBe(3);
      expect(await store.appendToStream('healthy-1', [event()], 3)).toMatchObject({ ok: true, version: 4 });
      const positions = raw
        .prepare(`SELECT position FROM events WHERE stream_name = 'broken-1' ORDER BY version`)
        .all()
        .map((r) => String((r as { position: number }).position).padStart(19, '0'));
      // Past the corrupt row, readAll works again (up to the next corrupt one).
      const past = await store.readAll({ after: positions[1]!, limit: 2 });
      expect(past.events.map((e) => [e.streamName, e.version])).toEqual([
        ['broken-1', 3],
        ['healthy-1', 3],
      ]);

      // A subscription stops on it and says why.
      let reported: unknown;
      const subscription = store.subscribe({ onEvents: async () => {}, onError: (e) => (reported = e) });
      const deadline = Date.now() + 5000;
      while (reported === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      await subscription.close();
      expect(reported).toMatchObject(brokenData);

      // Nothing was deleted or rewritten.
      const rowsAfter = raw.prepare('SELECT position, stream_name, version, data, metadata FROM events ORDER BY position').all();
      expect(rowsAfter.slice(0, rowsBefore.length)).toEqual(rowsBefore);
      raw.close();
    } finally {
      await store.close();
    }
  });
});

describe('SQLite event store: integers past 2^53', () => {
  // Reads of the global log take integers as numbers (no bigint per row); one that lost
  // precision on the way must be refused, never passed on rounded.
  it.each([
    ['version', `version = 9007199254740993`, /version is not a safe integer: 900719925474099[0-9]/],
    ['recorded_at', `recorded_at = 4611686018427387904`, /recorded_at is not a safe integer/],
  ])('a stored %s out of the safe range is StoreError("corrupt") in readAll and readStream', async (_, set, message) => {
    const path = join(dir, `bigint-${randomUUID()}.db`);
    const store = createSqliteEventStore({ path });
    try {
      await store.appendToStream('big-1', [event()], 0);
      const raw = new Database(path);
      raw.prepare(`UPDATE events SET ${set} WHERE stream_name = 'big-1'`).run();
      raw.close();
      await expect(store.readAll()).rejects.toMatchObject({ name: 'StoreError', code: 'corrupt', message: expect.stringMatching(message) });
      await expect(store.readStream('big-1')).rejects.toMatchObject({ name: 'StoreError', code: 'corrupt' });
    } finally {
      await store.close();
    }
  });

  it('positions past 2^53 (up to 2^63 − 1) are read exactly', async () => {
    const path = join(dir, `bigpos-${randomUUID()}.db`);
    const store = createSqliteEventStore({ path });
    try {
      await store.appendToStream('small-1', [event()], 0);
      const raw = new Database(path);
      raw.prepare(`UPDATE events SET position = 4611686018427387905 WHERE stream_name = 'small-1'`).run();
      raw.close();
      await store.appendToStream('small-1', [event()], 1); // AUTOINCREMENT goes on from there
      const all = await store.readAll();
      expect(all.events.map((e) => e.position)).toEqual(['4611686018427387905', '4611686018427387906']);
      expect((await store.readAll({ after: '4611686018427387905' })).events.map((e) => e.version)).toEqual([2]);
      expect((await store.readStream('small-1')).events.map((e) => e.position)).toEqual(all.events.map((e) => e.position));
    } finally {
      await store.close();
    }
  });
});

describe('SQLite event store: schema and setup', () => {
  it('creates the schema once, records its version, and reopens an existing database', async () => {
    const path = join(dir, 'schema.db');
    const first = createSqliteEventStore({ path });
    await first.appendToStream('kept-1', [event()], 0);
    await first.close();
    const second = createSqliteEventStore({ path });
    const third = createSqliteEventStore({ path }); // open twice at once, too
    expect((await second.readStream('kept-1')).version).toBe(1);
    expect((await third.readStream('kept-1')).version).toBe(1);
    await second.close();
    await third.close();

    const raw = new Database(path, { readonly: true });
    expect(raw.pragma('user_version', { simple: true })).toBe(SQLITE_SCHEMA_VERSION);
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    raw.close();
  });

  it('refuses a database written by a newer schema version, saying so', async () => {
    const path = join(dir, 'future.db');
    const raw = new Database(path);
    raw.pragma('user_version = 99');
    raw.close();
    expect(() => createSqliteEventStore({ path })).toThrow(
      expect.objectContaining({ code: 'invalid', message: expect.stringMatching(/schema version 99/) }),
    );
  });

  it('reports a missing directory as StoreError("unavailable") naming the path', () => {
    const path = join(dir, 'no', 'such', 'dir', 'x.db');
    expect(() => createSqliteEventStore({ path })).toThrow(
      expect.objectContaining({ name: 'StoreError', code: 'unavailable', message: expect.stringContaining(path) }),
    );
    expect(existsSync(join(dir, 'no'))).toBe(false);
  });

  it('refuses data or metadata that is not a JSON object, and writes nothing', async () => {
    const store = createSqliteEventStore({ path: join(dir, 'input.db') });
    try {
      const bad: NewEvent[] = [
        { ...event(), data: 'a string' },
        { ...event(), data: null },
        { ...event(), data: [1, 2] },
        { ...event(), metadata: 5 },
        { ...event(), data: { big: 10n } },
      ];
      for (const e of bad)
        await expect(store.appendToStream('input-1', [event(), e], 0)).rejects.toMatchObject({ name: 'StoreError', code: 'invalid' });
      const twice = event();
      await expect(store.appendToStream('input-1', [twice, twice], 0)).rejects.toMatchObject({ code: 'invalid' });
      expect((await store.readAll()).events).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('writes positions as 19-digit strings and refuses positions of other stores', async () => {
    const store = createSqliteEventStore({ path: ':memory:' });
    try {
      const result = await store.appendToStream('pos-1', [event()], 0);
      expect(result).toEqual({ ok: true, version: 1, position: '0000000000000000001' });
      await expect(store.readAll({ after: '00000000000000001403:0000000000000000001' })).rejects.toMatchObject({ code: 'invalid' });
      await expect(store.readAll({ after: '9999999999999999999' })).rejects.toMatchObject({ code: 'invalid' });
      expect(await store.readAll({ after: '9223372036854775807' })).toEqual({ events: [], last: '9223372036854775807' });
    } finally {
      await store.close();
    }
  });
});
