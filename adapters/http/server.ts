/**
 * The dashboard server: the projection runner that feeds the read models, the change feed
 * that tells open pages, and the HTTP server (@hono/node-server) in front of them.
 *
 * It refuses to start without an admin token of at least 16 characters, unless
 * `insecureLocal` is set, which is accepted on a loopback address only (127.0.0.1, ::1,
 * localhost) and then also checks the Host header of every request.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import type { Engine } from '../../app/engine.ts';
import type { Clock, EventStore } from '../../domain/ports.ts';
import type { Policy } from '../../domain/policies/policy.ts';
import type { ReadStore } from '../../projections/read-store.ts';
import { createProjectionRunner, type ProjectionRunner } from '../../projections/runner.ts';
import { systemClock } from '../system.ts';
import { createDashboardApp, type Access } from './app.ts';
import { MIN_TOKEN_LENGTH, createTicketIssuer } from './auth.ts';
import type { AuthBackoff, RefusedAttempt } from './backoff.ts';
import { createChangeFeed } from './live.ts';

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8470;

/** The server cannot start as configured; the message says what to change. */
export class DashboardConfigError extends Error {
  override readonly name = 'DashboardConfigError';
}

export interface DashboardOptions {
  readonly engine: Engine;
  /** The event store (time travel, lag, and the runner's source). */
  readonly store: EventStore;
  readonly readStore: ReadStore;
  /** FACTORSTREAM_ADMIN_TOKEN. */
  readonly adminToken?: string | null;
  /** Serve without a token; loopback addresses only. */
  readonly insecureLocal?: boolean;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 8470; 0 picks a free port. */
  readonly port?: number;
  /** The policy statuses are computed under; default the engine's. */
  readonly policy?: Policy;
  /** "Now" for statuses and statistics; default the system clock. */
  readonly clock?: Clock;
  /** A runner to use (the caller starts and closes it); by default one is made, started and closed here. */
  readonly runner?: ProjectionRunner;
  /** Where server-side problems are reported (one line each, no secrets). Default: stderr. */
  readonly log?: (line: string) => void;
  /** How often open pages are told about applied events, at most. Default 100 ms. */
  readonly feedIntervalMs?: number;
  readonly projectionWaitMs?: number;
  /** The header a trusted reverse proxy gives the client's address in (e.g. X-Forwarded-For); default none: the socket's address. */
  readonly trustedProxyHeader?: string;
  /** Wrong admin tokens slowed per client address (default backoff.ts's BACKOFF). */
  readonly backoff?: AuthBackoff;
  /** Called for each wrong admin token, after the log line; default: engine.recordAdminTokenRefused (an event in the log). */
  readonly onTokenRefused?: (attempt: RefusedAttempt) => void;
}

/** An HTTP header name (RFC 9110 token characters). */
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/;

export interface Dashboard {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly runner: ProjectionRunner;
  /** Ends the event streams, stops listening, and closes the runner if it made it. */
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost', '[::1]']);
export const isLoopback = (host: string): boolean => LOOPBACK.has(host.toLowerCase()) || /^127(\.\d{1,3}){3}$/.test(host);

/** Checks the access settings before anything is opened. */
export const accessFor = (o: { readonly adminToken?: string | null; readonly insecureLocal?: boolean; readonly host: string }): Access => {
  const token = o.adminToken ?? '';
  if (token !== '') {
    if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token))
      throw new DashboardConfigError(
        `FACTORSTREAM_ADMIN_TOKEN must be at least ${MIN_TOKEN_LENGTH} characters without spaces (got ${token.length}); make one with: openssl rand -hex 32`,
      );
    return { mode: 'token', token };
  }
  if (!o.insecureLocal)
    throw new DashboardConfigError(
      'refusing to serve without an admin token: set FACTORSTREAM_ADMIN_TOKEN (e.g. export FACTORSTREAM_ADMIN_TOKEN=$(openssl rand -hex 32)), ' +
        'or pass --insecure-local to serve on a loopback address without one',
    );
  if (!isLoopback(o.host))
    throw new DashboardConfigError(
      `--insecure-local serves on a loopback address only (127.0.0.1, ::1, localhost), not on "${o.host.slice(0, 80)}"; set FACTORSTREAM_ADMIN_TOKEN to serve elsewhere`,
    );
  return { mode: 'insecure-local' };
};

const listen = (server: Server, port: number, host: string): Promise<AddressInfo> =>
  new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      const why =
        e.code === 'EADDRINUSE'
          ? 'the port is in use; pick another with --port'
          : e.code === 'EACCES'
            ? 'permission denied; use a port above 1023'
            : e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND'
              ? 'this machine has no such address'
              : (e.code ?? e.message);
      reject(new DashboardConfigError(`cannot listen on ${host}:${port}: ${why}`));
    };
    const onListening = () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });

export const startDashboard = async (o: DashboardOptions): Promise<Dashboard> => {
  const host = o.host ?? DEFAULT_HOST;
  const port = o.port ?? DEFAULT_PORT;
  if (!Number.isSafeInteger(port) || port < 0 || port > 65_535) throw new DashboardConfigError(`the port must be 0–65535 (got ${port})`);
  const access = accessFor({ adminToken: o.adminToken ?? null, insecureLocal: o.insecureLocal ?? false, host });
  if (o.trustedProxyHeader !== undefined && !HEADER_NAME.test(o.trustedProxyHeader))
    throw new DashboardConfigError(`the trusted-proxy header must be a header name like X-Forwarded-For (got "${o.trustedProxyHeader.slice(0, 64).replace(/[^\x20-\x7e]/g, '?')}")`);
  const log = o.log ?? ((line: string) => void process.stderr.write(`factorstream http: ${line}\n`));

  const ownRunner = o.runner === undefined;
  const runner =
    o.runner ??
    createProjectionRunner({
      store: o.store,
      readStore: o.readStore,
      onError: (e) => log(`the projection stopped (${e.code}): ${e.message}; the dashboard shows what was applied before`),
      onRetry: (e, ms) => log(`the projection failed (${e.code}): ${e.message}; trying again in ${ms} ms`),
    }).start();
  const feed = createChangeFeed(runner, o.feedIntervalMs === undefined ? {} : { intervalMs: o.feedIntervalMs });

  let allowed: ReadonlySet<string> = new Set();
  const { app, closeStreams } = createDashboardApp({
    engine: o.engine,
    store: o.store,
    readStore: o.readStore,
    runner,
    feed,
    policy: o.policy ?? o.engine.policy,
    clock: o.clock ?? systemClock,
    access,
    // Signed with a key derived from the admin token: any instance sharing it accepts them.
    tickets: createTicketIssuer(o.adminToken ? { secret: o.adminToken } : {}),
    allowedHosts: () => allowed,
    log,
    ...(o.projectionWaitMs === undefined ? {} : { projectionWaitMs: o.projectionWaitMs }),
    ...(o.trustedProxyHeader === undefined ? {} : { trustedProxyHeader: o.trustedProxyHeader }),
    ...(o.backoff === undefined ? {} : { backoff: o.backoff }),
    // Each wrong token goes in the event log too (the address's own stream), unless told otherwise.
    onTokenRefused:
      o.onTokenRefused ??
      ((attempt) => {
        void o.engine
          .recordAdminTokenRefused(
            { address: attempt.address, failureCount: attempt.failureCount, delayMs: attempt.delayMs },
            { actor: 'dashboard', client: { ip: attempt.address } },
          )()
          .then((r) => {
            if (r._tag === 'Left') log(`could not record the wrong admin token from ${attempt.address} in the event log (${r.left.code}): ${r.left.message}`);
          });
      }),
  });
  const server = createAdaptorServer({ fetch: app.fetch, hostname: host }) as Server;

  let address: AddressInfo;
  try {
    address = await listen(server, port, host);
  } catch (e) {
    feed.close();
    if (ownRunner) await runner.close();
    throw e;
  }
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const bound = address.port;
  allowed = new Set([`127.0.0.1:${bound}`, `localhost:${bound}`, `[::1]:${bound}`, `${urlHost}:${bound}`.toLowerCase()]);

  let closing: Promise<void> | null = null;
  return {
    url: `http://${urlHost}:${bound}`,
    host: address.address,
    port: bound,
    runner,
    close: () =>
      (closing ??= (async () => {
        closeStreams();
        feed.close();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          // Streams end at once; anything still open after a moment is cut.
          setTimeout(() => server.closeAllConnections(), 200).unref();
        });
        if (ownRunner) await runner.close();
      })()),
  };
};
