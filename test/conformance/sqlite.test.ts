import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteEventStore } from '../../adapters/store/sqlite.ts';
import { describeEventStoreConformance } from './suite.ts';

describeEventStoreConformance('sqlite (file)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'factorstream-conformance-'));
  const store = createSqliteEventStore({ path: join(dir, 'events.db') });
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}, { tailOnConflict: true });

describeEventStoreConformance('sqlite (:memory:)', async () => {
  const store = createSqliteEventStore({ path: ':memory:' });
  return { store, cleanup: () => store.close() };
}, { tailOnConflict: true });

describeEventStoreConformance('sqlite (file, group commit off)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'factorstream-conformance-'));
  const store = createSqliteEventStore({ path: join(dir, 'events.db'), groupCommit: false });
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}, { tailOnConflict: true });
