// Timing with benchmark.js: each case is a synchronous function called in cycles long enough
// for the timer (minTime), for at least minSamples cycles and until maxTime has passed.
import Benchmark from 'benchmark';

export interface Timing {
  /** Milliseconds per operation (one call, divided by `perCall`). */
  meanMs: number;
  medianMs: number;
  /** The fastest sample. */
  minMs: number;
  /** Relative margin of error of the mean at 95%, in %. */
  rmePct: number;
  /** Cycles measured, and calls per cycle (of the last). */
  samples: number;
  callsPerSample: number;
}

const FULL: Benchmark.Options = { minSamples: 3, minTime: 0.05, maxTime: 0.5 };
/** A smoke check: the case runs, its timing is rough. */
const QUICK: Benchmark.Options = { minSamples: 1, minTime: 0.002, maxTime: 0.005 };

/** Times `fn`; `perCall` is how many operations one call performs. There is no warm-up call
 *  here: every case has run already, for its agreement check (benchmark.js's first cycles, which
 *  size a sample, only warm up fast cases: a call longer than minTime is a sample at once). */
export function measure(name: string, fn: () => void, quick: boolean, perCall = 1, options: Benchmark.Options = {}): Timing {
  const bench = new Benchmark(name, fn, { ...(quick ? QUICK : FULL), ...options, async: false });
  bench.run();
  if (bench.error) throw bench.error;
  const sample = [...bench.stats.sample].sort((a, b) => a - b);
  const mid = sample.length >> 1;
  const median = sample.length % 2 ? sample[mid] : (sample[mid - 1] + sample[mid]) / 2;
  return {
    meanMs: (bench.stats.mean * 1e3) / perCall,
    medianMs: (median * 1e3) / perCall,
    minMs: (sample[0] * 1e3) / perCall,
    rmePct: bench.stats.rme,
    samples: sample.length,
    callsPerSample: bench.count,
  };
}

/** The timing of a sequence of operations timed one by one: means, medians and minima add up;
 *  the margins of error add in quadrature. */
export function sumTimings(parts: readonly Timing[]): Timing {
  const total = (key: 'meanMs' | 'medianMs' | 'minMs') => parts.reduce((s, t) => s + t[key], 0);
  const meanMs = total('meanMs');
  return {
    meanMs,
    medianMs: total('medianMs'),
    minMs: total('minMs'),
    rmePct: Math.sqrt(parts.reduce((s, t) => s + (t.rmePct * t.meanMs) ** 2, 0)) / meanMs,
    samples: Math.min(...parts.map((t) => t.samples)),
    callsPerSample: 1,
  };
}

/** Two-sided 97.5 % quantiles of Student's t for 1 … 10 degrees of freedom (then ≈ normal). */
const T975 = [12.71, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228];

/** The timing of a run measured a few times by hand (whole processes, worker pools), one
 *  operation per sample, in the same terms as `measure`'s. */
export function fromSamples(ms: readonly number[], perCall = 1): Timing {
  const sample = [...ms].sort((a, b) => a - b);
  const n = sample.length, mid = n >> 1;
  const mean = sample.reduce((s, v) => s + v, 0) / n;
  const sd = n > 1 ? Math.sqrt(sample.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1)) : 0;
  const t = n - 1 <= T975.length ? T975[n - 2] : 1.96;
  return {
    meanMs: mean / perCall,
    medianMs: (n % 2 ? sample[mid] : (sample[mid - 1] + sample[mid]) / 2) / perCall,
    minMs: sample[0] / perCall,
    rmePct: n > 1 ? (100 * t * sd) / Math.sqrt(n) / mean : 0,
    samples: n,
    callsPerSample: 1,
  };
}
