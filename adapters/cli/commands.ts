/**
 * The commands' bodies: each takes the runtime and its parsed options and returns a Result.
 */
import { randomBytes } from 'node:crypto';
import type { Either } from 'fp-ts/lib/Either.js';
import { createChainVerifier, type ChainBreak } from '../../domain/chain.ts';
import type { DeviceView, EngineError, HistoryEntry, Options, VerifyOutcome } from '../../app/engine.ts';
import type { RegisterInput } from '../../domain/inputs.ts';
import { parseOtpauthUri } from '../../domain/kinds/uri.ts';
import { rotateKeyFile } from '../vault/master-key.ts';
import { EXIT, exitFor, failed, iso, ok, type Result } from './output.ts';
import { printable } from './printable.ts';
import { parseHexSecret, parseInstant, parseInteger, UsageError } from './parse.ts';
import { terminalQr, writeQrFile } from './qr.ts';
import type { GlobalOptions, Runtime } from './runtime.ts';

type Opts = Record<string, string | boolean | undefined>;

const str = (o: Opts, name: string): string | undefined => (typeof o[name] === 'string' ? (o[name] as string) : undefined);
const need = (o: Opts, name: string, flag: string): string => {
  const v = str(o, name);
  if (v === undefined || v === '') throw new UsageError(`${flag} is required`);
  return v;
};

const commandOptions = (g: GlobalOptions): Options => ({ ...(g.actor ? { actor: g.actor } : {}), ...(g.now === undefined ? {} : { now: g.now }) });

const engineError = (e: EngineError): Result => failed(exitFor(e), e.code, e.message);

const unwrap = <A>(r: Either<EngineError, A>, f: (a: A) => Result): Result => (r._tag === 'Left' ? engineError(r.left) : f(r.right));

const verifyResult = (command: string, r: VerifyOutcome): Result => {
  if (r.ok) return ok({ command, ...r }, [`accepted: ${r.persistentId}${command === 'confirm' ? ' (confirmed)' : ''}`]);
  const json = { command, ...r, ...(r.retryAt === undefined ? {} : { retryAt: iso(r.retryAt) }) };
  const text =
    r.reason === 'throttled'
      ? [`refused: too many failed attempts (${r.failureCount}); try again at ${iso(r.retryAt)}`]
      : [`rejected: ${r.reason}`];
  return { exit: EXIT.rejected, json, text };
};

export const viewJson = (v: DeviceView): Record<string, unknown> => ({
  ...v,
  createdAt: iso(v.createdAt),
  lastUsedAt: iso(v.lastUsedAt),
  throttle: { ...v.throttle, lockedUntil: iso(v.throttle.lockedUntil), lastFailureAt: iso(v.throttle.lastFailureAt) },
  cooldown: { lastGeneratedAt: iso(v.cooldown.lastGeneratedAt), nextChallengeAt: iso(v.cooldown.nextChallengeAt) },
  ...(v.pendingCode ? { pendingCode: { validUntil: iso(v.pendingCode.validUntil) } } : {}),
});

const status = (v: DeviceView): string =>
  [
    v.removed ? 'removed' : v.confirmed ? 'confirmed' : 'unconfirmed',
    v.throttle.lockedUntil !== null ? `locked until ${iso(v.throttle.lockedUntil)}` : null,
    v.throttle.failureCount > 0 ? `${v.throttle.failureCount} failure(s)` : null,
    v.cooldown.nextChallengeAt !== null ? `cooldown until ${iso(v.cooldown.nextChallengeAt)}` : null,
    v.backupCodesLeft !== undefined ? `${v.backupCodesLeft} code(s) left` : null,
  ]
    .filter(Boolean)
    .join(', ');

export const viewText = (v: DeviceView): string[] => [
  `${v.persistentId}  "${printable(v.name)}"  user ${printable(v.userId)}`,
  `  status:     ${status(v)}`,
  `  created:    ${iso(v.createdAt)}`,
  `  last used:  ${iso(v.lastUsedAt) ?? 'never'}`,
  ...(v.totp
    ? [`  totp:       ${v.totp.algorithm}, ${v.totp.digits} digits, step ${v.totp.step} s, t0 ${v.totp.t0}, tolerance ${v.totp.tolerance}, drift ${v.totp.drift}, last step ${v.totp.lastStep}`]
    : []),
  ...(v.hotp ? [`  hotp:       ${v.hotp.algorithm}, ${v.hotp.digits} digits, look-ahead ${v.hotp.tolerance}, next counter ${v.hotp.counter}`] : []),
  ...(v.pendingCode ? [`  code valid until ${iso(v.pendingCode.validUntil)}`] : []),
  ...(v.origin ? [`  imported from ${v.origin.system} ${v.origin.reference}`] : []),
];

// ---- enrol --------------------------------------------------------------------------------

export const enroll = async (rt: Runtime, g: GlobalOptions, kind: string, o: Opts): Promise<Result> => {
  const userId = need(o, 'user', '--user');
  const name = str(o, 'name');
  const common = { userId, ...(name !== undefined ? { name } : {}), ...(o.confirmed ? { confirmed: true } : {}) };
  let input: RegisterInput;
  if (kind === 'totp' || kind === 'hotp') {
    if (str(o, 'secret') !== undefined && str(o, 'uri') !== undefined) throw new UsageError('give --secret or --uri, not both');
    const fromUri = str(o, 'uri') !== undefined ? parseOtpauthUri(str(o, 'uri')!) : null;
    if (fromUri && fromUri._tag === 'Left') throw new UsageError(fromUri.left);
    const uri = fromUri?._tag === 'Right' ? fromUri.right : null;
    if (uri && uri.kind !== kind) throw new UsageError(`the --uri is for a ${uri.kind} device, not ${kind}`);
    const secret = str(o, 'secret') !== undefined ? parseHexSecret(str(o, 'secret')!, '--secret') : uri?.key;
    const digits = str(o, 'digits') !== undefined ? parseInteger(str(o, 'digits')!, '--digits', 0, 99) : uri?.digits;
    const algorithm = str(o, 'algorithm')?.toUpperCase() ?? uri?.algorithm;
    const tolerance =
      str(o, 'tolerance') !== undefined
        ? parseInteger(str(o, 'tolerance')!, '--tolerance', 0, kind === 'totp' ? 10 : 100)
        : kind === 'totp'
          ? g.config.totpTolerance
          : g.config.hotpTolerance;
    const shared = {
      ...common,
      ...(secret !== undefined ? { secret } : {}),
      ...(digits !== undefined ? { digits } : {}),
      ...(algorithm !== undefined ? { algorithm } : {}),
      ...(tolerance !== undefined ? { tolerance } : {}),
    };
    if (kind === 'totp') {
      if (str(o, 'counter') !== undefined) throw new UsageError('--counter is for hotp devices');
      const step = str(o, 'step') !== undefined ? parseInteger(str(o, 'step')!, '--step', 1, 86_400) : (uri?.step ?? undefined);
      const t0 = str(o, 't0') !== undefined ? parseInteger(str(o, 't0')!, '--t0', 0, 8_640_000_000_000) : undefined;
      input = { kind: 'totp', ...shared, ...(step !== undefined ? { step } : {}), ...(t0 !== undefined ? { t0 } : {}) } as RegisterInput;
    } else {
      if (str(o, 'step') !== undefined || str(o, 't0') !== undefined) throw new UsageError('--step and --t0 are for totp devices');
      const counter = str(o, 'counter') !== undefined ? parseInteger(str(o, 'counter')!, '--counter', 0, Number.MAX_SAFE_INTEGER) : (uri?.counter ?? undefined);
      input = { kind: 'hotp', ...shared, ...(counter !== undefined ? { counter } : {}) } as RegisterInput;
    }
  } else if (kind === 'email' || kind === 'sms') {
    input = { kind, ...common, destination: need(o, 'to', '--to') } as RegisterInput;
  } else {
    throw new UsageError(`cannot enroll "${kind.slice(0, 20)}": the kinds are totp, hotp, email and sms (backup codes: factorstream backup-codes)`);
  }
  const r = await rt.engine.register(input, commandOptions(g))();
  if (r._tag === 'Left') return engineError(r.left);
  const d = r.right;
  const text = [`enrolled ${d.kind} device for ${printable(userId)}`, `  device id:      ${d.deviceId}`, `  persistent id:  ${d.persistentId}`];
  let qrFile: string | undefined;
  if (d.otpauthUri) {
    text.push(`  otpauth URI:    ${d.otpauthUri}`);
    if (str(o, 'qr')) {
      qrFile = str(o, 'qr')!;
      await writeQrFile(qrFile, d.otpauthUri);
      text.push(`  QR code:        ${qrFile}`);
    }
    if (!o.json) text.push('', (await terminalQr(d.otpauthUri)).trimEnd(), '');
    if (!o.confirmed) text.push(`confirm it with the first code the app shows: factorstream confirm --device ${d.deviceId} --token <code>`);
  } else if (!o.confirmed) {
    text.push(`confirm it: factorstream challenge --device ${d.deviceId}, then factorstream confirm --device ${d.deviceId} --token <code>`);
  }
  return ok({ command: 'enroll', ...d, ...(qrFile ? { qrFile } : {}) }, text);
};

// ---- verification -----------------------------------------------------------------------------

export const verify = async (rt: Runtime, g: GlobalOptions, command: 'verify' | 'confirm', o: Opts): Promise<Result> => {
  const device = need(o, 'device', '--device');
  // The token is user input: whatever it is (even empty) it is judged, and recorded.
  const token = typeof o.token === 'string' ? o.token : '';
  const r = await (command === 'confirm' ? rt.engine.confirm : rt.engine.verify)(device, token, commandOptions(g))();
  return unwrap(r, (v) => verifyResult(command, v));
};

export const match = async (rt: Runtime, g: GlobalOptions, o: Opts): Promise<Result> => {
  const userId = need(o, 'user', '--user');
  const token = typeof o.token === 'string' ? o.token : '';
  const r = await rt.engine.match(userId, token, commandOptions(g))();
  return unwrap(r, (m) =>
    m.ok
      ? ok({ command: 'match', ...m }, [`accepted: ${m.persistentId}`])
      : {
          exit: EXIT.rejected,
          json: { command: 'match', ...m, ...(m.retryAt === undefined ? {} : { retryAt: iso(m.retryAt) }) },
          text: [m.reason === 'throttled' ? `refused: too many failed matches (${m.failureCount}); try again at ${iso(m.retryAt)}` : 'rejected: no device accepted the code'],
        },
  );
};

export const challenge = async (rt: Runtime, g: GlobalOptions, o: Opts): Promise<Result> => {
  const r = await rt.engine.challenge(need(o, 'device', '--device'), commandOptions(g))();
  return unwrap(r, (c) => {
    if (c.ok) return ok({ command: 'challenge', ...c, validUntil: iso(c.validUntil) }, [`sent a code; it is valid until ${iso(c.validUntil)}`]);
    if (c.reason === 'cooldown')
      return { exit: EXIT.rejected, json: { command: 'challenge', ...c, retryAt: iso(c.retryAt) }, text: [`refused: a code was sent recently; ask again at ${iso(c.retryAt)}`] };
    return { exit: EXIT.failure, json: { command: 'challenge', ...c }, text: [`delivery failed: ${c.message}`] };
  });
};

// ---- devices ----------------------------------------------------------------------------------

export const backupCodes = async (rt: Runtime, g: GlobalOptions, o: Opts): Promise<Result> => {
  const count = str(o, 'count') !== undefined ? parseInteger(str(o, 'count')!, '--count', 1, 100) : undefined;
  const target = str(o, 'device') !== undefined ? { device: str(o, 'device')! } : { userId: need(o, 'user', '--user or --device') };
  const r = await rt.engine.issueBackupCodes(target, { ...commandOptions(g), ...(count === undefined ? {} : { count }) })();
  return unwrap(r, (b) =>
    ok({ command: 'backup-codes', ...b }, [
      `backup codes for ${b.persistentId} — shown this once; each works once, and they replace any earlier set:`,
      ...b.codes.map((c) => `  ${c}`),
    ]),
  );
};

export const devices = async (rt: Runtime, o: Opts): Promise<Result> => {
  if (o.confirmed && o.unconfirmed) throw new UsageError('give --confirmed or --unconfirmed, not both');
  const filter = o.confirmed ? { confirmed: true } : o.unconfirmed ? { confirmed: false } : {};
  const userId = need(o, 'user', '--user');
  const r = await rt.engine.userDevices(userId, filter)();
  return unwrap(r, (list) =>
    ok(
      { command: 'devices', userId, devices: list.map(viewJson) },
      list.length === 0 ? [`${printable(userId)} has no devices`] : list.map((v) => `${v.persistentId}  ${v.kind.padEnd(6)} "${printable(v.name)}"  ${status(v)}`),
    ),
  );
};

export const show = async (rt: Runtime, o: Opts): Promise<Result> => {
  const device = need(o, 'device', '--device');
  const at = str(o, 'at') !== undefined ? parseInstant(str(o, 'at')!, '--at') : undefined;
  const r = await (at === undefined ? rt.engine.device(device) : rt.engine.deviceAt(device, at))();
  return unwrap(r, (v) => ok({ command: 'show', ...(at === undefined ? {} : { at: iso(at) }), device: viewJson(v) }, [...(at === undefined ? [] : [`as of ${iso(at)}:`]), ...viewText(v)]));
};

/** One line per event, with nothing secret in it (events hold no secret to begin with). */
export const describeEvent = (h: HistoryEntry): string => {
  const e = h.event;
  const d = e.data as Record<string, unknown>;
  const detail: string[] = [];
  switch (e.type) {
    case 'DeviceRegistered':
      detail.push(`${e.data.config.kind} "${printable(e.data.name)}"${e.data.confirmed ? ' confirmed' : ''}`);
      break;
    case 'TokenVerified':
      detail.push(
        e.data.match.kind === 'totp'
          ? `step ${e.data.match.step}, drift ${e.data.match.drift}`
          : e.data.match.kind === 'hotp'
            ? `counter ${e.data.match.counter}`
            : e.data.match.kind,
      );
      break;
    case 'VerificationRefused':
    case 'MatchRefused':
      detail.push(`${e.data.failureCount} failure(s), locked until ${iso(e.data.lockedUntil)}`);
      break;
    case 'ChallengeGenerated':
      detail.push(`valid until ${iso(e.data.validUntil)}`);
      break;
    case 'ChallengeRefused':
      detail.push(`retry at ${iso(e.data.retryAt)}`);
      break;
    case 'StaticTokensIssued':
      detail.push(`${e.data.digests.length} codes`);
      break;
    default:
      for (const k of ['reason', 'name', 'kind', 'deviceId', 'devicesTried'])
        if (d[k] !== undefined) detail.push(`${k} ${printable(String(d[k]))}`);
  }
  const client = h.metadata.client ? ` [${printable([h.metadata.client.ip, h.metadata.client.userAgent].filter(Boolean).join(' '))}]` : '';
  return `${String(h.version).padStart(4)}  ${iso(e.data.at)}  ${e.type.padEnd(22)} ${detail.join(', ')}  by ${printable(h.metadata.actor)}${client}`;
};

export const history = async (rt: Runtime, o: Opts): Promise<Result> => {
  const device = str(o, 'device');
  const user = str(o, 'user');
  if ((device === undefined) === (user === undefined)) throw new UsageError('give --device ID or --user U');
  const r = await (device !== undefined ? rt.engine.history(device) : rt.engine.userHistory(user!))();
  return unwrap(r, (entries) =>
    ok(
      {
        command: 'history',
        events: entries.map((h) => ({ version: h.version, type: h.event.type, data: h.event.data, metadata: h.metadata, recordedAt: iso(h.recordedAt) })),
      },
      entries.length === 0 ? ['no events'] : entries.map(describeEvent),
    ),
  );
};

export const unlock = async (rt: Runtime, g: GlobalOptions, o: Opts): Promise<Result> => {
  const reason = need(o, 'reason', '--reason');
  const device = str(o, 'device');
  const user = str(o, 'user');
  if ((device === undefined) === (user === undefined)) throw new UsageError('give --device ID (a device lock) or --user U (the match lock)');
  if (user !== undefined) {
    const r = await rt.engine.resetUserThrottle(user, reason, commandOptions(g))();
    return unwrap(r, () => ok({ command: 'unlock', userId: user }, [`unlocked matching for ${printable(user)}`]));
  }
  const r = await rt.engine.resetThrottle(device!, reason, commandOptions(g))();
  return unwrap(r, (v) => ok({ command: 'unlock', device: viewJson(v) }, [`unlocked ${v.persistentId}`]));
};

export const rename = async (rt: Runtime, g: GlobalOptions, o: Opts): Promise<Result> => {
  const r = await rt.engine.rename(need(o, 'device', '--device'), need(o, 'name', '--name'), commandOptions(g))();
  return unwrap(r, (v) => ok({ command: 'rename', device: viewJson(v) }, [`renamed ${v.persistentId} to "${printable(v.name)}"`]));
};

export const remove = async (rt: Runtime, g: GlobalOptions, o: Opts): Promise<Result> => {
  const r = await rt.engine.remove(need(o, 'device', '--device'), str(o, 'reason'), commandOptions(g))();
  return unwrap(r, (v) =>
    ok({ command: 'remove', device: viewJson(v) }, [`removed ${v.persistentId}; its key is destroyed, its history stays`]),
  );
};

export const auditVerify = async (rt: Runtime, o: Opts): Promise<Result> => {
  const device = str(o, 'device');
  const user = str(o, 'user');
  if (device !== undefined && user !== undefined) throw new UsageError('give --device or --user, not both');
  const broken: ChainBreak[] = [];
  let checked = 0;
  let streams = 0;
  if (device !== undefined || user !== undefined) {
    const r = await rt.engine.verifyChain(device !== undefined ? { device } : { userId: user! })();
    if (r._tag === 'Left') return engineError(r.left);
    checked = r.right.checked;
    streams = 1;
    if (r.right.broken) broken.push(r.right.broken);
  } else {
    // The whole log in one pass, a page at a time; only each stream's last hash is kept.
    const verifier = createChainVerifier();
    let after: string | null = null;
    for (;;) {
      const page = await rt.store.readAll({ after, limit: 1000 });
      for (const e of page.events) {
        const b = verifier.push(e);
        if (b && !broken.some((x) => x.streamName === b.streamName)) broken.push(b);
      }
      if (page.events.length === 0) break;
      after = page.last;
    }
    ({ checked, streams } = verifier.summary());
  }
  const summary = `checked ${checked} event(s) in ${streams} stream(s)`;
  if (broken.length === 0) return ok({ command: 'audit verify', checked, streams, broken: [] }, [`${summary}: every link holds`]);
  return {
    exit: EXIT.rejected,
    json: { ok: false, command: 'audit verify', checked, streams, broken },
    text: [`${summary}: ${broken.length} stream(s) with a broken link`, ...broken.map((b) => `  ${b.streamName} at version ${b.version}: ${b.problem}`)],
  };
};

export const erase = async (rt: Runtime, g: GlobalOptions, o: Opts): Promise<Result> => {
  const userId = need(o, 'user', '--user');
  const r = await rt.engine.eraseUser(userId, need(o, 'reason', '--reason'), commandOptions(g))();
  return unwrap(r, ({ removed }) =>
    ok({ command: 'erase', userId, removed }, [
      `erased ${printable(userId)}: removed ${removed.length} device(s) and destroyed their keys; the history stays, and no secret, code or address in it can be read again`,
    ]),
  );
};

export const keysRotate = async (rt: Runtime): Promise<Result> => {
  const newKey = randomBytes(32);
  let count = 0;
  if (rt.master.source === 'file' && rt.master.path) {
    await rotateKeyFile(rt.master.path, newKey, async () => {
      count = await rt.vault.rotateMaster(newKey);
    });
    return ok({ command: 'keys rotate', rewrapped: count, keyFile: rt.master.path }, [
      `re-wrapped ${count} data key(s) under a new master key, now in ${rt.master.path}; no event was touched`,
    ]);
  }
  count = await rt.vault.rotateMaster(newKey);
  const hex = Buffer.from(newKey).toString('hex');
  return ok({ command: 'keys rotate', rewrapped: count, newMasterKey: hex }, [
    `re-wrapped ${count} data key(s) under a new master key; no event was touched.`,
    `set FACTORSTREAM_MASTER_KEY to the new key now (it is shown this once):`,
    hex,
  ]);
};
