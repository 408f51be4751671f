// What every attack method shares: a batch of images on the engine with its tape recorded once
// (logits, the cross-entropy on a label per image, and Σ G·logits for a constant G filled in
// TypeScript), the 8-bit grid and the budget ball, and the per-image record of the result.
// Nothing here allocates per iteration: views of the engine's memory are made once (and again
// only if memory grew meanwhile), and the per-image work runs on offsets into flat arrays.
import { pixelBox } from '../formats/preprocess.js';
import type { Tensor } from '../core/engine.js';
import { inputUnits, type Architecture } from '../formats/model.js';
import { argmax, type Net } from '../core/net.js';
import { crossEntropy, dlr, dot } from '../core/ops.js';
import { Tape } from '../core/tape.js';
import type { Stepper } from './method.js';

export type Norm = 'linf' | 'l2';

/** Sizes and units of a model's input. */
export interface Geometry {
  height: number;
  width: number;
  channels: number;
  /** Floats per image. */
  size: number;
  classes: number;
  /** x = (p − offset) / scale */
  scale: number;
  offset: number;
  /** The valid pixel box [0, 255] in model units (lo < hi whatever the sign of scale). */
  lo: number;
  hi: number;
  /** Model units per grey level: 1 / |scale|. */
  unit: number;
}

export function geometry(arch: Architecture): Geometry {
  const [height, width, channels] = arch.input;
  const { offset, scale } = inputUnits(arch);
  const [lo, hi] = pixelBox(arch);
  return { height, width, channels, size: height * width * channels, classes: arch.labels.length, scale, offset, lo, hi, unit: 1 / Math.abs(scale) };
}

/** A pixel value (0..255) of a model-unit value; values within 1e-3 of an integer are taken
 *  as that integer, so that an image read from an 8-bit file is exactly on the grid. */
export function toPixel(x: number, g: Geometry): number {
  const p = x * g.scale + g.offset;
  const r = Math.round(p);
  return Math.abs(p - r) < 1e-3 ? r : p;
}

/** The tape of one batch of `n` images, recorded once and replayed. */
export class Workspace {
  readonly tape: Tape;
  private readonly input: Tensor;
  private readonly logitsT: Tensor;
  private readonly labelsT: Tensor;
  private readonly gT: Tensor;
  private readonly crossEntropy: Tensor;
  private readonly linear: Tensor;
  /** The DLR loss of the labels, recorded when first asked for (see useDlr). */
  private dlrTensors: { rows: Tensor; targets: Tensor | null; sum: Tensor } | null = null;
  private buffer: ArrayBuffer | null = null;
  /** Views of the engine's memory: the input, its gradient, the logits [n, classes], G [n, classes]. */
  x!: Float32Array;
  grad!: Float32Array;
  logits!: Float32Array;
  g!: Float32Array;
  private y!: Float32Array;

  constructor(readonly net: Net, readonly n: number) {
    const engine = net.engine;
    const classes = net.architecture.labels.length;
    this.tape = new Tape(engine);
    try {
      this.input = engine.tensor([n, ...net.architecture.input]).requireGrad();
      this.logitsT = net.forward(this.tape, this.input);
      this.labelsT = engine.tensor([n, classes]);
      // Σ over the batch of −log softmax(logits)[label]: each image's gradient is its own.
      this.crossEntropy = crossEntropy(this.tape, this.logitsT, this.labelsT);
      this.gT = engine.tensor([n, classes]);
      this.linear = dot(this.tape, this.logitsT, this.gT);
    } catch (e) {
      this.tape.dispose();
      throw e;
    }
    this.views();
  }

  /** Makes the views again if the engine's memory grew since they were made. */
  private views(): void {
    const engine = this.net.engine;
    if (this.buffer === engine.kernels.memory.buffer) return;
    this.buffer = engine.kernels.memory.buffer as ArrayBuffer;
    this.x = engine.floats(this.input.ptr, this.input.size);
    this.grad = engine.floats(this.input.grad!.ptr, this.input.size);
    this.logits = engine.floats(this.logitsT.ptr, this.logitsT.size);
    this.y = engine.floats(this.labelsT.ptr, this.labelsT.size);
    this.g = engine.floats(this.gT.ptr, this.gT.size);
    if (this.dlrTensors) {
      const { rows, targets } = this.dlrTensors;
      this.dlrRows = engine.floats(rows.ptr, rows.size);
      this.dlrTargets = targets && engine.floats(targets.ptr, targets.size);
    }
  }

  /** The cross-entropy's label of each image (one-hot rows), also the DLR loss's. */
  setLabels(labels: Int32Array): void {
    this.views();
    oneHot(this.y, labels);
  }

  /** Records on the tape the DLR loss of each image's label (ops.dlr), against targets (set by
   *  setDlrTargets) if `targeted`: from then on every forward computes it too. Once per workspace. */
  useDlr(targeted: boolean): void {
    if (this.dlrTensors) throw new Error('the DLR loss is already recorded');
    const classes = this.logitsT.shape[1];
    const targets = targeted ? this.net.engine.tensor([this.n, classes]) : null;
    const rows = dlr(this.tape, this.logitsT, this.labelsT, targets);
    const sum = dot(this.tape, rows, this.net.engine.tensor([this.n], new Float32Array(this.n).fill(1)));
    this.dlrTensors = { rows, targets, sum };
    this.buffer = null;
    this.views();
  }

  /** The DLR loss's target of each image (after useDlr(true)); takes effect at the next forward. */
  setDlrTargets(targets: Int32Array): void {
    this.views();
    oneHot(this.dlrTargets!, targets);
  }

  /** The DLR loss of each image at the last forward (a view). */
  dlrRows!: Float32Array;
  private dlrTargets: Float32Array | null = null;

  /** ∇ₓ of Σᵢ DLRᵢ at the last forward's input (a view). */
  dlrGradient(): Float32Array {
    this.tape.backward(this.dlrTensors!.sum);
    this.views();
    return this.grad;
  }

  /** Runs the network on the batch `xs` [n·size]; returns the logits (a view). */
  forward(xs: Float32Array): Float32Array {
    this.views();
    this.x.set(xs);
    this.tape.forward();
    return this.logits;
  }

  /** ∇ₓ of Σᵢ CE(logitsᵢ, labelᵢ) at the last forward's input (a view). */
  crossEntropyGradient(): Float32Array {
    this.tape.backward(this.crossEntropy);
    this.views();
    return this.grad;
  }

  /** ∇ₓ of Σ G·logits at the last forward's input, with G as filled in `g` (a view). The
   *  activations of the last forward are reused, so G may change between calls. */
  linearGradient(): Float32Array {
    this.tape.backward(this.linear);
    this.views();
    return this.grad;
  }

  dispose(): void {
    this.tape.dispose();
  }
}

/** Rows of one-hot labels, one per image. */
function oneHot(rows: Float32Array, labels: Int32Array): void {
  const classes = rows.length / labels.length;
  rows.fill(0);
  for (let i = 0; i < labels.length; i++) rows[i * classes + labels[i]] = 1;
}

/** The budget ball around the original, in pixel units. */
export interface Ball {
  norm: Norm;
  eps: number;
}

export interface ProgressInfo {
  method: string;
  /** This batch, from 0, of `batches`. */
  batch: number;
  batches: number;
  /** PGD's restart or C&W's binary-search step, from 0; 0 for the other methods. */
  round: number;
  /** The iteration within the round, from 0. */
  iteration: number;
  /** Images of this batch in the batch, still being attacked, and already successful. */
  images: number;
  active: number;
  succeeded: number;
  /** The batch's current images [images·h·w·c] in model units (after this iteration's step;
   *  at the batch's last call, its results), and the originals: live arrays, to read during
   *  the call only. */
  x: Float32Array;
  original: Float32Array;
  /** The method's objective per image at this iteration, before its step: the cross-entropy
   *  of the label (raised when untargeted, lowered when targeted) for FGSM, BIM, PGD and
   *  MI-FGSM; ‖δ‖² + c·margin for C&W; the logit margin left to cross for DeepFool. */
  loss: Float32Array;
}

export interface Hooks {
  /** Called after every iteration of every batch; `done` and `total` count iterations of the
   *  whole run as planned (a batch that finishes early jumps `done` to its end). */
  onProgress?(done: number, total: number, info: ProgressInfo): void;
  /** Stops the attack between two iterations: `runAttack` throws the signal's reason. */
  signal?: AbortSignal;
}

/** One batch's attack: its originals and labels, the result of each image, and the shared
 *  steps (success test, 8-bit rounding into the ball, progress). */
export class BatchRun {
  readonly n: number;
  readonly size: number;
  readonly classes: number;
  /** Result per image: the adversarial [n·size], its logits [n·classes], success, counts. */
  readonly adversarial: Float32Array;
  readonly after: Float32Array;
  readonly success: Uint8Array;
  /** The perturbation of each image as the method made it, for a method that keeps its own
   *  (the filter's DX, whose sum with the original is not exact in float): else null, and a
   *  result's perturbation is its adversarial minus its original. */
  perturbation: Float32Array | null = null;
  /** The part that broke each image, for a method made of others (AutoAttack): else null. */
  brokenBy: (string | null)[] | null = null;
  /** Images whose attack is over (succeeded, or stopped for good). */
  readonly frozen: Uint8Array;
  readonly iterations: Int32Array;
  readonly gradients: Int32Array;
  /** Forward passes of the network on each image (a gradient's included). */
  readonly queries: Int32Array;
  private readonly quantized: Int32Array;
  /** The 8-bit grid of the originals (made at the first rounding): see gridOf. */
  private grid: Grid | null = null;
  private readonly order: Int32Array;
  private readonly gains: Float64Array;
  private readonly info: ProgressInfo;
  private done: number;

  constructor(
    readonly ws: Workspace,
    readonly geo: Geometry,
    /** Originals [n·size] in model units. */
    readonly x0: Float32Array,
    /** Each image's index in the inputs, which seeds its random streams: so an image meets an
     *  attack the same whatever batch it is in, and whichever images are with it. */
    readonly index: Int32Array,
    /** Class of each original as the model sees it. */
    readonly before: Int32Array,
    /** The target label of each image, or null for untargeted. */
    readonly targets: Int32Array | null,
    /** Round to the 8-bit grid before judging. */
    readonly quantize: boolean,
    readonly ball: Ball | null,
    private readonly hooks: Hooks,
    /** Where this batch's iterations start in the run's count, how many are planned, of how many. */
    progress: { method: string; batch: number; batches: number; done: number; planned: number; total: number },
  ) {
    this.n = ws.n;
    this.size = geo.size;
    this.classes = geo.classes;
    this.adversarial = new Float32Array(x0);
    this.after = new Float32Array(this.n * this.classes);
    this.success = new Uint8Array(this.n);
    this.frozen = new Uint8Array(this.n);
    this.iterations = new Int32Array(this.n);
    this.gradients = new Int32Array(this.n);
    this.queries = new Int32Array(this.n);
    this.quantized = new Int32Array(this.size);
    this.order = new Int32Array(this.size);
    this.gains = new Float64Array(this.size);
    this.done = progress.done;
    this.end = progress.done + progress.planned;
    this.total = progress.total;
    this.info = {
      method: progress.method, batch: progress.batch, batches: progress.batches, round: 0, iteration: 0,
      images: this.n, active: this.n, succeeded: 0, x: x0, original: x0, loss: new Float32Array(this.n),
    };
  }

  private readonly total: number;
  private readonly end: number;

  /** A run of another method, for a method made of others, on the images `which` of this batch
   *  (their positions, in order) gathered into a workspace of their own (the caller disposes of
   *  its `ws`): its progress goes on from this run's for `planned` iterations. */
  part(which: Int32Array, method: string, ball: Ball | null, planned: number): BatchRun {
    const size = this.size, m = which.length;
    const x0 = new Float32Array(m * size), before = new Int32Array(m), index = new Int32Array(m);
    const targets = this.targets && new Int32Array(m);
    which.forEach((i, k) => {
      x0.set(this.x0.subarray(i * size, (i + 1) * size), k * size);
      before[k] = this.before[i];
      index[k] = this.index[i];
      if (targets) targets[k] = this.targets![i];
    });
    const done = this.done;
    this.done = Math.min(done + planned, this.end);
    const { batch, batches } = this.info;
    const ws = new Workspace(this.ws.net, m);
    return new BatchRun(ws, this.geo, x0, index, before, targets, this.quantize, ball, this.hooks, { method, batch, batches, done, planned, total: this.total });
  }

  /** The label of each image for the cross-entropy: the target, or the original class. */
  labels(): Int32Array {
    return this.targets ?? this.before;
  }

  /** Whether `logits` (rows of `classes`) make image `i` adversarial. */
  isAdversarial(logits: Float32Array, i: number): boolean {
    return isSuccess(this.before[i], argmax(logits, i * this.classes, this.classes), this.targets ? this.targets[i] : null);
  }

  /** The logits of the batch `xs` (a view), counted as a query of each image still attacked. */
  forward(xs: Float32Array): Float32Array {
    for (let i = 0; i < this.n; i++) if (!this.frozen[i]) this.queries[i]++;
    return this.ws.forward(xs);
  }

  /**
   * Classifies the images flagged in `which`, as they would be saved: rounded to the 8-bit grid
   * and projected back into the ball and the box (written into `xq`; the other images of `xq`
   * are copies of `xs`). Returns the logits of `xq`. Without rounding, `xq` is `xs` and the
   * logits are those of the last forward, which must have been on `xs`.
   */
  classifySaved(xs: Float32Array, xq: Float32Array, which: Uint8Array): Float32Array {
    if (!this.quantize) {
      xq.set(xs);
      return this.ws.logits;
    }
    xq.set(xs);
    this.grid ??= gridOf(this.x0, this.geo, this.ball);
    for (let i = 0; i < this.n; i++) {
      if (!which[i]) continue;
      this.round(xs, xq, i * this.size);
      this.queries[i]++;
    }
    return this.ws.forward(xq);
  }

  /** Image at offset `o` of `xs` on the 8-bit grid, inside the ball and the box, into `xq`. */
  private round(xs: Float32Array, xq: Float32Array, o: number): void {
    const { scale, offset } = this.geo, q = this.quantized, size = this.size, ball = this.ball;
    const { p0, lower, upper, value } = this.grid!;
    let sq = 0;
    for (let j = 0; j < size; j++) {
      const r = roundHalfUp(xs[o + j] * scale + offset), lo = lower[o + j], hi = upper[o + j];
      // An integer index (r | 0) keeps the table's lookup fast.
      const v = r < lo ? lo : r > hi ? hi : r | 0;
      q[j] = v;
      xq[o + j] = value[v];
      const d = v - p0[o + j];
      sq += d * d;
    }
    if (ball?.norm !== 'l2' || sq <= ball.eps ** 2) return;
    this.shrinkL2(xs, o, sq, ball.eps ** 2);
    for (let j = 0; j < size; j++) xq[o + j] = value[q[j]];
  }

  /** Rounding left the L2 ball: pixels that rounded away from the original are rounded toward
   *  it instead, those that gain most first, until the image is back in the ball. (Pixels whose
   *  float value was in the ball then are too, when the original is on the grid.) */
  private shrinkL2(xs: Float32Array, o: number, sq: number, eps2: number): void {
    const g = this.geo, q = this.quantized, order = this.order, gains = this.gains, p0s = this.grid!.p0;
    let count = 0;
    for (let j = 0; j < this.size; j++) {
      const p0 = p0s[o + j], p = xs[o + j] * g.scale + g.offset;
      const d = q[j] - p0;
      if (Math.abs(d) > Math.abs(p - p0) && Math.abs(d) >= 0.5) {
        const toward = q[j] - Math.sign(d);
        gains[j] = d * d - (toward - p0) ** 2;
        order[count++] = j;
      }
    }
    order.subarray(0, count).sort((a, b) => gains[b] - gains[a]);
    for (let k = 0; k < count && sq > eps2; k++) {
      const j = order[k];
      q[j] -= Math.sign(q[j] - p0s[o + j]);
      sq -= gains[j];
    }
    // Only when the original is off the grid or the float image was outside the ball: move
    // the farthest pixel one level toward the original until inside.
    while (sq > eps2) {
      let far = -1, farD = 0;
      for (let j = 0; j < this.size; j++) {
        const d = Math.abs(q[j] - p0s[o + j]);
        if (d >= 1 && d > farD) (far = j), (farD = d);
      }
      if (far < 0) break;
      const p0 = p0s[o + far];
      const before = (q[far] - p0) ** 2;
      q[far] -= Math.sign(q[far] - p0);
      sq += (q[far] - p0) ** 2 - before;
    }
  }

  /** Keeps image `from` of `x` (offset from·size) and its logits (row `from`) as the result of
   *  image `i`: the same image, unless `x` is a sub-batch's. */
  record(i: number, x: Float32Array, logits: Float32Array, success: boolean, from = i): void {
    this.adversarial.set(x.subarray(from * this.size, (from + 1) * this.size), i * this.size);
    this.after.set(logits.subarray(from * this.classes, (from + 1) * this.classes), i * this.classes);
    this.success[i] = success ? 1 : 0;
  }

  /** Records image `i` as successful (image `from` of `x`, as record) and stops attacking it. */
  succeed(i: number, x: Float32Array, logits: Float32Array, from = i): void {
    this.record(i, x, logits, true, from);
    this.frozen[i] = 1;
  }

  get active(): number {
    let a = 0;
    for (let i = 0; i < this.n; i++) if (!this.frozen[i]) a++;
    return a;
  }

  /** Throws if the run was aborted. */
  checkAbort(): void {
    this.hooks.signal?.throwIfAborted();
  }

  /** Reports an iteration. */
  tick(round: number, iteration: number, x: Float32Array, loss: Float32Array): void {
    this.done = Math.min(this.done + 1, this.end);
    this.report(round, iteration, x, loss);
  }

  /** Reports the end of the batch, with its results as `x`: `done` reaches the batch's end. */
  finish(loss: Float32Array): void {
    this.done = this.end;
    this.report(this.info.round, this.info.iteration, this.adversarial, loss);
  }

  private report(round: number, iteration: number, x: Float32Array, loss: Float32Array): void {
    const hook = this.hooks.onProgress;
    if (!hook) return;
    const info = this.info;
    let succeeded = 0;
    for (let i = 0; i < this.n; i++) succeeded += this.success[i];
    info.round = round;
    info.iteration = iteration;
    info.active = this.active;
    info.succeeded = succeeded;
    info.x = x;
    info.loss = loss;
    hook(this.done, this.total, info);
  }
}

/** Math.round(p) (but +0 for −0), a few times faster than it on V8: p + 0.5 can only round up
 *  across an integer, which the test undoes. */
function roundHalfUp(p: number): number {
  const r = Math.floor(p + 0.5);
  return r - 0.5 > p ? r - 1 : r;
}

/** The originals on the 8-bit grid: their grey levels, the lowest and highest level of each
 *  pixel that the box and an L∞ ball allow (the original's own level, rounded, when the ball holds
 *  none), and the model value of each level; so that rounding a query is a clamp per pixel. */
interface Grid {
  p0: Float64Array;
  lower: Uint8Array;
  upper: Uint8Array;
  value: Float32Array;
}

function gridOf(x0: Float32Array, g: Geometry, ball: Ball | null): Grid {
  const p0 = Float64Array.from(x0, (v) => toPixel(v, g));
  const lower = new Uint8Array(p0.length), upper = new Uint8Array(p0.length).fill(255);
  if (ball?.norm === 'linf') {
    for (let j = 0; j < p0.length; j++) {
      const lo = Math.max(0, Math.ceil(p0[j] - ball.eps - 1e-9)), hi = Math.min(255, Math.floor(p0[j] + ball.eps + 1e-9));
      if (lo <= hi) (lower[j] = lo), (upper[j] = hi);
      else lower[j] = upper[j] = Math.min(255, Math.max(0, Math.round(p0[j])));
    }
  }
  return { p0, lower, upper, value: Float32Array.from({ length: 256 }, (_, v) => (v - g.offset) / g.scale) };
}

/** The one rule of success: targeted, the model gives the target; untargeted, it gives another
 *  class than it gave the original. */
export function isSuccess(before: number, after: number, target: number | null): boolean {
  return target === null ? after !== before : after === target;
}

/** Cross-entropy −log softmax(z)[label] of each row, into `out`: (max − z_label) + log(1 + Σ
 *  of the others' exp(z − max)), with log1p, so that a confident row's loss (about the others'
 *  share, far below 1e-16) is not rounded to 0. */
/** A batch's attack in rounds (restarts, APGD-T's target classes) of iterations, one iteration
 *  at each step(): start(r) opens round r, iteration(r, t) does its step t and says whether the
 *  round goes on. After the last round, or once no image is left, the batch's results are
 *  recorded with each image's last loss. */
export abstract class Rounds implements Stepper {
  private round = 0;
  private t = -1;

  constructor(protected readonly run: BatchRun) {}

  protected abstract readonly rounds: number;
  protected abstract readonly loss: Float32Array;
  protected abstract start(round: number): void;
  protected abstract iteration(round: number, t: number): boolean;

  step(): boolean {
    if (this.t < 0) {
      this.start(this.round);
      this.t = 0;
    }
    if (this.iteration(this.round, this.t++)) return true;
    this.t = -1;
    if (++this.round < this.rounds && this.run.active > 0) return true;
    this.run.finish(this.loss);
    return false;
  }
}

export function crossEntropies(logits: Float32Array, labels: Int32Array, classes: number, out: Float32Array): void {
  for (let i = 0; i < out.length; i++) {
    const top = argmax(logits, i * classes, classes), max = logits[i * classes + top];
    let others = 0;
    for (let k = 0; k < classes; k++) if (k !== top) others += Math.exp(logits[i * classes + k] - max);
    out[i] = max - logits[i * classes + labels[i]] + Math.log1p(others);
  }
}

/** x ← the nearest point of the ball (around x0, radius `ball.eps` in model units) then of the
 *  box, for the image at offset o. (Numbers come in objects: a double passed as an argument
 *  would be boxed on the heap at each call.) */
export function project(x: Float32Array, x0: Float32Array, o: number, size: number, ball: { norm: Norm; eps: number }, box: { lo: number; hi: number }): void {
  const eps = ball.eps, lo = box.lo, hi = box.hi;
  if (ball.norm === 'linf') {
    for (let j = o; j < o + size; j++) {
      const d = Math.min(eps, Math.max(-eps, x[j] - x0[j]));
      x[j] = Math.min(hi, Math.max(lo, x0[j] + d));
    }
    return;
  }
  let sq = 0;
  for (let j = o; j < o + size; j++) sq += (x[j] - x0[j]) ** 2;
  const f = sq > eps * eps ? eps / Math.sqrt(sq) : 1;
  for (let j = o; j < o + size; j++) x[j] = Math.min(hi, Math.max(lo, x0[j] + (x[j] - x0[j]) * f));
}

/** The class with the largest logit in the row at `from`, other than `own` (the first on ties). */
export function bestOther(z: Float32Array, from: number, classes: number, own: number): number {
  let best = own === 0 ? 1 : 0;
  for (let k = best + 1; k < classes; k++) if (k !== own && z[from + k] > z[from + best]) best = k;
  return best;
}
