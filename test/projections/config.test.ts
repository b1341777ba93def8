import { afterAll, describe, expect, it } from 'vitest';
import { openReadStore, readStoreUrl } from '../../projections/open-read-store.ts';
import { tempDir } from './fixtures.ts';

const tmp = tempDir();
afterAll(() => tmp.remove());

describe('read store configuration', () => {
  it('FACTORSTREAM_READ_STORE wins; otherwise the event store URL when it is SQL; the default is the default SQLite file', () => {
    expect(readStoreUrl({ FACTORSTREAM_READ_STORE: 'postgres://a@h/db', FACTORSTREAM_STORE: 'sqlite:x.db' })).toBe('postgres://a@h/db');
    expect(readStoreUrl({ FACTORSTREAM_STORE: 'postgres://a@h/db' })).toBe('postgres://a@h/db');
    expect(readStoreUrl({ FACTORSTREAM_STORE: 'sqlite:/var/lib/fs.db' })).toBe('sqlite:/var/lib/fs.db');
    expect(readStoreUrl({ FACTORSTREAM_STORE: 'memory:' })).toBe('memory:');
    expect(readStoreUrl({})).toBe('sqlite:./factorstream.db');
    expect(readStoreUrl({ FACTORSTREAM_READ_STORE: '  ' })).toBe('sqlite:./factorstream.db');
  });

  it('an EventStoreDB event store needs FACTORSTREAM_READ_STORE, and the message says so without the password', () => {
    expect(() => readStoreUrl({ FACTORSTREAM_STORE: 'esdb://admin:changeit@localhost:2113?tls=false' })).toThrow(
      /FACTORSTREAM_READ_STORE is not set.*esdb:\/\/admin:\*\*\*@localhost/,
    );
    try {
      readStoreUrl({ FACTORSTREAM_STORE: 'esdb://admin:changeit@localhost:2113' });
    } catch (e) {
      expect((e as Error).message).not.toContain('changeit');
    }
  });

  it('opens memory: and sqlite: stores, and refuses what it does not know', async () => {
    const memory = await openReadStore('memory:');
    expect(memory.kind).toBe('memory');
    await memory.close();
    const sqlite = await openReadStore(`sqlite:${tmp.dir}/config.db`);
    expect(sqlite.kind).toBe('sqlite');
    expect(await sqlite.checkpoint('anything')).toBeNull();
    await sqlite.close();
    await expect(openReadStore('sqlite:')).rejects.toMatchObject({ code: 'invalid', message: expect.stringContaining('names no file') });
    await expect(openReadStore('mysql://root:hunter2@db/x')).rejects.toMatchObject({
      code: 'invalid',
      message: expect.stringMatching(/unsupported read store "mysql:\/\/root:\*\*\*@db\/x".*accepted forms/),
    });
  });
});
