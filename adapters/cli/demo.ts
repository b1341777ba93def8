/**
 * `factorstream demo`: a narrated walk through the engine on the configured store (the
 * embedded SQLite file by default). It runs on simulated time that starts now, so the
 * throttle and the cooldown can be shown without waiting.
 */
import { randomBytes } from 'node:crypto';
import { base32 } from '@otplib/plugin-base32-scure';
import { createEngine, type Engine } from '../../app/engine.ts';
import { hotpCode } from '../../domain/kinds/oath.ts';
import type { Delivery, TokenSender } from '../../domain/ports.ts';
import { createConsoleSender } from '../delivery/console.ts';
import { describeEvent } from './commands.ts';
import type { Io } from './io.ts';
import { EXIT, iso, type Result } from './output.ts';
import { terminalQr } from './qr.ts';
import type { GlobalOptions, Runtime } from './runtime.ts';

class DemoFailure extends Error {}

export const runDemo = async (rt: Runtime, g: GlobalOptions, o: Record<string, unknown>, io: Io): Promise<Result> => {
  const quiet = o.json === true;
  const lines: string[] = [];
  const say = (s = '') => {
    if (quiet) lines.push(s);
    else io.stdout(`${s}\n`);
  };
  let now = g.now ?? Date.now();
  const deliveries: Delivery[] = [];
  const console = createConsoleSender({ write: (line) => io.stderr(`${line}\n`) });
  const sender: TokenSender = { send: async (d) => (deliveries.push(d), console.send(d)) };
  const engine: Engine = createEngine({
    store: rt.store,
    vault: rt.vault,
    sender,
    clock: { now: () => now },
    random: { bytes: (n) => randomBytes(n) },
    policy: g.config.policy,
    ...(g.config.issuer === undefined ? {} : { issuer: g.config.issuer }),
  });
  const actor = { actor: g.actor ?? 'demo' };
  const must = async <A>(label: string, te: () => Promise<{ _tag: 'Left'; left: { message: string } } | { _tag: 'Right'; right: A }>) => {
    const r = await te();
    if (r._tag === 'Left') throw new DemoFailure(`${label}: ${r.left.message}`);
    return r.right;
  };
  const user = typeof o.user === 'string' ? o.user : `demo-${randomBytes(3).toString('hex')}`;
  const step = (n: number, title: string) => say(`\n${n}. ${title}`);
  const shown = (r: { ok: boolean; reason?: string; retryAt?: number; failureCount?: number }) =>
    r.ok ? 'accepted' : r.reason === 'throttled' ? `refused (throttled after ${r.failureCount} failure(s) until ${iso(r.retryAt)})` : `rejected (${r.reason})`;

  try {
    say(`factorstream demo on ${g.store} — user "${user}", simulated time from ${iso(now)}`);

    step(1, 'Enrol an authenticator app (TOTP, RFC 6238)');
    const totp = await must('enroll', engine.register({ kind: 'totp', userId: user, name: 'Phone' }, actor));
    say(`   device ${totp.persistentId}`);
    say(`   scan this with an authenticator app (or use the URI):\n   ${totp.otpauthUri}`);
    if (!quiet) say((await terminalQr(totp.otpauthUri!)).trimEnd());
    const key = base32.decode(totp.secretBase32!);
    const code = () => hotpCode(key, Math.floor(now / 1000 / 30), 6);

    step(2, 'Confirm it with the first code the app shows');
    const first = code();
    say(`   the app shows ${first}: ${shown(await must('confirm', engine.confirm(totp.deviceId, first, actor)))}`);

    step(3, 'A stolen code cannot be replayed');
    say(`   ${first} again: ${shown(await must('verify', engine.verify(totp.deviceId, first, actor)))}`);

    step(4, 'Guessing is throttled: 1, 2, 4, 8 … seconds after each failure');
    now += 1_000;
    for (const guess of ['000000', '111111', '222222']) {
      const r = await must('verify', engine.verify(totp.deviceId, guess, actor));
      say(`   guess ${guess} at ${iso(now)}: ${shown(r)}`);
      now += r.ok || r.reason !== 'throttled' ? 0 : 500;
    }
    const lockedAt = now;
    now += 250;
    const locked = await must('show', engine.device(totp.deviceId));
    say(`   now: ${locked.throttle.failureCount} failures, locked until ${iso(locked.throttle.lockedUntil)}`);

    step(5, 'An administrator unlocks it (recorded with who and why)');
    await must('unlock', engine.resetThrottle(totp.deviceId, 'user called the help desk', { actor: 'helpdesk:alice' }));
    now += 31_000;
    const fresh = code();
    say(`   unlocked; the next code ${fresh}: ${shown(await must('verify', engine.verify(totp.deviceId, fresh, actor)))}`);

    step(6, 'Backup codes: shown once, stored only as keyed digests, each works once');
    const backup = await must('backup codes', engine.issueBackupCodes({ userId: user }, actor));
    say(`   ${backup.codes.join('  ')}`);
    const used = backup.codes[0]!;
    say(`   match(${user}, ${used}): ${shown(await must('match', engine.match(user, used, actor)))}`);
    say(`   match(${user}, ${used}) again: ${shown(await must('match', engine.match(user, used, actor)))}`);

    step(7, 'An e-mail device: a 6-digit code, valid 300 s, with a 60 s cooldown between codes');
    const email = await must('enroll email', engine.register({ kind: 'email', userId: user, destination: `${user}@example.com`, confirmed: true }, actor));
    const c1 = await must('challenge', engine.challenge(email.deviceId, actor));
    say(`   challenge: ${c1.ok ? `code sent (see stderr), valid until ${iso(c1.validUntil)}` : c1.reason}`);
    now += 10_000;
    const c2 = await must('challenge', engine.challenge(email.deviceId, actor));
    say(`   ask again 10 s later: ${c2.ok ? 'sent' : c2.reason === 'cooldown' ? `refused, cooldown until ${iso(c2.retryAt)}` : c2.reason}`);
    const delivered = deliveries[deliveries.length - 1]!;
    say(`   the user types the code from the e-mail: ${shown(await must('verify', engine.verify(email.deviceId, delivered.code, actor)))}`);

    step(8, 'Time travel: the TOTP device as it was while it was locked');
    const then = await must('show', engine.deviceAt(totp.deviceId, lockedAt));
    say(`   at ${iso(lockedAt)}: ${then.throttle.failureCount} failures, locked until ${iso(then.throttle.lockedUntil)}`);
    const nowView = await must('show', engine.device(totp.deviceId));
    say(`   now: ${nowView.throttle.failureCount} failures, last used ${iso(nowView.lastUsedAt)}`);

    step(9, 'Its history is the event stream (no secret, code or address in it)');
    for (const h of await must('history', engine.history(totp.deviceId))) say(`   ${describeEvent(h)}`);

    step(10, 'Remove it: the key is destroyed, the history stays');
    await must('remove', engine.remove(totp.deviceId, 'demo finished', actor));
    const after = await engine.verify(totp.deviceId, code(), actor)();
    say(`   verify after removal: ${after._tag === 'Left' ? `error ${after.left.code}: ${after.left.message}` : shown(after.right)}`);

    say(`\nDone. Look again with: factorstream devices --user ${user}   factorstream history --device ${email.deviceId}`);
    return { exit: EXIT.ok, json: { ok: true, command: 'demo', user, totp: totp.persistentId, email: email.persistentId, transcript: lines }, text: [] };
  } catch (e) {
    if (e instanceof DemoFailure) return { exit: EXIT.failure, json: { ok: false, error: { code: 'demo', message: e.message } }, text: [] };
    throw e;
  }
};
