// Runs fuzz inputs through a parser and checks, for each: it returns (a sane result) or throws
// InputError and nothing else, within a time limit, without a large allocation. Shared by
// test/fuzz.test.ts (a few thousand inputs per parser) and test/fuzz/run.ts (`npm run fuzz`).
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { InputError } from '../../src/errors.js';

/** One input: where it comes from (for the report) and how to feed it to the parser. */
export interface Case {
  seed: string;
  ops: string[];
  /** Bytes handed to the parser (all files together). */
  size: number;
  /** The input as files, by name (to save a failing input and try it on the command line). */
  files: Record<string, Uint8Array>;
  /** Parses the input; throws when the parser does, or when an accepted result is inconsistent (`Invalid`). */
  run(): void;
}

export interface Target {
  /** Short name, used to replay an input: `npm run fuzz -- --replay NAME:INDEX`. */
  name: string;
  /** What is called, for the report. */
  parser: string;
  /** Input `index`: a seed and its mutations, all drawn from (name, index) alone. */
  make(index: number): Case;
  /** Builds what make() needs when that takes asynchronous work (seeds saved by a library); awaited
   *  once before the first make(). */
  prepare?(): Promise<void>;
}

/** A parser accepted an input but returned something inconsistent. */
export class Invalid extends Error {
  override name = 'Invalid';
}

export interface Limits {
  /** Per input. */
  ms: number;
  /** Growth of JS heap + ArrayBuffers over one input: `bytes` plus `perInputByte` times its size. */
  bytes: number;
  perInputByte: number;
  /** Resident set size of the whole process. */
  rss: number;
}

export const LIMITS: Limits = { ms: 3000, bytes: 48 * 2 ** 20, perInputByte: 4096, rss: 1024 * 2 ** 20 };

export interface Failure {
  target: string;
  index: number;
  seed: string;
  ops: string[];
  problem: string;
}

export interface Outcome {
  accepted: boolean;
  ms: number;
  /** Growth of heap + ArrayBuffers across the call (a lower bound of what it allocated). */
  growth: number;
  rss: number;
  failure?: Failure;
  /** An InputError message holding a line break (the command line would show its first line only). */
  multiline?: boolean;
}

const gc: (() => void) | undefined = (() => {
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
})();

/** Collects garbage when possible, so that growth is measured from a clean heap. */
export function collect(): void {
  gc?.();
}

const live = () => {
  const m = process.memoryUsage();
  return { used: m.heapUsed + m.arrayBuffers, rss: m.rss };
};

/** Runs input `index` of `target` and checks it. */
export function runOne(target: Target, index: number, limits: Limits = LIMITS): Outcome {
  let c: Case;
  try {
    c = target.make(index);
  } catch (e) {
    // A bug of the fuzzer, not of the parser: report it all the same, as it hides an input.
    const problem = `building the input failed: ${explain(e)}`;
    return { accepted: false, ms: 0, growth: 0, rss: 0, failure: { target: target.name, index, seed: '?', ops: [], problem } };
  }
  const before = live();
  const t0 = performance.now();
  let error: unknown, threw = false;
  try {
    c.run();
  } catch (e) {
    error = e;
    threw = true;
  }
  const ms = performance.now() - t0;
  const after = live();
  const growth = Math.max(0, after.used - before.used);
  const fail = (problem: string): Outcome => ({ accepted: !threw, ms, growth, rss: after.rss, failure: { target: target.name, index, seed: c.seed, ops: c.ops, problem } });
  if (threw && !(error instanceof InputError)) return fail(`${error instanceof Invalid ? 'accepted, but' : 'escaped:'} ${explain(error)}`);
  if (ms > limits.ms) return fail(`took ${ms.toFixed(0)} ms (limit ${limits.ms} ms)`);
  const allowed = limits.bytes + limits.perInputByte * c.size;
  if (growth > allowed) return fail(`allocated at least ${mb(growth)} for ${c.size} input bytes (limit ${mb(allowed)})`);
  // Resident memory rarely shrinks after a large allocation: only an input that made it grow is to blame.
  if (after.rss > limits.rss && after.rss - before.rss > allowed) return fail(`resident memory grew by ${mb(after.rss - before.rss)} to ${mb(after.rss)} (limit ${mb(limits.rss)})`);
  return { accepted: !threw, ms, growth, rss: after.rss, multiline: threw && (error as Error).message.includes('\n') };
}

export interface Stats {
  target: string;
  parser: string;
  inputs: number;
  accepted: number;
  refused: number;
  multiline: number;
  /** The first few inputs refused with a line break in the message. */
  multilineInputs: number[];
  failures: Failure[];
  slowest: { index: number; ms: number; seed: string; ops: string[] };
  maxGrowth: { index: number; bytes: number };
  peakRss: number;
  ms: number;
}

/**
 * Runs inputs from, from+1, … of `target` (count of them), collecting garbage every `gcEvery`
 * inputs; stops early after `maxFailures` failures. `onInput` is called before each input.
 */
export function runTarget(
  target: Target,
  from: number,
  count: number,
  options: { limits?: Limits; maxFailures?: number; gcEvery?: number; onInput?: (index: number) => void } = {},
): Stats {
  const limits = options.limits ?? LIMITS;
  const stats: Stats = {
    target: target.name, parser: target.parser, inputs: 0, accepted: 0, refused: 0, multiline: 0, multilineInputs: [], failures: [],
    slowest: { index: -1, ms: 0, seed: '', ops: [] }, maxGrowth: { index: -1, bytes: 0 }, peakRss: 0, ms: 0,
  };
  const t0 = performance.now();
  collect();
  for (let index = from; index < from + count; index++) {
    if ((index - from) % (options.gcEvery ?? 250) === 0) collect();
    options.onInput?.(index);
    const o = runOne(target, index, limits);
    stats.inputs++;
    if (o.accepted) stats.accepted++;
    else stats.refused++;
    if (o.multiline && stats.multiline++ < 3) stats.multilineInputs.push(index);
    if (o.ms > stats.slowest.ms) {
      const c = target.make(index);
      stats.slowest = { index, ms: o.ms, seed: c.seed, ops: c.ops };
    }
    if (o.growth > stats.maxGrowth.bytes) stats.maxGrowth = { index, bytes: o.growth };
    stats.peakRss = Math.max(stats.peakRss, o.rss);
    if (o.failure) {
      stats.failures.push(o.failure);
      collect(); // a failure may have left a huge allocation behind
      if (stats.failures.length >= (options.maxFailures ?? 5)) break;
    }
  }
  stats.ms = performance.now() - t0;
  return stats;
}

/** One line per failure, with what it takes to replay it. */
export function formatFailure(f: Failure): string {
  return `${f.target} input ${f.index} (seed ${f.seed}; ${f.ops.join(' · ')}): ${f.problem} — replay: npm run fuzz -- --replay ${f.target}:${f.index}`;
}

export function explain(e: unknown): string {
  if (!(e instanceof Error)) return `non-Error thrown: ${String(e)}`;
  const where = e.stack?.split('\n').find((l) => l.trim().startsWith('at '))?.trim() ?? '';
  return `${e.name}: ${e.message.split('\n')[0].slice(0, 300)}${where ? ` (${where})` : ''}`;
}

export const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MB`;
