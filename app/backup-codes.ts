/**
 * Backup codes (django-otp's static device): codes drawn, or imported, and stored as digests
 * on the user's static device, which is registered on first use.
 */
import { isLeft } from 'fp-ts/lib/Either.js';
import { persistentId } from '../domain/ids.ts';
import { backupCodeFromBytes, parseBackupCode } from '../domain/kinds/token.ts';
import { mustDevice, type DeviceRef } from './command-targets.ts';
import type { EngineContext } from './context.ts';
import { registeredOrFail } from './device-view.ts';
import type { BackupCodes, Engine, Options } from './engine-api.ts';
import { err, Failure, must, run } from './errors.ts';

export const issueBackupCodes = (ctx: EngineContext, register: Engine['register']) => {
  const { random, policy, meta, streams, secrets } = ctx;

  const findStaticDevice = async (userId: string): Promise<string | null> => {
    const user = await streams.loadUser(userId);
    for (const d of user.state.devices) {
      if (d.kind !== 'static') continue;
      const loaded = await streams.loadDevice(d.deviceId);
      if (loaded.state.status === 'registered' && !loaded.state.removed) return d.deviceId;
    }
    return null;
  };

  return (
    target: { readonly device: string } | { readonly userId: string; readonly name?: string },
    options?: Options & { readonly count?: number; readonly codes?: readonly string[] },
  ) =>
    run(async (): Promise<BackupCodes> => {
      const { count, codes: given, ...rest } = options ?? {};
      const m = must(meta(rest));
      if (given !== undefined && (count !== undefined || !Array.isArray(given)))
        throw new Failure(err('invalid-command', 'codes must be a list of codes, given without count'));
      const n = given?.length ?? count ?? policy.backupCodeCount;
      if (!Number.isSafeInteger(n) || n < 1 || n > 100)
        throw new Failure(err('invalid-command', `count must be a whole number from 1 to 100 (got ${String(n).slice(0, 20)})`));
      let deviceId: string;
      let ref: DeviceRef | null = null;
      if ('device' in target) {
        ref = mustDevice(target.device);
        deviceId = ref.deviceId;
      }
      else {
        const found = await findStaticDevice(target.userId);
        if (found) deviceId = found;
        else {
          const r = await register(
            { kind: 'static', userId: target.userId, confirmed: true, ...(target.name ? { name: target.name } : {}) },
            { ...rest, commandId: `${m.commandId}:register` },
          )();
          if (isLeft(r)) throw new Failure(r.left);
          deviceId = r.right.deviceId;
        }
      }
      const codes =
        given?.map((c, i) => {
          const code = parseBackupCode(c);
          if (code === null) throw new Failure(err('invalid-command', `codes[${i}] is not a backup code: 4–16 letters and digits`));
          return code;
        }) ?? Array.from({ length: n }, () => backupCodeFromBytes(random.bytes(5)));
      const done = await streams.onDevice(ref ?? deviceId, m, { type: 'IssueStaticTokens' }, async (d) => ({ ...(await secrets.keysFor(d)), staticCodes: codes }), true);
      const d = registeredOrFail(done.state, deviceId);
      return { deviceId, persistentId: persistentId(d.k.kind, deviceId), codes: done.replayed ? [] : codes, replayed: done.replayed };
    });
};
