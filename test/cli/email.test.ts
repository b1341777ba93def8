/**
 * E-mail codes through the real CLI: the console sender (the default) prints the code on
 * stderr with a label; a webhook that cannot be reached makes the challenge exit 3 and
 * releases the cooldown, so the user can ask again at once.
 */
import { createServer } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { at, cliSandbox } from './run.ts';

const T = Date.UTC(2026, 0, 15, 12, 0, 0);

/** A local port nothing listens on. */
const closedPort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 1));
    });
  });

describe('factorstream CLI: e-mail codes', () => {
  const box = cliSandbox();
  afterAll(() => box.remove());

  it('enroll email --to, then challenge: the console sender prints the code on stderr, and it confirms the device', async () => {
    const enrolled = await box.run(['enroll', 'email', '--user', 'erin', '--to', 'erin.smith@example.com', '--now', at(T), '--json']);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    const device = enrolled.json!.deviceId as string;
    expect(enrolled.stdout).not.toContain('erin.smith@example.com');

    const challenged = await box.run(['challenge', '--device', device, '--now', at(T + 1_000)]);
    expect(challenged.code, challenged.stderr).toBe(0);
    expect(challenged.stdout).toContain(`valid until ${new Date(T + 301_000).toISOString()}`);
    const line = challenged.stderr.split('\n').find((l) => l.startsWith('[factorstream] code for e-mail device'));
    expect(line, challenged.stderr).toBeDefined();
    expect(line).toContain(device);
    expect(line).not.toContain('erin.smith@example.com'); // the address is masked
    const code = /: (\d{6}),/.exec(line!)?.[1];
    expect(code).toMatch(/^\d{6}$/);

    // Another code within the cooldown is refused (exit 1) …
    const tooSoon = await box.run(['challenge', '--device', device, '--now', at(T + 2_000), '--json']);
    expect(tooSoon.code).toBe(1);
    expect(tooSoon.json).toMatchObject({ ok: false, reason: 'cooldown', retryAt: new Date(T + 61_001).toISOString() }); // strictly after 60 s
    // … and the code that was sent confirms the device.
    const confirmed = await box.run(['confirm', '--device', device, '--token', code!, '--now', at(T + 3_000), '--json']);
    expect(confirmed.code, confirmed.stderr).toBe(0);
    expect(confirmed.json).toMatchObject({ ok: true, confirmed: true });
  }, 120_000);

  it('a webhook that cannot be reached: exit 3 (delivery failed), and an immediate second challenge is allowed', async () => {
    const enrolled = await box.run(['enroll', 'email', '--user', 'frank', '--to', 'frank@example.com', '--confirmed', '--now', at(T), '--json']);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    const device = enrolled.json!.deviceId as string;
    const env = {
      FACTORSTREAM_SENDER: `webhook+http://127.0.0.1:${await closedPort()}/x`,
      FACTORSTREAM_WEBHOOK_SECRET: 'a-shared-secret-of-32-characters',
    };
    const first = await box.run(['challenge', '--device', device, '--now', at(T + 1_000), '--json'], { env });
    expect(first.code, first.stdout + first.stderr).toBe(3);
    expect(first.json).toMatchObject({ ok: false, reason: 'delivery-failed', message: expect.any(String) });
    expect(first.stdout + first.stderr).not.toContain('frank@example.com');
    expect(first.stdout + first.stderr).not.toContain(env.FACTORSTREAM_WEBHOOK_SECRET);
    // The cooldown was released: the next attempt is not refused, it is tried again (and fails again).
    const second = await box.run(['challenge', '--device', device, '--now', at(T + 2_000)], { env });
    expect(second.code).toBe(3);
    expect(second.stdout).toContain('delivery failed');
    expect(second.stderr).not.toContain('    at ');
    // With a sender that works, the code goes out at once.
    const third = await box.run(['challenge', '--device', device, '--now', at(T + 3_000), '--json']);
    expect(third.code, third.stderr).toBe(0);
    const history = await box.run(['history', '--device', device, '--json']);
    expect((history.json!.events as { type: string }[]).map((e) => e.type)).toEqual([
      'DeviceRegistered',
      'ChallengeGenerated',
      'ChallengeDeliveryFailed',
      'ChallengeGenerated',
      'ChallengeDeliveryFailed',
      'ChallengeGenerated',
    ]);
  }, 120_000);
});
