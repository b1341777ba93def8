/**
 * The results part of BENCHMARKS.md: the targets table (the main table), every figure, the
 * notes of each section, versions and how to rerun. Written between two markers, so the
 * hand-written text around it stays.
 */
import type { Figure, SectionResult, Target } from './measure.ts';

export const START = '<!-- results:start (written by npm run bench; edit outside these markers) -->';
export const END = '<!-- results:end -->';

export interface Report {
  readonly when: string;
  readonly seconds: number;
  readonly command: string;
  readonly quick: boolean;
  readonly rounds: number;
  readonly machine: { readonly cpus: number; readonly cpu: string; readonly memoryGb: number; readonly platform: string };
  readonly versions: Record<string, string>;
  readonly sections: readonly SectionResult[];
}

const SECTION_TITLES: Record<string, string> = {
  cpu: '1. CPU floor (memory store)',
  sqlite: '2. Durable verification, embedded store (SQLite, synchronous=FULL)',
  concurrency: '3. Concurrency (8 verifiers, different devices)',
  length: '4. Stream length (10 000 events against 10)',
  replay: '5. Replay (projection rebuild from SQLite)',
  readmodel: '6. Read model scale (SQLite read store)',
};

/** Numbers as people read them: 3 significant digits, thousands separated. */
export const fmt = (x: number): string => {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toPrecision(2);
};

const ratio = (x: number) => `${x >= 10 ? x.toFixed(1) : x.toFixed(2)}×`;
const rounds = (xs: readonly number[], r: (x: number) => string) => xs.map(r).join(' · ');

const targetRow = (t: Target) =>
  `| ${SECTION_TITLES[t.section]?.split(' ')[0] ?? t.section} | ${t.label} | **${ratio(t.value)}** | ${t.goal ?? '—'} | ${
    t.met === null ? 'info' : t.met ? '✅ met' : '❌ missed'
  } | ${rounds(t.rounds, ratio)} |`;

const figureRow = (f: Figure) => `| ${f.label} | **${fmt(f.median)}** | ${f.unit} | ${rounds(f.rounds, fmt)} |${f.note ? ` ${f.note}` : ''}`;

export const renderMarkdown = (r: Report): string => {
  const lines: string[] = [];
  const targets = r.sections.flatMap((s) => s.targets);
  const goals = targets.filter((t) => t.met !== null);
  lines.push(START, '');
  lines.push(
    `Run ${r.when.slice(0, 16).replace('T', ' ')} UTC, \`${r.command}\`, ${r.rounds} rounds${r.quick ? ' (quick)' : ''}, ${r.seconds.toFixed(0)} s; ` +
      `${r.machine.cpus} × ${r.machine.cpu}, ${r.machine.memoryGb} GB, ${r.machine.platform}.`,
    '',
    `Targets met: **${goals.filter((t) => t.met).length} of ${goals.length}**. Every value is the median of the per-round values ` +
      '(the rounds are listed); a ratio is taken within each round between contenders run one after the other.',
    '',
    '### Targets',
    '',
    '| § | comparison | measured | goal | | rounds |',
    '| - | - | -: | - | - | - |',
    ...targets.map(targetRow),
    '',
  );
  const dates = new Set(r.sections.map((s) => (s.when ?? r.when).slice(0, 10)));
  for (const s of r.sections) {
    const when = dates.size > 1 || (s.when && s.when < r.when) ? ` (run ${(s.when ?? r.when).slice(0, 16).replace('T', ' ')} UTC)` : '';
    lines.push(`### ${SECTION_TITLES[s.section] ?? s.section}${when}`, '', '| measurement | median | unit | rounds |', '| - | -: | - | - |');
    lines.push(...s.figures.map(figureRow), '');
    for (const n of s.notes) lines.push(`- ${n}`);
    if (s.notes.length) lines.push('');
  }
  lines.push(
    '### Versions',
    '',
    Object.entries(r.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(' · '),
    '',
    `Rerun: \`${r.command}\` (the whole run: \`npm run bench\`; one part: \`npm run bench -- --only cpu,replay\`; ` +
      'a smaller, faster run: `npm run bench -- --quick`). Raw figures: `bench/results/latest.json`.',
    '',
    END,
  );
  return lines.join('\n');
};

/** The document with its results part replaced (or added at the end). */
export const replaceResults = (doc: string, results: string): string => {
  const a = doc.indexOf(START);
  const b = doc.indexOf(END);
  if (a >= 0 && b > a) return doc.slice(0, a) + results + doc.slice(b + END.length);
  const base = doc.trim() ? doc.trimEnd() : '# Benchmarks';
  return `${base}\n\n## Results\n\n${results}\n`;
};
