/** Reading the repository's own sources, for the tests that check their shape (purity, import circles). */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Every .ts file below `dir`. */
export const tsFilesUnder = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? tsFilesUnder(p) : p.endsWith('.ts') ? [p] : [];
  });

/** The source without comments, so that prose (about Date.now, or an example import) does not count. */
export const codeOf = (path: string): string =>
  readFileSync(path, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
