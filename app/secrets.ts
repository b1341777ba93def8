/**
 * Opening a device's secrets through the vault, for the decider: the TOTP/HOTP key (opened
 * once, then kept in memory beside the sealed value it came from; see cacheSize) or the
 * digester of codes (backup codes, e-mail and SMS codes). Forgetting a key is part of
 * destroying it.
 */
import type { DecideContext } from '../domain/decide.ts';
import type { RegisteredDevice } from '../domain/device.ts';
import type { Vault } from '../domain/ports.ts';
import { ClockCache } from '../domain/stream-cache.ts';

export type Secrets = ReturnType<typeof createSecrets>;

export const createSecrets = (vault: Vault, cacheSize: number) => {
  /** Opened TOTP/HOTP keys by device, with the sealed value they came from. */
  const openedKeys = new ClockCache<{ readonly sealed: string; readonly key: Uint8Array }>(cacheSize);

  /** The device's TOTP/HOTP key, opened by the vault once and then kept (see cacheSize). */
  const openKey = async (deviceId: string, sealed: string): Promise<Uint8Array> => {
    const cached = openedKeys.get(deviceId);
    if (cached !== undefined && cached.sealed === sealed) return cached.key;
    const key = await vault.open(deviceId, sealed);
    openedKeys.set(deviceId, { sealed, key });
    return key;
  };

  /** Forgets what the engine holds of a device whose key is being destroyed. */
  const forgetKey = (deviceId: string) => openedKeys.delete(deviceId);

  /** What the decider needs of the device's secrets. */
  const keysFor = async (d: RegisteredDevice): Promise<Partial<DecideContext>> => {
    switch (d.k.kind) {
      case 'totp':
      case 'hotp':
        return { secret: await openKey(d.deviceId, d.k.config.secret) };
      case 'static':
      case 'email':
      case 'sms':
        return { digest: await vault.digester(d.deviceId) };
    }
  };

  /** Forgets the device's key here and destroys it in the vault. */
  const shred = async (deviceId: string): Promise<void> => {
    forgetKey(deviceId);
    await vault.shred(deviceId);
  };

  return { keysFor, forgetKey, shred };
};
