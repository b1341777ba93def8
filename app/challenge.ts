/**
 * A challenge to an e-mail or SMS device: a code drawn, its digest recorded with its validity
 * (or the cooldown refusal), then the code delivered through the TokenSender. A delivery that
 * fails is recorded too, with the code and destination scrubbed from the reason.
 */
import { NUMERIC_CODE_BYTES, numericCodeFromBytes } from '../domain/kinds/token.ts';
import { mustDevice } from './command-targets.ts';
import type { EngineContext } from './context.ts';
import { registeredOrFail } from './device-view.ts';
import type { ChallengeOutcome, Options } from './engine-api.ts';
import { err, Failure, must, run } from './errors.ts';

export const challengeDevice = (ctx: EngineContext) => {
  const { vault, sender, random, policy, meta, streams, secrets } = ctx;
  return (device: string, options?: Options) =>
    run(async (): Promise<ChallengeOutcome> => {
      const ref = mustDevice(device);
      const { deviceId } = ref;
      const m = must(meta(options));
      if (!sender) throw new Failure(err('not-configured', 'no TokenSender is configured: the engine cannot deliver codes'));
      const code = numericCodeFromBytes(random.bytes(NUMERIC_CODE_BYTES), policy.codeDigits);
      const done = await streams.onDevice(ref, m, { type: 'GenerateChallenge' }, async (d) => ({
        ...(await secrets.keysFor(d)),
        challengeCode: code,
      }), true);
      const d = registeredOrFail(done.state, deviceId);
      const generated = done.events.find((e) => e.type === 'ChallengeGenerated');
      const refused = done.events.find((e) => e.type === 'ChallengeRefused');
      if (refused?.type === 'ChallengeRefused') return { ok: false, deviceId, reason: 'cooldown', retryAt: refused.data.retryAt };
      if (generated?.type !== 'ChallengeGenerated') throw new Failure(err('internal', 'the challenge produced no outcome'));
      if (done.replayed) return { ok: true, deviceId, validUntil: generated.data.validUntil, replayed: true };
      if (d.k.kind !== 'email' && d.k.kind !== 'sms') throw new Failure(err('wrong-kind', 'not a side-channel device'));
      const destination = Buffer.from(await vault.open(deviceId, d.k.config.destination)).toString('utf8');
      let delivered: { ok: true } | { ok: false; reason: string };
      try {
        delivered = await sender.send({ deviceId, kind: d.k.kind, destination, code, validUntil: generated.data.validUntil });
      } catch (e) {
        delivered = { ok: false, reason: `the sender failed: ${e instanceof Error ? e.name : 'unknown error'}` };
      }
      if (delivered.ok) return { ok: true, deviceId, validUntil: generated.data.validUntil, replayed: false };
      const reason = scrub(delivered.reason, [code, destination]);
      await streams.onDevice(deviceId, { ...m, commandId: `${m.commandId}:delivery-failed`, causationId: m.commandId }, { type: 'RecordDeliveryFailure', reason }, async () => ({}));
      return { ok: false, deviceId, reason: 'delivery-failed', message: reason };
    });
};

/** Removes any occurrence of the given secrets from a message. */
const scrub = (message: string, secrets: readonly string[]): string => {
  let out = String(message).slice(0, 300);
  for (const s of secrets) if (s) out = out.split(s).join('[redacted]');
  return out.length > 0 ? out : 'delivery failed';
};
