/**
 * The factorstream command (commander for parsing and help). `main(argv)` returns the exit
 * code: 0 success, 1 verification rejected or refused, 2 bad usage or input, 3 store or
 * delivery failure. Errors are one line on stderr, or a JSON object with --json; never a
 * stack trace, never a secret.
 */
import { existsSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { StoreError, VaultError } from '../../domain/ports.ts';
import { ProjectionError } from '../../projections/errors.ts';
import { SenderConfigError } from '../delivery/factory.ts';
import * as cmd from './commands.ts';
import { runDemo } from './demo.ts';
import { checkServeAccess, serveDashboard } from '../http/serve.ts';
import { quarantine, replay, stats } from './read-side.ts';
import { DUMP_HINT, importDjangoOtp } from './django-import.ts';
import { EXIT, failed, oneLine, type Result } from './output.ts';
import { loadConfig, parseInstant, UsageError } from './parse.ts';
import { checkSqliteTarget, openRuntime, sqliteFile, type GlobalOptions, type Runtime } from './runtime.ts';
import type { Io } from './io.ts';

const defaultIo: Io = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  env: process.env,
};

type Opts = Record<string, string | boolean | undefined>;
type Handler = (rt: Runtime, g: GlobalOptions, o: Opts, args: string[]) => Promise<Result>;
type NullableHandler = (rt: Runtime | null, g: GlobalOptions, o: Opts, args: string[]) => Promise<Result>;

const globalOptions = (raw: Opts, env: NodeJS.ProcessEnv): GlobalOptions => {
  // --now "" is refused (it is a mistake, not "the real time"); an empty variable is unset.
  const now = typeof raw.now === 'string' ? raw.now : env.FACTORSTREAM_NOW || undefined;
  return {
    store: (raw.store as string | undefined) ?? env.FACTORSTREAM_STORE ?? 'sqlite:./factorstream.db',
    ...(((raw.vault as string | undefined) ?? env.FACTORSTREAM_VAULT) ? { vault: ((raw.vault as string | undefined) ?? env.FACTORSTREAM_VAULT)! } : {}),
    ...(now !== undefined ? { now: parseInstant(now, typeof raw.now === 'string' ? '--now' : 'FACTORSTREAM_NOW') } : {}),
    ...(((raw.actor as string | undefined) ?? env.FACTORSTREAM_ACTOR) ? { actor: ((raw.actor as string | undefined) ?? env.FACTORSTREAM_ACTOR)! } : {}),
    config: loadConfig((raw.config as string | undefined) ?? env.FACTORSTREAM_CONFIG),
  };
};

/** Maps what a command threw to a result: usage errors exit 2, store/vault/sender failures 3. */
const fromThrown = (e: unknown): Result => {
  if (e instanceof UsageError) return failed(EXIT.usage, 'usage', e.message);
  if (e instanceof SenderConfigError) return failed(EXIT.usage, 'usage', e.message);
  if (e instanceof StoreError) return failed(e.code === 'invalid' ? EXIT.usage : EXIT.failure, `store-${e.code}`, e.message);
  if (e instanceof VaultError) return failed(EXIT.failure, `vault-${e.code}`, e.message);
  if (e instanceof ProjectionError) return failed(e.code === 'invalid' ? EXIT.usage : EXIT.failure, `projection-${e.code}`, e.message);
  return failed(EXIT.failure, 'internal', `unexpected error: ${e instanceof Error ? `${e.name}: ${e.message}` : 'unknown'}`);
};

export const main = async (argv: readonly string[], io: Io = defaultIo): Promise<number> => {
  const out: { result: Result | null } = { result: null };
  let json = io.env.FACTORSTREAM_JSON === '1' || io.env.FACTORSTREAM_JSON === 'true';

  const program = new Command('factorstream')
    .description('Event-sourced one-time passwords: TOTP, HOTP, backup codes, e-mail and SMS codes.')
    .addOption(new Option('--store <url>', 'event store: sqlite:PATH, postgres://…, esdb://… (env FACTORSTREAM_STORE; default sqlite:./factorstream.db)'))
    .addOption(new Option('--vault <url>', 'key store for the data keys (env FACTORSTREAM_VAULT; default: the event store when it is SQL)'))
    .addOption(new Option('--config <file>', 'JSON policy file: throttle factors, cooldown, code validity, tolerance, max drift (env FACTORSTREAM_CONFIG)'))
    .addOption(new Option('--json', 'print one JSON object per command on stdout (env FACTORSTREAM_JSON=1)'))
    .addOption(new Option('--now <time>', 'decide as if it were then: ISO-8601 or @unix-seconds (env FACTORSTREAM_NOW)'))
    .addOption(new Option('--actor <name>', 'who is acting, recorded in event metadata (env FACTORSTREAM_ACTOR)'))
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout(s),
      // Help shown for a bare group goes to stderr; error messages are printed by main itself.
      writeErr: (s) => io.stderr(s),
      outputError: () => {},
    });

  /**
   * `handler` runs on an opened runtime. With `writesNothing` (a dry run), the runtime is opened
   * without creating a key file, and a SQLite store that does not exist yet is not created:
   * the handler gets null.
   */
  const action = (handler: Handler, writesNothing: (o: Opts) => boolean = () => false) => async (...args: unknown[]) => {
    const command = args[args.length - 1] as Command;
    const all = command.optsWithGlobals() as Opts;
    json ||= all.json === true;
    const positional = args.slice(0, -2).filter((a): a is string => typeof a === 'string');
    let rt: Runtime | null = null;
    try {
      const g = globalOptions(all, io.env);
      const opts = { ...(command.opts() as Opts), json };
      if (writesNothing(opts)) {
        const file = sqliteFile(g.store);
        if (file !== null && !existsSync(file)) {
          checkSqliteTarget(g.store, '--store');
          out.result = await (handler as unknown as NullableHandler)(null, g, opts, positional);
          return;
        }
      }
      rt = await openRuntime(g, undefined, { createKey: !writesNothing(opts) });
      for (const n of rt.notices) io.stderr(`factorstream: ${n}\n`);
      out.result = await handler(rt, g, opts, positional);
    } catch (e) {
      out.result = fromThrown(e);
    } finally {
      await rt?.close();
    }
  };

  const device = (c: Command) => c.requiredOption('--device <id>', 'device id or persistent id (kind/uuid)');

  program
    .command('enroll')
    .description('register a device: totp or hotp (an authenticator app or token), email or sms')
    .argument('<kind>', 'totp, hotp, email or sms')
    .requiredOption('--user <user>', 'the user the device belongs to')
    .option('--name <name>', 'a name for the device (1–64 characters)')
    .option('--digits <n>', 'totp/hotp: 6 or 8 (default 6)')
    .option('--step <seconds>', 'totp: time step (default 30)')
    .option('--algorithm <alg>', 'totp/hotp: SHA1, SHA256 or SHA512 (default SHA1)')
    .option('--tolerance <n>', 'totp: steps either side (default 1); hotp: look-ahead (default 5)')
    .option('--t0 <seconds>', 'totp: Unix time of step 0 (default 0)')
    .option('--counter <n>', 'hotp: the next counter value (default 0)')
    .option('--secret <hex>', 'totp/hotp: use this key (hex) instead of a new random one')
    .option('--uri <otpauth>', 'totp/hotp: take key and parameters from an otpauth:// URI')
    .option('--to <address>', 'email: the address; sms: the phone number (+14155550100)')
    .option('--confirmed', 'register as confirmed (skip the first-code confirmation)')
    .option('--qr <file>', 'totp/hotp: also write the QR code to FILE.png or FILE.svg')
    .action(action((rt, g, o, [kind]) => cmd.enroll(rt, g, kind!, o)));

  program
    .command('backup-codes')
    .description("issue a new set of backup codes (shown once; replaces the user's earlier set)")
    .option('--user <user>', "the user (uses the user's backup-code device, creating it if needed)")
    .option('--device <id>', 'a specific backup-code device')
    .option('--count <n>', 'how many codes (default 10)')
    .action(action((rt, g, o) => cmd.backupCodes(rt, g, o)));

  for (const name of ['confirm', 'verify'] as const)
    device(program.command(name))
      .description(name === 'confirm' ? 'verify a code and confirm the device with it' : 'verify a code')
      .requiredOption('--token <code>', 'the code the user typed')
      .action(action((rt, g, o) => cmd.verify(rt, g, name, o)));

  program
    .command('match')
    .description("verify a code against all the user's confirmed devices")
    .requiredOption('--user <user>', 'the user')
    .requiredOption('--token <code>', 'the code the user typed')
    .action(action((rt, g, o) => cmd.match(rt, g, o)));

  device(program.command('challenge'))
    .description('send a code to an e-mail or SMS device')
    .action(action((rt, g, o) => cmd.challenge(rt, g, o)));

  program
    .command('devices')
    .description("list a user's devices")
    .requiredOption('--user <user>', 'the user')
    .option('--confirmed', 'only confirmed devices')
    .option('--unconfirmed', 'only unconfirmed devices')
    .action(action((rt, _g, o) => cmd.devices(rt, o)));

  device(program.command('show'))
    .description('show a device now, or as it was at a past instant')
    .option('--at <time>', 'ISO-8601 or @unix-seconds')
    .action(action((rt, _g, o) => cmd.show(rt, o)));

  program
    .command('history')
    .description("a device's or a user's events, oldest first")
    .option('--device <id>', 'device id or persistent id')
    .option('--user <user>', "the user's own stream (attachments, matches)")
    .action(action((rt, _g, o) => cmd.history(rt, o)));

  program
    .command('unlock')
    .description('reset a throttle (recorded with --actor and the reason)')
    .option('--device <id>', 'the device whose lock to reset')
    .option('--user <user>', "reset the user's match lock instead")
    .requiredOption('--reason <text>', 'why (recorded)')
    .action(action((rt, g, o) => cmd.unlock(rt, g, o)));

  device(program.command('rename'))
    .description('rename a device')
    .requiredOption('--name <name>', 'the new name')
    .action(action((rt, g, o) => cmd.rename(rt, g, o)));

  device(program.command('remove'))
    .description("remove a device: its key is destroyed, its history stays")
    .option('--reason <text>', 'why (recorded)')
    .action(action((rt, g, o) => cmd.remove(rt, g, o)));

  program
    .command('keys')
    .description('master key operations')
    .command('rotate')
    .description('re-wrap every data key under a new master key (no event is touched)')
    .action(action((rt) => cmd.keysRotate(rt)));

  program
    .command('import')
    .description('bring devices over from another system')
    .command('django-otp')
    .description(
      'import the devices of a django-otp site from a dumpdata file, so that its users keep working without enrolling again. ' +
        `Make the file with: ${DUMP_HINT}. Running it again imports nothing twice. ` +
        'Exits 0 when every device was imported (now or before), 2 when some were skipped (the report says why), 3 when the store failed.',
    )
    .argument('<file>', 'the dumpdata JSON file (- for standard input)')
    .option('--user-model <label>', "the label of the dump's user rows (AUTH_USER_MODEL)", 'auth.user')
    .option('--dry-run', 'report what would be imported, and write nothing')
    .action(action((rt, g, o, [file]) => importDjangoOtp(rt, g, file!, o), (o) => o.dryRun === true));

  program
    .command('stats')
    .description('dashboard statistics from the read models (caught up first): devices by kind and status, verifications per hour, locks, unusual failure patterns')
    .option('--hours <n>', 'how many hours of activity to show (default 24)')
    .action(action((rt, g, o) => stats(rt, g, o, io)));

  program
    .command('replay')
    .description('drop the read models and rebuild them by replaying the whole log (with a progress bar on stderr)')
    .action(action((rt, g, o) => replay(rt, g, o, io, json)));

  program
    .command('quarantine')
    .description('list the stored events that do not decode, which the read models set aside')
    .action(action((rt, g, o) => quarantine(rt, g, o, io)));

  program
    .command('audit')
    .description('checks over the stored history')
    .command('verify')
    .description("check the hash chain of every stream (or one device's or user's): reports the first broken link of each")
    .option('--device <id>', 'only this device')
    .option('--user <user>', "only this user's own stream")
    .action(action((rt, _g, o) => cmd.auditVerify(rt, o)));

  program
    .command('erase')
    .description('erase a user (GDPR): remove all their devices and destroy their keys; the history stays, unreadable')
    .requiredOption('--user <user>', 'the user')
    .requiredOption('--reason <text>', 'why (recorded)')
    .action(action((rt, g, o) => cmd.erase(rt, g, o)));

  program
    .command('demo')
    .description('a guided walk through enrolment, verification, replay, throttling, unlock, backup codes and removal')
    .option('--user <user>', 'the demo user (default: a new random one)')
    .action(action((rt, g, o) => runDemo(rt, g, o, io)));

  program
    .command('serve')
    .description(
      'serve the device dashboard (web page and JSON API over the read models) until Ctrl-C; ' +
        'needs FACTORSTREAM_ADMIN_TOKEN (at least 16 characters) unless --insecure-local',
    )
    .option('--host <address>', 'address to listen on (env FACTORSTREAM_HTTP_HOST; default 127.0.0.1)')
    .option('--port <n>', 'port to listen on, 0 for any free one (env FACTORSTREAM_HTTP_PORT; default 8470)')
    .option('--read-store <url>', 'where the read models live (env FACTORSTREAM_READ_STORE; default: the event store when it is SQL)')
    .option('--insecure-local', 'serve without an admin token, on a loopback address only (env FACTORSTREAM_INSECURE_LOCAL=1)')
    .option(
      '--trust-proxy <header>',
      "behind a reverse proxy: the header it puts the client's address in, e.g. X-Forwarded-For (env FACTORSTREAM_TRUSTED_PROXY; default: none, the socket's address)",
    )
    .hook('preAction', (c) => checkServeAccess(c.opts() as Opts, io.env))
    .action(action((rt, g, o) => serveDashboard(rt, g, o, io)));

  try {
    await program.parseAsync([...argv], { from: 'user' });
    if (out.result === null) {
      // A bare `factorstream` (or a group such as `keys`) without a command.
      io.stderr(program.helpInformation());
      return EXIT.usage;
    }
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return EXIT.ok;
      // A bare `factorstream` or group (`keys`, `import`, `audit`): help was shown; it is bad usage.
      if (e.code === 'commander.help') return EXIT.usage;
      json ||= argv.includes('--json');
      out.result = failed(EXIT.usage, 'usage', `${e.message.replace(/^error: /, '')} (see --help)`);
    } else out.result = fromThrown(e);
  }
  const r: Result = out.result ?? failed(EXIT.failure, "internal", "the command produced no result");
  if (json) io.stdout(`${JSON.stringify(r.json)}\n`);
  else {
    if (r.text.length > 0) io.stdout(`${r.text.join('\n')}\n`);
    const error = r.json.error as { message?: string } | undefined;
    if (error?.message) io.stderr(`factorstream: ${oneLine(error.message)}\n`);
  }
  return r.exit;
};
