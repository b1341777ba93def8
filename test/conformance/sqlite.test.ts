import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteEventStore, type SqliteEventStoreOptions } from '../../adapters/store/sqlite.ts';
import { describeEventStoreConformance, type StoreFactory } from './suite.ts';

/** A store on a file of its own in a temporary directory, removed afterwards. */
const onFile =
  (options: Omit<SqliteEventStoreOptions, 'path'> = {}): StoreFactory =>
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'factorstream-conformance-'));
    const store = createSqliteEventStore({ path: join(dir, 'events.db'), ...options });
    return {
      store,
      cleanup: async () => {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  };

describeEventStoreConformance('sqlite (file)', onFile(), { tailOnConflict: true });

describeEventStoreConformance('sqlite (:memory:)', async () => {
  const store = createSqliteEventStore({ path: ':memory:' });
  return { store, cleanup: () => store.close() };
}, { tailOnConflict: true });

describeEventStoreConformance('sqlite (file, group commit off)', onFile({ groupCommit: false }), { tailOnConflict: true });
