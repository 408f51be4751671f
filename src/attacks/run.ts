// Running an attack method (registry.ts) on many images: options checked and completed, the
// images in batches, each batch stepped an iteration at a time (startAttack) or to the end
// (runAttack), and each image's result. A library module with no Node imports, for the command
// line and the browser alike.
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
//
// Stepping. `startAttack` returns a run whose `step(k)` does up to k iterations and returns
// whether any are left: a page runs it in chunks between frames and stops it by not going on
// (then `dispose()`); `runAttack` is that loop run to its end.
import { InputError } from '../errors.js';
import { argmax, type Net } from '../core/net.js';
import { BatchRun, geometry, toPixel, Workspace, type Geometry, type Hooks, type ProgressInfo } from './batch.js';
import { COMMON, defaultBatchSize, readOptions, type Method, type Stepper, type Subject } from './method.js';
import { distances, norms, psnr, ssim } from './metrics.js';
import { METHODS, methodById } from './registry.js';

export interface CommonOptions {
  /** The label index to reach. Absent: untargeted, away from the class the model gives the
   *  original (the filter, which always has a target, then takes the first label that is not
   *  the image's class). An image the model already gives the target is not attacked: its
   *  result is the image unchanged, `skipped`, not a success. */
  target?: number;
  /** Images per pass through the engine. Default 32. */
  batchSize?: number;
  /** Round to the 8-bit grid and judge success on that image (default true). With false,
   *  images stay float and success is judged on them. */
  quantize?: boolean;
}

/** The options of each method in the registry, as its module declares them (FgsmOptions, …). */
type MethodOptions = (typeof METHODS)[number] extends infer M ? (M extends Method<infer O> ? O : never) : never;

/** What a caller gives: a method and any of its options (each module documents its own). */
export type AttackOptions = (MethodOptions extends infer O ? (O extends { method: infer Id } ? Partial<Omit<O, 'method'>> & { method: Id } : never) : never) & CommonOptions;

/** Every option with its default filled in (what a report should list as the parameters). */
export type ResolvedOptions = MethodOptions & { target: number | null; batchSize: number; quantize: boolean };

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
  /** The model already gave the target for the original: nothing to do, so the image was left
   *  as it is (no iterations) and is neither a success nor a failure. */
  skipped: boolean;
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
  /** Forward passes of the network on this image, those of its gradients and of judging its
   *  saved form included (Square: the queries the paper counts, one per iteration). */
  queries: number;
  /** Wall time of the image's batch divided by the batch's size. */
  ms: number;
  /** For a method made of others (AutoAttack): the part that broke the image, null if none did. */
  brokenBy?: string | null;
}

/** The options for the images from the `first` on, attacked apart (a worker's share, a queue's
 *  job): a seeded method seeds image k's random streams with seed + k, so their seed moves on by
 *  `first` and each image meets the attack as in one run of all. */
export function fromImage(options: AttackOptions, first: number): AttackOptions {
  const seeded = methodById(options.method).parameters.some((p) => p.key === 'seed');
  return seeded ? ({ ...options, seed: ((options as { seed?: number }).seed ?? 0) + first } as AttackOptions) : options;
}

/** Checks the options and fills in the defaults (the batch size's from the model's `inputSize`,
 *  in values). Throws an InputError for a bad value, naming it by `subject` (the command line
 *  names its flags). */
export function resolveOptions(options: AttackOptions, classes: number, subject?: Subject, inputSize = 48 * 48): ResolvedOptions {
  const method = methodById(options.method);
  const given = options as unknown as Record<string, unknown>;
  const values = readOptions(method.id, method.parameters, given, subject);
  const common = readOptions(method.id, COMMON, given, subject);
  const refusal = method.refuses?.(classes, options.target !== undefined);
  if (refusal) throw new InputError(`${method.id}: ${refusal}`);
  const target = options.target ?? null;
  if (target !== null && (!Number.isSafeInteger(target) || target < 0 || target >= classes)) {
    throw new InputError(`${method.id}: target must be a label index from 0 to ${classes - 1}, got ${String(target)}`);
  }
  return { ...method.resolve(values, given), target, batchSize: common.batchSize ?? defaultBatchSize(inputSize), quantize: common.quantize } as ResolvedOptions;
}

/** Iterations planned per batch, for progress (and a live loss curve's x axis). */
export function plannedIterations(o: ResolvedOptions): number {
  return methodById(o.method).planned(o);
}

/** The name of a round of a run (PGD's restarts, C&W's binary-search steps), or '' when it has one. */
export function roundName(o: ResolvedOptions, round: number): string {
  const rounds = methodById(o.method).rounds?.(o);
  return rounds && rounds.count > 1 ? `${rounds.name} ${round + 1} of ${rounds.count}` : '';
}

/** The batch being attacked: its engine workspace, its record and the method's stepper. */
interface Batch {
  ws: Workspace;
  run: BatchRun;
  stepper: Stepper;
  first: number;
  beforeLogits: Float32Array;
  started: number;
}

/** An attack under way (see startAttack). */
export class AttackRun {
  readonly options: ResolvedOptions;
  readonly method: Method;
  /** One result per image, in order, as the batches finish. */
  readonly results: AttackResult[] = [];
  /** Iterations planned for the whole run, and done so far (a batch that finishes early jumps
   *  `done` to its end), with the last iteration's details. */
  readonly total: number;
  done = 0;
  info: ProgressInfo | null = null;
  private readonly geo: Geometry;
  /** Batches of images the run goes through, one after the other. */
  readonly batches: number;
  private readonly hooks: Hooks;
  private next = 0;
  private current: Batch | null = null;

  constructor(private readonly net: Net, private readonly inputs: readonly Float32Array[], options: AttackOptions, hooks: Hooks = {}) {
    this.geo = geometry(net.architecture);
    this.options = resolveOptions(options, this.geo.classes, undefined, this.geo.size);
    this.method = methodById(this.options.method);
    inputs.forEach((x, i) => {
      if (x.length !== this.geo.size) throw new InputError(`image ${i} has ${x.length} values, the model takes ${this.geo.height}×${this.geo.width}×${this.geo.channels} = ${this.geo.size}`);
    });
    this.batches = Math.ceil(inputs.length / this.options.batchSize);
    this.total = this.batches * this.method.planned(this.options);
    this.hooks = {
      signal: hooks.signal,
      onProgress: (done, total, info) => {
        this.done = done;
        this.info = info;
        hooks.onProgress?.(done, total, info);
      },
    };
  }

  /** Runs up to `k` iterations; returns whether any are left. An error (an abort through the
   *  signal among them) frees the run's engine memory before it is thrown. */
  step(k = 1): boolean {
    for (let i = 0; i < k; i++) {
      if (!this.current) {
        if (this.next === this.batches) return false;
        this.open();
      }
      let going: boolean;
      try {
        going = this.current!.stepper.step();
      } catch (e) {
        this.dispose();
        throw e;
      }
      if (!going) this.close();
    }
    return this.current !== null || this.next < this.batches;
  }

  /** Frees the engine memory of a run stopped before its end. */
  dispose(): void {
    this.current?.stepper.dispose?.();
    this.current?.ws.dispose();
    this.current = null;
    this.next = this.batches;
  }

  private open(): void {
    const { geo, options: o, method } = this;
    const b = this.next++;
    const first = b * o.batchSize, n = Math.min(o.batchSize, this.inputs.length - first);
    const started = performance.now();
    const x0 = new Float32Array(n * geo.size);
    for (let i = 0; i < n; i++) x0.set(this.inputs[first + i], i * geo.size);
    const ws = new Workspace(this.net, n);
    try {
      const beforeLogits = ws.forward(x0).slice();
      const before = Int32Array.from({ length: n }, (_, i) => argmax(beforeLogits, i * geo.classes, geo.classes));
      const targets =
        o.target !== null ? new Int32Array(n).fill(o.target)
        : method.target === 'required' ? before.map((c) => (c === 0 ? 1 : 0))
        : null;
      const planned = method.planned(o);
      const index = Int32Array.from({ length: n }, (_, i) => first + i);
      const run = new BatchRun(ws, geo, x0, index, before, targets, o.quantize, method.ball(o), this.hooks, {
        method: o.method, batch: b, batches: this.batches, done: b * planned, planned, total: this.total,
      });
      const nothingToDo = o.target !== null && before.every((c) => c === o.target);
      this.current = { ws, run, stepper: nothingToDo ? { step: () => false } : method.start(run, o), first, beforeLogits, started };
    } catch (e) {
      ws.dispose();
      throw e;
    }
  }

  private close(): void {
    const { run, ws, beforeLogits, started } = this.current!;
    const ms = (performance.now() - started) / run.n;
    for (let i = 0; i < run.n; i++) this.results.push(run.before[i] === this.options.target ? skippedOf(run, i, beforeLogits, ms) : resultOf(run, i, beforeLogits, ms));
    ws.dispose();
    this.current = null;
  }
}

/**
 * Starts attacking each image of `inputs` (each [h·w·c] in model units, as imageToInput gives)
 * with the method of `options`, in batches. Nothing runs until `step()`. `hooks.onProgress` is
 * called after every iteration; `hooks.signal` stops the run between iterations (`step` then
 * throws the signal's reason).
 */
export function startAttack(net: Net, inputs: readonly Float32Array[], options: AttackOptions, hooks: Hooks = {}): AttackRun {
  hooks.signal?.throwIfAborted();
  return new AttackRun(net, inputs, options, hooks);
}

/** The attack of startAttack run to its end: one result per image, in order. Synchronous: a
 *  browser should run it in a worker, or step it. */
export function runAttack(net: Net, inputs: readonly Float32Array[], options: AttackOptions, hooks: Hooks = {}): AttackResult[] {
  const run = startAttack(net, inputs, options, hooks);
  while (run.step(Infinity));
  return run.results;
}

function resultOf(run: BatchRun, i: number, beforeLogits: Float32Array, ms: number): AttackResult {
  const { geo, size, classes } = run;
  const x0 = run.x0.subarray(i * size, (i + 1) * size);
  const adversarial = run.adversarial.slice(i * size, (i + 1) * size);
  const original = Float64Array.from(x0, (v) => toPixel(v, geo));
  const saved = Float64Array.from(adversarial, (v) => toPixel(v, geo));
  const d = distances(saved, original);
  const after = run.after.slice(i * classes, (i + 1) * classes);
  return {
    adversarial,
    perturbation: run.perturbation ? run.perturbation.slice(i * size, (i + 1) * size) : adversarial.map((v, j) => v - x0[j]),
    before: { index: run.before[i], logits: Array.from(beforeLogits.subarray(i * classes, (i + 1) * classes)) },
    after: { index: argmax(after), logits: Array.from(after) },
    target: run.targets ? run.targets[i] : null,
    success: run.success[i] === 1,
    skipped: false,
    norms: norms(d, geo.unit),
    psnr: psnr(saved, original),
    ssim: ssim(saved, original, geo.height, geo.width, geo.channels),
    iterations: run.iterations[i],
    gradients: run.gradients[i],
    queries: run.queries[i],
    ms,
    ...(run.brokenBy && { brokenBy: run.brokenBy[i] }),
  };
}

/** The result of an image the model already gives the target: the original, unchanged. */
function skippedOf(run: BatchRun, i: number, beforeLogits: Float32Array, ms: number): AttackResult {
  const { geo, size, classes } = run;
  const logits = Array.from(beforeLogits.subarray(i * classes, (i + 1) * classes));
  const original = Float64Array.from(run.x0.subarray(i * size, (i + 1) * size), (v) => toPixel(v, geo));
  return {
    adversarial: run.x0.slice(i * size, (i + 1) * size),
    perturbation: new Float32Array(size),
    before: { index: run.before[i], logits },
    after: { index: run.before[i], logits: [...logits] },
    target: run.before[i],
    success: false,
    skipped: true,
    norms: norms(distances(original, original), geo.unit),
    psnr: Infinity,
    ssim: 1,
    iterations: 0,
    gradients: 0,
    queries: 0,
    ms,
  };
}

/** What the command line and the page say when the model already gives the target `label`. */
export function nothingToDo(label: string): string {
  return `already ${label}: nothing to do`;
}

export interface AttackSummary {
  images: number;
  /** Images the model already gave the target: not attacked, and left out of the rates. */
  skipped: number;
  /** Success rate over the images attacked (all but the skipped ones). */
  success: number;
  /** With true labels: how many images the model got right before the attack, and the success
   *  rate over those of them attacked (SPEC §4: a rate states its denominator). */
  correct?: number;
  success_correct?: number;
  /** Over the successful images: distances in grey levels (named as AttackResult.norms names
   *  them), PSNR (dB), SSIM. */
  l2_pixels: { mean: number; median: number };
  linf_pixels: { mean: number; median: number };
  psnr: { mean: number; median: number };
  ssim: { mean: number; median: number };
  /** Mean wall time per image. */
  ms: number;
}

/** Success rates and the size of the successful perturbations; `labels` are the true classes. */
export function summarize(results: readonly Omit<AttackResult, 'adversarial' | 'perturbation'>[], labels?: ArrayLike<number>): AttackSummary {
  const won = results.filter((r) => r.success);
  const attacked = results.filter((r) => !r.skipped).length;
  const stats = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b), k = sorted.length;
    return {
      mean: k ? values.reduce((s, v) => s + v, 0) / k : NaN,
      median: k ? (k % 2 ? sorted[(k - 1) / 2] : (sorted[k / 2 - 1] + sorted[k / 2]) / 2) : NaN,
    };
  };
  const summary: AttackSummary = {
    images: results.length,
    skipped: results.length - attacked,
    success: won.length / attacked,
    l2_pixels: stats(won.map((r) => r.norms.l2_pixels)),
    linf_pixels: stats(won.map((r) => r.norms.linf_pixels)),
    psnr: stats(won.map((r) => r.psnr)),
    ssim: stats(won.map((r) => r.ssim)),
    ms: results.reduce((s, r) => s + r.ms, 0) / results.length,
  };
  if (labels) {
    const right = results.filter((r, i) => r.before.index === labels[i]);
    summary.correct = right.length;
    summary.success_correct = right.filter((r) => r.success).length / right.filter((r) => !r.skipped).length;
  }
  return summary;
}
