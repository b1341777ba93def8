import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { createPostgresEventStore } from '../../adapters/store/postgres.ts';
import { createTestDatabase } from '../support/postgres.ts';
import { describeEventStoreConformance } from './suite.ts';

let database: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
beforeAll(async () => {
  database = await createTestDatabase('fs_test');
});
afterAll(async () => {
  await database?.drop();
});

// Each test gets its own schema in this file's database.
describeEventStoreConformance(
  'postgres',
  async () => {
    if (!database) throw new Error('the test database was not created (see the error of beforeAll)');
    const schema = `conformance_${randomUUID().replaceAll('-', '')}`;
    const store = await createPostgresEventStore({ connectionString: database.url, schema, max: 12 });
    return { store, cleanup: () => store.close() };
  },
  { concurrentWriters: true, tailOnConflict: true },
);
