/**
 * `factorstream import django-otp FILE`: moves devices out of a Django site that uses
 * django-otp, so that its users keep working without enrolling again.
 *
 * FILE is the output of `python manage.py dumpdata auth.user otp_totp otp_hotp otp_static
 * otp_email` (JSON). Each device is registered with its key, parameters and throttling state
 * as django-otp left them (TOTP step, t0, digits, tolerance, drift, last_t; HOTP digits,
 * tolerance, counter; throttling_failure_count and _timestamp; static tokens; the e-mail
 * address), and its first event says where it came from: origin { system: 'django-otp',
 * reference: '<model label>/<pk>' }, django-otp's own persistent id.
 *
 * The import is idempotent: each device's command id is derived from its model label and pk,
 * so running it again registers nothing new. Keys and tokens are never printed.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { Kind } from '../../domain/codecs.ts';
import { decodeWith } from '../../domain/codecs.ts';
import type { EngineError } from '../../app/engine.ts';
import { deviceIdFor, persistentId } from '../../domain/ids.ts';
import { registerInputCodecs, type RegisterInput } from '../../domain/inputs.ts';
import { MAX_KEY_BYTES, MIN_KEY_BYTES } from '../../domain/kinds/oath.ts';
import { parseBackupCode } from '../../domain/kinds/token.ts';
import { EXIT, exitFor, type Result } from './output.ts';
import { UsageError } from './parse.ts';
import { printable } from './printable.ts';
import type { GlobalOptions, Runtime } from './runtime.ts';

export const ORIGIN_SYSTEM = 'django-otp';

/** The django-otp models this import reads, and the kind each becomes. */
export const DEVICE_MODELS = {
  'otp_totp.totpdevice': 'totp',
  'otp_hotp.hotpdevice': 'hotp',
  'otp_static.staticdevice': 'static',
  'otp_email.emaildevice': 'email',
} as const satisfies Record<string, Kind>;
type DeviceModel = keyof typeof DEVICE_MODELS;
const STATIC_TOKEN_MODEL = 'otp_static.statictoken';
const isDeviceModel = (m: string): m is DeviceModel => Object.hasOwn(DEVICE_MODELS, m);

/** How many static tokens one device can take (the engine's limit for a set of codes). */
const MAX_TOKENS = 100;

export const DUMP_HINT = 'python manage.py dumpdata auth.user otp_totp otp_hotp otp_static otp_email > FILE';

/** One object of a dumpdata file. */
export interface DumpRow {
  readonly model: string;
  readonly pk?: unknown;
  readonly fields: Readonly<Record<string, unknown>>;
}

/** Where a device's user id came from. */
export type UserSource = 'auth.user' | 'natural-key' | 'pk';

export interface PlannedDevice {
  /** django-otp's persistent id: `<model label>/<pk>`. */
  readonly reference: string;
  readonly kind: Kind | null;
  readonly userId: string | null;
  readonly userFrom: UserSource | null;
  /** What to register: present when the device can be imported. Holds the key: never print it. */
  readonly input?: RegisterInput;
  /** Static devices: the tokens to issue (secrets: never print them). */
  readonly tokens?: readonly string[];
  /** Why the device cannot be imported. */
  readonly skip?: string;
  /** Things the user should know about this device's import. */
  readonly notes: readonly string[];
}

export interface ImportPlan {
  readonly devices: readonly PlannedDevice[];
  readonly users: { readonly source: UserSource | 'mixed' | 'none'; readonly note: string };
  readonly warnings: readonly string[];
}

// ---- reading the file -------------------------------------------------------------------------

/** Parses a dumpdata JSON text. Errors never quote the content (it holds keys and tokens). */
export const parseDump = (text: string, file: string): DumpRow[] => {
  let json: unknown;
  try {
    json = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    const position = /position (\d+)/.exec(e instanceof Error ? e.message : '')?.[1];
    throw new UsageError(
      `${file} is not valid JSON${position === undefined ? '' : ` (at character ${position})`}: make it with ${DUMP_HINT} (the JSON format, not XML or YAML)`,
    );
  }
  const bad = (why: string) =>
    new UsageError(`${file} is not a dumpdata file: ${why}; expected a JSON list of {"model", "pk", "fields"} objects as made by ${DUMP_HINT}`);
  if (!Array.isArray(json)) throw bad('it is not a JSON list');
  return json.map((row, i) => {
    if (typeof row !== 'object' || row === null || typeof (row as { model?: unknown }).model !== 'string')
      throw bad(`item ${i + 1} has no "model"`);
    const fields = (row as { fields?: unknown }).fields;
    if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) throw bad(`item ${i + 1} has no "fields" object`);
    return { model: (row as { model: string }).model.toLowerCase(), pk: (row as { pk?: unknown }).pk, fields: fields as Record<string, unknown> };
  });
};

/** The largest dump read (a dump of a million devices is about 300 MB; split bigger ones by model). */
export const MAX_DUMP_BYTES = 64 * 1024 * 1024;

/** Reads at most MAX_DUMP_BYTES of a file or of standard input; a bigger one is refused, not read whole. */
const readBounded = (file: string): string => {
  const fd = file === '-' ? 0 : openSync(file, 'r');
  try {
    if (fd !== 0 && fstatSync(fd).isDirectory()) throw Object.assign(new Error('EISDIR'), { code: 'EISDIR' });
    if (fd !== 0 && fstatSync(fd).size > MAX_DUMP_BYTES) throw new TooBig();
    const chunks: Buffer[] = [];
    let total = 0;
    const chunk = Buffer.alloc(1024 * 1024);
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, chunk, 0, chunk.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
        if ((e as NodeJS.ErrnoException).code === 'EOF') break;
        throw e;
      }
      if (n === 0) break;
      total += n;
      if (total > MAX_DUMP_BYTES) throw new TooBig();
      chunks.push(Buffer.from(chunk.subarray(0, n)));
    }
    return Buffer.concat(chunks).toString('utf8');
  } finally {
    if (fd !== 0) closeSync(fd);
  }
};
class TooBig extends Error {}

export const readDump = (file: string): DumpRow[] => {
  let text: string;
  try {
    text = readBounded(file);
  } catch (e) {
    if (e instanceof TooBig)
      throw new UsageError(`${file} is larger than ${MAX_DUMP_BYTES / 1024 / 1024} MiB: dump the models in parts (one dumpdata per app) and import each`);
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (code ?? 'unreadable')}`);
  }
  return parseDump(text, file);
};

// ---- planning -----------------------------------------------------------------------------------

class Skip extends Error {}

const pkText = (pk: unknown): string | null =>
  (typeof pk === 'number' && Number.isSafeInteger(pk)) || (typeof pk === 'string' && pk.length > 0 && pk.length <= 64 && !/[\s/]/.test(pk))
    ? String(pk)
    : null;

/** A whole-number field, or django-otp's default when the dump does not have it (older versions). */
const whole = (fields: DumpRow['fields'], name: string, fallback: number): number => {
  const v = fields[name];
  if (v === undefined) return fallback;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  throw new Skip(`${name} is not a whole number`);
};

/**
 * A Django DateTimeField as dumped (`2026-01-15T12:00:08.123456Z`: Django keeps microseconds;
 * or naive with USE_TZ=False), in ms. Fractions below a millisecond round the way that never
 * lets factorstream accept what django-otp refuses: `up` (the default) for the start of a
 * throttle wait, so a lock never ends before django-otp's; `down` for an expiry (an e-mail
 * code's valid_until), so a code never outlives django-otp's.
 */
export const parseDjangoTime = (value: unknown, name: string, notes: string[], round: 'up' | 'down' = 'up'): number | null => {
  if (value === null || value === undefined) return null;
  const m = typeof value === 'string' ? /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$/.exec(value.trim()) : null;
  if (!m) throw new Skip(`${name} is not a date and time`);
  const zone = m[4] ?? 'Z';
  if (m[4] === undefined) notes.push(`${name} has no time zone (USE_TZ = False): read as UTC`);
  const seconds = Date.parse(`${m[1]}T${m[2]}${zone === 'Z' ? 'Z' : zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone}`);
  if (!Number.isFinite(seconds)) throw new Skip(`${name} is not a date and time`);
  const fraction = m[3] ?? '';
  // Whole microseconds (digits beyond the sixth are Django's too, if ever: they round the same way).
  const micros = Number((fraction + '000000000').slice(0, 9)) / 1000;
  return seconds + (round === 'up' ? Math.ceil(micros / 1000) : Math.floor(micros / 1000));
};

const hexKey = (value: unknown): Uint8Array => {
  if (typeof value !== 'string' || value.trim() === '') throw new Skip('it has no key');
  const hex = value.trim();
  if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length % 2 !== 0)
    throw new Skip('its key is not valid hexadecimal with an even number of digits (django-otp cannot use it either)');
  const bytes = Buffer.from(hex, 'hex');
  if (bytes.length < MIN_KEY_BYTES)
    throw new Skip(`its key is ${bytes.length} bytes long; factorstream needs at least ${MIN_KEY_BYTES} (enrol the device again)`);
  if (bytes.length > MAX_KEY_BYTES) throw new Skip(`its key is ${bytes.length} bytes long; factorstream takes at most ${MAX_KEY_BYTES}`);
  return new Uint8Array(bytes);
};

const cleanName = (value: unknown): string | undefined => {
  if (typeof value !== 'string') return undefined;
  // eslint-disable-next-line no-control-regex
  const name = value.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim().slice(0, 64);
  return name === '' ? undefined : name;
};

interface UserRow {
  readonly username: string | null;
  readonly email: string | null;
}

/**
 * Works out what to import, without touching any store: the registration input of each
 * device, or why it cannot be imported. `userModel` is the label of the dump's user rows
 * (AUTH_USER_MODEL; default auth.user).
 */
export const planImport = (
  rows: readonly DumpRow[],
  options: { readonly userModel?: string; readonly maxDrift?: number } = {},
): ImportPlan => {
  const userModel = (options.userModel ?? 'auth.user').toLowerCase();
  const maxDrift = options.maxDrift ?? 4;
  const warnings: string[] = [];
  const byPk = new Map<string, UserRow>();
  const byName = new Map<string, UserRow>();
  const tokens = new Map<string, string[]>();
  const ignored = new Map<string, number>();
  for (const r of rows) {
    if (r.model === userModel) {
      const u: UserRow = {
        username: typeof r.fields.username === 'string' && r.fields.username !== '' ? r.fields.username : null,
        email: typeof r.fields.email === 'string' && r.fields.email.trim() !== '' ? r.fields.email.trim() : null,
      };
      const pk = pkText(r.pk);
      if (pk !== null) byPk.set(pk, u);
      if (u.username !== null) byName.set(u.username, u);
    } else if (r.model === STATIC_TOKEN_MODEL) {
      const device = pkText(r.fields.device);
      if (device === null || typeof r.fields.token !== 'string') warnings.push(`a static token row (pk ${String(pkText(r.pk))}) names no device or has no token: left out`);
      else tokens.set(device, [...(tokens.get(device) ?? []), r.fields.token]);
    } else if (!isDeviceModel(r.model)) ignored.set(r.model, (ignored.get(r.model) ?? 0) + 1);
  }

  const seen = new Set<string>();
  const devices: PlannedDevice[] = [];
  const staticPks = new Set<string>();
  for (const r of rows) {
    if (!isDeviceModel(r.model)) {
      // Devices of other django-otp plugins (YubiKey, Twilio, WebAuthn …) cannot be brought over.
      const f = r.fields;
      if (r.model !== userModel && r.model !== STATIC_TOKEN_MODEL && 'confirmed' in f && 'user' in f && 'name' in f) {
        ignored.delete(r.model);
        devices.push({
          reference: `${r.model}/${String(pkText(r.pk))}`,
          kind: null,
          userId: null,
          userFrom: null,
          skip: `${r.model} devices are not supported (only ${Object.keys(DEVICE_MODELS).join(', ')})`,
          notes: [],
        });
      }
      continue;
    }
    const kind = DEVICE_MODELS[r.model];
    const pk = pkText(r.pk);
    const reference = `${r.model}/${pk ?? '?'}`;
    const notes: string[] = [];
    let userId: string | null = null;
    let userFrom: UserSource | null = null;
    try {
      if (pk === null) throw new Skip('the row has no pk');
      if (seen.has(reference)) throw new Skip('it appears twice in the dump');
      seen.add(reference);
      if (kind === 'static') staticPks.add(pk);
      const f = r.fields;

      // The user: a pk, or with --natural-foreign its natural key [username].
      let user: UserRow | undefined;
      if (Array.isArray(f.user) && typeof f.user[0] === 'string' && f.user[0] !== '') {
        userId = f.user[0];
        userFrom = 'natural-key';
        user = byName.get(userId);
      } else {
        const userPk = pkText(f.user);
        if (userPk === null) throw new Skip('it has no user');
        user = byPk.get(userPk);
        userId = user?.username ?? userPk;
        userFrom = user?.username ? 'auth.user' : 'pk';
      }

      const common = {
        userId,
        confirmed: typeof f.confirmed === 'boolean' ? f.confirmed : true,
        origin: { system: ORIGIN_SYSTEM, reference },
        ...(cleanName(f.name) !== undefined ? { name: cleanName(f.name) } : {}),
      };
      const failures = whole(f, 'throttling_failure_count', 0);
      const lastFailureAt = parseDjangoTime(f.throttling_failure_timestamp, 'throttling_failure_timestamp', notes);
      const throttle = failures > 0 || lastFailureAt !== null ? { throttle: { failureCount: failures, lastFailureAt } } : {};

      let input: RegisterInput;
      let deviceTokens: string[] | undefined;
      switch (kind) {
        case 'totp': {
          const drift = whole(f, 'drift', 0);
          input = {
            kind,
            ...common,
            ...throttle,
            secret: hexKey(f.key),
            algorithm: 'SHA1',
            digits: whole(f, 'digits', 6) as 6,
            step: whole(f, 'step', 30),
            t0: whole(f, 't0', 0),
            tolerance: whole(f, 'tolerance', 1),
            drift,
            lastStep: whole(f, 'last_t', -1),
          };
          if (Math.abs(drift) > maxDrift)
            notes.push(
              `its drift of ${drift} steps is beyond maxDrift (${maxDrift}): the next code verifies as in django-otp, but the drift learned from it is capped at ±${maxDrift}, ` +
                'so an authenticator that far off stops verifying after that; raise maxDrift with --config, or enrol the device again',
            );
          break;
        }
        case 'hotp':
          input = {
            kind,
            ...common,
            ...throttle,
            secret: hexKey(f.key),
            algorithm: 'SHA1',
            digits: whole(f, 'digits', 6) as 6,
            tolerance: whole(f, 'tolerance', 5),
            counter: whole(f, 'counter', 0),
          };
          break;
        case 'static': {
          input = { kind, ...common, ...throttle };
          const all = tokens.get(pk) ?? [];
          const usable = all.map((t) => parseBackupCode(t));
          deviceTokens = usable.filter((t): t is string => t !== null);
          const unusable = all.length - deviceTokens.length;
          if (unusable > 0)
            notes.push(`${unusable} of ${all.length} static token(s) left out: factorstream codes are 4–16 letters and digits, and these cannot be typed as one`);
          const capitals = all.filter((t) => parseBackupCode(t) !== null && /[A-Z]/.test(t)).length;
          if (capitals > 0) notes.push(`${capitals} static token(s) have capitals: they now also work typed in lower case`);
          if (deviceTokens.length > MAX_TOKENS) {
            notes.push(`${deviceTokens.length - MAX_TOKENS} static token(s) left out: at most ${MAX_TOKENS} per device`);
            deviceTokens = deviceTokens.slice(0, MAX_TOKENS);
          }
          break;
        }
        case 'email': {
          const own = typeof f.email === 'string' && f.email.trim() !== '' ? f.email.trim() : null;
          const destination = own ?? user?.email ?? null;
          if (destination === null)
            throw new Skip(
              user === undefined
                ? "it has no e-mail address of its own and the dump has no row for its user (add auth.user to the dumpdata command)"
                : 'neither it nor its user has an e-mail address',
            );
          // A code sent before the import keeps working as django-otp would take it: while now < valid_until.
          let pendingCode: { code: string; validUntil: number } | undefined;
          if (typeof f.token === 'string' && f.token !== '') {
            const validUntil = parseDjangoTime(f.valid_until, 'valid_until', notes, 'down');
            if (!/^(\d{6}|\d{8})$/.test(f.token) || validUntil === null)
              notes.push('a code sent before the import was not carried over (it is not 6 or 8 digits, or has no valid_until): the user asks for a new one');
            else pendingCode = { code: f.token, validUntil };
          }
          input = { kind, ...common, ...throttle, destination, ...(pendingCode ? { pendingCode } : {}) };
          if (own === null) notes.push("sends to the user's e-mail address (the device has none of its own)");
          if (pendingCode) notes.push(`the code sent before the import stays valid until ${new Date(pendingCode.validUntil).toISOString()}, as in django-otp`);
          break;
        }
      }
      const valid = decodeWith(registerInputCodecs[kind] as unknown as import('io-ts').Decoder<unknown, RegisterInput>, input);
      if (valid._tag === 'Left') throw new Skip(valid.left);
      devices.push({ reference, kind, userId, userFrom, input: valid.right, ...(deviceTokens ? { tokens: deviceTokens } : {}), notes });
    } catch (e) {
      if (!(e instanceof Skip)) throw e;
      devices.push({ reference, kind, userId, userFrom, skip: e.message, notes });
    }
  }

  const orphans = [...tokens.keys()].filter((d) => !staticPks.has(d)).reduce((n, d) => n + (tokens.get(d)?.length ?? 0), 0);
  if (orphans > 0) warnings.push(`${orphans} static token(s) belong to static devices that are not in the dump: left out`);
  if (ignored.size > 0)
    warnings.push(`rows of other models were ignored: ${[...ignored].map(([m, n]) => `${m} (${n})`).join(', ')}`);

  const sources = new Set(devices.map((d) => d.userFrom).filter((s): s is UserSource => s !== null));
  const source = sources.size === 0 ? 'none' : sources.size > 1 ? 'mixed' : [...sources][0]!;
  const note = {
    none: 'no device names a user',
    mixed: 'users are named by username where the dump tells it, else by Django user id (see each device)',
    'auth.user': `users are named by username, from the dump's ${userModel} rows`,
    'natural-key': 'users are named by username, from the natural keys (--natural-foreign)',
    pk: `users are named by their Django user id: the dump has no ${userModel} rows; add ${userModel} to the dumpdata command, or use --natural-foreign, to import usernames`,
  }[source];
  return { devices, users: { source, note }, warnings };
};

// ---- running it -------------------------------------------------------------------------------

export type DeviceStatus = 'imported' | 'already-imported' | 'skipped' | 'would-import';

export interface DeviceReport {
  readonly reference: string;
  readonly kind: Kind | null;
  readonly userId: string | null;
  readonly userFrom: UserSource | null;
  readonly status: DeviceStatus;
  readonly deviceId?: string;
  readonly persistentId?: string;
  readonly reason?: string;
  readonly tokens?: number;
  readonly notes?: readonly string[];
}

/** The command id of a device's import: the same on every run, so a second run writes nothing. */
export const importCommandId = (reference: string): string => `${ORIGIN_SYSTEM}:${reference}`;

class Fatal extends Error {
  constructor(readonly error: EngineError) {
    super(error.message);
  }
}

type Opts = Record<string, string | boolean | undefined>;

/** `rt` is null on a dry run against a store that does not exist yet: nothing is imported there. */
export const importDjangoOtp = async (rt: Runtime | null, g: GlobalOptions, file: string, o: Opts): Promise<Result> => {
  const rows = readDump(file);
  const plan = planImport(rows, { maxDrift: rt?.engine.policy.maxDrift ?? g.config.policy.maxDrift, ...(typeof o.userModel === 'string' ? { userModel: o.userModel } : {}) });
  if (plan.devices.length === 0)
    throw new UsageError(`${file} holds no django-otp devices (rows of ${Object.keys(DEVICE_MODELS).join(', ')}); make it with ${DUMP_HINT}`);
  const dryRun = o.dryRun === true;
  const options = { actor: g.actor ?? 'django-otp-import', ...(g.now === undefined ? {} : { now: g.now }) };

  const reports: DeviceReport[] = [];
  let stopped: { readonly error: EngineError; readonly reference: string } | null = null;
  for (const p of plan.devices) {
    const base = { reference: p.reference, kind: p.kind, userId: p.userId, userFrom: p.userFrom, ...(p.notes.length > 0 ? { notes: p.notes } : {}) };
    if (p.skip !== undefined || p.input === undefined) {
      reports.push({ ...base, status: 'skipped', reason: p.skip ?? 'nothing to import' });
      continue;
    }
    const commandId = importCommandId(p.reference);
    const deviceId = deviceIdFor(commandId);
    const ids = { deviceId, persistentId: persistentId(p.input.kind, deviceId) };
    if (rt === null) {
      reports.push({ ...base, ...ids, status: 'would-import', ...(p.tokens ? { tokens: p.tokens.length } : {}) });
      continue;
    }
    try {
      const existing = await rt.engine.device(deviceId)();
      if (existing._tag === 'Right') {
        // An earlier run stopped between the device and its tokens: finish it. Only then: once
        // any set was issued, imported tokens may have been used, or replaced by new codes.
        if (!dryRun && !existing.right.removed && p.tokens && p.tokens.length > 0) {
          const h = await rt.engine.history(deviceId)();
          if (h._tag === 'Left') throw new Fatal(h.left);
          if (!h.right.some((x) => x.event.type === 'StaticTokensIssued')) await issueTokens(rt, p, deviceId, commandId, options);
        }
        reports.push({ ...base, ...ids, status: 'already-imported', ...(existing.right.removed ? { reason: 'imported before, and since removed' } : {}) });
        continue;
      }
      if (existing.left.code !== 'device-not-found') throw new Fatal(existing.left);
      if (dryRun) {
        reports.push({ ...base, ...ids, status: 'would-import', ...(p.tokens ? { tokens: p.tokens.length } : {}) });
        continue;
      }
      const r = await rt.engine.register(p.input, { ...options, commandId })();
      if (r._tag === 'Left') {
        if (r.left.code === 'invalid-command') {
          reports.push({ ...base, status: 'skipped', reason: r.left.message });
          continue;
        }
        throw new Fatal(r.left);
      }
      await issueTokens(rt, p, deviceId, commandId, options);
      reports.push({ ...base, ...ids, status: r.right.replayed ? 'already-imported' : 'imported', ...(p.tokens ? { tokens: p.tokens.length } : {}) });
    } catch (e) {
      if (!(e instanceof Fatal)) throw e;
      stopped = { error: e.error, reference: p.reference };
      break;
    }
  }

  const count = (s: DeviceStatus) => reports.filter((r) => r.status === s).length;
  const summary = {
    imported: count('imported'),
    alreadyImported: count('already-imported'),
    skipped: count('skipped'),
    ...(dryRun ? { wouldImport: count('would-import') } : {}),
    ...(stopped ? { notReached: plan.devices.length - reports.length } : {}),
  };
  const headline = dryRun
    ? `dry run of the django-otp import from ${file}: ${summary.wouldImport} device(s) would be imported, ${summary.alreadyImported} already imported, ${summary.skipped} skipped`
    : `django-otp import from ${file}: ${summary.imported} device(s) imported, ${summary.alreadyImported} already imported, ${summary.skipped} skipped`;
  const label: Record<DeviceStatus, string> = { imported: 'imported', 'already-imported': 'already imported', skipped: 'skipped', 'would-import': 'would import' };
  const text = [
    headline,
    plan.users.note,
    ...reports.flatMap((r) => [
      `  ${label[r.status].padEnd(16)} ${r.reference}` +
        (r.persistentId ? ` -> ${r.persistentId}` : '') +
        (r.userId !== null ? `  user ${printable(r.userId)}${r.userFrom === 'pk' ? ' (Django user id)' : ''}` : '') +
        (r.tokens !== undefined ? `  ${r.tokens} token(s)` : '') +
        (r.reason ? `: ${r.reason}` : ''),
      ...(r.notes ?? []).map((n) => `      note: ${n}`),
    ]),
    ...plan.warnings.map((w) => `warning: ${w}`),
  ];
  const json = { command: 'import django-otp', file, dryRun, users: plan.users, summary, devices: reports, warnings: plan.warnings };
  if (stopped) {
    const message = `the import stopped at ${stopped.reference}: ${stopped.error.message}; ${summary.notReached} device(s) not reached. Run it again when the store is back: devices already imported are not imported twice`;
    return { exit: exitFor(stopped.error), json: { ok: false, ...json, error: { code: stopped.error.code, message } }, text };
  }
  if (summary.skipped > 0) {
    const message = dryRun
      ? `${summary.skipped} device(s) cannot be imported (the report says why)`
      : `${summary.skipped} device(s) could not be imported (the report says why); the other ${summary.imported + summary.alreadyImported} are imported`;
    return { exit: EXIT.usage, json: { ok: false, ...json, error: { code: 'import-incomplete', message } }, text };
  }
  return { exit: EXIT.ok, json: { ok: true, ...json }, text };
};

/** Issues a static device's tokens under a command id of their own (idempotent). */
const issueTokens = async (rt: Runtime, p: PlannedDevice, deviceId: string, commandId: string, options: { actor: string; now?: number }) => {
  if (!p.tokens || p.tokens.length === 0) return;
  const r = await rt.engine.issueBackupCodes({ device: deviceId }, { ...options, commandId: `${commandId}:tokens`, codes: p.tokens })();
  if (r._tag === 'Left') throw new Fatal(r.left);
};
