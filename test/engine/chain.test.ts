/**
 * The hash chain: every event links to the one before it, so editing, removing or reordering
 * a stored event is caught — here by editing rows of a real SQLite file directly.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createMemoryEventStore } from '../../adapters/store/memory.ts';
import { createSqliteEventStore } from '../../adapters/store/sqlite.ts';
import { createMemoryVault } from '../../adapters/vault/memory.ts';
import { canonicalJson, createChainVerifier, eventHash, genesisHash, verifyChain } from '../../domain/chain.ts';
import { createEngine, type Engine } from '../../app/engine.ts';
import { deviceStream } from '../../domain/ids.ts';
import { hotpCode } from '../../domain/kinds/oath.ts';
import type { EventStore } from '../../domain/ports.ts';

const KEY = Buffer.from('12345678901234567890');
const T = 1_800_000_000_000;

const workload = async (store: EventStore) => {
  let now = T;
  const engine: Engine = createEngine({ store, vault: createMemoryVault(), clock: { now: () => now }, random: { bytes: (n) => randomBytes(n) } });
  const reg = await engine.register({ kind: 'totp', userId: 'carol', secret: KEY })();
  if (reg._tag === 'Left') throw new Error(reg.left.message);
  const id = reg.right.deviceId;
  await engine.confirm(id, hotpCode(KEY, Math.floor(now / 30_000), 6))();
  now += 5_000;
  await engine.verify(id, '000000')();
  now += 60_000;
  await engine.verify(id, hotpCode(KEY, Math.floor(now / 30_000), 6))();
  await engine.rename(id, 'Work phone')();
  return { engine, id };
};

describe('hash chain', () => {
  it('links every event to the one before it, from a genesis hash of the stream', async () => {
    const store = createMemoryEventStore();
    const { engine, id } = await workload(store);
    const { events } = await store.readStream(deviceStream(id));
    expect(events.length).toBeGreaterThanOrEqual(6);
    expect((events[0]!.metadata as { prevHash: string }).prevHash).toBe(genesisHash(deviceStream(id)));
    for (let i = 1; i < events.length; i++)
      expect((events[i]!.metadata as { prevHash: string }).prevHash).toBe(eventHash(events[i - 1]!));
    expect(verifyChain(events)).toBeNull();
    const report = await engine.verifyChain({ device: id })();
    expect(report).toMatchObject({ _tag: 'Right', right: { checked: events.length, broken: null } });
    expect(await engine.verifyChain({ userId: 'carol' })()).toMatchObject({ _tag: 'Right', right: { broken: null } });
  });

  it('hashes a canonical encoding: key order does not matter (PostgreSQL jsonb reorders keys)', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { y: 1, x: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[2,{"x":2,"y":1}]},"b":1}');
    const e = { streamName: 's', version: 1, eventId: 'e', type: 'T', data: { a: 1, b: 2 }, metadata: { z: 1, y: 2 } };
    expect(eventHash(e)).toBe(eventHash({ ...e, data: { b: 2, a: 1 }, metadata: { y: 2, z: 1 } }));
    expect(eventHash(e)).not.toBe(eventHash({ ...e, data: { a: 1, b: 3 } }));
  });

  describe('on a SQLite file edited behind the store’s back', () => {
    const setup = async () => {
      const path = join(mkdtempSync(join(tmpdir(), 'fs-chain-')), 'fs.db');
      const store = createSqliteEventStore({ path });
      const { engine, id } = await workload(store);
      await store.close();
      const raw = new Database(path);
      const check = async () => {
        const s = createSqliteEventStore({ path });
        try {
          return verifyChain((await s.readStream(deviceStream(id))).events);
        } finally {
          await s.close();
        }
      };
      return { raw, check, id, engine };
    };

    it('holds when nothing was touched', async () => {
      const { raw, check } = await setup();
      expect(await check()).toBeNull();
      raw.close();
    });

    it('catches an edited event at the link after it', async () => {
      const { raw, check, id } = await setup();
      // Turn the failed attempt (version 4) into a success, as someone covering tracks might.
      const changed = raw
        .prepare(`UPDATE events SET data = json_set(data, '$.reason', 'replay') WHERE stream_name = ? AND version = 4`)
        .run(deviceStream(id)).changes;
      expect(changed).toBe(1);
      raw.close();
      expect(await check()).toMatchObject({ streamName: deviceStream(id), version: 5, problem: expect.stringContaining('version 4') });
    });

    it('catches a removed event', async () => {
      const { raw, check, id } = await setup();
      raw.prepare('DELETE FROM events WHERE stream_name = ? AND version = 4').run(deviceStream(id));
      // Renumber the rest, so that the versions alone do not give it away.
      raw.prepare('UPDATE events SET version = version - 1 WHERE stream_name = ? AND version > 4').run(deviceStream(id));
      raw.close();
      expect(await check()).toMatchObject({ version: 4, problem: expect.stringContaining('does not match') });
    });

    it('catches two events swapped', async () => {
      const { raw, check, id } = await setup();
      const s = deviceStream(id);
      const rows = raw.prepare('SELECT version, type, data, metadata FROM events WHERE stream_name = ? AND version IN (4, 5) ORDER BY version').all(s) as {
        version: number;
        type: string;
        data: string;
        metadata: string;
      }[];
      const update = raw.prepare('UPDATE events SET type = ?, data = ?, metadata = ? WHERE stream_name = ? AND version = ?');
      update.run(rows[1]!.type, rows[1]!.data, rows[1]!.metadata, s, 4);
      update.run(rows[0]!.type, rows[0]!.data, rows[0]!.metadata, s, 5);
      raw.close();
      expect(await check()).toMatchObject({ version: 4 });
    });
  });

  it('checks interleaved streams of the global log in one pass and reports each break', async () => {
    const store = createMemoryEventStore();
    await workload(store);
    await workload(store);
    const all = (await store.readAll()).events;
    const v = createChainVerifier();
    expect(all.map((e) => v.push(e)).filter(Boolean)).toEqual([]);
    // Two devices of one user: two device streams and one user stream.
    expect(v.summary()).toMatchObject({ checked: all.length, streams: 3 });
    const tampered = all.map((e, i) => (i === 3 ? { ...e, data: { ...(e.data as object), at: 0 } } : e));
    const w = createChainVerifier();
    const breaks = tampered.map((e) => w.push(e)).filter(Boolean);
    expect(breaks).toHaveLength(1);
    expect(breaks[0]).toMatchObject({ streamName: all[3]!.streamName, version: all[3]!.version + 1 });
  });
});
