/**
 * What a CLI command runs on: the event store named by --store, the vault beside it, the
 * code sender, and an engine with the --config policy and the --now clock.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createEngine, type Engine } from '../../app/engine.ts';
import { VaultError, type Clock, type EventStore, type TokenSender } from '../../domain/ports.ts';
import { createSender } from '../delivery/factory.ts';
import { systemClock, systemRandom } from '../system.ts';
import { openEventStore } from '../store/factory.ts';
import { createEnvelopeVault, createMemoryKeyStore, type EnvelopeVault, type KeyStore } from '../vault/envelope.ts';
import { finishRotation, keyFileTooOpen, loadMasterKey, pendingRotationKey, type MasterKey } from '../vault/master-key.ts';
import { createPostgresKeyStore } from '../vault/postgres.ts';
import { createSqliteKeyStore } from '../vault/sqlite.ts';
import { UsageError, type Config } from './parse.ts';

export interface GlobalOptions {
  readonly store: string;
  /** Where the data keys live; defaults to the event store when it is SQL. */
  readonly vault?: string;
  readonly now?: number;
  readonly actor?: string;
  readonly config: Config;
}

export interface Runtime {
  readonly engine: Engine;
  readonly store: EventStore;
  readonly vault: EnvelopeVault;
  readonly master: MasterKey;
  readonly keyStoreUrl: string;
  readonly clock: Clock;
  /** Things the user should know (a key file was created, …), printed on stderr. */
  readonly notices: readonly string[];
  close(): Promise<void>;
}

const sqlitePath = (url: string): string | null => (url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : null);

/** The file of a sqlite:PATH URL that names one on disk (not :memory:), or null. */
export const sqliteFile = (url: string): string | null => {
  const path = sqlitePath(url.trim());
  return path === null || path === '' || path === ':memory:' || path.startsWith('//') ? null : path;
};

/**
 * A sqlite:PATH in a directory that does not exist, or naming a directory, is bad input, named
 * before anything is opened: nothing (no empty database, no key file) is left behind.
 */
export const checkSqliteTarget = (url: string, option: string): void => {
  const path = sqliteFile(url);
  if (path === null) return;
  const dir = dirname(resolve(path));
  if (!existsSync(dir)) throw new UsageError(`${option} ${url}: the directory ${dir} does not exist; create it first`);
  if (!statSync(dir).isDirectory()) throw new UsageError(`${option} ${url}: ${dir} is not a directory`);
  if (existsSync(path) && statSync(path).isDirectory()) throw new UsageError(`${option} ${url} names a directory, not a database file`);
};

/** The key store URL: --vault, or the event store itself when it is SQLite or PostgreSQL. */
export const keyStoreUrlFor = (o: GlobalOptions): string => {
  if (o.vault) return o.vault;
  if (o.store.startsWith('sqlite:') || /^postgres(ql)?:\/\//i.test(o.store) || o.store === 'memory:') return o.store;
  throw new UsageError(
    `the event store ${o.store.replace(/:[^:@/]*@/, ':***@')} keeps no keys: name a key store with --vault (FACTORSTREAM_VAULT), e.g. sqlite:./factorstream-keys.db`,
  );
};

const openKeyStore = (url: string): KeyStore => {
  if (url === 'memory:' || url === 'sqlite::memory:') return createMemoryKeyStore();
  const path = sqlitePath(url);
  if (path !== null) return createSqliteKeyStore(path);
  if (/^postgres(ql)?:\/\//i.test(url)) return createPostgresKeyStore({ connectionString: url, schema: 'factorstream_vault' });
  throw new UsageError(`unsupported key store "${url.replace(/:[^:@/]*@/, ':***@')}": use sqlite:PATH or postgres://…`);
};

const masterKeyFor = (keyStoreUrl: string, notices: string[], create: boolean): MasterKey => {
  if (keyStoreUrl === 'memory:' || keyStoreUrl === 'sqlite::memory:')
    return { key: randomBytes(32), source: 'env', created: true };
  const path = sqlitePath(keyStoreUrl);
  const master = loadMasterKey(path !== null ? { defaultFile: `${path}.key`, create } : {});
  if (master.created && master.path)
    notices.push(
      `created the master key file ${master.path} (mode 0600). Keep it safe and back it up: without it the secrets in ${path} cannot be opened.`,
    );
  else if (master.path && keyFileTooOpen(master.path))
    notices.push(`warning: the master key file ${master.path} can be read by other users; run chmod 600 ${master.path}`);
  return master;
};

export interface OpenOptions {
  /** Create the master key file when there is none (default true; false for a dry run). */
  readonly createKey?: boolean;
}

export const openRuntime = async (o: GlobalOptions, senderOverride?: TokenSender, open: OpenOptions = {}): Promise<Runtime> => {
  const notices: string[] = [];
  checkSqliteTarget(o.store, '--store');
  if (o.vault) checkSqliteTarget(o.vault, '--vault');
  // The store first: a bad --store is reported as such, before any word about keys.
  const store = await openEventStore(o.store);
  let keys: KeyStore | undefined;
  try {
    const keyStoreUrl = keyStoreUrlFor(o);
    keys = openKeyStore(keyStoreUrl);
    let master = masterKeyFor(keyStoreUrl, notices, open.createKey ?? true);
    let vault = createEnvelopeVault(keys, master.key);
    try {
      await vault.ready();
    } catch (e) {
      // A rotation interrupted after the re-wrap committed: the new key is the valid one.
      const pending = e instanceof VaultError && e.code === 'wrong-master-key' && master.path ? pendingRotationKey(master.path) : null;
      if (pending === null) throw e;
      vault = createEnvelopeVault(keys, pending);
      await vault.ready();
      finishRotation(master.path!);
      master = { ...master, key: pending };
      notices.push(`finished an interrupted key rotation: ${master.path} now holds the new master key`);
    }
    const clock: Clock = o.now === undefined ? systemClock : { now: () => o.now! };
    const sender = senderOverride ?? createSender();
    const engine = createEngine({
      store,
      vault,
      sender,
      clock,
      random: systemRandom,
      policy: o.config.policy,
      ...(o.config.issuer === undefined ? {} : { issuer: o.config.issuer }),
    });
    return {
      engine,
      store,
      vault,
      master,
      keyStoreUrl,
      clock,
      notices,
      close: async () => {
        await vault.close().catch(() => {});
        await store.close().catch(() => {});
      },
    };
  } catch (e) {
    await keys?.close().catch(() => {});
    await store.close().catch(() => {});
    throw e;
  }
};
