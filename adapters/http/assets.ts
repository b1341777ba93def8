/**
 * The web page: plain HTML, one vanilla JS file and one CSS file under adapters/http/public/,
 * read once at start and served as they are (no build step).
 */
import { readFileSync } from 'node:fs';

export interface Asset {
  readonly body: string;
  readonly contentType: string;
}

const read = (name: string): string => readFileSync(new URL(`./public/${name}`, import.meta.url), 'utf8');

export const loadAssets = (): ReadonlyMap<string, Asset> =>
  new Map<string, Asset>([
    ['/', { body: read('index.html'), contentType: 'text/html; charset=utf-8' }],
    ['/app.js', { body: read('app.js'), contentType: 'text/javascript; charset=utf-8' }],
    ['/style.css', { body: read('style.css'), contentType: 'text/css; charset=utf-8' }],
    ['/favicon.svg', { body: read('favicon.svg'), contentType: 'image/svg+xml' }],
  ]);
