/**
 * domain/ performs no I/O, reads no clock and draws no randomness (DESIGN, rule 1): time and
 * random bytes arrive through the ports. Every file of domain/ is checked, without exception.
 * The engine that drives the ports lives in app/; it too reaches the clock and randomness only
 * through the Clock and Random ports.
 */
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { codeOf, tsFilesUnder } from '../support/sources.ts';

const DOMAIN = fileURLToPath(new URL('../../domain/', import.meta.url));
const APP = fileURLToPath(new URL('../../app/', import.meta.url));

const FORBIDDEN: readonly [string, RegExp][] = [
  ['Date.now', /\bDate\s*\.\s*now\b/],
  ['new Date(', /\bnew\s+Date\s*\(/],
  ['Math.random', /\bMath\s*\.\s*random\b/],
  ['randomBytes', /\brandomBytes\b/],
  ['randomUUID', /\brandomUUID\b/],
  ['getRandomValues', /\bgetRandomValues\b/],
  ['node:fs', /['"]node:fs(\/promises)?['"]/],
  ["'fs'", /['"]fs(\/promises)?['"]/],
  ['node:net', /['"](node:)?net['"]/],
  ['node:http', /['"](node:)?https?['"]/],
  ['process.', /\bprocess\s*\./],
  ['setTimeout', /\bsetTimeout\b/],
  ['setInterval', /\bsetInterval\b/],
  ['performance.now', /\bperformance\s*\.\s*now\b/],
];

const files = tsFilesUnder(DOMAIN);
const rel = (p: string) => relative(DOMAIN, p).split('\\').join('/');
const appFiles = tsFilesUnder(APP);
const relApp = (p: string) => relative(APP, p).split('\\').join('/');

describe('domain/ is pure', () => {
  it('finds the domain files', () => {
    expect(files.map(rel)).toEqual(expect.arrayContaining(['decide.ts', 'device.ts', 'events.ts', 'kinds/oath.ts', 'policies/throttle.ts']));
  });

  for (const file of files) {
    it(`${rel(file)} uses no clock, randomness, I/O or timers`, () => {
      const src = codeOf(file);
      const found = FORBIDDEN.filter(([, re]) => re.test(src)).map(([name]) => name);
      expect(found).toEqual([]);
    });

    it(`${rel(file)} is synchronous and imports nothing from adapters/ or projections/`, () => {
      const src = codeOf(file);
      // Promise may appear in types (the ports), never as work done here.
      expect(src).not.toMatch(/\basync\b|\bawait\b|\.then\s*\(|\bnew\s+Promise\b|\bPromise\s*\.\s*(resolve|all|race)\b/);
      expect(src).not.toMatch(/from\s+['"][^'"]*\/(adapters|projections)\//);
    });
  }
});

describe('app/ reaches the world only through its ports', () => {
  it('finds the application files', () => {
    expect(appFiles.map(relApp)).toEqual(expect.arrayContaining(['engine.ts', 'command-handler.ts', 'state-cache.ts', 'match-workflow.ts']));
  });

  for (const file of appFiles) {
    describe(relApp(file), () => {
      const src = codeOf(file);

      it('imports nothing from adapters/, projections/, node:crypto, fs, net or http', () => {
        expect(src).not.toMatch(/from\s+['"][^'"]*\/(adapters|projections)\//);
        expect(src).not.toMatch(/from\s+['"](node:)?(crypto|fs|fs\/promises|net|http|https|child_process)['"]/);
      });

      it('draws no randomness directly', () => {
        expect(src).not.toMatch(/\bMath\s*\.\s*random\b/);
        expect(src).not.toMatch(/\b(crypto|webcrypto)\s*\.\s*(randomBytes|randomUUID|getRandomValues)\b/);
        expect(src).not.toMatch(/\brandomUUID\b|\bgetRandomValues\b/);
        // Random bytes come only from the Random port (random.bytes).
        const calls = [...src.matchAll(/\brandomBytes\b/g)].length;
        expect(calls).toBe(0);
      });

      it('uses no timers and reads no environment', () => {
        expect(src).not.toMatch(/\bsetTimeout\b|\bsetInterval\b|\bprocess\s*\./);
      });

      // The system clock lives in adapters/system.ts; createEngine requires a Clock.
      it('reads no clock directly (Date.now only through the Clock port)', () => {
        expect(src).not.toMatch(/\bDate\s*\.\s*now\b/);
        expect(src).not.toMatch(/\bperformance\s*\.\s*now\b/);
      });
    });
  }
});
