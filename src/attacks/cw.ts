// Carlini & Wagner's L2 attack (2017), as their reference code and Foolbox run it. The image is
// x = mid + half·tanh(w), which keeps it in the pixel box; Adam on w minimises
//   ‖x − x0‖² + c·max(margin, −κ),
// the distance measured on the 0..1 scale (pixels / 255, as the papers' images are, so that c
// and κ mean what they mean there), margin = Z_t − max_{j≠t} Z_j away from the original class t
// (untargeted) or max_{j≠t} Z_j − Z_t toward a target t, on the logits Z. Its gradient with
// respect to the logits is formed here and sent back through the network as Σ G·Z. A binary
// search per image on c (×10 until a first success, then bisection) repeats the optimisation
// from the original; the result is the smallest adversarial found, as it would be saved.
import { bestOther, type BatchRun } from './batch.js';
import type { Method, Stepper } from './method.js';

export interface CwOptions {
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
  /** Stop an image's optimisation when its loss has not fallen by 0.01 % in steps/10 steps
   *  (default true). */
  abortEarly?: boolean;
}

type CwParams = Required<CwOptions>;

const BETA1 = 0.9, BETA2 = 0.999, EPSILON = 1e-8; // Adam, as tf.train.AdamOptimizer in the reference code

export const cw: Method<CwParams> = {
  id: 'cw',
  name: 'Carlini–Wagner L2',
  summary: 'Adam minimises distance² + c·margin over an image kept in range by tanh, with a binary search on c: no budget, the smallest change it finds.',
  paper: 'Carlini & Wagner, Towards Evaluating the Robustness of Neural Networks, IEEE S&P 2017',
  target: 'optional',
  parameters: [
    { key: 'steps', flag: 'iters', label: 'Steps', kind: 'int', default: 100, min: 1, max: 10_000_000, hint: 'Adam steps per binary-search step (fewer if the loss stalls).' },
    { key: 'lr', flag: 'lr', label: 'Learning rate', kind: 'float', default: 0.01, min: 0, above: true, max: 1e6, hint: "Adam's step size on the tanh variable." },
    { key: 'binarySteps', flag: 'binary-steps', label: 'Binary steps', kind: 'int', default: 5, min: 1, max: 1000, hint: 'Searches for the smallest c that still succeeds.' },
    { key: 'initialC', flag: 'c', label: 'Initial c', kind: 'float', default: 1e-3, min: 0, above: true, max: 1e10, hint: 'The weight of the margin at the first binary-search step.' },
    { key: 'confidence', flag: 'confidence', label: 'Confidence κ', kind: 'float', default: 0, min: 0, max: 1e6, hint: 'The logit margin the result must have.' },
    { key: 'abortEarly', flag: 'no-abort-early', label: 'Abort early', kind: 'boolean', default: true, hint: 'Stop an image when its loss stalls.' },
  ],
  resolve: (v) => ({
    method: 'cw', steps: v.steps as number, lr: v.lr as number, binarySteps: v.binarySteps as number,
    initialC: v.initialC as number, confidence: v.confidence as number, abortEarly: v.abortEarly as boolean,
  }),
  planned: (o) => o.steps * o.binarySteps,
  ball: () => null,
  rounds: (o) => ({ count: o.binarySteps, name: 'binary-search step' }),
  start: (run, o) => new CarliniWagner(run, o),
  loss: { scale: 'linear', about: () => '‖δ‖² (pixels / 255) + c·max(margin, −κ) of the current binary-search step.' },
};

/** The state of one batch's attack: binary-search steps of up to `steps` Adam steps, one at each
 *  step(). Each step is a method of its own, with its numbers kept in typed arrays, so that it is
 *  optimised as a whole and allocates nothing. */
class CarliniWagner implements Stepper {
  private round = 0;
  private t = 0;
  private readonly mid: number;
  private readonly half: number;
  /** Model units² → (pixels / 255)². */
  private readonly k2: number;
  private readonly w0: Float64Array;
  private readonly w: Float64Array;
  private readonly th: Float64Array;
  private readonly m: Float64Array;
  private readonly v: Float64Array;
  private readonly xs: Float32Array;
  private readonly xq: Float32Array;
  private readonly c: Float64Array;
  private readonly lower: Float64Array;
  private readonly upper: Float64Array;
  /** Squared distance (model units) of the best saved adversarial of each image. */
  private readonly best: Float64Array;
  private readonly loss: Float32Array;
  private readonly previous: Float64Array;
  private readonly found: Uint8Array;
  private readonly active: Uint8Array;
  private readonly flags: Uint8Array;
  private readonly every: number;

  constructor(private readonly run: BatchRun, private readonly p: CwParams) {
    const { n, size, geo, x0 } = run;
    this.mid = (geo.hi + geo.lo) / 2;
    this.half = (geo.hi - geo.lo) / 2;
    this.k2 = (1 / (geo.unit * 255)) ** 2;
    this.w0 = new Float64Array(n * size);
    for (let j = 0; j < this.w0.length; j++) this.w0[j] = Math.atanh(Math.min(1, Math.max(-1, (x0[j] - this.mid) / this.half)) * 0.999999);
    this.w = new Float64Array(n * size);
    this.th = new Float64Array(n * size);
    this.m = new Float64Array(n * size);
    this.v = new Float64Array(n * size);
    this.xs = new Float32Array(n * size);
    this.xq = new Float32Array(n * size);
    this.c = new Float64Array(n).fill(p.initialC);
    this.lower = new Float64Array(n);
    this.upper = new Float64Array(n).fill(1e10);
    this.best = new Float64Array(n).fill(Infinity);
    this.loss = new Float32Array(n);
    this.previous = new Float64Array(n);
    this.found = new Uint8Array(n);
    this.active = new Uint8Array(n);
    this.flags = new Uint8Array(n);
    this.every = Math.max(1, Math.ceil(p.steps / 10));
  }

  step(): boolean {
    if (this.t === 0) this.start();
    const going = this.adamStep(this.round, this.t++);
    if (going && this.t < this.p.steps) return true;
    this.search();
    this.t = 0;
    if (++this.round < this.p.binarySteps) return true;
    this.finish();
    return false;
  }

  /** A binary-search step starts from the original, with Adam's moments at zero. */
  private start(): void {
    this.w.set(this.w0);
    this.m.fill(0);
    this.v.fill(0);
    this.active.fill(1);
    this.found.fill(0);
    this.previous.fill(Infinity);
    this.run.frozen.fill(0);
    for (let i = 0; i < this.run.n; i++) this.toImage(i);
  }

  /** x = mid + half·tanh(w) for image i. */
  private toImage(i: number): void {
    const { xs, th, w, mid, half } = this;
    const size = this.run.size;
    for (let j = i * size; j < (i + 1) * size; j++) {
      th[j] = Math.tanh(w[j]);
      xs[j] = mid + half * th[j];
    }
  }

  /** One Adam step of every active image; false when none is left. */
  private adamStep(round: number, t: number): boolean {
    const { run, p, xs, c, loss, flags, found, best, active } = this;
    const { ws, n, size, classes, x0 } = run;
    const targeted = run.targets !== null, kappa = p.confidence;
    run.checkAbort();
    const z = run.forward(xs);
    const g = ws.g;
    g.fill(0);
    for (let i = 0; i < n; i++) {
      if (!active[i]) continue;
      let sq = 0;
      for (let j = i * size; j < (i + 1) * size; j++) sq += (xs[j] - x0[j]) * (xs[j] - x0[j]);
      // The class to leave (untargeted) or reach (targeted), the best other one, and the
      // margin's gradient c·∂margin/∂Z while the margin is above −κ.
      const own = targeted ? run.targets![i] : run.before[i];
      const other = bestOther(z, i * classes, classes, own);
      const gap = z[i * classes + own] - z[i * classes + other];
      const margin = targeted ? -gap : gap;
      if (margin > -kappa) {
        g[i * classes + own] = targeted ? -c[i] : c[i];
        g[i * classes + other] = targeted ? c[i] : -c[i];
      }
      loss[i] = this.k2 * sq + c[i] * Math.max(margin, -kappa);
      // A candidate: adversarial with the margin κ asks for, and nearer than the best so far
      // (or the first of this round, which the binary search needs to know about).
      flags[i] = margin <= -kappa && run.isAdversarial(z, i) && (!found[i] || sq < best[i]) ? 1 : 0;
    }
    const grad = ws.linearGradient();
    let any = false;
    for (let i = 0; i < n; i++) {
      if (active[i]) run.gradients[i]++;
      if (flags[i]) any = true;
    }
    if (any) this.keepBest();
    // Abort early, as the reference code: every tenth of the steps, stop when the loss has not
    // fallen by 0.01 % since the last check.
    if (p.abortEarly && t % this.every === 0) {
      for (let i = 0; i < n; i++) {
        if (active[i] && loss[i] > this.previous[i] * 0.9999) active[i] = 0;
        this.previous[i] = loss[i];
      }
    }
    const lrT = (p.lr * Math.sqrt(1 - BETA2 ** (t + 1))) / (1 - BETA1 ** (t + 1));
    const { w, th, m, v, half } = this;
    let running = 0;
    for (let i = 0; i < n; i++) {
      run.frozen[i] = active[i] ? 0 : 1;
      if (!active[i]) continue;
      running++;
      for (let j = i * size; j < (i + 1) * size; j++) {
        const gw = (grad[j] + 2 * this.k2 * (xs[j] - x0[j])) * half * (1 - th[j] * th[j]);
        m[j] = BETA1 * m[j] + (1 - BETA1) * gw;
        v[j] = BETA2 * v[j] + (1 - BETA2) * gw * gw;
        w[j] -= (lrT * m[j]) / (Math.sqrt(v[j]) + EPSILON);
      }
      this.toImage(i);
      run.iterations[i]++;
    }
    run.tick(round, t, xs, loss);
    return running > 0;
  }

  /** The flagged images as saved: those still adversarial count as found in this round, and
   *  are kept when nearer than the best so far. */
  private keepBest(): void {
    const { run, xq, found, best, flags } = this;
    const { n, size, x0 } = run;
    const zq = run.classifySaved(this.xs, xq, flags);
    for (let i = 0; i < n; i++) {
      if (!flags[i] || !run.isAdversarial(zq, i)) continue;
      found[i] = 1;
      let sq = 0;
      for (let j = i * size; j < (i + 1) * size; j++) sq += (xq[j] - x0[j]) * (xq[j] - x0[j]);
      if (sq < best[i]) {
        best[i] = sq;
        run.record(i, xq, zq, true);
      }
    }
  }

  /** The binary search on c: bisect after a success, ×10 until the first one. */
  private search(): void {
    const { c, lower, upper, found } = this;
    for (let i = 0; i < this.run.n; i++) {
      if (found[i]) {
        upper[i] = Math.min(upper[i], c[i]);
        if (upper[i] < 1e9) c[i] = (lower[i] + upper[i]) / 2;
      } else {
        lower[i] = Math.max(lower[i], c[i]);
        c[i] = upper[i] < 1e9 ? (lower[i] + upper[i]) / 2 : c[i] * 10;
      }
    }
  }

  /** Images never adversarial keep their last image, as saved. */
  private finish(): void {
    const { run, flags, xs, xq } = this;
    run.frozen.fill(1);
    let any = false;
    for (let i = 0; i < run.n; i++) {
      flags[i] = this.best[i] === Infinity ? 1 : 0;
      if (flags[i]) any = true;
    }
    if (any) {
      if (!run.quantize) run.ws.forward(xs);
      const zq = run.classifySaved(xs, xq, flags);
      for (let i = 0; i < run.n; i++) if (flags[i]) run.record(i, xq, zq, run.isAdversarial(zq, i));
    }
    run.finish(this.loss);
  }
}
