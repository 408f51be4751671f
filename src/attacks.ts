// The standard attack suite: FGSM, BIM, PGD (L∞ and L2), MI-FGSM, Carlini–Wagner L2 and
// DeepFool, targeted or not, on batches of images. A library module with no Node imports, for
// the command line and the browser alike.
//
// Units. Images are in model units, x = (p − offset) / scale (SPEC §3); budgets and steps are in
// 0..255 grey levels (eps 8 = 8 grey levels) and converted with the model's |scale|. Every image
// an attack produces stays in the valid pixel box [(0 − offset)/scale, (255 − offset)/scale].
//
// Saved success. Unless `quantize: false`, an image is judged as it would be saved: rounded to
// the 8-bit grid (as inputToImage does) and, if rounding took it out of the budget ball, brought
// back in on the grid (L∞: each pixel clamped to the integers within eps of the original; L2:
// pixels that rounded away from the original rounded toward it instead, largest gain first).
// The result's `adversarial` is that image, so it saved and read back classifies as `after`, and
// ‖·‖∞ ≤ eps holds on its integer pixels (exactly so when the original is on the grid, as an
// image read from an 8-bit file is).
//
// Batches. `batchSize` images go through the engine together: the tape is recorded once per
// batch (input → logits → cross-entropy, and Σ G·logits for losses the ops do not have) and
// replayed every iteration, so the iterations allocate nothing in the engine. An image whose
// attack succeeded is frozen (kept as it is) while the rest of its batch goes on.
import { InputError } from './errors.js';
import { argmax, type Net } from './model.js';
import { BatchRun, geometry, toPixel, Workspace, type Hooks, type Norm } from './attacks/batch.js';
import { carliniWagner } from './attacks/cw.js';
import { deepFool } from './attacks/deepfool.js';
import { gradientAttack } from './attacks/gradient.js';
import { distances, psnr, ssim } from './attacks/metrics.js';

export type { Hooks, Norm, ProgressInfo } from './attacks/batch.js';
export { psnr, ssim } from './attacks/metrics.js';

export type AttackMethod = 'fgsm' | 'bim' | 'pgd' | 'mifgsm' | 'cw' | 'deepfool';

export interface CommonOptions {
  /** The label index to reach. Absent: untargeted, away from the class the model gives the
   *  original. An image already of the target class succeeds at once, unchanged. */
  target?: number;
  /** Images per pass through the engine. Default 32. */
  batchSize?: number;
  /** Round to the 8-bit grid and judge success on that image (default true). With false,
   *  images stay float and success is judged on them. */
  quantize?: boolean;
}

/** Fast gradient sign method: x0 + eps·sign(∇) (L∞) or x0 + eps·∇/‖∇‖₂ (L2), one gradient. */
export interface FgsmOptions extends CommonOptions {
  method: 'fgsm';
  /** Default 'linf'. */
  norm?: Norm;
  /** Budget in grey levels: default 8 for L∞, 128 for L2 (0.5 on the 0..1 scale). */
  eps?: number;
}

interface IterativeOptions extends CommonOptions {
  /** Default 'linf'. */
  norm?: Norm;
  /** Budget in grey levels: default 8 for L∞, 128 for L2 (0.5 on the 0..1 scale). */
  eps?: number;
  /** Step in grey levels (L∞: per pixel; L2: of the whole step). */
  step?: number;
  iterations?: number;
  /** Stop an image as soon as its saved form is adversarial (default true); false runs every
   *  iteration and judges the final image. */
  earlyStop?: boolean;
}

/** Basic iterative method (iterative FGSM): steps from the original, projected into the ball. */
export interface BimOptions extends IterativeOptions {
  method: 'bim';
  /** Defaults: step eps/8 (1 grey level at eps 8), 20 iterations. */
}

/** Projected gradient descent: BIM from a random point of the ball, restarted. */
export interface PgdOptions extends IterativeOptions {
  method: 'pgd';
  /** Defaults: step eps/8, 40 iterations, 1 restart, random start. */
  restarts?: number;
  randomStart?: boolean;
  /** Seed of the random starts (default 0): image k of the inputs starts from a stream seeded
   *  by seed + k, so a run is reproducible whatever the batch size. */
  seed?: number;
}

/** Momentum iterative FGSM (Dong et al. 2018). */
export interface MiFgsmOptions extends IterativeOptions {
  method: 'mifgsm';
  /** Defaults: step eps/iterations, 10 iterations, decay μ 1.0 (the paper's). */
  decay?: number;
}

/** Carlini–Wagner L2 (distance on the 0..1 scale, pixels / 255, as in the paper). */
export interface CwOptions extends CommonOptions {
  method: 'cw';
  /** Adam steps per binary-search step: default 100. */
  steps?: number;
  /** Adam's learning rate on the tanh variable: default 0.01. */
  lr?: number;
  /** Binary-search steps on c: default 5. */
  binarySteps?: number;
  /** Starting c: default 1e-3. */
  initialC?: number;
  /** κ, the logit margin success must have: default 0. */
  confidence?: number;
  /** Stop an image's optimisation when its loss stalls (no 0.01 % fall in steps/10): default true. */
  abortEarly?: boolean;
}

/** DeepFool L2. */
export interface DeepFoolOptions extends CommonOptions {
  method: 'deepfool';
  /** Maximum steps: default 50. */
  steps?: number;
  /** The total step is scaled by 1 + overshoot: default 0.02. */
  overshoot?: number;
  /** Classes considered, the original included (the largest original logits): default 10. */
  candidates?: number;
}

export type AttackOptions = FgsmOptions | BimOptions | PgdOptions | MiFgsmOptions | CwOptions | DeepFoolOptions;

/** Every option with its default filled in (what a report should list as the parameters). */
export type ResolvedOptions =
  | (Required<Omit<FgsmOptions, 'target'>> & { target: number | null })
  | (Required<Omit<BimOptions, 'target'>> & { target: number | null })
  | (Required<Omit<PgdOptions, 'target'>> & { target: number | null })
  | (Required<Omit<MiFgsmOptions, 'target'>> & { target: number | null })
  | (Required<Omit<CwOptions, 'target'>> & { target: number | null })
  | (Required<Omit<DeepFoolOptions, 'target'>> & { target: number | null });

/** The default budget of each norm, in grey levels. */
export const DEFAULT_EPS: Readonly<Record<Norm, number>> = { linf: 8, l2: 128 };

export interface Prediction {
  /** The class: index of the largest logit. */
  index: number;
  logits: number[];
}

export interface AttackResult {
  /** The adversarial image [h·w·c] in model units; on the 8-bit grid unless quantize is false. */
  adversarial: Float32Array;
  /** adversarial − original, in model units. */
  perturbation: Float32Array;
  /** The model on the original, and on `adversarial` exactly (so on the image as saved). */
  before: Prediction;
  after: Prediction;
  /** The target label, or null when untargeted. */
  target: number | null;
  /** after.index is the target, or (untargeted) differs from before.index. */
  success: boolean;
  /** Of the perturbation, in model units and in grey levels (SPEC §4). */
  norms: { l2: number; linf: number; l2_pixels: number; linf_pixels: number };
  /** Of the adversarial against the original, both as 0..255 images: PSNR in dB (Infinity if
   *  identical) and SSIM (11×11 Gaussian window, σ 1.5: see attacks/metrics.ts). */
  psnr: number;
  ssim: number;
  /** Steps applied to this image, and gradients of the network computed for it (DeepFool: one
   *  per candidate class and step). */
  iterations: number;
  gradients: number;
  /** Wall time of the image's batch divided by the batch's size. */
  ms: number;
}

/** Checks the options and fills in the defaults. Throws an InputError for a bad value. */
export function resolveOptions(options: AttackOptions, classes: number): ResolvedOptions {
  const method = options.method;
  const fail = (what: string, value: unknown, why: string): never => {
    throw new InputError(`${method}: ${what} must be ${why}, got ${String(value)}`);
  };
  const number = (what: string, value: number | undefined, fallback: number, min: number, strict = false): number => {
    const v = value ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (strict && v === min)) fail(what, v, `a finite number ${strict ? '>' : '≥'} ${min}`);
    return v;
  };
  const integer = (what: string, value: number | undefined, fallback: number, min: number): number => {
    const v = value ?? fallback;
    if (!Number.isSafeInteger(v) || v < min) fail(what, v, `an integer ≥ ${min}`);
    return v;
  };
  const flag = (what: string, value: boolean | undefined, fallback: boolean): boolean => {
    const v = value ?? fallback;
    if (typeof v !== 'boolean') fail(what, v, 'true or false');
    return v;
  };
  const target = options.target ?? null;
  if (target !== null && (!Number.isSafeInteger(target) || target < 0 || target >= classes)) fail('target', target, `a label index from 0 to ${classes - 1}`);
  const common = { target, batchSize: integer('batchSize', options.batchSize, 32, 1), quantize: flag('quantize', options.quantize, true) };
  const norm = (value: Norm | undefined): Norm => {
    const v = value ?? 'linf';
    if (v !== 'linf' && v !== 'l2') fail('norm', v, '"linf" or "l2"');
    return v;
  };
  switch (options.method) {
    case 'fgsm': {
      const n = norm(options.norm);
      return { method: 'fgsm', ...common, norm: n, eps: number('eps', options.eps, DEFAULT_EPS[n], 0) };
    }
    case 'bim':
    case 'pgd':
    case 'mifgsm': {
      const n = norm(options.norm);
      const eps = number('eps', options.eps, DEFAULT_EPS[n], 0);
      const iterations = integer('iterations', options.iterations, { bim: 20, pgd: 40, mifgsm: 10 }[options.method], 1);
      const base = {
        ...common, norm: n, eps, iterations,
        step: number('step', options.step, options.method === 'mifgsm' ? eps / iterations : eps / 8, 0),
        earlyStop: flag('earlyStop', options.earlyStop, true),
      };
      if (options.method === 'bim') return { method: 'bim', ...base };
      if (options.method === 'mifgsm') return { method: 'mifgsm', ...base, decay: number('decay', options.decay, 1, 0) };
      return {
        method: 'pgd', ...base,
        restarts: integer('restarts', options.restarts, 1, 1),
        randomStart: flag('randomStart', options.randomStart, true),
        seed: integer('seed', options.seed, 0, 0),
      };
    }
    case 'cw':
      return {
        method: 'cw', ...common,
        steps: integer('steps', options.steps, 100, 1),
        lr: number('lr', options.lr, 0.01, 0, true),
        binarySteps: integer('binarySteps', options.binarySteps, 5, 1),
        initialC: number('initialC', options.initialC, 1e-3, 0, true),
        confidence: number('confidence', options.confidence, 0, 0),
        abortEarly: flag('abortEarly', options.abortEarly, true),
      };
    case 'deepfool':
      return {
        method: 'deepfool', ...common,
        steps: integer('steps', options.steps, 50, 1),
        overshoot: number('overshoot', options.overshoot, 0.02, 0),
        candidates: integer('candidates', options.candidates, 10, 2),
      };
    default:
      throw new InputError(`unknown attack method ${JSON.stringify((options as { method: unknown }).method)} (methods: fgsm, bim, pgd, mifgsm, cw, deepfool)`);
  }
}

/** Iterations planned per batch, for progress (and a live loss curve's x axis). */
export function plannedIterations(o: ResolvedOptions): number {
  switch (o.method) {
    case 'fgsm':
      return 1;
    case 'bim':
    case 'mifgsm':
      return o.iterations;
    case 'pgd':
      return o.iterations * o.restarts;
    case 'cw':
      return o.steps * o.binarySteps;
    case 'deepfool':
      return o.steps;
  }
}

/**
 * Attacks each image of `inputs` (each [h·w·c] in model units, as imageToInput gives) with the
 * method of `options`, in batches; returns one result per image, in order. Synchronous: a
 * browser should run it in a worker. `hooks.onProgress` is called after every iteration;
 * `hooks.signal` stops the run between iterations (it then throws the signal's reason).
 */
export function runAttack(net: Net, inputs: readonly Float32Array[], options: AttackOptions, hooks: Hooks = {}): AttackResult[] {
  const geo = geometry(net.architecture);
  const o = resolveOptions(options, geo.classes);
  inputs.forEach((x, i) => {
    if (x.length !== geo.size) throw new InputError(`image ${i} has ${x.length} values, the model takes ${geo.height}×${geo.width}×${geo.channels} = ${geo.size}`);
  });
  hooks.signal?.throwIfAborted();
  const batches = Math.ceil(inputs.length / o.batchSize);
  const perBatch = plannedIterations(o);
  const results: AttackResult[] = [];
  for (let b = 0; b < batches; b++) {
    const first = b * o.batchSize, n = Math.min(o.batchSize, inputs.length - first);
    const started = performance.now();
    const x0 = new Float32Array(n * geo.size);
    for (let i = 0; i < n; i++) x0.set(inputs[first + i], i * geo.size);
    const ws = new Workspace(net, n);
    let run: BatchRun, beforeLogits: Float32Array;
    try {
      beforeLogits = ws.forward(x0).slice();
      const before = Int32Array.from({ length: n }, (_, i) => argmax(beforeLogits, i * geo.classes, geo.classes));
      const ball = o.method === 'cw' || o.method === 'deepfool' ? null : { norm: o.norm, eps: o.eps };
      run = new BatchRun(ws, geo, x0, before, o.target, o.quantize, ball, hooks, {
        method: o.method, batch: b, batches, done: b * perBatch, planned: perBatch, total: batches * perBatch,
      });
      switch (o.method) {
        case 'fgsm':
          gradientAttack(run, { norm: o.norm, eps: o.eps * geo.unit, step: o.eps * geo.unit, iterations: 1, restarts: 1, randomStart: false, decay: null, earlyStop: true, seed: 0 });
          break;
        case 'bim':
          gradientAttack(run, { norm: o.norm, eps: o.eps * geo.unit, step: o.step * geo.unit, iterations: o.iterations, restarts: 1, randomStart: false, decay: null, earlyStop: o.earlyStop, seed: 0 });
          break;
        case 'pgd':
          gradientAttack(run, {
            norm: o.norm, eps: o.eps * geo.unit, step: o.step * geo.unit, iterations: o.iterations, restarts: o.restarts,
            randomStart: o.randomStart, decay: null, earlyStop: o.earlyStop, seed: o.seed + first,
          });
          break;
        case 'mifgsm':
          gradientAttack(run, { norm: o.norm, eps: o.eps * geo.unit, step: o.step * geo.unit, iterations: o.iterations, restarts: 1, randomStart: false, decay: o.decay, earlyStop: o.earlyStop, seed: 0 });
          break;
        case 'cw':
          carliniWagner(run, o);
          break;
        case 'deepfool':
          deepFool(run, o);
          break;
      }
    } finally {
      ws.dispose();
    }
    const ms = (performance.now() - started) / n;
    for (let i = 0; i < n; i++) results.push(resultOf(run, i, beforeLogits, o.target, ms));
  }
  return results;
}

function resultOf(run: BatchRun, i: number, beforeLogits: Float32Array, target: number | null, ms: number): AttackResult {
  const { geo, size, classes } = run;
  const x0 = run.x0.subarray(i * size, (i + 1) * size);
  const adversarial = run.adversarial.slice(i * size, (i + 1) * size);
  const original = Float64Array.from(x0, (v) => toPixel(v, geo));
  const saved = Float64Array.from(adversarial, (v) => toPixel(v, geo));
  const d = distances(saved, original);
  const after = run.after.slice(i * classes, (i + 1) * classes);
  return {
    adversarial,
    perturbation: adversarial.map((v, j) => v - x0[j]),
    before: { index: run.before[i], logits: Array.from(beforeLogits.subarray(i * classes, (i + 1) * classes)) },
    after: { index: argmax(after), logits: Array.from(after) },
    target,
    success: run.success[i] === 1,
    norms: { l2: d.l2 * geo.unit, linf: d.linf * geo.unit, l2_pixels: d.l2, linf_pixels: d.linf },
    psnr: psnr(saved, original),
    ssim: ssim(saved, original, geo.height, geo.width, geo.channels),
    iterations: run.iterations[i],
    gradients: run.gradients[i],
    ms,
  };
}

export interface AttackSummary {
  images: number;
  /** Success rate over all images. */
  success: number;
  /** With true labels: how many images the model got right before the attack, and the success
   *  rate over those (SPEC §4: a rate states its denominator). */
  correct?: number;
  successCorrect?: number;
  /** Over the successful images: distances in grey levels, PSNR (dB), SSIM. */
  l2: { mean: number; median: number };
  linf: { mean: number; median: number };
  psnr: { mean: number; median: number };
  ssim: { mean: number; median: number };
  /** Mean wall time per image. */
  ms: number;
}

/** Success rates and the size of the successful perturbations; `labels` are the true classes. */
export function summarize(results: readonly AttackResult[], labels?: ArrayLike<number>): AttackSummary {
  const won = results.filter((r) => r.success);
  const stats = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b), k = sorted.length;
    return {
      mean: k ? values.reduce((s, v) => s + v, 0) / k : NaN,
      median: k ? (k % 2 ? sorted[(k - 1) / 2] : (sorted[k / 2 - 1] + sorted[k / 2]) / 2) : NaN,
    };
  };
  const summary: AttackSummary = {
    images: results.length,
    success: won.length / results.length,
    l2: stats(won.map((r) => r.norms.l2_pixels)),
    linf: stats(won.map((r) => r.norms.linf_pixels)),
    psnr: stats(won.map((r) => r.psnr)),
    ssim: stats(won.map((r) => r.ssim)),
    ms: results.reduce((s, r) => s + r.ms, 0) / results.length,
  };
  if (labels) {
    const right = results.filter((r, i) => r.before.index === labels[i]);
    summary.correct = right.length;
    summary.successCorrect = right.filter((r) => r.success).length / right.length;
  }
  return summary;
}
