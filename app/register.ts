/**
 * Registering a device: the input checked with the domain's codecs, a data key created in the
 * vault, the secret drawn (or taken) and sealed, the device attached to its user's stream and
 * then registered on its own. Answers the otpauth URI and base32 key once, for TOTP and HOTP.
 */
import { isLeft } from 'fp-ts/lib/Either.js';
import type { Decoder } from 'io-ts';
import { decodeWith, type Kind } from '../domain/codecs.ts';
import type { DeviceConfig } from '../domain/events.ts';
import { deviceIdFor, persistentId } from '../domain/ids.ts';
import { KindInput, registerInputCodecs, type RegisterInput } from '../domain/inputs.ts';
import { newKeyBytes } from '../domain/kinds/oath.ts';
import { otpauthUri, toBase32 } from '../domain/kinds/uri.ts';
import type { EngineContext } from './context.ts';
import { registeredOrFail } from './device-view.ts';
import type { Options, Registered } from './engine-api.ts';
import { err, Failure, must, run } from './errors.ts';

const DEFAULT_NAMES: Record<Kind, string> = {
  totp: 'Authenticator app',
  hotp: 'Hardware token',
  static: 'Backup codes',
  email: 'E-mail',
  sms: 'SMS',
};

export const registerDevice = (ctx: EngineContext) => {
  const { vault, random, issuer, meta, streams } = ctx;
  return (input: RegisterInput, options?: Options) =>
    run(async (): Promise<Registered> => {
      const m = must(meta(options));
      const kind = decodeWith(KindInput, (input as { kind?: unknown } | null)?.kind);
      if (isLeft(kind)) throw new Failure(err('invalid-command', kind.left));
      const decoded = decodeWith(registerInputCodecs[kind.right] as unknown as Decoder<unknown, RegisterInput>, input);
      if (isLeft(decoded)) throw new Failure(err('invalid-command', decoded.left));
      const i = decoded.right;
      const deviceId = deviceIdFor(m.commandId);
      await vault.createDeviceKey(deviceId);

      let config: DeviceConfig;
      let key: Uint8Array | undefined;
      let pendingCode: { codeDigest: string; validUntil: number } | undefined;
      switch (i.kind) {
        case 'totp': {
          const algorithm = i.algorithm ?? 'SHA1';
          key = i.secret ?? random.bytes(newKeyBytes[algorithm]);
          config = {
            kind: 'totp',
            secret: await vault.seal(deviceId, key),
            algorithm,
            digits: i.digits ?? 6,
            step: i.step ?? 30,
            t0: i.t0 ?? 0,
            tolerance: i.tolerance ?? 1,
            drift: i.drift ?? 0,
            lastStep: i.lastStep ?? -1,
          };
          break;
        }
        case 'hotp': {
          const algorithm = i.algorithm ?? 'SHA1';
          key = i.secret ?? random.bytes(newKeyBytes[algorithm]);
          config = {
            kind: 'hotp',
            secret: await vault.seal(deviceId, key),
            algorithm,
            digits: i.digits ?? 6,
            tolerance: i.tolerance ?? 5,
            counter: i.counter ?? 0,
          };
          break;
        }
        case 'static':
          config = { kind: 'static' };
          break;
        case 'email':
        case 'sms':
          config = { kind: i.kind, destination: await vault.seal(deviceId, Buffer.from(i.destination, 'utf8')) };
          // An imported pending code is kept as a challenge's is: a keyed digest, never the code.
          if (i.pendingCode) pendingCode = { codeDigest: (await vault.digester(deviceId))(i.pendingCode.code), validUntil: i.pendingCode.validUntil };
          break;
      }
      // The user stream first: a crash in between leaves a reference to a device that does
      // not exist yet (skipped by readers), never a device its user cannot find.
      await streams.onUser(i.userId, m, { type: 'AttachDevice', deviceId, kind: i.kind });
      const done = await streams.onDevice(deviceId, m, {
        type: 'RegisterDevice',
        deviceId,
        userId: i.userId,
        name: i.name ?? DEFAULT_NAMES[i.kind],
        confirmed: i.confirmed ?? i.kind === 'static',
        config,
        ...(i.origin ? { origin: i.origin } : {}),
        ...(i.throttle ? { throttle: i.throttle } : {}),
        ...(pendingCode ? { pendingCode } : {}),
      }, async () => ({}), true);
      const d = registeredOrFail(done.state, deviceId);
      const base = { deviceId, persistentId: persistentId(d.k.kind, deviceId), kind: d.k.kind, replayed: done.replayed };
      if (d.k.kind === 'totp' || d.k.kind === 'hotp') {
        // On a replay the key is the stored one, not the one drawn for this attempt.
        const stored = done.replayed ? await vault.open(deviceId, d.k.config.secret) : key!;
        const c = d.k.config;
        const uri = otpauthUri({
          kind: d.k.kind,
          key: stored,
          account: d.userId,
          issuer,
          algorithm: c.algorithm,
          digits: c.digits,
          ...(c.kind === 'totp' ? { step: c.step } : { counter: c.counter }),
        });
        return { ...base, otpauthUri: uri, secretBase32: toBase32(stored) };
      }
      return base;
    });
};
