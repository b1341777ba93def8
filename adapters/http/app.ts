/**
 * The dashboard's routes (hono): JSON over the read side, admin commands through the engine,
 * a server-sent event stream of read-model changes, and the static page.
 *
 *   GET  /api/whoami                          who the server takes you for
 *   GET  /api/users/:userId/devices           ?confirmed=true|false
 *   GET  /api/users/:userId/audit             ?limit=1..1000&cursor=…
 *   POST /api/users/:userId/unlock            {"reason"}            (the user's match lock)
 *   GET  /api/devices/:device                 ?at=ISO-8601|@unix    (now, or then)
 *   GET  /api/devices/:device/audit           ?limit&cursor
 *   POST /api/devices/:device/unlock          {"reason"}
 *   POST /api/devices/:device/rename          {"name"}
 *   POST /api/devices/:device/remove          {"reason"?}
 *   GET  /api/stats                           ?from&to (default: the last 24 hours)
 *   GET  /api/lag                             the projection's lag and state
 *   POST /api/sse-ticket                      a 60 s, single-use ticket for /api/events
 *   GET  /api/events?ticket=…                 text/event-stream: ready, changed, status
 *
 * Every /api route but /api/events needs `Authorization: Bearer <admin token>`; /api/events
 * takes a ticket instead, so that the token never goes in a URL. `:device` is a device id or
 * a persistent id (`totp%2F<uuid>`).
 */
import type { TaskEither } from 'fp-ts/lib/TaskEither.js';
import type * as t from 'io-ts';
import { Hono, type Context } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { streamSSE } from 'hono/streaming';
import type { Engine, EngineError, Options } from '../../app/engine.ts';
import type { Clock, EventStore } from '../../domain/ports.ts';
import type { Policy } from '../../domain/policies/policy.ts';
import { createReadSide } from '../../projections/read-side.ts';
import type { ReadStore } from '../../projections/read-store.ts';
import type { ProjectionRunner } from '../../projections/runner.ts';
import { deviceStateAfter, deviceStateAt } from '../../projections/time-travel.ts';
import { loadAssets } from './assets.ts';
import { bearerToken, sameToken, tokenFingerprint, type TicketIssuer } from './auth.ts';
import { createAuthBackoff, type AuthBackoff, type RefusedAttempt } from './backoff.ts';
import { HttpError, badInput, errorBody, fromEngineError, fromThrown } from './errors.ts';
import {
  RemoveBody,
  RenameBody,
  UnlockBody,
  actorHeader,
  booleanParam,
  cursorParam,
  deviceParam,
  instantParam,
  integerParam,
  parseBody,
  requireJson,
  userIdParam,
} from './input.ts';
import type { ChangeFeed } from './live.ts';

export type Access = { readonly mode: 'token'; readonly token: string } | { readonly mode: 'insecure-local' };

export interface AppDeps {
  readonly engine: Engine;
  readonly store: EventStore;
  readonly readStore: ReadStore;
  readonly runner: ProjectionRunner;
  readonly feed: ChangeFeed;
  readonly policy: Policy;
  readonly clock: Clock;
  readonly access: Access;
  readonly tickets: TicketIssuer;
  /** Host headers accepted in insecure-local mode (DNS rebinding guard); computed once listening. */
  readonly allowedHosts: () => ReadonlySet<string>;
  readonly log: (line: string) => void;
  /** How long an admin command waits for the read model to show it (default 5 s). */
  readonly projectionWaitMs?: number;
  /** Wrong admin tokens slowed per client address (default: backoff.ts's BACKOFF). */
  readonly backoff?: AuthBackoff;
  /**
   * The request header a trusted reverse proxy puts the client's address in (e.g.
   * X-Forwarded-For: its last entry is the one the proxy saw). Without it, the socket's address
   * is the client's, and no header is believed.
   */
  readonly trustedProxyHeader?: string;
  /** Called for each wrong admin token (after the server log line), e.g. to record it as an event. */
  readonly onTokenRefused?: (attempt: RefusedAttempt) => void;
}

export interface DashboardApp {
  readonly app: Hono<{ Bindings: HttpBindings }>;
  /** Ends every open event stream (before the server closes). */
  closeStreams(): void;
}

const HOUR_MS = 3_600_000;
const MAX_STATS_HOURS = 31 * 24;
const MAX_BODY_BYTES = 16 * 1024;
const HEARTBEAT_MS = 15_000;

/** Sent with every response, the page and errors included. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Permissions-Policy': 'camera=(), microphone=(), geolocation=(), payment=()',
};

const CONTROL = /[\u0000-\u001f\u007f]/g;
const clientText = (s: string | undefined, max: number): string | undefined => {
  if (!s) return undefined;
  const clean = s.replace(CONTROL, '').slice(0, max);
  return clean === '' ? undefined : clean;
};

type C = Context<{ Bindings: HttpBindings }>;

export const createDashboardApp = (d: AppDeps): DashboardApp => {
  const app = new Hono<{ Bindings: HttpBindings }>();
  const readSide = createReadSide(d.readStore, { policy: d.policy, now: () => d.clock.now() });
  const assets = loadAssets();
  const defaultActor = d.access.mode === 'token' ? `admin:${tokenFingerprint(d.access.token)}` : 'admin:insecure-local';
  const backoff = d.backoff ?? createAuthBackoff();
  const proxyHeader = d.trustedProxyHeader?.trim().toLowerCase() || null;

  /** The client's address: from the trusted proxy's header when one is configured and sent, else the socket's. */
  const clientAddress = (c: C): string | undefined => {
    if (proxyHeader !== null) {
      const forwarded = c.req.header(proxyHeader);
      const last = forwarded?.split(',').pop()?.trim();
      const clean = clientText(last, 64);
      if (clean !== undefined) return clean;
    }
    return clientText(c.env?.incoming?.socket?.remoteAddress, 64);
  };
  const streams = new Set<() => void>();
  const waitMs = d.projectionWaitMs ?? 5_000;

  // ---- every response ------------------------------------------------------------------------

  app.use('*', async (c, next) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) c.header(k, v);
    c.header('Cache-Control', 'no-store');
    if (d.access.mode === 'insecure-local') {
      // Without a token, a page of another site that rebinds its name to 127.0.0.1 could
      // read the API; only the names this server listens under are served.
      const host = (c.req.header('host') ?? '').toLowerCase();
      if (!d.allowedHosts().has(host))
        throw new HttpError(403, 'forbidden-host', `this server answers only to ${[...d.allowedHosts()].join(', ')} (got Host "${host.slice(0, 80).replace(CONTROL, '?')}")`);
    }
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      // Defence in depth (the bearer header already stops cross-site forms): a browser's
      // request from another origin is refused. Behind a proxy, forward Host or X-Forwarded-Host.
      const origin = c.req.header('origin');
      if (origin !== undefined) {
        let originHost: string | null = null;
        try {
          originHost = origin === 'null' ? null : new URL(origin).host.toLowerCase();
        } catch {
          originHost = null;
        }
        const hosts = [c.req.header('host'), c.req.header('x-forwarded-host')].map((x) => x?.toLowerCase());
        if (originHost === null || !hosts.includes(originHost))
          throw new HttpError(403, 'forbidden-origin', 'cross-site requests are refused (the Origin is not this server)');
      }
    }
    await next();
  });

  app.onError((e, c) => {
    const h = fromThrown(e, d.log);
    if (h.status === 401) c.header('WWW-Authenticate', 'Bearer realm="factorstream"');
    if (h.retryAfterSeconds !== undefined) c.header('Retry-After', String(h.retryAfterSeconds));
    return c.json(errorBody(h), h.status);
  });
  app.notFound((c) =>
    c.json(errorBody(new HttpError(404, 'not-found', `no such endpoint: ${c.req.method} ${c.req.path.slice(0, 200).replace(CONTROL, '?')}`)), 404),
  );

  // ---- the page ------------------------------------------------------------------------------

  for (const [path, asset] of assets)
    app.get(path, (c) => {
      c.header('Content-Type', asset.contentType);
      c.header('Cache-Control', 'no-cache');
      return c.body(asset.body);
    });

  // ---- authentication --------------------------------------------------------------------------

  app.use('/api/*', async (c, next) => {
    if (c.req.path === '/api/events') return next();
    if (d.access.mode === 'token') {
      const address = clientAddress(c) ?? 'unknown';
      const admission = await backoff.admit(address);
      if (!admission.admitted) {
        const seconds = Math.max(1, Math.ceil(admission.retryAfterMs / 1000));
        throw new HttpError(
          429,
          'too-many-attempts',
          `${admission.failureCount} wrong admin token(s) from this address: the next attempt is looked at in ${seconds} s`,
          { retryAfterSeconds: seconds },
        );
      }
      const presented = bearerToken(c.req.header('authorization'));
      // No token at all is no guess: it is refused without counting.
      const refused = admission.settle(presented === null ? null : sameToken(presented, d.access.token));
      if (presented === null)
        throw new HttpError(401, 'unauthorized', 'this endpoint needs the admin token: send the header Authorization: Bearer <FACTORSTREAM_ADMIN_TOKEN>');
      if (refused !== null) {
        d.log(
          `wrong admin token from ${address}: ${refused.failureCount} failure(s) in a row; its next attempt is looked at after ${refused.delayMs / 1000} s`,
        );
        try {
          d.onTokenRefused?.(refused);
        } catch {
          // Recording is best effort: the refusal stands either way.
        }
        throw new HttpError(401, 'unauthorized', 'the admin token is not valid');
      }
    }
    if (c.req.method === 'POST') {
      requireJson(c.req.header('content-type'));
      const length = Number(c.req.header('content-length') ?? '0');
      if (length > MAX_BODY_BYTES) throw new HttpError(413, 'body-too-large', `the body must be at most ${MAX_BODY_BYTES} bytes`);
    }
    return next();
  });

  const body = async (c: C): Promise<string> => {
    const text = await c.req.text();
    if (Buffer.byteLength(text) > MAX_BODY_BYTES) throw new HttpError(413, 'body-too-large', `the body must be at most ${MAX_BODY_BYTES} bytes`);
    return text;
  };

  /** Who acts (the authenticated identity), whom they say they act for (X-Factorstream-Actor), and from where. */
  const commandOptions = (c: C): Options & { actor: string } => {
    const actor = defaultActor;
    const onBehalfOf = actorHeader(c.req.header('x-factorstream-actor'));
    const ip = clientAddress(c);
    const userAgent = clientText(c.req.header('user-agent'), 512);
    const client = { ...(ip ? { ip } : {}), ...(userAgent ? { userAgent } : {}) };
    return { actor, ...(onBehalfOf === undefined ? {} : { onBehalfOf }), ...(Object.keys(client).length > 0 ? { client } : {}) };
  };

  const unwrap = <A>(r: { _tag: 'Left'; left: EngineError } | { _tag: 'Right'; right: A }): A => {
    if (r._tag === 'Left') throw fromEngineError(r.left);
    return r.right;
  };

  /** After a command: wait (briefly) until the read model shows it, so that the next read does. */
  const projected = async (): Promise<boolean> => {
    try {
      await d.runner.whenCaughtUp({ timeoutMs: waitMs });
      return true;
    } catch {
      return false;
    }
  };

  const deviceNotFound = (device: string) =>
    new HttpError(404, 'device-not-found', `no device ${device.slice(0, 100)} in the read model (check the id, or GET /api/lag if it was just registered)`);

  const whoami = (onBehalfOf: string | undefined) => ({ mode: d.access.mode, actor: defaultActor, ...(onBehalfOf === undefined ? {} : { onBehalfOf }) });

  // ---- reading -------------------------------------------------------------------------------

  app.get('/api/whoami', (c) =>
    c.json(whoami(actorHeader(c.req.header('x-factorstream-actor')))),
  );

  app.get('/api/users/:userId/devices', async (c) => {
    const userId = userIdParam(c.req.param('userId'));
    const confirmed = booleanParam(c.req.query('confirmed'), 'confirmed');
    const devices = await readSide.devicesForUser(userId, confirmed === undefined ? {} : { confirmed });
    return c.json({ userId, now: d.clock.now(), devices });
  });

  const page = (c: C) => {
    const limit = integerParam(c.req.query('limit'), 'limit', 1, 1000);
    const cursor = cursorParam(c.req.query('cursor'));
    return { ...(limit === undefined ? {} : { limit }), ...(cursor === undefined ? {} : { cursor }) };
  };

  app.get('/api/users/:userId/audit', async (c) => {
    const userId = userIdParam(c.req.param('userId'));
    return c.json({ userId, ...(await readSide.auditForUser(userId, page(c))) });
  });

  app.get('/api/devices/:device', async (c) => {
    const ref = deviceParam(c.req.param('device'));
    const atRaw = c.req.query('at');
    const version = integerParam(c.req.query('version'), 'version', 1, Number.MAX_SAFE_INTEGER);
    if (atRaw !== undefined && version !== undefined) throw badInput('give at or version, not both');
    if (version !== undefined) {
      // Right after the event at that version of the device's stream (an audit entry's).
      const then = await deviceStateAfter(d.store, ref.deviceId, version, { policy: d.policy });
      if (then === null || (ref.kind !== null && then.device.kind !== ref.kind))
        throw new HttpError(404, 'device-not-found', `device ${ref.device.slice(0, 100)} has no event at version ${version}`);
      return c.json({ at: then.at, version, device: then.device });
    }
    if (atRaw !== undefined) {
      const at = instantParam(atRaw, 'at');
      const then = await deviceStateAt(d.store, ref.deviceId, at, { policy: d.policy });
      if (then === null || (ref.kind !== null && then.kind !== ref.kind))
        throw new HttpError(404, 'device-not-found', `device ${ref.device.slice(0, 100)} did not exist at ${new Date(at).toISOString()}`);
      return c.json({ at, device: then });
    }
    const now = await readSide.device(ref.deviceId);
    if (now === null || (ref.kind !== null && now.kind !== ref.kind)) throw deviceNotFound(ref.device);
    return c.json({ at: null, device: now });
  });

  app.get('/api/devices/:device/audit', async (c) => {
    const ref = deviceParam(c.req.param('device'));
    return c.json({ deviceId: ref.deviceId, ...(await readSide.auditForDevice(ref.deviceId, page(c))) });
  });

  app.get('/api/stats', async (c) => {
    const now = d.clock.now();
    const toRaw = c.req.query('to');
    const fromRaw = c.req.query('from');
    const to = toRaw === undefined ? now : instantParam(toRaw, 'to');
    const from = fromRaw === undefined ? to - 23 * HOUR_MS : instantParam(fromRaw, 'from');
    if (to < from) throw badInput('to must not be before from');
    if (to - from > MAX_STATS_HOURS * HOUR_MS) throw badInput(`the range from … to may span at most ${MAX_STATS_HOURS} hours (31 days)`);
    return c.json({ from, to, now, ...(await readSide.dashboard({ from, to, now })) });
  });

  app.get('/api/lag', async (c) => {
    const lag = await d.runner.lag();
    return c.json({ ...lag, error: d.runner.error()?.message ?? null });
  });

  // ---- admin commands ------------------------------------------------------------------------

  /** An admin command on one device: its body checked by `codec`, run through the engine. */
  const deviceCommand = <C extends Parameters<typeof parseBody>[1]>(
    action: string,
    codec: C,
    run: (device: string, input: t.TypeOf<C>, options: ReturnType<typeof commandOptions>) => TaskEither<EngineError, unknown>,
  ) =>
    app.post(`/api/devices/:device/${action}`, async (c) => {
      const ref = deviceParam(c.req.param('device'));
      const input = parseBody(await body(c), codec);
      const options = commandOptions(c);
      const device = unwrap(await run(ref.device, input, options)());
      return c.json({ device, actor: options.actor, ...(options.onBehalfOf === undefined ? {} : { onBehalfOf: options.onBehalfOf }), projected: await projected() });
    });

  deviceCommand('unlock', UnlockBody, (device, { reason }, options) => d.engine.resetThrottle(device, reason, options));
  deviceCommand('rename', RenameBody, (device, { name }, options) => d.engine.rename(device, name, options));
  deviceCommand('remove', RemoveBody, (device, { reason }, options) => d.engine.remove(device, reason, options));

  app.post('/api/users/:userId/unlock', async (c) => {
    const userId = userIdParam(c.req.param('userId'));
    const { reason } = parseBody(await body(c), UnlockBody);
    const options = commandOptions(c);
    unwrap(await d.engine.resetUserThrottle(userId, reason, options)());
    return c.json({ userId, actor: options.actor, ...(options.onBehalfOf === undefined ? {} : { onBehalfOf: options.onBehalfOf }), projected: await projected() });
  });

  // ---- live updates --------------------------------------------------------------------------

  app.post('/api/sse-ticket', (c) => c.json(d.tickets.issue()));

  app.get('/api/events', (c) => {
    if (d.access.mode === 'token' && !d.tickets.redeem(c.req.query('ticket')))
      throw new HttpError(401, 'invalid-ticket', 'the event stream needs a fresh ticket: POST /api/sse-ticket with the admin token (a ticket is valid once, for 60 s)');
    return streamSSE(c, async (stream) => {
      let end: () => void = () => undefined;
      const ended = new Promise<void>((resolve) => (end = resolve));
      streams.add(end);
      stream.onAbort(end);
      // Writes go one after another, in order.
      let chain: Promise<unknown> = Promise.resolve();
      const send = (event: string, data: unknown) => {
        chain = chain.then(() => stream.writeSSE({ event, data: JSON.stringify(data) })).catch(end);
      };
      send('ready', { position: d.runner.checkpoint(), state: d.runner.state() });
      const unsubscribe = d.feed.subscribe((change) => send(change.type, change));
      const heartbeat = setInterval(() => {
        chain = chain.then(() => stream.write(': keep-alive\n\n')).catch(end);
      }, HEARTBEAT_MS);
      try {
        await ended;
      } finally {
        clearInterval(heartbeat);
        unsubscribe();
        streams.delete(end);
      }
    });
  });

  return {
    app,
    closeStreams: () => {
      for (const end of [...streams]) end();
    },
  };
};
