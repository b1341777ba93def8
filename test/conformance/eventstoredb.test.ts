/**
 * The EventStore contract against a real EventStoreDB server (23.10 or later), when
 * FACTORSTREAM_ESDB_URL is set, e.g.
 *
 *   docker run -d --name factorstream-esdb -p 2113:2113 -e EVENTSTORE_INSECURE=true \
 *     -e EVENTSTORE_CLUSTER_SIZE=1 -e EVENTSTORE_RUN_PROJECTIONS=None \
 *     eventstore/eventstore:24.10.0-bookworm-slim
 *   FACTORSTREAM_ESDB_URL='esdb://localhost:2113?tls=false' npx vitest run test/conformance/eventstoredb.test.ts
 *
 * The server is shared and never wiped. Each test gets a store of its own that:
 * - sees the suite's streams (`conformance…-<uuid>`) in its global log: streamPrefixes is
 *   ['conformance'] instead of the production otpdevice-/otpuser- prefixes;
 * - starts its global log at the `$all` position the server had when the test began, so that
 *   "read everything" means "everything this test wrote", as on a fresh SQLite file or
 *   PostgreSQL schema. Only `after: null` is translated; every position a test sees or passes
 *   is the server's own.
 */
import { BACKWARDS, END, EventStoreDBClient } from '@eventstore/db-client';
import { afterAll, describe, it } from 'vitest';
import { createEventStoreDbStore, eventCommitPosition, formatPosition } from '../../adapters/store/eventstoredb.ts';
import type { EventStore, GlobalPosition } from '../../domain/ports.ts';
import { describeEventStoreConformance } from './suite.ts';

const url = process.env.FACTORSTREAM_ESDB_URL;

/** The position of the last record in `$all` (any stream), or null on an empty log. */
const headOfAll = async (client: EventStoreDBClient): Promise<GlobalPosition | null> => {
  for await (const resolved of client.readAll({ direction: BACKWARDS, fromPosition: END, maxCount: 1 })) {
    const commit = eventCommitPosition(resolved);
    return commit === null ? null : formatPosition(commit);
  }
  return null;
};

/** The store, with its global log starting at `origin` instead of the beginning of `$all`. */
const startingAt = (store: EventStore, origin: GlobalPosition | null): EventStore => {
  const fromStart = (last: GlobalPosition | null) => (last === origin ? null : last);
  return {
    readStream: (name) => store.readStream(name),
    appendToStream: (name, events, expectedVersion) => store.appendToStream(name, events, expectedVersion),
    readAll: async (o = {}) => {
      if (o.after != null) return store.readAll(o);
      const result = await store.readAll({ ...o, after: origin });
      return { ...result, last: fromStart(result.last) };
    },
    subscribe: (o) =>
      o.after != null
        ? store.subscribe(o)
        : store.subscribe({
            ...o,
            after: origin,
            ...(o.onCaughtUp ? { onCaughtUp: (last: GlobalPosition | null) => o.onCaughtUp!(fromStart(last)) } : {}),
          }),
    close: () => store.close(),
  };
};

if (url) {
  let probe: EventStoreDBClient | undefined;
  afterAll(async () => {
    await probe?.dispose();
  });

  describeEventStoreConformance(
    'EventStoreDB',
    async () => {
      probe ??= EventStoreDBClient.connectionString(url);
      const origin = await headOfAll(probe);
      const store = createEventStoreDbStore({ connectionString: url, streamPrefixes: ['conformance'] });
      return { store: startingAt(store, origin), cleanup: () => store.close() };
    },
    { concurrentWriters: true, uniqueEventIdsAcrossStreams: false },
  );
} else {
  describe.skip('EventStoreDB conformance (set FACTORSTREAM_ESDB_URL to run)', () => {
    it('runs the EventStore conformance suite against a live EventStoreDB server', () => {});
  });
}
