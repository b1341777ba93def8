/**
 * The envelope encryption every vault shares: AES-256-GCM with a per-device data key, the
 * data key wrapped by a master key, and code digests as HMAC-SHA256 under a key derived
 * from the data key (HKDF), so that removing a device's data key destroys all three.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { VaultError, type Digester, type EventSigner } from '../../domain/ports.ts';

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
const unb64 = (s: string) => Buffer.from(s, 'base64url');

export const DATA_KEY_BYTES = 32;
export const MASTER_KEY_BYTES = 32;

/** `v1.<iv>.<ciphertext>.<tag>`, base64url; `aad` binds the value to its owner. */
export const sealWith = (key: Uint8Array, plaintext: Uint8Array, aad: string): string => {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return `v1.${b64(iv)}.${b64(ct)}.${b64(cipher.getAuthTag())}`;
};

export const openWith = (key: Uint8Array, sealed: string, aad: string, what: string): Uint8Array => {
  const parts = sealed.split('.');
  if (parts.length !== 4 || parts[0] !== 'v1') throw new VaultError('tampered', `${what} is not a sealed value of a known version`);
  const [, iv, ct, tag] = parts as [string, string, string, string];
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, unb64(iv));
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(unb64(tag));
    return Buffer.concat([decipher.update(unb64(ct)), decipher.final()]);
  } catch {
    throw new VaultError('tampered', `${what} failed authentication: it was altered, truncated, or sealed under another key`);
  }
};

export const newDataKey = (): Uint8Array => randomBytes(DATA_KEY_BYTES);

export const digesterFor = (dataKey: Uint8Array): Digester => {
  const macKey = Buffer.from(hkdfSync('sha256', dataKey, Buffer.alloc(0), 'factorstream code digest v1', 32));
  return (code: string) => createHmac('sha256', macKey).update(code, 'utf8').digest('base64url');
};

export const checkMasterKey = (key: Uint8Array): void => {
  if (key.length !== MASTER_KEY_BYTES)
    throw new VaultError('wrong-master-key', `a master key must be ${MASTER_KEY_BYTES} bytes (got ${key.length})`);
};

/**
 * The event signer of a master key: its MAC key is derived from the master key (HKDF), its id
 * is a keyed fingerprint of that key (it names the key without revealing it).
 */
export const eventMacKeyOf = (master: Uint8Array): Uint8Array =>
  new Uint8Array(hkdfSync('sha256', master, Buffer.alloc(0), 'factorstream event mac v1', 32));

export const signerFor = (macKey: Uint8Array): EventSigner => {
  const key = Buffer.from(macKey);
  return {
    keyId: createHmac('sha256', key).update('factorstream event mac key id v1').digest('hex').slice(0, 16),
    mac: (text) => createHmac('sha256', key).update(text, 'utf8').digest('base64url'),
  };
};
