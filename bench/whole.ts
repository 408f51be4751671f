// Whole runs, as a user meets them: the command line in a process of its own (an attack's
// report gives the optimisation's wall time; the tutorial is timed from start to exit), and
// batch work on one thread against the same work spread over worker threads.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runAttack, type AttackOptions } from '../src/attacks/index.js';
import { type Model } from '../src/formats/model.js';
import { Net } from '../src/core/net.js';
import { loadEngine } from '../src/node/engine.js';
import { Pool } from '../src/node/parallel.js';
import { train, type EpochStats, type LabelledSet, type TrainOptions } from '../src/train/train.js';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

/** `mislead ARGS --out TEMP` in a new process; its standard output and its wall time in ms. */
export function runCli(args: readonly string[]): { stdout: string; ms: number } {
  const out = mkdtempSync(join(tmpdir(), 'mislead-bench-'));
  try {
    const start = performance.now();
    const r = spawnSync(process.execPath, [CLI, ...args, '--out', out], { encoding: 'utf8' });
    const ms = performance.now() - start;
    if (r.status !== 0) throw new Error(`mislead ${args.join(' ')} failed (exit code ${r.status}): ${r.stderr.trim()}`);
    return { stdout: r.stdout, ms };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** The wall time, in ms, of an attack of the suite on `inputs`: on this thread as
 *  `--workers 1` runs it, or over a pool of `workers` threads (started, and closed, in the time). */
export async function timeAttack(model: Model, inputs: Float32Array[], options: AttackOptions, workers: number): Promise<number> {
  const start = performance.now();
  if (workers === 1) {
    runAttack(new Net(await loadEngine(), model), inputs, options);
  } else {
    await new Pool(workers).attack(model, inputs, options);
  }
  return performance.now() - start;
}

/** The wall time, in ms, of training `model` on `data` (and each epoch's statistics): on this
 *  thread, or with every batch's gradients split over a pool of `workers` threads (started, and
 *  closed, in the time). */
export async function timeTraining(model: Model, data: LabelledSet, options: TrainOptions, workers: number): Promise<{ ms: number; epochs: EpochStats[] }> {
  const start = performance.now();
  const engine = await loadEngine();
  let history: EpochStats[];
  if (workers === 1) {
    ({ history } = await train(engine, model, data, undefined, options));
  } else {
    const pool = new Pool(workers);
    try {
      ({ history } = await train(engine, model, data, undefined, options, await pool.gradients(model, data, options.batch)));
    } finally {
      await pool.close();
    }
  }
  return { ms: performance.now() - start, epochs: history };
}
