/**
 * The dashboard's HTTP API over real HTTP: a server on an ephemeral port of 127.0.0.1, over a
 * real engine whose events and read models share one SQLite file.
 */
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTicketIssuer, sameToken, tokenFingerprint } from '../../adapters/http/auth.ts';
import { createAuthBackoff } from '../../adapters/http/backoff.ts';
import type { Dashboard } from '../../adapters/http/server.ts';
import { createEngine } from '../../app/engine.ts';
import { StoreError, type EventStore } from '../../domain/ports.ts';
import { createMemoryVault } from '../../adapters/vault/memory.ts';
import { systemRandom } from '../../adapters/system.ts';
import type { ReadStore } from '../../projections/read-store.ts';
import { leaks, sealedAndDigests } from '../projections/fixtures.ts';
import { TOKEN, createHarness, right, seed, type Harness, type Seeded } from './fixtures.ts';

let h: Harness;
let d: Dashboard;
let s: Seeded;
const ADMIN = `admin:${tokenFingerprint(TOKEN)}`;

/** Every body and header this file received, searched for secrets at the end. */
const seen: string[] = [];

interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: any;
}

const call = async (path: string, init: RequestInit = {}, base = d.url): Promise<Reply> => {
  const r = await fetch(base + path, init);
  const text = await r.text();
  seen.push(text, JSON.stringify([...r.headers]));
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: r.status, headers: r.headers, text, json };
};
const auth = { Authorization: `Bearer ${TOKEN}` };
const get = (path: string, headers: Record<string, string> = auth) => call(path, { headers });
const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  call(path, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

const expectError = (r: Reply, status: number, code: string, message?: RegExp) => {
  expect(r.status, r.text).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  expect(Object.keys(r.json)).toEqual(['error']);
  expect(r.json.error.code).toBe(code);
  expect(typeof r.json.error.message).toBe('string');
  if (message) expect(r.json.error.message).toMatch(message);
  // Never a stack trace.
  expect(r.text).not.toMatch(/\n\s+at |\.ts:\d+|node:internal/);
};

const expectSecurityHeaders = (r: Reply) => {
  const csp = r.headers.get('content-security-policy') ?? '';
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain("script-src 'self'");
  expect(csp).not.toContain('unsafe-inline');
  expect(csp).toContain("frame-ancestors 'none'");
  expect(r.headers.get('x-content-type-options')).toBe('nosniff');
  expect(r.headers.get('referrer-policy')).toBe('no-referrer');
  expect(r.headers.get('x-frame-options')).toBe('DENY');
  expect(r.headers.get('access-control-allow-origin')).toBeNull();
  expect(r.headers.get('set-cookie')).toBeNull();
};

beforeAll(async () => {
  h = createHarness();
  // Wrong tokens here are answered at once, so that the next test's right token is not held
  // back: the back-off itself is tested in hostile.test.ts.
  d = await h.serve({ backoff: createAuthBackoff({ maxDelayMs: 0 }) });
  s = await seed(h);
  await d.runner.whenCaughtUp();
});

afterAll(async () => {
  await h?.close();
});

describe('authentication', () => {
  it('refuses a request without a token, with a wrong token, or with the token anywhere but the bearer header', async () => {
    const missing = await get('/api/users/alice/devices', {});
    expectError(missing, 401, 'unauthorized', /Authorization: Bearer/);
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expectError(await get('/api/users/alice/devices', { Authorization: `Bearer ${TOKEN}x` }), 401, 'unauthorized', /not valid/);
    expectError(await get('/api/users/alice/devices', { Authorization: `Bearer ${TOKEN.slice(0, -1)}` }), 401, 'unauthorized');
    expectError(await get('/api/users/alice/devices', { Authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` }), 401, 'unauthorized');
    expectError(await get(`/api/users/alice/devices?token=${TOKEN}`, {}), 401, 'unauthorized');
    expectError(await get('/api/users/alice/devices', { Cookie: `token=${TOKEN}` }), 401, 'unauthorized');
    expectError(await post('/api/devices/' + s.carolToken.deviceId + '/unlock', { reason: 'x' }, { Authorization: 'Bearer nope' }), 401, 'unauthorized');
  });

  it('accepts the right token, and names the admin by a fingerprint of it', async () => {
    const r = await get('/api/whoami');
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ mode: 'token', actor: ADMIN });
    expect(ADMIN).toMatch(/^admin:[0-9a-f]{12}$/);
    expect(sameToken(TOKEN, TOKEN)).toBe(true);
    expect(sameToken(`${TOKEN}0`, TOKEN)).toBe(false);
    expect(sameToken('', TOKEN)).toBe(false);
  });

  it('serves the page without a token (it holds no data), with the security headers', async () => {
    const page = await get('/', {});
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.text).toContain('<script src="/app.js" defer></script>');
    expect(page.text).not.toMatch(/<script>|\son[a-z]+=/); // no inline script or handler: the CSP forbids them
    expectSecurityHeaders(page);
    const js = await get('/app.js', {});
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.text).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
    expectSecurityHeaders(js);
    expectSecurityHeaders(await get('/style.css', {}));
  });

  it('sends the security headers with every answer: data, errors, unknown paths', async () => {
    expectSecurityHeaders(await get('/api/whoami'));
    expectSecurityHeaders(await get('/api/whoami', {}));
    expectSecurityHeaders(await get('/api/users/a%01/devices'));
    const unknown = await get('/api/nothing-here');
    expectError(unknown, 404, 'not-found', /GET \/api\/nothing-here/);
    expectSecurityHeaders(unknown);
    expect((await get('/api/whoami')).headers.get('cache-control')).toBe('no-store');
  });

  it('refuses to start without a token unless insecure-local, and insecure-local only on a loopback address', async () => {
    await expect(h.serve({ adminToken: null })).rejects.toThrow(/refusing to serve without an admin token: set FACTORSTREAM_ADMIN_TOKEN/);
    await expect(h.serve({ adminToken: '' })).rejects.toThrow(/FACTORSTREAM_ADMIN_TOKEN/);
    await expect(h.serve({ adminToken: 'short' })).rejects.toThrow(/at least 16 characters/);
    await expect(h.serve({ adminToken: null, insecureLocal: true, host: '0.0.0.0' })).rejects.toThrow(/loopback address only/);
  });

  it('insecure-local serves without a token, to its own host names only (no DNS rebinding)', async () => {
    const local = await h.serve({ adminToken: null, insecureLocal: true });
    const r = await call('/api/whoami', {}, local.url);
    expect(r.json).toEqual({ mode: 'insecure-local', actor: 'admin:insecure-local' });
    const viaLocalhost = await call('/api/whoami', {}, local.url.replace('127.0.0.1', 'localhost')).catch(() => null);
    if (viaLocalhost) expect(viaLocalhost.status).toBe(200); // when localhost resolves to 127.0.0.1
    const rebound = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(`${local.url}/api/users/alice/devices`, { headers: { Host: `attacker.example:${local.port}` } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(rebound.status).toBe(403);
    expect(JSON.parse(rebound.body).error.code).toBe('forbidden-host');
    expect(rebound.body).not.toContain('Pixel');
    await local.close();
  });
});

describe('reading', () => {
  it("lists a user's devices with their status, with a confirmed filter", async () => {
    const r = await get('/api/users/alice/devices');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(r.json.userId).toBe('alice');
    const byName = Object.fromEntries(r.json.devices.map((x: any) => [x.name, x]));
    expect(Object.keys(byName).sort()).toEqual(['Personal e-mail', 'Pixel 8 authenticator', 'Printed backup codes']);
    expect(byName['Printed backup codes'].backupCodesLeft).toBe(9);
    expect(byName['Pixel 8 authenticator']).toMatchObject({
      deviceId: s.alicePhone.deviceId,
      persistentId: s.alicePhone.persistentId,
      kind: 'totp',
      confirmed: true,
      removed: false,
      throttle: { failureCount: 0, lockedUntil: null },
    });
    expect((await get('/api/users/alice/devices?confirmed=true')).json.devices).toHaveLength(3);
    expect((await get('/api/users/alice/devices?confirmed=false')).json.devices).toEqual([]);
    const dave = await get('/api/users/dave/devices?confirmed=false');
    expect(dave.json.devices.map((x: any) => x.name)).toEqual(['New phone']);
    const sms = (await get('/api/users/dave/devices?confirmed=true')).json.devices[0];
    expect(sms.cooldown.nextChallengeAt).toBeGreaterThan(h.clock.now());
    expect(sms.pendingCodeValidUntil).toBeGreaterThan(h.clock.now());
    expect((await get('/api/users/nobody/devices')).json.devices).toEqual([]);
    expectError(await get('/api/users/alice/devices?confirmed=yes'), 400, 'invalid-input', /confirmed must be true or false/);
  });

  it('shows one device now, by id or persistent id, and as it was at a past instant', async () => {
    const carol = await get(`/api/devices/${s.carolToken.deviceId}`);
    expect(carol.status).toBe(200);
    expect(carol.json.at).toBeNull();
    expect(carol.json.device.throttle.failureCount).toBe(8);
    expect(carol.json.device.throttle.lockedUntil).toBeGreaterThan(h.clock.now());
    const byPid = await get(`/api/devices/${encodeURIComponent(s.carolToken.persistentId)}`);
    expect(byPid.json.device).toEqual(carol.json.device);

    const created = carol.json.device.createdAt as number;
    const then = await get(`/api/devices/${s.carolToken.deviceId}?at=${encodeURIComponent(new Date(created + 1000).toISOString())}`);
    expect(then.status).toBe(200);
    expect(then.json.at).toBe(created + 1000);
    expect(then.json.device).toMatchObject({ name: 'YubiKey 5', version: 1, throttle: { failureCount: 0, lockedUntil: null } });
    const unix = await get(`/api/devices/${s.carolToken.deviceId}?at=@${Math.floor(h.clock.now() / 1000) - 30}`);
    expect(unix.json.device.throttle.failureCount).toBe(8);
    expect(unix.json.device.throttle.lockedUntil).not.toBeNull();

    expectError(await get(`/api/devices/${s.carolToken.deviceId}?at=${encodeURIComponent(new Date(created - 60_000).toISOString())}`), 404, 'device-not-found', /did not exist at/);
    expectError(await get(`/api/devices/${s.carolToken.deviceId}?at=yesterday`), 400, 'invalid-input', /at must be an ISO-8601 time/);
    expectError(await get(`/api/devices/${s.carolToken.deviceId}?at=2024-13-45T99:00:00Z`), 400, 'invalid-input', /ISO-8601/);
    expectError(await get('/api/devices/00000000-0000-4000-8000-000000000000'), 404, 'device-not-found');
    expectError(await get(`/api/devices/${encodeURIComponent(`totp/${s.carolToken.deviceId}`)}`), 404, 'device-not-found');
    expectError(await get('/api/devices/not-a-device'), 400, 'invalid-input', /device id \(a lower-case UUID\) or a persistent id/);
  });

  it('shows one device right after the event at a version of its stream (an audit entry)', async () => {
    const audit = (await get(`/api/devices/${s.carolToken.deviceId}/audit?limit=100`)).json.entries as { version: number; at: number; action: string }[];
    const failures = audit.filter((e) => e.action === 'verification-failed').sort((a, b) => a.version - b.version);
    expect(failures.length).toBeGreaterThan(1);
    for (const [i, e] of failures.entries()) {
      const r = await get(`/api/devices/${s.carolToken.deviceId}?version=${e.version}`);
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ at: e.at, version: e.version, device: { version: e.version, throttle: { failureCount: i + 1 } } });
      expect(r.json.device.throttle.lockedUntil).toBeGreaterThan(e.at); // locked as of that failure
    }
    const first = await get(`/api/devices/${encodeURIComponent(s.carolToken.persistentId)}?version=1`);
    expect(first.json.device).toMatchObject({ name: 'YubiKey 5', version: 1, throttle: { failureCount: 0 } });
    expectError(await get(`/api/devices/${s.carolToken.deviceId}?version=100000`), 404, 'device-not-found', /no event at version 100000/);
    expectError(await get(`/api/devices/${s.carolToken.deviceId}?version=0`), 400, 'invalid-input', /version must be a whole number/);
    expectError(await get(`/api/devices/${s.carolToken.deviceId}?version=1e3`), 400, 'invalid-input', /version must be a whole number/);
    expectError(await get(`/api/devices/${s.carolToken.deviceId}?version=1&at=@0`), 400, 'invalid-input', /not both/);
  });

  it('pages the audit log of a user and of a device, newest first', async () => {
    const first = await get('/api/users/alice/audit?limit=3');
    expect(first.status).toBe(200);
    expect(first.json.entries).toHaveLength(3);
    expect(typeof first.json.nextCursor).toBe('string');
    const second = await get(`/api/users/alice/audit?limit=3&cursor=${first.json.nextCursor}`);
    expect(second.json.entries).toHaveLength(3);
    const all = [...first.json.entries, ...second.json.entries];
    expect(new Set(all.map((e: any) => e.eventId)).size).toBe(6);
    for (let i = 1; i < all.length; i++) expect(all[i - 1].at).toBeGreaterThanOrEqual(all[i].at);
    expect(first.json.entries[0]).toMatchObject({ userId: 'alice', action: 'challenge-generated', actor: 'self', ip: '198.51.100.7' });

    const device = await get(`/api/devices/${s.carolToken.deviceId}/audit?limit=100`);
    expect(device.json.nextCursor).toBeNull();
    expect(device.json.entries.map((e: any) => e.action)).toEqual(['verification-refused', ...Array(8).fill('verification-failed'), 'device-enrolled']);
    expect(device.json.entries[0]).toMatchObject({ reason: 'throttled', actor: 'self', ip: '192.0.2.44' });

    expectError(await get('/api/users/alice/audit?limit=0'), 400, 'invalid-input', /limit must be a whole number from 1 to 1000/);
    expectError(await get('/api/users/alice/audit?limit=1001'), 400, 'invalid-input');
    expectError(await get('/api/users/alice/audit?cursor=bm90LWEtY3Vyc29y'), 400, 'invalid-input', /cursor/);
    expectError(await get('/api/users/alice/audit?cursor=%3Cscript%3E'), 400, 'invalid-input', /cursor/);
  });

  it('reports statistics: devices by kind, hourly counts, locked devices, unusual failure patterns', async () => {
    const r = await get('/api/stats');
    expect(r.status).toBe(200);
    expect(r.json.now).toBe(h.clock.now());
    expect(r.json.devices.total).toEqual({ confirmed: 6, unconfirmed: 1, removed: 0 });
    expect(r.json.devices.totp).toEqual({ confirmed: 2, unconfirmed: 1, removed: 0 });
    expect(r.json.hourly).toHaveLength(24);
    const sum = (k: string) => r.json.hourly.reduce((n: number, x: any) => n + x[k], 0);
    expect(sum('failed')).toBeGreaterThanOrEqual(8 + 4);
    expect(sum('verified')).toBeGreaterThan(0);
    expect(sum('matchFailed')).toBeGreaterThan(0);
    expect(r.json.lockedDevices.map((x: any) => x.name)).toEqual(['YubiKey 5']);
    expect(r.json.unusualFailures).toEqual([expect.objectContaining({ userId: 'bob', failures: 12 })]);
    expect(r.json.unusualFailures[0].days.length).toBeGreaterThanOrEqual(3);

    const week = await get(`/api/stats?from=@${Math.floor(h.clock.now() / 1000) - 7 * 86_400}&to=@${Math.floor(h.clock.now() / 1000)}`);
    expect(week.json.hourly).toHaveLength(7 * 24 + 1);
    expectError(await get('/api/stats?from=2020-01-01T00:00:00Z&to=2021-01-01T00:00:00Z'), 400, 'invalid-input', /at most 744 hours/);
    expectError(await get('/api/stats?from=2021-01-02T00:00:00Z&to=2021-01-01T00:00:00Z'), 400, 'invalid-input', /to must not be before from/);
  });

  it("reports the projection's lag", async () => {
    await d.runner.whenCaughtUp();
    const r = await get('/api/lag');
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ events: 0, exact: true, seconds: 0, state: 'live', error: null });
    expect(typeof r.json.checkpoint).toBe('string');
  });
});

describe('bad input', () => {
  it('a user id with control characters, or too long', async () => {
    expectError(await get('/api/users/al%0Aice/devices'), 400, 'invalid-input', /userId must not contain control characters/);
    expectError(await get('/api/users/al%00ice/audit'), 400, 'invalid-input', /userId must not contain control characters/);
    expectError(await get(`/api/users/${'u'.repeat(129)}/devices`), 400, 'invalid-input', /userId must be 1–128 characters long \(got 129\)/);
    expectError(await post('/api/users/a%1Bb/unlock', { reason: 'x' }), 400, 'invalid-input', /userId/);
  });

  it('a name of 65 characters, or with control characters', async () => {
    expectError(await post(`/api/devices/${s.alicePhone.deviceId}/rename`, { name: 'n'.repeat(65) }), 400, 'invalid-input', /^name must be 1–64 characters long \(got 65\)$/);
    expectError(await post(`/api/devices/${s.alicePhone.deviceId}/rename`, { name: 'line\nbreak' }), 400, 'invalid-input', /name must not contain control characters/);
    expectError(await post(`/api/devices/${s.alicePhone.deviceId}/rename`, { name: 42 }), 400, 'invalid-input', /name must be a string/);
    expectError(await post(`/api/devices/${s.alicePhone.deviceId}/rename`, {}), 400, 'invalid-input', /^name is required$/);
  });

  it('an unlock without a reason, or with one of 501 characters', async () => {
    expectError(await post(`/api/devices/${s.carolToken.deviceId}/unlock`, {}), 400, 'invalid-input', /^reason is required$/);
    expectError(await post(`/api/devices/${s.carolToken.deviceId}/unlock`, ''), 400, 'invalid-input', /^reason is required$/);
    expectError(await post(`/api/devices/${s.carolToken.deviceId}/unlock`, { reason: 'r'.repeat(501) }), 400, 'invalid-input', /reason must be 1–500/);
    expectError(await post('/api/users/dave/unlock', {}), 400, 'invalid-input', /^reason is required$/);
  });

  it('bodies that are not a JSON object of the known fields', async () => {
    expectError(await post(`/api/devices/${s.carolToken.deviceId}/unlock`, '{"reason": '), 400, 'invalid-input', /not valid JSON/);
    expectError(await post(`/api/devices/${s.carolToken.deviceId}/unlock`, '["help"]'), 400, 'invalid-input', /JSON object/);
    expectError(await post(`/api/devices/${s.carolToken.deviceId}/unlock`, { reason: 'ok', actor: 'root' }), 400, 'invalid-input', /unknown field "actor"/);
    expectError(await post(`/api/devices/${s.carolToken.deviceId}/unlock`, 'x'.repeat(20_000)), 413, 'body-too-large');
  });

  it('admin commands take application/json only (no form can post cross-site), and no foreign Origin', async () => {
    const path = `/api/devices/${s.carolToken.deviceId}/unlock`;
    const body = JSON.stringify({ reason: 'form post' });
    expectError(await call(path, { method: 'POST', headers: { ...auth, 'Content-Type': 'text/plain' }, body }), 415, 'unsupported-media-type', /application\/json/);
    expectError(await call(path, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'reason=x' }), 415, 'unsupported-media-type');
    expectError(await call(path, { method: 'POST', headers: { ...auth, 'Content-Type': 'multipart/form-data; boundary=x' }, body: '--x--' }), 415, 'unsupported-media-type');
    expectError(await post(path, { reason: 'x' }, { Origin: 'https://attacker.example' }), 403, 'forbidden-origin');
    expectError(await post(path, { reason: 'x' }, { Origin: 'null' }), 403, 'forbidden-origin');
    // Behind a proxy that forwards the public host name, the page's own origin passes.
    const proxied = { Origin: 'https://dash.example.org', 'X-Forwarded-Host': 'dash.example.org' };
    expectError(await post('/api/devices/00000000-0000-4000-8000-000000000000/unlock', { reason: 'x' }, proxied), 404, 'device-not-found');
    expectError(await post(path, { reason: 'x' }, { ...proxied, 'X-Forwarded-Host': 'other.example.org' }), 403, 'forbidden-origin');
    // None of these reached the engine: carol is still locked.
    expect((await right(h.engine.device(s.carolToken.deviceId))).throttle.failureCount).toBe(8);
  });

  it('an invalid X-Factorstream-Actor', async () => {
    expectError(
      await post(`/api/devices/${s.carolToken.deviceId}/unlock`, { reason: 'x' }, { 'X-Factorstream-Actor': 'a'.repeat(129) }),
      400,
      'invalid-input',
      /X-Factorstream-Actor: actor must be 1–128 characters long/,
    );
  });
});

describe('admin commands', () => {
  it('unlock resets the throttle through the engine, recorded with the admin actor and the reason', async () => {
    const r = await post(`/api/devices/${s.carolToken.deviceId}/unlock`, { reason: 'identity checked by phone' });
    expect(r.status, r.text).toBe(200);
    expect(r.json).toMatchObject({ actor: ADMIN, projected: true, device: { deviceId: s.carolToken.deviceId, throttle: { failureCount: 0, lockedUntil: null } } });
    expect((await right(h.engine.device(s.carolToken.deviceId))).throttle).toMatchObject({ failureCount: 0, lockedUntil: null });
    const last = (await right(h.engine.history(s.carolToken.deviceId))).at(-1)!;
    expect(last.event.type).toBe('ThrottleReset');
    expect(last.metadata.actor).toBe(ADMIN);
    expect(last.metadata.client?.ip).toBe('127.0.0.1');
    expect((last.event.data as { reason: string }).reason).toBe('identity checked by phone');
    // The read side shows it at once (the command waited for the projection).
    expect((await get(`/api/devices/${s.carolToken.deviceId}`)).json.device.throttle.lockedUntil).toBeNull();
    const audit = await get(`/api/devices/${s.carolToken.deviceId}/audit?limit=1`);
    expect(audit.json.entries[0]).toMatchObject({ action: 'throttle-reset', actor: ADMIN, reason: 'identity checked by phone', ip: '127.0.0.1' });
    expect((await get('/api/stats')).json.lockedDevices).toEqual([]);
  });

  it('rename goes through the engine; the actor is the authenticated admin, X-Factorstream-Actor is kept as onBehalfOf; markup comes back as plain JSON text', async () => {
    const name = '<script>alert(1)</script>';
    const r = await post(`/api/devices/${s.daveSms.deviceId}/rename`, { name }, { 'X-Factorstream-Actor': 'helpdesk:erin' });
    expect(r.status, r.text).toBe(200);
    // Issue 14: a claimed name is not the actor (it was recorded as the actor before).
    expect(r.json.actor).toBe(ADMIN);
    expect(r.json.onBehalfOf).toBe('helpdesk:erin');
    expect((await right(h.engine.device(s.daveSms.deviceId))).name).toBe(name);
    expect((await right(h.engine.history(s.daveSms.deviceId))).at(-1)!.metadata).toMatchObject({ actor: ADMIN, onBehalfOf: 'helpdesk:erin' });

    const shown = await get(`/api/devices/${encodeURIComponent(s.daveSms.persistentId)}`);
    expect(shown.headers.get('content-type')).toBe('application/json');
    expect(shown.headers.get('x-content-type-options')).toBe('nosniff');
    expect(shown.json.device.name).toBe(name);
    expect(shown.text).toContain(JSON.stringify(name));
    const list = await get('/api/users/dave/devices?confirmed=true');
    expect(list.json.devices[0].name).toBe(name);
    const audit = await get(`/api/devices/${s.daveSms.deviceId}/audit?limit=1`);
    expect(audit.json.entries[0]).toMatchObject({ action: 'device-renamed', actor: ADMIN, details: { onBehalfOf: 'helpdesk:erin' } });
  });

  it('remove goes through the engine; a removed device answers 409 to commands and 200 to reads', async () => {
    const r = await post(`/api/devices/${s.aliceEmail.deviceId}/remove`, { reason: 'address no longer used' });
    expect(r.status, r.text).toBe(200);
    expect(r.json.device.removed).toBe(true);
    expect((await right(h.engine.device(s.aliceEmail.deviceId))).removed).toBe(true);
    const last = (await right(h.engine.history(s.aliceEmail.deviceId))).at(-1)!;
    expect(last.event.type).toBe('DeviceRemoved');
    expect(last.metadata.actor).toBe(ADMIN);
    expect((await get('/api/users/alice/devices')).json.devices.map((x: any) => x.name)).not.toContain('Personal e-mail');
    expect((await get(`/api/devices/${s.aliceEmail.deviceId}`)).json.device.removed).toBe(true);

    expectError(await post(`/api/devices/${s.aliceEmail.deviceId}/rename`, { name: 'Back again' }), 409, 'device-removed', /was removed/);
    expectError(await post(`/api/devices/${s.aliceEmail.deviceId}/unlock`, { reason: 'x' }), 409, 'device-removed');
    expectError(await post(`/api/devices/${s.aliceEmail.deviceId}/remove`, {}), 409, 'device-removed');
  });

  it('commands on an unknown device answer 404', async () => {
    expectError(await post('/api/devices/00000000-0000-4000-8000-000000000000/unlock', { reason: 'x' }), 404, 'device-not-found', /no device with id/);
    expectError(await post('/api/devices/00000000-0000-4000-8000-000000000000/rename', { name: 'x' }), 404, 'device-not-found');
    expectError(await post(`/api/devices/${encodeURIComponent(`sms/${s.alicePhone.deviceId}`)}/remove`, {}), 404, 'device-not-found');
    expect((await right(h.engine.device(s.alicePhone.deviceId))).removed).toBe(false);
  });

  it("unlocking a user resets their match lock, recorded with the actor", async () => {
    const r = await post('/api/users/dave/unlock', { reason: 'new phone enrolled at the desk' });
    expect(r.status, r.text).toBe(200);
    expect(r.json).toEqual({ userId: 'dave', actor: ADMIN, projected: true });
    const last = (await right(h.engine.userHistory('dave'))).at(-1)!;
    expect(last.event.type).toBe('ThrottleReset');
    expect(last.metadata.actor).toBe(ADMIN);
  });
});

describe('live updates', () => {
  const ticket = async () => (await post('/api/sse-ticket', {})).json as { ticket: string; expiresAt: number };

  it('a ticket needs the token; the stream needs a ticket, which works once', async () => {
    expectError(await call('/api/sse-ticket', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' }), 401, 'unauthorized');
    expectError(await get('/api/events', {}), 401, 'invalid-ticket', /POST \/api\/sse-ticket/);
    expectError(await get('/api/events', auth), 401, 'invalid-ticket');
    expectError(await get('/api/events?ticket=1.2.3', {}), 401, 'invalid-ticket');
    const t = await ticket();
    expect(t.expiresAt).toBeGreaterThan(Date.now() + 50_000);
    expect(t.expiresAt).toBeLessThanOrEqual(Date.now() + 60_000);
    expect(t.ticket).not.toContain(TOKEN);
    const tampered = t.ticket.replace(/^\d+/, (n) => String(Number(n) + 1_000_000));
    expectError(await get(`/api/events?ticket=${encodeURIComponent(tampered)}`, {}), 401, 'invalid-ticket');

    const ac = new AbortController();
    const stream = await fetch(`${d.url}/api/events?ticket=${encodeURIComponent(t.ticket)}`, { signal: ac.signal });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(stream.headers.get('content-security-policy')).toContain("default-src 'none'");
    ac.abort();
    expectError(await get(`/api/events?ticket=${encodeURIComponent(t.ticket)}`, {}), 401, 'invalid-ticket');
  });

  it('tickets expire after their time and cannot be forged', () => {
    let now = 1_000_000;
    const issuer = createTicketIssuer({ ttlMs: 60_000, now: () => now });
    const a = issuer.issue();
    const b = issuer.issue();
    expect(a.expiresAt).toBe(1_060_000);
    now += 60_000;
    expect(issuer.redeem(a.ticket)).toBe(false);
    now -= 1;
    expect(issuer.redeem(b.ticket)).toBe(true);
    expect(issuer.redeem(b.ticket)).toBe(false);
    expect(createTicketIssuer({ now: () => now }).redeem(issuer.issue().ticket)).toBe(false); // another server's key
    // Instances sharing the admin token accept each other's tickets (once each); others do not.
    const one = createTicketIssuer({ now: () => now, secret: TOKEN });
    const other = createTicketIssuer({ now: () => now, secret: TOKEN });
    const fromA = one.issue().ticket;
    expect(other.redeem(fromA)).toBe(true);
    expect(other.redeem(fromA)).toBe(false);
    expect(createTicketIssuer({ now: () => now, secret: `${TOKEN}x` }).redeem(one.issue().ticket)).toBe(false);
    expect(fromA).not.toContain(TOKEN);
    expect(issuer.redeem(null)).toBe(false);
    expect(issuer.redeem('x'.repeat(500))).toBe(false);
  });

  it('a ticket from one instance opens the stream on another that shares the admin token', async () => {
    const second = await h.serve();
    const t = await ticket(); // from the first instance
    const ac = new AbortController();
    const res = await fetch(`${second.url}/api/events?ticket=${encodeURIComponent(t.ticket)}`, { signal: ac.signal });
    expect(res.status).toBe(200);
    ac.abort();
    await res.body?.cancel().catch(() => undefined);
  });

  it('pushes "changed" when the projection applied new events', async () => {
    const t = await ticket();
    const ac = new AbortController();
    const res = await fetch(`${d.url}/api/events?ticket=${encodeURIComponent(t.ticket)}`, { signal: ac.signal });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    const until = async (pattern: RegExp) => {
      while (!pattern.test(buffer)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the stream ended before ${pattern}: ${buffer}`);
        buffer += decoder.decode(value, { stream: true });
      }
    };
    await until(/event: ready\ndata: \{[^\n]*"state":"live"/);
    await right(h.engine.verify(s.alicePhone.deviceId, '000000', { actor: 'self' }));
    const head = await d.runner.whenCaughtUp();
    await until(new RegExp(`event: changed\\ndata: \\{"type":"changed","position":"${head}"\\}`));
    ac.abort();
    seen.push(buffer);
  });
});

describe('failures', () => {
  it('a read store that fails answers 503 with a clear message and no detail of the failure', async () => {
    const failing: ReadStore = new Proxy(h.readStore, {
      get: (target, key, receiver) =>
        key === 'devicesOfUser'
          ? async () => {
              throw new Error('SQLITE_IOERR: disk I/O error at /secret/path.db');
            }
          : Reflect.get(target, key, receiver),
    });
    const server = await h.serve({ readStore: failing, runner: d.runner });
    const r = await call('/api/users/alice/devices', { headers: auth }, server.url);
    expectError(r, 503, 'unavailable', /could not answer.*try again/);
    expect(r.text).not.toMatch(/SQLITE|secret\/path/);
    expect(h.logs.some((l) => l.includes('SQLITE_IOERR'))).toBe(true);
    await server.close();
  });

  it('an event store that fails answers 503 to admin commands', async () => {
    const down: EventStore = new Proxy(h.events, {
      get: (target, key, receiver) =>
        key === 'readStream' || key === 'appendToStream'
          ? async () => {
              throw new StoreError('unavailable', 'the event store at sqlite:/tmp/x.db is unreachable');
            }
          : Reflect.get(target, key, receiver),
    });
    const engine = createEngine({ store: down, vault: createMemoryVault(), clock: h.clock, random: systemRandom });
    const server = await h.serve({ engine, runner: d.runner });
    const r = await call(`/api/devices/${s.alicePhone.deviceId}/unlock`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ reason: 'x' }),
    }, server.url);
    expectError(r, 503, 'store-unavailable', /unreachable; try again/);
    await server.close();
  });
});

describe('secrets', () => {
  it('no response carried a key, code, address, phone number, sealed value, digest or the admin token', async () => {
    const { events } = await h.events.readAll({ after: null, limit: 10_000 });
    const stored = sealedAndDigests(events);
    expect(stored.size).toBeGreaterThan(5);
    expect(h.secrets.size).toBeGreaterThan(10);
    const text = seen.join('\n');
    expect(text.length).toBeGreaterThan(10_000);
    expect(leaks(text, [...h.secrets, ...stored, TOKEN, Buffer.from(s.aliceKey).toString('hex')])).toEqual([]);
  });
});
