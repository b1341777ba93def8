/**
 * The dashboard's HTTP API against hostile requests, over real HTTP: tokens (none, wrong,
 * short, in the query string), wrong admin tokens slowed per client address, path traversal,
 * oversized bodies, wrong content types, unknown methods, and the security headers of every
 * answer. The back-off runs on a clock the test moves: nothing here waits for real time.
 */
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenFingerprint } from '../../adapters/http/auth.ts';
import { BACKOFF, createAuthBackoff, delayAfter, type RefusedAttempt } from '../../adapters/http/backoff.ts';
import type { Dashboard } from '../../adapters/http/server.ts';
import { accessStreamOf } from '../../app/factor-streams.ts';
import { TOKEN, createHarness, right, type Harness } from './fixtures.ts';

let h: Harness;
const UUID = '00000000-0000-4000-8000-000000000000';

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  readonly json: any;
}

/** A request exactly as given: the path is sent as it is (no normalisation of /../), any method. */
const raw = (
  base: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const url = new URL(base);
    const req = httpRequest(
      { host: url.hostname, port: url.port, path, method: options.method ?? 'GET', headers: options.headers ?? {} },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => {
          let json: any = null;
          try {
            json = JSON.parse(text);
          } catch {
            json = null;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    // A server that answers before reading a big body may close the socket under the writer.
    req.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' || e.code === 'ECONNRESET' ? undefined : reject(e)));
    if (options.body !== undefined) req.end(options.body);
    else req.end();
  });

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

const expectSecurityHeaders = (r: Reply) => {
  const csp = String(r.headers['content-security-policy'] ?? '');
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(r.headers['x-content-type-options']).toBe('nosniff');
  expect(r.headers['referrer-policy']).toBe('no-referrer');
  for (const k of Object.keys(r.headers)) expect(k).not.toMatch(/^access-control-/);
};

const expectError = (r: Reply, status: number, code: string, message?: RegExp) => {
  expect(r.status, r.text).toBe(status);
  expect(r.json?.error?.code, r.text).toBe(code);
  if (message) expect(r.json.error.message).toMatch(message);
  expect(r.text).not.toMatch(/\n\s+at |\.ts:\d+|node:internal/);
  expect(r.text).not.toContain(TOKEN);
  expectSecurityHeaders(r);
};

beforeAll(() => {
  h = createHarness(Date.UTC(2026, 10, 28, 12));
});
afterAll(() => h.close());

describe('hostile requests', () => {
  let d: Dashboard;
  beforeAll(async () => {
    d = await h.serve({ backoff: createAuthBackoff({ maxDelayMs: 0 }) });
  });

  it.each([
    ['no Authorization header', {}, /needs the admin token/],
    ['a wrong token', bearer('x'.repeat(TOKEN.length)), /not valid/],
    ['a short token', bearer('x'), /not valid/],
    ['the token one character short', bearer(TOKEN.slice(0, -1)), /not valid/],
    ['the token and more', bearer(`${TOKEN}x`), /not valid/],
    ['Basic instead of Bearer', { Authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` }, /needs the admin token/],
    ['a 10 kB token', bearer('y'.repeat(10_000)), /not valid/],
  ])('%s: 401 with WWW-Authenticate', async (_, headers, message) => {
    const r = await raw(d.url, '/api/lag', { headers });
    expectError(r, 401, 'unauthorized', message);
    expect(r.headers['www-authenticate']).toMatch(/^Bearer/);
  });

  it.each(['token', 'access_token', 'bearer', 'key'])('the token in the query string (?%s=) is not taken', async (name) => {
    expectError(await raw(d.url, `/api/lag?${name}=${TOKEN}`), 401, 'unauthorized');
  });

  it.each([
    '/../../../../etc/passwd',
    '/api/../../../etc/passwd',
    '/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
    '/api/devices/..%2f..%2f..%2fetc%2fpasswd',
    '/api/devices/%2e%2e%2f%2e%2e%2fetc%2fpasswd/unlock',
    '/app.js/../../package.json',
    '/%2e%2e%5c%2e%2e%5cpackage.json',
    '/..%00/etc/passwd',
  ])('path traversal %s reaches no file', async (path) => {
    const r = await raw(d.url, path, { headers: bearer(TOKEN) });
    expect([400, 404], r.text).toContain(r.status);
    expect(r.text).not.toMatch(/root:|"dependencies"|better-sqlite3/);
    expect(r.json?.error?.code).toMatch(/^(not-found|invalid-input)$/);
    expectSecurityHeaders(r);
  });

  it('a body over 16 KiB is refused (413), whether or not its length was announced', async () => {
    const big = JSON.stringify({ reason: 'r'.repeat(20_000) });
    const path = `/api/devices/${UUID}/unlock`;
    const headers = { ...bearer(TOKEN), 'Content-Type': 'application/json' };
    expectError(await raw(d.url, path, { method: 'POST', headers, body: big }), 413, 'body-too-large');
    // Chunked: no Content-Length for the first check to see.
    expectError(await raw(d.url, path, { method: 'POST', headers: { ...headers, 'Transfer-Encoding': 'chunked' }, body: big }), 413, 'body-too-large');
    const huge = Buffer.alloc(10 * 1024 * 1024, 'a');
    expectError(await raw(d.url, path, { method: 'POST', headers, body: huge }), 413, 'body-too-large');
  });

  it.each([
    ['none', undefined],
    ['text/plain', 'text/plain'],
    ['a form', 'application/x-www-form-urlencoded'],
    ['multipart', 'multipart/form-data; boundary=x'],
    ['XML', 'application/xml'],
    ['JSON with a suffix', 'application/jsonx'],
  ])('a POST with content type %s is refused (415)', async (_, type) => {
    const r = await raw(d.url, `/api/devices/${UUID}/rename`, {
      method: 'POST',
      headers: { ...bearer(TOKEN), ...(type === undefined ? {} : { 'Content-Type': type }) },
      body: '{"name":"x"}',
    });
    expectError(r, 415, 'unsupported-media-type');
  });

  it.each(['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'PROPFIND'])('%s is no method of the API (404; from another origin 403; never CORS)', async (method) => {
    const path = `/api/devices/${UUID}/rename`;
    expectError(await raw(d.url, path, { method, headers: bearer(TOKEN) }), 404, 'not-found');
    const preflight = await raw(d.url, path, {
      method,
      headers: { ...bearer(TOKEN), Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' },
    });
    expectError(preflight, 403, 'forbidden-origin');
  });

  it('every answer carries the security headers: the page, data, errors', async () => {
    for (const r of [
      await raw(d.url, '/'),
      await raw(d.url, '/app.js'),
      await raw(d.url, '/api/lag', { headers: bearer(TOKEN) }),
      await raw(d.url, '/api/lag'),
      await raw(d.url, '/no/such/page'),
    ])
      expectSecurityHeaders(r);
  });
});

describe('wrong admin tokens are slowed per client address', () => {
  let t = Date.UTC(2026, 10, 28, 12);
  const refused: RefusedAttempt[] = [];
  let d: Dashboard;
  let proxied: Dashboard;
  beforeAll(async () => {
    d = await h.serve({ backoff: createAuthBackoff({ now: () => t }), onTokenRefused: (a) => refused.push(a) });
    proxied = await h.serve({ backoff: createAuthBackoff({ now: () => t }), trustedProxyHeader: 'X-Forwarded-For' });
  });
  const wrong = bearer('w'.repeat(32));

  it('the delay doubles from 0.5 s and stops at 10 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 50].map((n) => delayAfter(n))).toEqual([500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
    expect(BACKOFF).toMatchObject({ firstDelayMs: 500, maxDelayMs: 10_000 });
  });

  it('a right token from a client that has not failed is never delayed', async () => {
    for (let i = 0; i < 20; i++) expect((await raw(d.url, '/api/lag', { headers: bearer(TOKEN) })).status).toBe(200);
    // Nor is a request without a token counted as a guess.
    for (let i = 0; i < 5; i++) expect((await raw(d.url, '/api/lag')).status).toBe(401);
    expect((await raw(d.url, '/api/lag', { headers: bearer(TOKEN) })).status).toBe(200);
  });

  it('after a wrong token the client waits, answered 429 with Retry-After, even with the right token; then goes on', async () => {
    refused.length = 0;
    expectError(await raw(d.url, '/api/lag', { headers: wrong }), 401, 'unauthorized');
    const held = await raw(d.url, '/api/lag', { headers: bearer(TOKEN) });
    expectError(held, 429, 'too-many-attempts', /1 wrong admin token/);
    expect(held.headers['retry-after']).toBe('1');
    t += 499;
    expect((await raw(d.url, '/api/lag', { headers: wrong })).status).toBe(429);
    t += 1;
    expectError(await raw(d.url, '/api/lag', { headers: wrong }), 401, 'unauthorized');
    t += 999;
    expect((await raw(d.url, '/api/lag', { headers: bearer(TOKEN) })).status).toBe(429);
    t += 1;
    expect((await raw(d.url, '/api/lag', { headers: bearer(TOKEN) })).status).toBe(200);
    // The right token cleared the count: the next failure waits 0.5 s again.
    expect((await raw(d.url, '/api/lag', { headers: wrong })).status).toBe(401);
    t += 500;
    expect((await raw(d.url, '/api/lag', { headers: bearer(TOKEN) })).status).toBe(200);
    expect(refused.map((a) => [a.address, a.failureCount, a.delayMs])).toEqual([
      ['127.0.0.1', 1, 500],
      ['127.0.0.1', 2, 1000],
      ['127.0.0.1', 1, 500],
    ]);
    expect(h.logs.filter((l) => l.startsWith('wrong admin token'))).toContain(
      'wrong admin token from 127.0.0.1: 2 failure(s) in a row; its next attempt is looked at after 1 s',
    );
    expect(h.logs.join('\n')).not.toContain('w'.repeat(32));
  });

  it('by default each wrong token is an AdminTokenRefused event in the address\'s own stream of the log', async () => {
    const recorded = await h.serve({ backoff: createAuthBackoff({ now: () => t }) });
    const stream = accessStreamOf('127.0.0.1');
    const before = (await h.events.readStream(stream)).events.length;
    expect((await raw(recorded.url, '/api/lag', { headers: wrong })).status).toBe(401);
    let events: readonly { type: string; data: unknown; metadata: unknown }[] = [];
    for (let i = 0; i < 200 && events.length <= before; i++) {
      events = (await h.events.readStream(stream)).events;
      if (events.length <= before) await new Promise((r) => setTimeout(r, 10));
    }
    expect(events.at(-1)).toMatchObject({
      type: 'AdminTokenRefused',
      data: { address: '127.0.0.1', failureCount: 1, delayMs: 500 },
      metadata: { actor: 'dashboard', client: { ip: '127.0.0.1' } },
    });
    expect(JSON.stringify(events)).not.toContain('w'.repeat(32));
    // The read models take the new stream in their stride: nothing set aside, nothing stopped.
    await recorded.runner.whenCaughtUp({ timeoutMs: 10_000 });
    expect(recorded.runner.error()).toBeNull();
    expect(h.logs.join('\n')).not.toMatch(/projection stopped|does not decode/);
    t += 500;
    expect((await raw(recorded.url, '/api/lag', { headers: bearer(TOKEN) })).status).toBe(200);
  });

  it('Retry-After follows the doubling up to the cap of 10 s; nobody is locked out', async () => {
    const after: string[] = [];
    for (let n = 1; n <= 8; n++) {
      expect((await raw(d.url, '/api/lag', { headers: wrong })).status).toBe(401);
      after.push(String((await raw(d.url, '/api/lag', { headers: wrong })).headers['retry-after']));
      t += delayAfter(n);
    }
    expect(after).toEqual(['1', '1', '2', '4', '8', '10', '10', '10']);
    expect((await raw(d.url, '/api/lag', { headers: bearer(TOKEN) })).status).toBe(200);
  });

  it('a burst of wrong tokens sent at once is judged one after another: one is looked at, the rest wait', async () => {
    t += 60_000;
    const replies = await Promise.all(Array.from({ length: 12 }, () => raw(d.url, '/api/lag', { headers: wrong })));
    expect(replies.filter((r) => r.status === 401)).toHaveLength(1);
    expect(replies.filter((r) => r.status === 429)).toHaveLength(11);
    t += 500;
    expect((await raw(d.url, '/api/lag', { headers: bearer(TOKEN) })).status).toBe(200);
  });

  it("behind a trusted proxy, the address is the configured header's: one client's failures do not hold back another", async () => {
    const from = (ip: string, token: string) => raw(proxied.url, '/api/lag', { headers: { ...bearer(token), 'X-Forwarded-For': `203.0.113.9, ${ip}` } });
    expect((await from('198.51.100.1', 'w'.repeat(32))).status).toBe(401);
    expect((await from('198.51.100.1', TOKEN)).status).toBe(429);
    expect((await from('198.51.100.2', TOKEN)).status).toBe(200);
    expect(h.logs).toContain('wrong admin token from 198.51.100.1: 1 failure(s) in a row; its next attempt is looked at after 0.5 s');
  });

  it('without a trusted proxy, a forwarded-for header is not believed: the socket address is the client', async () => {
    t += 60_000;
    const from = (ip: string, token: string) => raw(d.url, '/api/lag', { headers: { ...bearer(token), 'X-Forwarded-For': ip } });
    expect((await from('198.51.100.1', 'w'.repeat(32))).status).toBe(401);
    expect((await from('198.51.100.2', TOKEN)).status).toBe(429);
    t += 500;
  });

  it('the trusted-proxy header must be a header name', async () => {
    await expect(h.serve({ trustedProxyHeader: 'X-Forwarded-For: 1.2.3.4' })).rejects.toThrow(/trusted-proxy header must be a header name/);
  });
});

describe('the actor is who authenticated; a claimed name is kept apart', () => {
  const ADMIN = `admin:${tokenFingerprint(TOKEN)}`;
  let d: Dashboard;
  let device: string;
  beforeAll(async () => {
    d = await h.serve({ backoff: createAuthBackoff({ maxDelayMs: 0 }) });
    device = (await right(h.engine.register({ kind: 'totp', userId: 'victor', confirmed: true }))).deviceId;
  });
  const rename = (name: string, actor?: string) =>
    raw(d.url, `/api/devices/${device}/rename`, {
      method: 'POST',
      headers: { ...bearer(TOKEN), 'Content-Type': 'application/json', ...(actor === undefined ? {} : { 'X-Factorstream-Actor': actor }) },
      body: JSON.stringify({ name }),
    });

  it.each(['admin:someone-else', 'ADMIN:someone-else', 'Admin:' + tokenFingerprint(TOKEN), 'admin:'])('X-Factorstream-Actor %s is refused (400), and nothing is written', async (claimed) => {
    const before = (await right(h.engine.history(device))).length;
    expectError(await rename('x', claimed), 400, 'invalid-input', /must not start with "admin:"/);
    expectError(await raw(d.url, '/api/whoami', { headers: { ...bearer(TOKEN), 'X-Factorstream-Actor': claimed } }), 400, 'invalid-input');
    expect((await right(h.engine.history(device))).length).toBe(before);
  });

  it('a claimed name is recorded as onBehalfOf; the actor is admin:<fingerprint>', async () => {
    const r = await rename('Phone', 'helpdesk:erin');
    expect(r.status, r.text).toBe(200);
    expect(r.json).toMatchObject({ actor: ADMIN, onBehalfOf: 'helpdesk:erin' });
    const last = (await right(h.engine.history(device))).at(-1)!;
    expect(last.metadata).toMatchObject({ actor: ADMIN, onBehalfOf: 'helpdesk:erin' });
    const who = await raw(d.url, '/api/whoami', { headers: { ...bearer(TOKEN), 'X-Factorstream-Actor': 'helpdesk:erin' } });
    expect(who.json).toEqual({ mode: 'token', actor: ADMIN, onBehalfOf: 'helpdesk:erin' });
  });

  it('without the header, no onBehalfOf is written (the metadata of old events still decodes)', async () => {
    expect((await rename('Phone 2')).status).toBe(200);
    const last = (await right(h.engine.history(device))).at(-1)!;
    expect(last.metadata.actor).toBe(ADMIN);
    expect('onBehalfOf' in last.metadata).toBe(false);
  });

  it('the engine itself refuses the reserved form as onBehalfOf', async () => {
    const r = await h.engine.rename(device, 'x', { actor: 'self', onBehalfOf: 'admin:forged' })();
    expect(r._tag === 'Left' && r.left.code).toBe('invalid-command');
  });
});
