/**
 * No import circle among the sources (domain/, app/, adapters/, projections/): every module
 * depends in one direction. Type-only imports count too; a circle of types still ties the
 * modules' meanings together.
 */
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { codeOf, tsFilesUnder } from './support/sources.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SOURCES = ['domain', 'app', 'adapters', 'projections'];

/** The relative modules a file imports or re-exports (static and dynamic), resolved to paths. */
const importsOf = (path: string, src: string): string[] => {
  const specs = [
    ...src.matchAll(/\b(?:import|export)\s[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g),
    ...src.matchAll(/\bimport\s*['"]([^'"]+)['"]/g),
    ...src.matchAll(/\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((m) => m[1]!);
  return specs.filter((s) => s.startsWith('.')).map((s) => resolve(dirname(path), s));
};

/** Every circle of the graph, each once, as the list of files from its first member back to it. */
const circles = (graph: ReadonlyMap<string, readonly string[]>): string[][] => {
  // Tarjan's strongly connected components; a component of more than one file (or a file
  // importing itself) holds a circle, shown as one path through it.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) !== idx.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(pathThrough(graph, new Set(component), v));
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return found;
};

/** A path from `start` back to itself inside `members` (breadth first: a shortest one). */
const pathThrough = (graph: ReadonlyMap<string, readonly string[]>, members: ReadonlySet<string>, start: string): string[] => {
  const from = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let x = v; x !== start; x = from.get(x)!) path.splice(1, 0, x);
        return [...path, start];
      }
      if (!from.has(w)) {
        from.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start];
};

const graphOf = (files: readonly string[]): Map<string, string[]> =>
  new Map(files.map((f) => [f, importsOf(f, codeOf(f))]));

describe('import circles', () => {
  const files = SOURCES.filter((d) => existsSync(join(ROOT, d))).flatMap((d) => tsFilesUnder(join(ROOT, d)));
  const rel = (p: string) => relative(ROOT, p).split('\\').join('/');

  it('finds the sources and their imports', () => {
    expect(files.map(rel)).toEqual(expect.arrayContaining(['app/engine.ts', 'adapters/cli/main.ts', 'domain/decide.ts', 'projections/runner.ts']));
    const graph = graphOf(files);
    expect(graph.get(join(ROOT, 'adapters/cli/demo.ts'))).toContain(join(ROOT, 'adapters/cli/io.ts'));
  });

  it('finds a circle when there is one (type imports and re-exports included)', () => {
    const a = '/x/a.ts';
    const b = '/x/b.ts';
    const c = '/x/c.ts';
    const graph = new Map([
      [a, importsOf(a, "import type { B } from './b.ts';")],
      [b, importsOf(b, "export { C } from './c.ts';")],
      [c, importsOf(c, "import { A } from './a.ts';\nimport './side-effect.ts';")],
    ]);
    expect(circles(graph)).toEqual([[a, b, c, a]]);
    expect(circles(new Map([[a, [b]], [b, [c]], [c, []]]))).toEqual([]);
  });

  it('there is none among domain/, app/, adapters/ and projections/', () => {
    expect(circles(graphOf(files)).map((c) => c.map(rel).join(' -> '))).toEqual([]);
  });
});
