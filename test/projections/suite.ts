/**
 * One suite, run against every read store (memory, SQLite, PostgreSQL).
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryEventStore } from '../../adapters/store/memory.ts';
import type { EventStore, RecordedEvent } from '../../domain/ports.ts';
import { ProjectionError } from '../../projections/errors.ts';
import { decodeRecorded } from '../../projections/projected-event.ts';
import { readModelProjection } from '../../projections/read-model.ts';
import type { Projection, ReadModelDump } from '../../projections/read-store.ts';
import { createProjectionRunner, headPosition, rebuild, type ProjectionRunner, type RunnerOptions } from '../../projections/runner.ts';
import { createMemoryReadStore } from '../../projections/stores/memory.ts';
import { createWorld, leaks, normalized, sealedAndDigests, workloadArb, type OpenFixture, type StoreFixture, type Step } from './fixtures.ts';

/** A projection that counts how often each event was applied (no idempotency guard of its own). */
export const countingProjection: Projection = {
  name: 'test-counting',
  apply: (tx, e) => tx.bump('applied', e.eventId),
  reset: (tx) => tx.clearCounters('applied'),
};

/** Runs the standard projection over `events` into a fresh memory store: the reference result. */
export const referenceDump = async (events: EventStore): Promise<ReadModelDump> => {
  const store = createMemoryReadStore();
  const runner = createProjectionRunner({ store: events, readStore: store }).start();
  await runner.whenCaughtUp();
  await runner.close();
  return normalized(await store.dump());
};

/** A fixed scenario touching every kind of event. */
export const scenario: Step[] = [
  { op: 'register', user: 0, kind: 'totp', confirmed: false },
  { op: 'confirm', device: 0, right: true },
  { op: 'verify', device: 0, right: false },
  { op: 'tick', ms: 5_000 },
  { op: 'verify', device: 0, right: false },
  { op: 'register', user: 0, kind: 'email', confirmed: true },
  { op: 'challenge', device: 1, deliveryFails: false },
  { op: 'challenge', device: 1, deliveryFails: false },
  { op: 'tick', ms: 61_000 },
  { op: 'challenge', device: 1, deliveryFails: true },
  { op: 'backupCodes', user: 0 },
  { op: 'verify', device: 2, right: true },
  { op: 'register', user: 1, kind: 'sms', confirmed: true },
  { op: 'register', user: 1, kind: 'hotp', confirmed: true },
  { op: 'verify', device: 4, right: true },
  { op: 'match', user: 1, right: false },
  { op: 'resetThrottle', device: 0 },
  { op: 'rename', device: 0, name: 'Phone' },
  { op: 'remove', device: 3 },
  { op: 'tick', ms: 3_600_000 },
  { op: 'verify', device: 0, right: false },
];

export const readStoreSuite = (label: string, open: OpenFixture, runs: number) =>
  describe(`read side on the ${label} read store`, () => {
    const cleanups: (() => Promise<void>)[] = [];
    const fixture = async (): Promise<StoreFixture> => {
      const f = await open();
      cleanups.push(() => f.close());
      return f;
    };
    const runner = (o: RunnerOptions): ProjectionRunner => {
      const r = createProjectionRunner({ standbyPollMs: 10, ...o });
      cleanups.push(() => r.close());
      return r;
    };
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
    });

    it('projects the scenario like the engine sees it, and the read model holds no secret', async () => {
      const world = createWorld(1);
      const f = await fixture();
      const r = runner({ store: world.events, readStore: f.store }).start();
      await world.run(scenario);
      await r.whenCaughtUp();
      expect(normalized(await f.store.dump())).toEqual(await referenceDump(world.events));
      const sealed = sealedAndDigests((await world.events.readAll()).events);
      const text = await f.rawText();
      expect(leaks(text, world.secrets)).toEqual([]);
      expect(leaks(text, sealed)).toEqual([]);
      // The detector works: the secrets are there to be found, and it finds one put in the text.
      expect(world.secrets.size).toBeGreaterThan(10);
      expect(sealed.size).toBeGreaterThan(10);
      const [aSecret] = world.secrets;
      expect(leaks(`${text} ${aSecret}`, world.secrets)).toEqual([aSecret]);
      const lag = await r.lag();
      expect(lag).toMatchObject({ events: 0, exact: true, seconds: 0 });
    });

    it('applying the same events again leaves the same read model (idempotent handlers)', async () => {
      const world = createWorld(2);
      await world.run(scenario);
      const f = await fixture();
      const r = runner({ store: world.events, readStore: f.store, batchSize: 5 }).start();
      const head = await r.whenCaughtUp();
      await r.close();
      const once = normalized(await f.store.dump());
      // Deliver the whole log again, in overlapping windows, behind the runner's back.
      const all = (await world.events.readAll()).events.map((e) => decodeRecorded(e)).map((d) => {
        if (d._tag === 'Left') throw d.left;
        return d.right;
      });
      const claim = f.store.claim(readModelProjection.name, { owner: 'replayer', leaseMs: 60_000, now: Date.now });
      expect(await claim.acquire()).toBe(true);
      for (const window of [all, all.slice(3, 17), all.slice(0, 1), all.slice(10)]) {
        const result = await claim.commit({
          expected: head,
          next: head,
          events: window,
          work: (tx) => window.forEach((e) => readModelProjection.apply(tx, e)),
        });
        expect(result).toBe('committed');
      }
      await claim.release();
      expect(normalized(await f.store.dump())).toEqual(once);
    });

    it('a runner that fails half-way (a handler throws after K events) and is restarted ends equal to one that never stopped', async () => {
      const world = createWorld(3);
      await world.run(scenario);
      const total = (await world.events.readAll()).events.length;
      const f = await fixture();
      let applied = 0;
      const K = Math.floor(total / 2) + 1;
      const flaky: Projection = {
        ...readModelProjection,
        apply: (tx, e) => {
          if (++applied > K) throw new Error('the process was killed');
          readModelProjection.apply(tx, e);
        },
      };
      const first = runner({ store: world.events, readStore: f.store, projection: flaky, batchSize: 4 }).start();
      const error = await first.stopped();
      expect(error).toBeInstanceOf(ProjectionError);
      expect(error!.code).toBe('handler-failed');
      expect(error!.message).toMatch(/stream "otp(device|user)-[^"]+" version \d+/);
      expect(Object.keys(error!.event!).sort()).toEqual(['position', 'streamName', 'version']);
      expect(first.state()).toBe('failed');
      // The failed batch was rolled back: the checkpoint sits on a batch boundary before event K+1.
      expect(await f.store.checkpoint(readModelProjection.name)).toBe(first.checkpoint());
      const again = runner({ store: world.events, readStore: f.store, batchSize: 4 }).start();
      await again.whenCaughtUp();
      expect(normalized(await f.store.dump())).toEqual(await referenceDump(world.events));
    });

    it('a runner closed half-way and restarted ends equal to one that never stopped', async () => {
      const world = createWorld(4);
      await world.run(scenario);
      const log = (await world.events.readAll()).events;
      const f = await fixture();
      const first = runner({ store: world.events, readStore: f.store, batchSize: 3 }).start();
      await first.waitForPosition(log[Math.floor(log.length / 2)]!.position);
      await first.close();
      expect(first.state()).toBe('closed');
      await world.run([{ op: 'verify', device: 0, right: false }, { op: 'tick', ms: 1_000 }, { op: 'match', user: 0, right: true }]);
      const second = runner({ store: world.events, readStore: f.store, batchSize: 3 }).start();
      await second.whenCaughtUp();
      expect(normalized(await f.store.dump())).toEqual(await referenceDump(world.events));
    });

    it('a rebuild from zero equals the live read model after a randomised workload', async () => {
      await fc.assert(
        fc.asyncProperty(workloadArb, async ({ seed, steps }) => {
          const world = createWorld(seed);
          const f = await fixture();
          const live = runner({ store: world.events, readStore: f.store, batchSize: 16 }).start();
          await world.run(steps);
          await live.whenCaughtUp();
          await live.close();
          const liveDump = normalized(await f.store.dump());
          const liveText = await f.rawText();
          const progress: [number, number][] = [];
          const r = runner({ store: world.events, readStore: f.store, batchSize: 7 });
          const result = await rebuild(r, { onProgress: (done, total, rate) => {
            expect(rate).toBeGreaterThanOrEqual(0);
            progress.push([done, total]);
          } });
          const total = (await world.events.readAll()).events.length;
          expect(result.events).toBe(total);
          expect(progress.at(-1)).toEqual([total, total]);
          expect(normalized(await f.store.dump())).toEqual(liveDump);
          const hidden = [...world.secrets, ...sealedAndDigests((await world.events.readAll()).events)];
          expect(leaks(liveText, hidden)).toEqual([]);
          expect(leaks(await f.rawText(), hidden)).toEqual([]);
          await f.close();
        }),
        { numRuns: runs },
      );
    });

    it('a stored event that does not decode is set aside: recorded for the operator, and the log goes on', async () => {
      const world = createWorld(5);
      await world.run(scenario.slice(0, 5));
      const target = world.devices[0]!;
      const stream = `otpdevice-${target.deviceId}`;
      const { version } = await world.events.readStream(stream);
      const meta = (id: string) => ({ eventId: id, commandId: id, correlationId: id, causationId: id, actor: 'admin:ops' });
      // An event the catalog cannot read, then a readable one after it in the same stream.
      const bad = { eventId: 'bogus-1', type: 'ChallengeGenerated', data: { codeDigest: 'A'.repeat(43), validUntil: 1e20, at: 1 }, metadata: meta('bogus-1') };
      const later = { eventId: 'later-1', type: 'DeviceRenamed', data: { name: 'after the bad one', at: 2 }, metadata: meta('later-1') };
      expect((await world.events.appendToStream(stream, [bad, later], version)).ok).toBe(true);
      await world.run([{ op: 'register', user: 2, kind: 'static', confirmed: true }]);
      const badPosition = (await world.events.readAll()).events.find((e) => e.eventId === 'bogus-1')!.position;
      const f = await fixture();
      const seen: string[] = [];
      const r = runner({ store: world.events, readStore: f.store, batchSize: 100, onQuarantine: (q) => seen.push(`${q.streamName}@${q.version}`) }).start();
      await r.whenCaughtUp();
      expect(r.state()).not.toBe('failed');
      expect(seen).toEqual([`${stream}@${version + 1}`]);
      // Every other user's read model is up to date, and so are the device's later events.
      expect(await f.store.checkpoint(readModelProjection.name)).toBe(await headPosition(world.events));
      expect((await f.store.devicesOfUser('user-2')).length).toBe(1);
      expect((await f.store.device(target.deviceId))?.snapshot.name).toBe('after the bad one');
      // The quarantine list: an audit entry that names where the event is and what failed, not its data.
      const listed = await f.store.audit({ action: 'event-quarantined', limit: 10 });
      expect(listed).toHaveLength(1);
      expect(listed[0]).toMatchObject({ streamName: stream, version: version + 1, position: badPosition, type: 'ChallengeGenerated', deviceId: target.deviceId, actor: 'admin:ops' });
      expect(listed[0]!.userId).toBe((await f.store.device(target.deviceId))?.snapshot.userId);
      expect(listed[0]!.reason).toContain('validUntil');
      expect(JSON.stringify(listed[0])).not.toContain('A'.repeat(43));
      expect(await f.store.audit({ userId: listed[0]!.userId!, action: 'event-quarantined', limit: 10 })).toEqual(listed);
      await r.close();
      // A rebuild sets it aside again, to the same read model.
      const live = normalized(await f.store.dump());
      const again = runner({ store: world.events, readStore: f.store, batchSize: 7 });
      await rebuild(again);
      expect(normalized(await f.store.dump())).toEqual(live);
      await again.close();
      await f.close();
    });

    it("with undecodable: 'stop', a stored event that does not decode stops the runner with an error naming its stream and version", async () => {
      const world = createWorld(5);
      await world.run(scenario.slice(0, 5));
      const deviceId = world.devices[0]!.deviceId;
      const stream = `otpdevice-${deviceId}`;
      const { version } = await world.events.readStream(stream);
      const metadata = { eventId: 'bogus-1', commandId: 'c', correlationId: 'c', causationId: 'c', actor: 'x' };
      const appended = await world.events.appendToStream(stream, [{ eventId: 'bogus-1', type: 'DeviceExploded', data: { how: 'loudly' }, metadata }], version);
      expect(appended.ok).toBe(true);
      await world.run([{ op: 'register', user: 2, kind: 'static', confirmed: true }]);
      const before = (await world.events.readAll()).events.find((e) => e.eventId === 'bogus-1')!;
      const f = await fixture();
      const first = runner({ store: world.events, readStore: f.store, batchSize: 100, undecodable: 'stop' }).start();
      const error = await first.stopped();
      expect(error?.code).toBe('undecodable-event');
      expect(error?.message).toContain(`stream "${stream}" version ${version + 1}`);
      expect(error?.message).toContain('unknown event type "DeviceExploded"');
      expect(error?.event).toEqual({ streamName: stream, version: version + 1, position: before.position });
      // Everything before it was applied (and checkpointed); nothing after it was.
      const prior = (await world.events.readAll()).events.filter((e) => e.position < before.position).at(-1)!;
      expect(await f.store.checkpoint(readModelProjection.name)).toBe(prior.position);
      expect((await f.store.devicesOfUser('user-2')).length).toBe(0);
      await expect(first.whenCaughtUp()).rejects.toBe(error);
      // A restart stops at the very same event.
      const second = runner({ store: world.events, readStore: f.store, undecodable: 'stop' }).start();
      expect((await second.stopped())?.event).toEqual(error?.event);
    });

    it("metadata that does not decode, or an event in the wrong kind of stream, stops the runner too (undecodable: 'stop')", async () => {
      for (const bad of [
        { type: 'DeviceRenamed', data: { name: 'ok', at: 1 }, metadata: { actor: 'no command id' } },
        { type: 'MatchFailed', data: { devicesTried: 1, at: 1 }, metadata: { eventId: 'b', commandId: 'c', correlationId: 'c', causationId: 'c', actor: 'x' } },
      ]) {
        const events = createMemoryEventStore();
        await events.appendToStream('otpdevice-00000000-0000-4000-8000-000000000001', [{ eventId: 'b', ...bad }], 0);
        const f = await fixture();
        const r = runner({ store: events, readStore: f.store, undecodable: 'stop' }).start();
        const error = await r.stopped();
        expect(error?.code).toBe('undecodable-event');
        expect(error?.message).toMatch(/stream "otpdevice-00000000-0000-4000-8000-000000000001" version 1/);
      }
    });

    it('two runners on one read store: one applies each event exactly once, the other takes over when it closes', async () => {
      const world = createWorld(6);
      await world.run(scenario.slice(0, 8));
      const f = await fixture();
      const a = runner({ store: world.events, readStore: f.store, projection: countingProjection, instanceId: 'a', batchSize: 3 });
      const b = runner({ store: world.events, readStore: await f.reopen(), projection: countingProjection, instanceId: 'b', batchSize: 3 });
      a.start();
      b.start();
      await world.run(scenario.slice(8, 14));
      await Promise.all([a.whenCaughtUp(), b.whenCaughtUp()]);
      const [active, waiting] = b.state() === 'standby' ? [a, b] : [b, a];
      expect(waiting.state()).toBe('standby');
      expect(['catching-up', 'live']).toContain(active.state());
      await active.close();
      await world.run(scenario.slice(14));
      // Only the waiting instance is left to apply the new events: it has taken over.
      await waiting.whenCaughtUp();
      expect(['catching-up', 'live']).toContain(waiting.state());
      const counts = await f.store.counters('applied');
      const ids = (await world.events.readAll()).events.map((e: RecordedEvent) => e.eventId);
      expect([...counts.keys()].sort()).toEqual([...ids].sort());
      expect([...counts.values()].every((n) => n === 1)).toBe(true);
    });

    it('never receives a client context with control characters: the engine refuses it at the boundary', async () => {
      const world = createWorld(8);
      const f = await fixture();
      const r = runner({ store: world.events, readStore: f.store }).start();
      const refused = await world.engine.register({ kind: 'static', userId: 'user-9' }, { client: { ip: '::1', userAgent: 'evil\u0000agent\r\nX-Forged: 1' } })();
      expect(refused).toMatchObject({ _tag: 'Left', left: { code: 'invalid-command' } });
      const reg = await world.engine.register({ kind: 'static', userId: 'user-9' }, { client: { ip: '::1', userAgent: 'agent/1' } })();
      expect(reg._tag).toBe('Right');
      await r.whenCaughtUp();
      const entries = await f.store.audit({ userId: 'user-9', limit: 10 });
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatchObject({ ip: '::1', userAgent: 'agent/1' });
      await r.close();
    });

    it('reports lag before it catches up, and rejects waits after it is closed', async () => {
      const world = createWorld(7);
      await world.run(scenario);
      const total = (await world.events.readAll()).events.length;
      const f = await fixture();
      const r = runner({ store: world.events, readStore: f.store });
      const lag = await r.lag({ maxScan: 5 });
      expect(lag).toMatchObject({ events: 5, exact: false, checkpoint: null, state: 'new' });
      expect((await r.lag()).events).toBe(total);
      r.start();
      await r.whenCaughtUp();
      await r.close();
      await expect(r.waitForPosition('9'.repeat(40), { timeoutMs: 1_000 })).rejects.toMatchObject({ code: 'closed' });
    });

    it('a wait that cannot be met times out with a clear error instead of hanging', async () => {
      const f = await fixture();
      const r = runner({ store: createMemoryEventStore(), readStore: f.store }).start();
      await expect(r.waitForPosition('0000000000000099', { timeoutMs: 50 })).rejects.toMatchObject({
        code: 'timeout',
        message: expect.stringContaining('did not reach position 0000000000000099'),
      });
    });

    it('rebuild refuses a runner that is already running', async () => {
      const f = await fixture();
      const r = runner({ store: createMemoryEventStore(), readStore: f.store }).start();
      await expect(rebuild(r)).rejects.toMatchObject({ code: 'invalid' });
    });
  });

