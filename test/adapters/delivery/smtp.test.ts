import { createServer, type AddressInfo, type Server } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import type { Delivery } from '../../../domain/ports.ts';
import { createSmtpSender } from '../../../adapters/delivery/smtp.ts';

interface Received {
  readonly mailFrom: string | undefined;
  readonly rcptTo: string[];
  readonly raw: string;
  readonly user: string | undefined;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A real SMTP server on 127.0.0.1, an ephemeral port, no TLS. */
const startSmtpServer = async (options: SMTPServerOptions = {}) => {
  const received: Received[] = [];
  const server = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS'],
    authOptional: true,
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        received.push({
          mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : undefined,
          rcptTo: session.envelope.rcptTo.map((a) => a.address),
          raw: Buffer.concat(chunks).toString('utf8'),
          user: typeof session.user === 'string' ? session.user : undefined,
        });
        callback();
      });
    },
    ...options,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as AddressInfo).port;
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port, received };
};

/** A port nothing listens on. */
const closedPort = async (): Promise<number> => {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
};

/** Accepts connections and never says a word. */
const startSilentServer = async (): Promise<number> => {
  const sockets = new Set<import('node:net').Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  cleanups.push(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as AddressInfo).port;
};

const delivery = (overrides: Partial<Delivery> = {}): Delivery => ({
  deviceId: 'dev-1',
  kind: 'email',
  destination: 'jane.doe@example.com',
  code: '482913',
  validUntil: Date.UTC(2026, 4, 6, 7, 8, 9),
  ...overrides,
});

const expectClean = (result: { ok: boolean; reason?: string }, d: Delivery) => {
  const text = JSON.stringify(result);
  expect(text).not.toContain(d.code);
  expect(text.toLowerCase()).not.toContain(d.destination.toLowerCase());
  expect(text.toLowerCase()).not.toContain(d.destination.split('@')[0]!.toLowerCase());
};

describe('SMTP sender (nodemailer against smtp-server)', () => {
  it('delivers the code to the recipient, in the body and not in the subject', async () => {
    const { port, received } = await startSmtpServer();
    const sender = createSmtpSender({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, from: 'Factorstream <no-reply@factorstream.test>' });
    const d = delivery();
    expect(await sender.send(d)).toEqual({ ok: true });
    expect(received).toHaveLength(1);
    const message = received[0]!;
    expect(message.rcptTo).toEqual(['jane.doe@example.com']);
    expect(message.mailFrom).toBe('no-reply@factorstream.test');
    const [headers, ...body] = message.raw.split(/\r?\n\r?\n/);
    expect(headers).toMatch(/^Subject: Your verification code$/m);
    expect(headers).toMatch(/^To: jane\.doe@example\.com$/m);
    expect(headers).not.toContain(d.code);
    expect(body.join('\n')).toContain('Your verification code is: 482913');
    expect(body.join('\n')).toContain('2026-05-06 07:08:09 UTC');
  });

  it('connects by URL with authentication, and uses a custom subject and template', async () => {
    const { port, received } = await startSmtpServer({
      authOptional: false,
      allowInsecureAuth: true,
      authMethods: ['PLAIN', 'LOGIN'],
      onAuth(auth, _session, callback) {
        if (auth.username === 'mailer' && auth.password === 'p@ss:word') callback(null, { user: auth.username });
        else callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
      },
    });
    const sender = createSmtpSender({
      url: `smtp://mailer:${encodeURIComponent('p@ss:word')}@127.0.0.1:${port}?ignoreTLS=true`,
      from: 'no-reply@factorstream.test',
      subject: 'Sign-in code',
      textTemplate: (code, validUntil) => `code=${code} until=${validUntil}`,
    });
    const d = delivery();
    expect(await sender.send(d)).toEqual({ ok: true });
    expect(received[0]?.user).toBe('mailer');
    expect(received[0]?.raw).toMatch(/^Subject: Sign-in code$/m);
    expect(received[0]?.raw).toContain(`code=482913 until=${d.validUntil}`);
  });

  it('reports refused credentials with the SMTP reply code, not the password', async () => {
    const { port } = await startSmtpServer({
      authOptional: false,
      allowInsecureAuth: true,
      onAuth(_auth, _session, callback) {
        callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
      },
    });
    const sender = createSmtpSender({ url: `smtp://mailer:hunter22@127.0.0.1:${port}?ignoreTLS=true`, from: 'no-reply@factorstream.test' });
    const d = delivery();
    const result = await sender.send(d);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toMatch(/535/);
    expect(result.reason).toMatch(/permanent/);
    expect(result.reason).not.toContain('hunter22');
    expectClean(result, d);
  });

  it('reports a refused recipient with the reply code and class, without the address or the code', async () => {
    const { port, received } = await startSmtpServer({
      onRcptTo(address, _session, callback) {
        // Servers like to quote the address back; the reason must not.
        callback(Object.assign(new Error(`5.1.1 <${address.address}>: Recipient address rejected: User unknown`), { responseCode: 550 }));
      },
    });
    const sender = createSmtpSender({ host: '127.0.0.1', port, ignoreTLS: true, from: 'no-reply@factorstream.test' });
    const d = delivery();
    const result = await sender.send(d);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toMatch(/refused the recipient: 550 5\.1\.1 \(permanent failure, EENVELOPE\)/);
    expect(result.reason).toContain('Recipient address rejected: User unknown');
    expectClean(result, d);
    expect(received).toHaveLength(0);
  });

  it('reports a temporary refusal as temporary', async () => {
    const { port } = await startSmtpServer({
      onRcptTo(_address, _session, callback) {
        callback(Object.assign(new Error('Greylisted, try again later'), { responseCode: 451 }));
      },
    });
    const sender = createSmtpSender({ host: '127.0.0.1', port, ignoreTLS: true, from: 'no-reply@factorstream.test' });
    const result = await sender.send(delivery());
    expect(result).toMatchObject({ ok: false, reason: expect.stringMatching(/451 .*temporary failure/) });
  });

  it('scrubs the code from a server reply that echoes the message', async () => {
    const { port } = await startSmtpServer({
      onData(stream, _session, callback) {
        let body = '';
        stream.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
        stream.on('end', () => {
          const code = /code is: (\d+)/.exec(body)?.[1] ?? '';
          callback(Object.assign(new Error(`Message rejected as spam (matched "${code}")`), { responseCode: 554 }));
        });
      },
    });
    const sender = createSmtpSender({ host: '127.0.0.1', port, ignoreTLS: true, from: 'no-reply@factorstream.test' });
    const d = delivery();
    const result = await sender.send(d);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toMatch(/refused the message: 554/);
    expect(result.reason).toContain('Message rejected as spam');
    expectClean(result, d);
  });

  it('reports a server that is down', async () => {
    const port = await closedPort();
    const sender = createSmtpSender({ host: '127.0.0.1', port, ignoreTLS: true, from: 'no-reply@factorstream.test' });
    const d = delivery();
    const result = await sender.send(d);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toMatch(/could not talk to the SMTP server \(.*ECONNREFUSED\)/);
    expectClean(result, d);
  });

  it('gives up on a server that never greets, within the timeout', async () => {
    const port = await startSilentServer();
    const sender = createSmtpSender({ host: '127.0.0.1', port, ignoreTLS: true, from: 'no-reply@factorstream.test', timeoutMs: 300 });
    const started = Date.now();
    const result = await sender.send(delivery());
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(result).toMatchObject({ ok: false, reason: expect.stringMatching(/300 ms/) });
  });

  it('refuses SMS deliveries and malformed addresses without connecting', async () => {
    const port = await closedPort();
    const sender = createSmtpSender({ host: '127.0.0.1', port, from: 'no-reply@factorstream.test' });
    expect(await sender.send(delivery({ kind: 'sms', destination: '+447700900123' }))).toEqual({
      ok: false,
      reason: 'the SMTP sender delivers e-mail only',
    });
    for (const destination of ['jane@example.com, eve@evil.test', 'Jane <jane@example.com>', 'jane@example.com\r\nBcc: eve@evil.test', 'nobody']) {
      const result = await sender.send(delivery({ destination }));
      expect(result).toEqual({ ok: false, reason: 'the destination is not a single valid e-mail address' });
    }
  });

  it('reports a failing template without what it threw', async () => {
    const sender = createSmtpSender({
      host: '127.0.0.1',
      port: 1,
      from: 'no-reply@factorstream.test',
      textTemplate: (code) => {
        throw new Error(`bad template for ${code}`);
      },
    });
    expect(await sender.send(delivery())).toEqual({ ok: false, reason: 'the e-mail template failed' });
  });

  it('can put the code in an OTP-Token header bound to an origin', async () => {
    const { port, received } = await startSmtpServer();
    const sender = createSmtpSender({ host: '127.0.0.1', port, ignoreTLS: true, from: 'no-reply@factorstream.test', otpOrigin: 'https://login.example.com' });
    expect(await sender.send(delivery())).toEqual({ ok: true });
    expect(received[0]?.raw).toMatch(/^OTP-Token: .*482913/m);
  });

  it('rejects a configuration without a From address', () => {
    expect(() => createSmtpSender({ host: '127.0.0.1', from: ' ' })).toThrow(/From address/);
  });
});
