/**
 * `factorstream serve`: the dashboard over the runtime the CLI opened (store, vault, engine).
 * Opens the read store (FACTORSTREAM_READ_STORE; default: the event store when it is SQL),
 * starts the projection runner and the HTTP server, prints the address, and serves until
 * SIGINT or SIGTERM; then closes the server, the runner and the read store (the CLI closes
 * the runtime).
 */
import { CommanderError } from 'commander';
import type { GlobalOptions, Runtime } from '../cli/runtime.ts';
import { EXIT, failed, ok, type Result } from '../cli/output.ts';
import { parseInteger, UsageError } from '../cli/parse.ts';
import { ProjectionError } from '../../projections/errors.ts';
import { openReadStore, readStoreUrl } from '../../projections/open-read-store.ts';
import type { ReadStore } from '../../projections/read-store.ts';
import { DEFAULT_HOST, DEFAULT_PORT, DashboardConfigError, accessFor, startDashboard } from './server.ts';

type Opts = Record<string, string | boolean | undefined>;

export interface ServeIo {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
  readonly env: NodeJS.ProcessEnv;
}

/** Resolves on the first SIGINT or SIGTERM. */
const untilSignal = (): Promise<string> =>
  new Promise((resolve) => {
    const on = (signal: string) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });

interface ServeSettings {
  readonly host: string;
  readonly portText: string | undefined;
  readonly insecureLocal: boolean;
  readonly adminToken: string | null;
  readonly trustedProxyHeader: string | undefined;
}

const settingsOf = (o: Opts, env: NodeJS.ProcessEnv): ServeSettings => {
  const str = (k: string) => (typeof o[k] === 'string' ? (o[k] as string) : undefined);
  return {
    host: str('host') ?? env.FACTORSTREAM_HTTP_HOST ?? DEFAULT_HOST,
    portText: str('port') ?? env.FACTORSTREAM_HTTP_PORT,
    insecureLocal: o.insecureLocal === true || env.FACTORSTREAM_INSECURE_LOCAL === '1',
    adminToken: env.FACTORSTREAM_ADMIN_TOKEN || null,
    trustedProxyHeader: str('trustProxy') ?? (env.FACTORSTREAM_TRUSTED_PROXY || undefined),
  };
};

/**
 * Run before the runtime is opened (a commander preAction hook), so that a server that may not
 * start opens nothing and creates no key file. Reported as a usage error (exit 2, JSON with --json).
 */
export const checkServeAccess = (o: Opts, env: NodeJS.ProcessEnv): void => {
  const s = settingsOf(o, env);
  try {
    accessFor({ adminToken: s.adminToken, insecureLocal: s.insecureLocal, host: s.host });
  } catch (e) {
    if (e instanceof DashboardConfigError) throw new CommanderError(EXIT.usage, 'factorstream.serve', e.message);
    throw e;
  }
};

export const serveDashboard = async (
  rt: Runtime,
  g: GlobalOptions,
  o: Opts,
  io: ServeIo,
  stop: () => Promise<unknown> = untilSignal,
): Promise<Result> => {
  const str = (k: string) => (typeof o[k] === 'string' ? (o[k] as string) : undefined);
  const { host, portText, insecureLocal, adminToken, trustedProxyHeader } = settingsOf(o, io.env);

  let readStore: ReadStore | null = null;
  try {
    const port = portText === undefined ? DEFAULT_PORT : parseInteger(portText, '--port', 0, 65_535);
    // Refuse a missing token before opening anything.
    accessFor({ adminToken, insecureLocal, host });
    const url = readStoreUrl({ FACTORSTREAM_READ_STORE: str('readStore') ?? io.env.FACTORSTREAM_READ_STORE, FACTORSTREAM_STORE: g.store });
    readStore = await openReadStore(url);
    const dashboard = await startDashboard({
      engine: rt.engine,
      store: rt.store,
      readStore,
      adminToken,
      insecureLocal,
      host,
      port,
      policy: rt.engine.policy,
      clock: rt.clock,
      log: (line) => io.stderr(`factorstream: ${line}\n`),
      ...(trustedProxyHeader === undefined ? {} : { trustedProxyHeader }),
    });
    const mode = adminToken ? 'token' : 'insecure-local';
    io.stdout(
      o.json === true
        ? `${JSON.stringify({ ok: true, command: 'serve', listening: `${dashboard.url}/`, mode })}\n`
        : `factorstream dashboard on ${dashboard.url}/ (${adminToken ? 'admin token required' : 'insecure-local: no token'}); press Ctrl-C to stop\n`,
    );
    const signal = await stop();
    await dashboard.close();
    return ok({ command: 'serve', url: dashboard.url, stoppedBy: signal }, [`dashboard stopped (${String(signal)})`]);
  } catch (e) {
    if (e instanceof DashboardConfigError || e instanceof UsageError) return failed(EXIT.usage, 'usage', e.message);
    if (e instanceof ProjectionError)
      return failed(e.code === 'invalid' ? EXIT.usage : EXIT.failure, `read-store-${e.code}`, e.message);
    throw e;
  } finally {
    await readStore?.close().catch(() => undefined);
  }
};
