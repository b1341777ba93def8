/**
 * Measuring on a noisy 2-core machine: every figure is the median of several rounds, and the
 * contenders of a comparison run one after the other inside each round (side by side), so a
 * ratio is taken between runs that saw the same machine. Nothing here asserts a time.
 */
import { memoryUsage } from 'node:process';

export const median = (xs: readonly number[]): number => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** The p-th percentile (0–100), nearest rank. */
export const percentile = (xs: readonly number[], p: number): number => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[rank]!;
};

/** Operations per second of `ops` operations run by `run` (synchronous or not). */
export const rate = async (ops: number, run: () => unknown | Promise<unknown>): Promise<number> => {
  const start = performance.now();
  await run();
  const ms = performance.now() - start;
  return (ops / ms) * 1000;
};

export const rateSync = (ops: number, run: () => void): number => {
  const start = performance.now();
  run();
  return (ops / (performance.now() - start)) * 1000;
};

/** Samples the process's resident set size until stopped; reports the peak (bytes). */
export const rssSampler = (everyMs = 25) => {
  let peak = memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, memoryUsage.rss());
  }, everyMs);
  timer.unref();
  return {
    /** Also samples right now (a synchronous stretch may have kept the timer from firing). */
    sample: () => {
      peak = Math.max(peak, memoryUsage.rss());
    },
    stop: (): number => {
      clearInterval(timer);
      peak = Math.max(peak, memoryUsage.rss());
      return peak;
    },
  };
};

export const mb = (bytes: number): number => Math.round((bytes / 1024 / 1024) * 10) / 10;

/** One measured figure: the median of its rounds, and the rounds. */
export interface Figure {
  readonly id: string;
  readonly section: string;
  readonly label: string;
  readonly unit: string;
  readonly median: number;
  readonly rounds: readonly number[];
  readonly note?: string;
}

/** A target of the issue: a ratio (median of per-round ratios), its goal, met or not. */
export interface Target {
  readonly id: string;
  readonly section: string;
  readonly label: string;
  /** The measured value (a ratio, unless `unit` says otherwise). */
  readonly value: number;
  /** The goal, or null for a ratio shown for information. */
  readonly goal: string | null;
  readonly met: boolean | null;
  readonly rounds: readonly number[];
  readonly note?: string;
}

export interface SectionResult {
  readonly section: string;
  readonly figures: Figure[];
  readonly targets: Target[];
  readonly notes: string[];
  readonly seconds: number;
  /** Versions of what the section compared against (django-otp, PostgreSQL, SQLite, …). */
  readonly versions: Record<string, string>;
  /** When the section ran (ISO); set by the runner. */
  readonly when?: string;
}

/** Collects a section's figures and targets. */
export const recorder = (section: string) => {
  const figures: Figure[] = [];
  const targets: Target[] = [];
  const notes: string[] = [];
  const versions: Record<string, string> = {};
  const started = performance.now();
  return {
    figure: (id: string, label: string, unit: string, rounds: readonly number[], note?: string): Figure => {
      const f: Figure = { id, section, label, unit, median: median(rounds), rounds: [...rounds], ...(note ? { note } : {}) };
      figures.push(f);
      return f;
    },
    /** A ratio target from per-round ratios; `atLeast` is the goal. */
    ratio: (id: string, label: string, perRound: readonly number[], atLeast: number, note?: string): Target => {
      const value = median(perRound);
      const t: Target = { id, section, label, value, goal: `≥ ${atLeast}`, met: value >= atLeast, rounds: [...perRound], ...(note ? { note } : {}) };
      targets.push(t);
      return t;
    },
    /** A ratio target where smaller is better (e.g. latency ratios): `atMost` is the goal. */
    ratioAtMost: (id: string, label: string, perRound: readonly number[], atMost: number, note?: string): Target => {
      const value = median(perRound);
      const t: Target = { id, section, label, value, goal: `≤ ${atMost}`, met: value <= atMost, rounds: [...perRound], ...(note ? { note } : {}) };
      targets.push(t);
      return t;
    },
    /** A ratio shown for information (no goal). */
    info: (id: string, label: string, perRound: readonly number[], note?: string): Target => {
      const t: Target = { id, section, label, value: median(perRound), goal: null, met: null, rounds: [...perRound], ...(note ? { note } : {}) };
      targets.push(t);
      return t;
    },
    note: (n: string) => void notes.push(n),
    version: (name: string, v: string) => void (versions[name] = v),
    result: (): SectionResult => ({ section, figures, targets, notes, versions, seconds: (performance.now() - started) / 1000 }),
  };
};

/** Progress lines go to stderr: stdout carries the section's JSON. */
export const log = (...parts: unknown[]) => {
  process.stderr.write(`${parts.map(String).join(' ')}\n`);
};

export interface SectionOptions {
  readonly quick: boolean;
  readonly rounds: number;
  /** A directory for the section's files (removed by the runner afterwards). */
  readonly workDir: string;
  readonly args: Readonly<Record<string, string>>;
}

/** Parses the options the runner passes to a section process (JSON in argv[2]). */
export const sectionOptions = (): SectionOptions => JSON.parse(process.argv[2] ?? '{}') as SectionOptions;

/** Runs a section's main and prints its result as the last line of stdout. */
export const runSection = (main: (o: SectionOptions) => Promise<SectionResult>) => {
  main(sectionOptions()).then(
    (r) => {
      process.stdout.write(`\n@@RESULT@@${JSON.stringify(r)}\n`);
      process.exit(0);
    },
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
};
