/**
 * The dashboard page in a real browser: Debian's Chromium (/usr/bin/chromium) driven by
 * playwright-core, against a server over a real engine (events and read models in one SQLite
 * file). Events are made through the engine in this process; the page must show them live.
 *
 * Without /usr/bin/chromium these tests fail (they are not skipped): install it with
 * `apt-get install chromium` (.ci/run does).
 */
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenFingerprint } from '../../adapters/http/auth.ts';
import type { Dashboard } from '../../adapters/http/server.ts';
import { TOKEN, createHarness, right, seed, type Harness, type Seeded } from './fixtures.ts';

const CHROMIUM = '/usr/bin/chromium';
/**
 * The README's screenshot. Written when it is missing or FACTORSTREAM_UPDATE_SCREENSHOT=1, so
 * that an ordinary test run leaves the tree as it was; otherwise the shot goes to a temp file.
 */
const README_SHOT = fileURLToPath(new URL('../../adapters/http/screenshot.png', import.meta.url));
const SCREENSHOT =
  process.env.FACTORSTREAM_UPDATE_SCREENSHOT === '1' || !existsSync(README_SHOT) ? README_SHOT : join(tmpdir(), `factorstream-dashboard-${process.pid}.png`);
const WAIT = { timeout: 15_000 };

let h: Harness;
let d: Dashboard;
let s: Seeded;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const dialogs: string[] = [];
const problems: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `the browser tests need Debian's Chromium at ${CHROMIUM}, which is missing: install it with ` +
        '`apt-get install -y chromium` (.ci/run does this before npm ci)',
    );
  h = createHarness();
  d = await h.serve();
  s = await seed(h);
  await d.runner.whenCaughtUp();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  context = await browser.newContext({ viewport: { width: 1360, height: 1000 }, timezoneId: 'UTC', locale: 'en-GB' });
  page = await context.newPage();
  page.on('dialog', (dialog) => {
    dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    void dialog.dismiss();
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // The one expected failure: the page's first request, before it has the token, is refused.
    if (m.type() === 'error' && !/status of 401/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
});

afterAll(async () => {
  await browser?.close();
  await h?.close();
});

const row = (deviceId: string) => page.locator(`tr[data-device="${deviceId}"]`);

describe('the dashboard page', () => {
  it("asks for the token once, then lists a user's devices with their status", async () => {
    await page.goto(`${d.url}/#user=alice`);
    await page.locator('#token-input').waitFor(WAIT);
    await page.locator('#token-input').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();

    await row(s.alicePhone.deviceId).getByText('Pixel 8 authenticator').waitFor(WAIT);
    await page.getByText('Printed backup codes').first().waitFor(WAIT);
    await page.getByText('9 backup codes left').waitFor(WAIT);
    await page.locator('#live[data-state="live"]').waitFor(WAIT);
    const rows = await page.locator('#devices tbody tr .device-name').allTextContents();
    expect(rows.sort()).toEqual(['Personal e-mail', 'Pixel 8 authenticator', 'Printed backup codes']);
    expect(await row(s.alicePhone.deviceId).locator('.badge').allTextContents()).toEqual(['confirmed']);
    await page.locator('#locked').getByText('YubiKey 5').waitFor(WAIT);
    await page.locator('#unusual').getByText('bob').waitFor(WAIT);
    expect(await page.locator('#chart-hourly svg rect').count()).toBeGreaterThan(3);
    expect(await page.locator('#chart-kinds svg rect').count()).toBeGreaterThan(5);

    // The token is in this tab's session storage only: not in the URL, not in a cookie.
    expect(page.url()).not.toContain(TOKEN);
    expect(await context.cookies()).toEqual([]);
    expect(await page.evaluate(() => (globalThis as any).sessionStorage.getItem('factorstream.adminToken'))).toBe(TOKEN);
    expect(await page.locator('#whoami').textContent()).toBe(`admin:${tokenFingerprint(TOKEN)}`);
  });

  it('shows a failed verification made through the engine without a reload', async () => {
    await page.evaluate(() => ((globalThis as any).__notReloaded = true));
    const outcome = await right(h.engine.verify(s.alicePhone.deviceId, '000000', { actor: 'self', client: { ip: '198.51.100.7' } }));
    expect(outcome).toMatchObject({ ok: false, reason: 'invalid' });

    await row(s.alicePhone.deviceId).locator('.badge', { hasText: /^locked until / }).waitFor(WAIT);
    const first = page.locator('#audit li').first();
    await first.getByText('Verification failed').waitFor(WAIT);
    expect(await first.textContent()).toContain('Pixel 8 authenticator');
    expect(await page.evaluate(() => (globalThis as any).__notReloaded)).toBe(true);

    // For the README: the page as an admin sees it, with the lock that just appeared.
    await page.locator('#live[data-state="live"]').waitFor(WAIT);
    await page.screenshot({ path: SCREENSHOT });
    const png = readFileSync(SCREENSHOT);
    expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([1360, 1000]);
  });

  it('clears the lock when the admin clicks Unlock and gives a reason', async () => {
    await row(s.alicePhone.deviceId).getByRole('button', { name: 'Unlock Pixel 8 authenticator' }).click();
    await page.locator('#editor-input').fill('user called the help desk');
    await page.getByRole('button', { name: 'Confirm unlock' }).click();

    await row(s.alicePhone.deviceId).locator('.badge', { hasText: /^locked until / }).waitFor({ ...WAIT, state: 'detached' });
    await page.locator('#editor-input').waitFor({ ...WAIT, state: 'detached' });
    expect(await row(s.alicePhone.deviceId).locator('.badge').allTextContents()).toEqual(['confirmed']);
    const view = await right(h.engine.device(s.alicePhone.deviceId));
    expect(view.throttle).toMatchObject({ failureCount: 0, lockedUntil: null });
    const last = (await right(h.engine.history(s.alicePhone.deviceId))).at(-1)!;
    expect(last.event.type).toBe('ThrottleReset');
    expect(last.metadata.actor).toBe(`admin:${tokenFingerprint(TOKEN)}`);

    const first = page.locator('#audit li').first();
    await first.getByText('Lock reset').waitFor(WAIT);
    expect(await first.textContent()).toContain('user called the help desk');
    expect(await first.textContent()).toContain(`by admin:${tokenFingerprint(TOKEN)}`);
  });

  it('shows a device as it was at an audit entry: locked then, unlocked now', async () => {
    const failedEntry = page.locator('#audit li', { hasText: 'Verification failed' }).first();
    const button = failedEntry.getByRole('button', { name: /^Show Pixel 8 authenticator as it was at / });
    await button.click();
    const then = failedEntry.locator('.state-then');
    await then.locator('.badge', { hasText: /^locked until / }).waitFor(WAIT);
    expect(await then.textContent()).toContain('Pixel 8 authenticator');
    expect(await button.getAttribute('aria-expanded')).toBe('true');
    // Now, after the unlock, the same device shows no lock.
    expect(await row(s.alicePhone.deviceId).locator('.badge').allTextContents()).toEqual(['confirmed']);
    await button.click();
    await then.waitFor({ ...WAIT, state: 'hidden' });
    expect(await button.getAttribute('aria-expanded')).toBe('false');
  });

  it('shows a device name holding markup as text, and runs none of it', async () => {
    const name = '<img src=x onerror=alert(1)><script>alert(2)</script>';
    const evil = await right(h.engine.register({ kind: 'totp', userId: 'mallory<b>', name, confirmed: true }, { actor: 'self' }));
    await page.locator('#user-input').fill('mallory<b>');
    await page.getByRole('button', { name: 'Show devices' }).click();

    await row(evil.deviceId).waitFor(WAIT);
    expect(await row(evil.deviceId).locator('.device-name').textContent()).toBe(name);
    expect(await page.locator('#devices-title').textContent()).toBe('Devices of mallory<b>');
    await page.locator('#audit li').getByText('Device enrolled').waitFor(WAIT);
    expect(await page.locator('#audit').textContent()).toContain(`name: ${name}`);
    expect(await page.locator('#audit-filter option', { hasText: name }).count()).toBe(1);
    // Nothing was parsed as markup: no element came from the name, no handler ran.
    expect(await page.locator('main img, main script, #devices-title b').count()).toBe(0);
    expect(dialogs).toEqual([]);
  });

  it('met no script error and no Content-Security-Policy violation on the way', () => {
    expect(problems).toEqual([]);
    expect(dialogs).toEqual([]);
  });
});
