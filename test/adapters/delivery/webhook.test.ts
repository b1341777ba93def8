import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Delivery } from '../../../domain/ports.ts';
import {
  createWebhookSender,
  signWebhookPayload,
  verifyWebhookSignature,
} from '../../../adapters/delivery/webhook.ts';

const SECRET = 'whsec-test-0123456789abcdef';

interface Request {
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A local HTTP server; `respond` decides the answer (or not to answer at all). */
const startServer = async (respond: (req: IncomingMessage, res: ServerResponse, body: string) => void) => {
  const requests: Request[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method, url: req.url, headers: req.headers, body });
      respond(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/sms`, port, requests };
};

const delivery = (overrides: Partial<Delivery> = {}): Delivery => ({
  deviceId: 'dev-7',
  kind: 'sms',
  destination: '+44 7700 900123',
  code: '907153',
  validUntil: Date.UTC(2026, 4, 6, 7, 8, 9),
  ...overrides,
});

const expectClean = (result: unknown, d: Delivery) => {
  const text = JSON.stringify(result);
  expect(text).not.toContain(d.code);
  expect(text).not.toContain(d.destination);
  expect(text).not.toContain(d.destination.replace(/\D/g, ''));
  expect(text).not.toContain('900123');
};

describe('webhook sender', () => {
  it('POSTs a signed JSON body that the receiver can verify', async () => {
    const server = await startServer((_req, res) => res.writeHead(202).end());
    const now = Date.UTC(2026, 4, 6, 7, 3, 0);
    const sender = createWebhookSender({
      url: server.url,
      secret: SECRET,
      headers: { 'X-Gateway-Key': 'k1', 'x-factorstream-signature': 'forged' },
      now: () => now,
      newId: () => 'delivery-1',
    });
    const d = delivery();
    expect(await sender.send(d)).toEqual({ ok: true });

    expect(server.requests).toHaveLength(1);
    const request = server.requests[0]!;
    expect(request.method).toBe('POST');
    expect(request.url).toBe('/sms');
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.headers['x-gateway-key']).toBe('k1');
    expect(request.headers['x-factorstream-delivery']).toBe('delivery-1');
    expect(JSON.parse(request.body)).toEqual({
      deviceId: 'dev-7',
      kind: 'sms',
      destination: '+44 7700 900123',
      code: '907153',
      validUntil: '2026-05-06T07:08:09.000Z',
      id: 'delivery-1',
    });
    const timestamp = request.headers['x-factorstream-timestamp'] as string;
    const signature = request.headers['x-factorstream-signature'] as string;
    expect(timestamp).toBe(String(now / 1000));
    expect(signature).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(signature).toBe(signWebhookPayload(SECRET, timestamp, request.body));
    expect(verifyWebhookSignature(SECRET, timestamp, request.body, signature, 300, now)).toBe(true);
    expect(verifyWebhookSignature(SECRET, timestamp, Buffer.from(request.body), signature, 300, now + 299_000)).toBe(true);
  });

  it('a tampered body, timestamp, signature or secret fails verification, and so does a stale timestamp', async () => {
    const server = await startServer((_req, res) => res.writeHead(200).end());
    const now = 1_800_000_000_000;
    await createWebhookSender({ url: server.url, secret: SECRET, now: () => now }).send(delivery());
    const { body, headers } = server.requests[0]!;
    const timestamp = headers['x-factorstream-timestamp'] as string;
    const signature = headers['x-factorstream-signature'] as string;
    expect(verifyWebhookSignature(SECRET, timestamp, body, signature, 300, now)).toBe(true);

    expect(verifyWebhookSignature(SECRET, timestamp, body.replace('907153', '000000'), signature, 300, now)).toBe(false);
    expect(verifyWebhookSignature(SECRET, timestamp, body.replace('+44 7700 900123', '+1 555 0100'), signature, 300, now)).toBe(false);
    expect(verifyWebhookSignature(SECRET, String(Number(timestamp) + 1), body, signature, 300, now)).toBe(false);
    expect(verifyWebhookSignature(SECRET, timestamp, body, signature.replace(/.$/, (c) => (c === '0' ? '1' : '0')), 300, now)).toBe(false);
    expect(verifyWebhookSignature('another-secret-0123456789', timestamp, body, signature, 300, now)).toBe(false);
    expect(verifyWebhookSignature(SECRET, timestamp, body, signature, 300, now + 301_000)).toBe(false);
    expect(verifyWebhookSignature(SECRET, timestamp, body, signature, 300, now - 301_000)).toBe(false);
    expect(verifyWebhookSignature(SECRET, timestamp, body, signature.slice('sha256='.length), 300, now)).toBe(false);
    expect(verifyWebhookSignature(SECRET, timestamp, body, 'sha256=abc', 300, now)).toBe(false);
    expect(verifyWebhookSignature(SECRET, undefined, body, signature, 300, now)).toBe(false);
    expect(verifyWebhookSignature(SECRET, 'soon', body, signature, 300, now)).toBe(false);
    // Several signatures (key rotation): one valid is enough.
    expect(verifyWebhookSignature(SECRET, timestamp, body, `sha256=${'0'.repeat(64)}, ${signature}`, 300, now)).toBe(true);
  });

  it('gives every delivery its own id', async () => {
    const server = await startServer((_req, res) => res.writeHead(204).end());
    const sender = createWebhookSender({ url: server.url, secret: SECRET });
    await sender.send(delivery());
    await sender.send(delivery());
    const ids = server.requests.map((r) => (JSON.parse(r.body) as { id: string }).id);
    expect(new Set(ids).size).toBe(2);
    expect(ids[0]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('reports a 500 answer by its status, never its body', async () => {
    const server = await startServer((_req, res, body) => {
      // A gateway that echoes the request in its error page.
      res.writeHead(500, 'Oops 907153', { 'content-type': 'text/plain' }).end(`cannot send ${body}`);
    });
    const d = delivery();
    const result = await createWebhookSender({ url: server.url, secret: SECRET }).send(d);
    expect(result).toEqual({ ok: false, reason: 'the webhook answered HTTP 500 (Internal Server Error)' });
    expectClean(result, d);
  });

  it('does not follow redirects', async () => {
    const target = await startServer((_req, res) => res.writeHead(200).end());
    const server = await startServer((_req, res) => res.writeHead(307, { location: target.url }).end());
    const result = await createWebhookSender({ url: server.url, secret: SECRET }).send(delivery());
    expect(result).toEqual({ ok: false, reason: 'the webhook answered HTTP 307 (Temporary Redirect, redirects are not followed)' });
    expect(target.requests).toHaveLength(0);
  });

  it('times out on a server that never answers, within timeoutMs', async () => {
    const server = await startServer(() => {
      /* never answers */
    });
    const d = delivery();
    const started = Date.now();
    const result = await createWebhookSender({ url: server.url, secret: SECRET, timeoutMs: 200 }).send(d);
    const elapsed = Date.now() - started;
    expect(result).toEqual({ ok: false, reason: 'the webhook did not answer within 200 ms' });
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeLessThan(1_500);
    expect(server.requests).toHaveLength(1);
  });

  it('reports a connection error by its code', async () => {
    const server = await startServer((_req, res) => res.end());
    const { url } = server;
    await cleanups.pop()!(); // close it: nothing listens there any more
    const d = delivery();
    const result = await createWebhookSender({ url, secret: SECRET, timeoutMs: 2_000 }).send(d);
    expect(result).toEqual({ ok: false, reason: 'could not reach the webhook (ECONNREFUSED)' });
    expectClean(result, d);
  });

  it('sends credentials in the URL as HTTP Basic authentication', async () => {
    const server = await startServer((_req, res) => res.writeHead(200).end());
    const url = server.url.replace('http://', 'http://gw-user:s3cr%40t@');
    expect(await createWebhookSender({ url, secret: SECRET }).send(delivery())).toEqual({ ok: true });
    expect(server.requests[0]?.headers.authorization).toBe(`Basic ${Buffer.from('gw-user:s3cr@t').toString('base64')}`);
  });

  it('delivers e-mail deliveries too, with kind "email"', async () => {
    const server = await startServer((_req, res) => res.writeHead(200).end());
    const result = await createWebhookSender({ url: server.url, secret: SECRET }).send(
      delivery({ kind: 'email', destination: 'jane@example.com' }),
    );
    expect(result).toEqual({ ok: true });
    expect(JSON.parse(server.requests[0]!.body)).toMatchObject({ kind: 'email', destination: 'jane@example.com' });
  });

  it('rejects a bad configuration when created', () => {
    expect(() => createWebhookSender({ url: 'ftp://example.com/x', secret: SECRET })).toThrow(/http: or https:/);
    expect(() => createWebhookSender({ url: 'not a url', secret: SECRET })).toThrow(/not a URL/);
    expect(() => createWebhookSender({ url: 'https://example.com', secret: '' })).toThrow(/secret/);
    expect(() => createWebhookSender({ url: 'https://example.com', secret: SECRET, timeoutMs: 0 })).toThrow(/timeoutMs/);
  });
});
