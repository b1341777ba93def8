/**
 * npm run bench [-- --quick] [-- --only cpu,replay] [-- --rounds N] [-- --no-write] [-- --keep]
 *
 * Runs the benchmark sections, each in its own process (so that memory figures and GC state
 * of one do not leak into another), collects their figures and targets, and writes
 * bench/results/latest.json and the results part of BENCHMARKS.md.
 *
 * Sections: cpu, sqlite, concurrency, length, replay, readmodel (see BENCHMARKS.md).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SectionResult } from './lib/measure.ts';
import { renderMarkdown, replaceResults } from './lib/report.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SECTIONS = ['cpu', 'sqlite', 'concurrency', 'length', 'replay', 'readmodel'] as const;
type Section = (typeof SECTIONS)[number];

const usage = `usage: npm run bench -- [--quick] [--only ${SECTIONS.join(',')}] [--rounds N] [--no-write] [--keep]
  --quick      fewer operations, 3 rounds, smaller replay (200 000 events): about 2 minutes
  --only LIST  run only these sections (comma-separated)
  --rounds N   rounds per comparison (default 5; 3 with --quick)
  --no-write   print the table, leave bench/results/latest.json and BENCHMARKS.md alone
               (otherwise a partial run replaces its sections and keeps the others, dated)
  --keep       keep the temporary databases (their directory is printed)`;

const parseArgs = (argv: readonly string[]) => {
  let quick = false;
  let write = true;
  let keep = false;
  let rounds: number | null = null;
  let only: Section[] = [...SECTIONS];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') quick = true;
    else if (a === '--no-write') write = false;
    else if (a === '--keep') keep = true;
    else if (a === '--rounds' || a.startsWith('--rounds=')) {
      const v = a.includes('=') ? a.split('=')[1] : argv[++i];
      rounds = Number(v);
      if (!Number.isSafeInteger(rounds) || rounds < 1) throw new Error(`--rounds needs a whole number ≥ 1, got ${v}\n${usage}`);
    } else if (a === '--only' || a.startsWith('--only=')) {
      const v = (a.includes('=') ? a.split('=')[1] : argv[++i]) ?? '';
      const names = v.split(',').map((s) => s.trim()).filter(Boolean);
      const unknown = names.filter((n) => !(SECTIONS as readonly string[]).includes(n));
      if (names.length === 0 || unknown.length) throw new Error(`--only: unknown section(s) ${unknown.join(', ') || '(none given)'}; sections: ${SECTIONS.join(', ')}\n${usage}`);
      only = SECTIONS.filter((s) => names.includes(s));
    } else if (a === '--help' || a === '-h') {
      process.stdout.write(`${usage}\n`);
      process.exit(0);
    } else throw new Error(`unknown option ${a}\n${usage}`);
  }
  return { quick, write, keep, rounds: rounds ?? (quick ? 3 : 5), only };
};

/** Runs one section in a child process (tsx), streaming its progress to our stderr. */
const runChild = (section: Section, options: object): Promise<SectionResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'sections', `${section}.ts`), JSON.stringify(options)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('@@RESULT@@'));
      if (code === 0 && line) resolve(JSON.parse(line.slice('@@RESULT@@'.length)) as SectionResult);
      else reject(new Error(`section ${section} failed (exit ${code})`));
    });
  });

const versions = () => {
  const pkg = (name: string) => {
    try {
      return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return 'not installed';
    }
  };
  return {
    node: process.version,
    otplib: pkg('otplib'),
    'better-sqlite3': pkg('better-sqlite3'),
    pg: pkg('pg'),
    'io-ts': pkg('io-ts'),
  };
};

const main = async () => {
  const o = parseArgs(process.argv.slice(2));
  const work = mkdtempSync(join(tmpdir(), 'factorstream-bench-'));
  const started = Date.now();
  const results: SectionResult[] = [];
  const extra: Record<string, unknown> = {};
  process.stderr.write(`factorstream benchmarks: ${o.only.join(', ')}${o.quick ? ' (quick)' : ''}, ${o.rounds} rounds; work dir ${work}\n`);
  try {
    for (const section of o.only) {
      const dir = join(work, section === 'readmodel' ? 'replay' : section);
      mkdirSync(dir, { recursive: true });
      if (section === 'readmodel' && !o.only.includes('replay')) {
        process.stderr.write('readmodel needs a read model: building one (replay section, untimed)\n');
        await runChild('replay', { quick: o.quick, rounds: 1, workDir: dir, args: { prepareOnly: '1' } });
      }
      process.stderr.write(`\n== ${section}\n`);
      const sectionStarted = new Date().toISOString();
      const r = { ...(await runChild(section, { quick: o.quick, rounds: o.rounds, workDir: dir, args: {} })), when: sectionStarted };
      results.push(r);
      Object.assign(extra, r.versions);
      process.stderr.write(`== ${section} done in ${r.seconds.toFixed(1)} s\n`);
    }
  } finally {
    if (o.keep) process.stderr.write(`kept ${work}\n`);
    else rmSync(work, { recursive: true, force: true });
  }
  // A partial run (--only) keeps the other sections of the last results, each with its date.
  const resultsPath = join(ROOT, 'bench', 'results', 'latest.json');
  let kept: SectionResult[] = [];
  if (o.write && o.only.length < SECTIONS.length) {
    try {
      const previous = JSON.parse(readFileSync(resultsPath, 'utf8')) as { when: string; sections: SectionResult[] };
      kept = previous.sections
        .filter((s) => !o.only.includes(s.section as Section))
        .map((s) => ({ ...s, when: s.when ?? previous.when }));
    } catch {
      kept = [];
    }
  }
  const sections = [...results, ...kept].sort((a, b) => SECTIONS.indexOf(a.section as Section) - SECTIONS.indexOf(b.section as Section));
  for (const s of kept) Object.assign(extra, s.versions);
  const report = {
    when: new Date(started).toISOString(),
    seconds: (Date.now() - started) / 1000,
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    quick: o.quick,
    rounds: o.rounds,
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', memoryGb: Math.round(totalmem() / 2 ** 30), platform: `${process.platform} ${process.arch}` },
    versions: { ...versions(), ...extra },
    sections,
  };
  const markdown = renderMarkdown(report);
  process.stdout.write(`${markdown}\n`);
  if (o.write) {
    mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
    writeFileSync(resultsPath, `${JSON.stringify(report, null, 2)}\n`);
    const mdPath = join(ROOT, 'BENCHMARKS.md');
    let current = '';
    try {
      current = readFileSync(mdPath, 'utf8');
    } catch {
      current = '';
    }
    writeFileSync(mdPath, replaceResults(current, markdown));
    process.stderr.write(`wrote bench/results/latest.json and BENCHMARKS.md (${report.seconds.toFixed(0)} s)\n`);
  }
};

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
