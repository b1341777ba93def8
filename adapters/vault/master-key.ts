/**
 * Where the master key comes from: FACTORSTREAM_MASTER_KEY (64 hex characters or base64 of
 * 32 bytes), or a key file (FACTORSTREAM_MASTER_KEY_FILE, or a default path such as the one
 * beside the SQLite database), created with mode 0600 on first use when allowed.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { VaultError } from '../../domain/ports.ts';
import { MASTER_KEY_BYTES } from './crypto.ts';

export interface MasterKey {
  readonly key: Uint8Array;
  readonly source: 'env' | 'file';
  readonly path?: string;
  /** True when this call created the key file. */
  readonly created: boolean;
}

/** Parses a key written as hex or base64; the message never contains the key. */
export const parseMasterKey = (text: string, where: string): Uint8Array => {
  const t = text.trim();
  const bytes = /^[0-9a-fA-F]+$/.test(t) ? Buffer.from(t, 'hex') : /^[A-Za-z0-9+/_-]+={0,2}$/.test(t) ? Buffer.from(t, 'base64') : null;
  if (bytes === null || bytes.length !== MASTER_KEY_BYTES)
    throw new VaultError(
      'wrong-master-key',
      `${where} does not hold a master key: expected ${MASTER_KEY_BYTES} bytes as 64 hex characters or base64` +
        (bytes === null ? '' : ` (it decodes to ${bytes.length} bytes)`),
    );
  return bytes;
};

const writeKeyFile = (path: string, key: Uint8Array, flags: 'wx' | 'w'): void => {
  const fd = openSync(path, flags, 0o600);
  try {
    writeSync(fd, `${Buffer.from(key).toString('hex')}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
};

export const loadMasterKey = (options: {
  readonly env?: NodeJS.ProcessEnv;
  /** The key file to use when neither variable is set. */
  readonly defaultFile?: string;
  /** Create the key file when it does not exist. */
  readonly create?: boolean;
}): MasterKey => {
  const env = options.env ?? process.env;
  if (env.FACTORSTREAM_MASTER_KEY) return { key: parseMasterKey(env.FACTORSTREAM_MASTER_KEY, 'FACTORSTREAM_MASTER_KEY'), source: 'env', created: false };
  const path = env.FACTORSTREAM_MASTER_KEY_FILE || options.defaultFile;
  if (!path) throw new VaultError('no-key', 'no master key: set FACTORSTREAM_MASTER_KEY or FACTORSTREAM_MASTER_KEY_FILE');
  if (!existsSync(path)) {
    if (!options.create)
      throw new VaultError('no-key', `the master key file ${path} does not exist; set FACTORSTREAM_MASTER_KEY or FACTORSTREAM_MASTER_KEY_FILE`);
    const key = randomBytes(MASTER_KEY_BYTES);
    try {
      writeKeyFile(path, key, 'wx');
    } catch (e) {
      throw new VaultError('unavailable', `cannot create the master key file ${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
    return { key, source: 'file', path, created: true };
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new VaultError('unavailable', `cannot read the master key file ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return { key: parseMasterKey(text, `the master key file ${path}`), source: 'file', path, created: false };
};

/** True when a key file can be read by others than its owner. */
export const keyFileTooOpen = (path: string): boolean => (statSync(path).mode & 0o077) !== 0;

/**
 * Replaces a key file with a new key, crash-safely: the new key is written to `<path>.new`
 * first; `commit` (the re-wrap of every data key) runs; then the new file is renamed over
 * the old one. A crash in between leaves both files, and loadRotatingMasterKey finds the
 * one that matches.
 */
export const rotateKeyFile = async (path: string, newKey: Uint8Array, commit: () => Promise<void>): Promise<void> => {
  const next = `${path}.new`;
  writeKeyFile(next, newKey, 'w');
  await commit();
  renameSync(next, path);
};

/** The pending `<path>.new` key of an interrupted rotation, if there is one. */
export const pendingRotationKey = (path: string): Uint8Array | null =>
  existsSync(`${path}.new`) ? parseMasterKey(readFileSync(`${path}.new`, 'utf8'), `the key file ${path}.new`) : null;

/** Completes an interrupted rotation whose new key turned out to be the valid one. */
export const finishRotation = (path: string): void => renameSync(`${path}.new`, path);
