import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import type { Delivery } from '../../../domain/ports.ts';
import { createSender, SenderConfigError } from '../../../adapters/delivery/factory.ts';
import { verifyWebhookSignature } from '../../../adapters/delivery/webhook.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const delivery = (overrides: Partial<Delivery> = {}): Delivery => ({
  deviceId: 'dev-9',
  kind: 'email',
  destination: 'jane@example.com',
  code: '314159',
  validUntil: Date.UTC(2026, 4, 6, 7, 8, 9),
  ...overrides,
});

const WEBHOOK_SECRET = 'a-webhook-secret-of-32-characters';

/** A local HTTP server answering 200 to every request; what it received, in order. */
const webhookReceiver = async () => {
  const requests: { headers: Record<string, string | string[] | undefined>; body: string; url: string | undefined }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      requests.push({ headers: req.headers, body, url: req.url });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port, requests };
};

describe('createSender (FACTORSTREAM_SENDER)', () => {
  it('is the console sender by default, and for "console"', async () => {
    for (const env of [{}, { FACTORSTREAM_SENDER: '' }, { FACTORSTREAM_SENDER: 'console' }, { FACTORSTREAM_SENDER: ' Console ' }]) {
      const lines: string[] = [];
      const sender = createSender({ write: (line) => lines.push(line) }, env);
      expect(await sender.send(delivery())).toEqual({ ok: true });
      expect(lines).toEqual([expect.stringContaining('314159')]);
    }
  });

  it('sends e-mail through smtp://user:password@host:port with FACTORSTREAM_SMTP_FROM', async () => {
    const received: { rcpt: string[]; raw: string; user: unknown }[] = [];
    const server = new SMTPServer({
      secure: false,
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      logger: false,
      onAuth(auth, _session, callback) {
        if (auth.username === 'postmaster' && auth.password === 'pa:ss@word') callback(null, { user: 'postmaster' });
        else callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
      },
      onData(stream, session, callback) {
        let raw = '';
        stream.on('data', (chunk: Buffer) => (raw += chunk.toString('utf8')));
        stream.on('end', () => {
          received.push({ rcpt: session.envelope.rcptTo.map((a) => a.address), raw, user: session.user });
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { port } = server.server.address() as AddressInfo;

    const sender = createSender({}, {
      FACTORSTREAM_SENDER: `smtp://postmaster:${encodeURIComponent('pa:ss@word')}@127.0.0.1:${port}`,
      FACTORSTREAM_SMTP_FROM: 'Factorstream <codes@factorstream.test>',
      FACTORSTREAM_SMTP_SUBJECT: 'Your sign-in code',
      FACTORSTREAM_SENDER_TIMEOUT_MS: '5000',
    });
    expect(await sender.send(delivery())).toEqual({ ok: true });
    expect(received).toHaveLength(1);
    expect(received[0]?.rcpt).toEqual(['jane@example.com']);
    expect(received[0]?.user).toBe('postmaster');
    expect(received[0]?.raw).toMatch(/^Subject: Your sign-in code$/m);
    expect(received[0]?.raw).toMatch(/^From: Factorstream <codes@factorstream\.test>$/m);
    expect(received[0]?.raw).toContain('314159');
  });

  it('accepts smtps:// (TLS from the first byte)', async () => {
    const sender = createSender({}, { FACTORSTREAM_SENDER: 'smtps://user:pw@smtp.example.com:465', FACTORSTREAM_SMTP_FROM: 'codes@example.com' });
    expect(typeof sender.send).toBe('function');
    // An SMS delivery is refused without any network traffic: proof that this is the SMTP sender.
    expect(await sender.send(delivery({ kind: 'sms', destination: '+15550100' }))).toEqual({ ok: false, reason: 'the SMTP sender delivers e-mail only' });
  });

  it('POSTs to webhook+http://… signed with FACTORSTREAM_WEBHOOK_SECRET', async () => {
    const { port, requests } = await webhookReceiver();

    const sender = createSender({}, {
      FACTORSTREAM_SENDER: `webhook+http://127.0.0.1:${port}/hooks/sms?route=eu`,
      FACTORSTREAM_WEBHOOK_SECRET: WEBHOOK_SECRET,
    });
    const d = delivery({ kind: 'sms', destination: '+15550100199' });
    expect(await sender.send(d)).toEqual({ ok: true });
    const request = requests[0]!;
    expect(request.url).toBe('/hooks/sms?route=eu');
    expect(JSON.parse(request.body)).toMatchObject({ kind: 'sms', destination: '+15550100199', code: '314159' });
    expect(
      verifyWebhookSignature(
        WEBHOOK_SECRET,
        request.headers['x-factorstream-timestamp'] as string,
        request.body,
        request.headers['x-factorstream-signature'] as string,
        60,
      ),
    ).toBe(true);
  });

  it('routes each kind to its own sender: FACTORSTREAM_SENDER_SMS, FACTORSTREAM_SENDER_EMAIL, the rest to FACTORSTREAM_SENDER', async () => {
    const { port, requests } = await webhookReceiver();
    const hook = `webhook+http://127.0.0.1:${port}/sms`;

    // SMS through the webhook; e-mail falls back to FACTORSTREAM_SENDER (the console here).
    const lines: string[] = [];
    const sender = createSender({ write: (line) => lines.push(line) }, { FACTORSTREAM_SENDER_SMS: hook, FACTORSTREAM_WEBHOOK_SECRET: WEBHOOK_SECRET });
    expect(await sender.send(delivery({ kind: 'sms', destination: '+15550100199', code: '271828' }))).toEqual({ ok: true });
    expect(await sender.send(delivery({ kind: 'email', code: '161803' }))).toEqual({ ok: true });
    expect(requests.map((r) => JSON.parse(r.body) as { kind: string; code: string })).toEqual([expect.objectContaining({ kind: 'sms', code: '271828' })]);
    expect(lines).toEqual([expect.stringContaining('161803')]);

    // E-mail named on its own: the general sender is then not used for it.
    const lines2: string[] = [];
    const both = createSender({ write: (line) => lines2.push(line) }, {
      FACTORSTREAM_SENDER: hook,
      FACTORSTREAM_SENDER_EMAIL: 'console',
      FACTORSTREAM_WEBHOOK_SECRET: WEBHOOK_SECRET,
    });
    expect(await both.send(delivery({ kind: 'email', code: '141421' }))).toEqual({ ok: true });
    expect(await both.send(delivery({ kind: 'sms', destination: '+15550100199', code: '173205' }))).toEqual({ ok: true });
    expect(lines2).toEqual([expect.stringContaining('141421')]);
    expect(requests.map((r) => (JSON.parse(r.body) as { code: string }).code)).toEqual(['271828', '173205']);
  });

  it('names the variable of a bad per-kind sender, with its password masked', () => {
    const attempt = (env: Record<string, string>) => {
      try {
        createSender({}, env);
      } catch (e) {
        return e as SenderConfigError;
      }
      throw new Error('accepted');
    };
    const email = attempt({ FACTORSTREAM_SENDER_EMAIL: 'smtp://mailer:hunter22@smtp.example.com:587' });
    expect(email).toBeInstanceOf(SenderConfigError);
    expect(email.message).toContain('FACTORSTREAM_SENDER_EMAIL');
    expect(email.message).toContain('FACTORSTREAM_SMTP_FROM');
    expect(email.message).not.toContain('hunter22');
    const sms = attempt({ FACTORSTREAM_SENDER_SMS: 'sms://user:hunter22@gateway.example.com' });
    expect(sms.message).toContain('(FACTORSTREAM_SENDER_SMS)');
    expect(sms.message).not.toContain('hunter22');
  });

  it('accepts webhook+https://…', () => {
    expect(() =>
      createSender({}, { FACTORSTREAM_SENDER: 'webhook+https://sms.example.com/send', FACTORSTREAM_WEBHOOK_SECRET: WEBHOOK_SECRET }),
    ).not.toThrow();
  });

  it('explicit configuration wins over the environment', async () => {
    const lines: string[] = [];
    const sender = createSender({ sender: 'console', write: (line) => lines.push(line) }, { FACTORSTREAM_SENDER: 'smtp://nowhere' });
    await sender.send(delivery());
    expect(lines).toHaveLength(1);
  });

  const failure = (sender: string, env: Record<string, string> = {}): SenderConfigError => {
    try {
      createSender({}, { FACTORSTREAM_SENDER: sender, ...env });
    } catch (error) {
      expect(error).toBeInstanceOf(SenderConfigError);
      return error as SenderConfigError;
    }
    throw new Error(`"${sender}" was accepted`);
  };

  it('names an unsupported value, with its password masked, and lists the accepted forms', () => {
    const error = failure('sms://user:hunter22@gateway.example.com/send');
    expect(error.message).toContain('unsupported sender "sms://user:***@gateway.example.com/send"');
    expect(error.message).toContain('FACTORSTREAM_SENDER');
    expect(error.message).toContain('accepted forms: console, smtp://');
    expect(error.message).not.toContain('hunter22');

    for (const value of ['stdout', 'webhook:https://example.com', 'http://example.com/hook', 'webhook+ftp://user:hunter22@example.com']) {
      const e = failure(value);
      expect(e.message).toMatch(/unsupported sender/);
      expect(e.message).not.toContain('hunter22');
    }
    expect(failure('webhook+https://example.com/hook?api_key=hunter22').message).not.toContain('hunter22');
  });

  it('says what is missing for SMTP, without the password', () => {
    const noFrom = failure('smtp://mailer:hunter22@smtp.example.com:587');
    expect(noFrom.message).toContain('FACTORSTREAM_SMTP_FROM');
    expect(noFrom.message).toContain('smtp://mailer:***@smtp.example.com:587');
    expect(noFrom.message).not.toContain('hunter22');

    const noHost = failure('smtp:mailer:hunter22@', { FACTORSTREAM_SMTP_FROM: 'a@b.example' });
    expect(noHost.message).toMatch(/names no SMTP host/);
    expect(noHost.message).not.toContain('hunter22');
  });

  it('says what is missing for a webhook', () => {
    expect(failure('webhook+https://sms.example.com/send').message).toMatch(/needs FACTORSTREAM_WEBHOOK_SECRET/);
    expect(failure('webhook+https://sms.example.com/send', { FACTORSTREAM_WEBHOOK_SECRET: 'short' }).message).toMatch(/too short/);
    expect(failure('webhook+https://', { FACTORSTREAM_WEBHOOK_SECRET: WEBHOOK_SECRET }).message).toMatch(/not a valid URL|names no host/);
  });

  it('rejects a bad FACTORSTREAM_SENDER_TIMEOUT_MS', () => {
    expect(failure('console', { FACTORSTREAM_SENDER_TIMEOUT_MS: 'soon' }).message).toMatch(/FACTORSTREAM_SENDER_TIMEOUT_MS .*"soon"/);
  });
});
