// Auto-PGD (Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of
// diverse parameter-free attacks", ICML 2020), as their code (autoattack/autopgd_base.py) runs it.
// §3.1, Alg. 1: from a random point of the ball, steps of size η = 2ε along the sign of the
// gradient (L∞) or the gradient scaled to unit L2 norm (L2), with momentum α = 0.75 after the
// first: z = P(x + η·∇), x' = P(x + α(z − x) + (1 − α)(x − x_prev)). At the checkpoints
// w_j = ⌈p_j·N⌉ (p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)) η halves,
// and the walk restarts from the best point so far x_max, when (1) fewer than ρ = 0.75 of the
// steps since the last checkpoint raised the loss, or (2) neither η nor the best loss changed
// since the last checkpoint. Three losses (§4):
//   apgd-ce   the cross-entropy (of a target, lowered, when one is given)
//   apgd-dlr  the DLR loss, whose scale invariance defeats a saturated softmax
//   apgd-t    the targeted DLR loss toward each of the top-k other classes in turn (a round each),
//             success being any other class than the original (as AutoAttack counts it)
import { random } from '../core/random.js';
import { crossEntropies, project, Rounds, type BatchRun, type Norm } from './batch.js';
import { earlyStop, eps, iterations, norm, DEFAULT_EPS, type Method, type Parameter, type Value } from './method.js';

type Loss = 'ce' | 'dlr' | 'dlr-targeted';

interface Common {
  norm?: Norm;
  /** Budget in grey levels: default 8 (L∞) or 128 (L2). */
  eps?: number;
  /** Iterations per run: default 100. */
  iterations?: number;
  /** Runs from another random start while an image resists: default 1. */
  restarts?: number;
  earlyStop?: boolean;
  /** Seed of the random starts (default 0): image k of the inputs starts from streams seeded by
   *  seed + k, whatever the batch size. */
  seed?: number;
}

export interface ApgdCeOptions extends Common {
  method: 'apgd-ce';
}
export interface ApgdDlrOptions extends Common {
  method: 'apgd-dlr';
}
export interface ApgdTOptions extends Common {
  method: 'apgd-t';
  /** The other classes, by largest original logit, attacked in turn: default 9. */
  targetClasses?: number;
}

/** ρ, α and the checkpoints' p_1, shrink and floor, from §3.1. */
const RHO = 0.75, ALPHA = 0.75, P1 = 0.22, SHRINK = 0.03, FLOOR = 0.06;

const restarts: Parameter = { key: 'restarts', flag: 'restarts', label: 'Restarts', kind: 'int', default: 1, min: 1, max: 1000, hint: 'Runs from another random start while an image resists.' };
const seed: Parameter = { key: 'seed', flag: 'seed', label: 'Seed', kind: 'int', default: 0, min: 0, max: 0xffffffff, hint: 'Seed of the random starts.' };
const targetClasses: Parameter = { key: 'targetClasses', flag: 'target-classes', label: 'Target classes', kind: 'int', default: 9, min: 1, max: 100_000, hint: 'Other classes (largest original logits first) attacked in turn.' };
const PAPER = 'Croce & Hein, Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free attacks, ICML 2020';

function common(values: Readonly<Record<string, Value | undefined>>) {
  const n = values.norm as Norm;
  return {
    norm: n, eps: (values.eps as number | undefined) ?? DEFAULT_EPS[n], iterations: values.iterations as number,
    restarts: values.restarts as number, earlyStop: values.earlyStop as boolean, seed: values.seed as number,
  };
}

const dlrLoss = { scale: 'linear' as const, about: () => 'The DLR loss (the attack raises it; above 0 the best other class, or the target, leads).' };

export const apgdCe: Method<Required<ApgdCeOptions>> = {
  id: 'apgd-ce',
  name: 'APGD-CE',
  summary: 'Auto-PGD on the cross-entropy: a step size that halves when progress stalls, momentum, restarts from the best point; no step to tune.',
  paper: PAPER,
  target: 'optional',
  parameters: [norm, eps, iterations(100), restarts, earlyStop, seed],
  resolve: (values) => ({ method: 'apgd-ce', ...common(values) }),
  planned: (o) => o.iterations * o.restarts,
  ball: (o) => ({ norm: o.norm, eps: o.eps }),
  rounds: (o) => ({ count: o.restarts, name: 'restart' }),
  start: (run, o) => new AutoPgd(run, { ...o, loss: 'ce', targetClasses: 1 }),
  loss: {
    scale: 'log',
    about: (targeted) => (targeted ? 'Cross-entropy of the target label (the attack lowers it).' : 'Cross-entropy of the original label (the attack raises it).'),
  },
};

export const apgdDlr: Method<Required<ApgdDlrOptions>> = {
  id: 'apgd-dlr',
  name: 'APGD-DLR',
  summary: 'Auto-PGD on the difference-of-logits-ratio loss, which the scale of the logits cannot hide (toward a target: the targeted DLR).',
  paper: PAPER,
  target: 'optional',
  parameters: [norm, eps, iterations(100), restarts, earlyStop, seed],
  resolve: (values) => ({ method: 'apgd-dlr', ...common(values) }),
  refuses: (classes, targeted) => refusal(classes, targeted ? 4 : 3, targeted),
  planned: (o) => o.iterations * o.restarts,
  ball: (o) => ({ norm: o.norm, eps: o.eps }),
  rounds: (o) => ({ count: o.restarts, name: 'restart' }),
  start: (run, o) => new AutoPgd(run, { ...o, loss: run.targets ? 'dlr-targeted' : 'dlr', targetClasses: 1 }),
  loss: dlrLoss,
};

export const apgdT: Method<Required<ApgdTOptions>> = {
  id: 'apgd-t',
  name: 'APGD-T (targeted DLR)',
  summary: 'Auto-PGD on the targeted DLR loss toward each of the top other classes in turn; succeeds on any other class than the original.',
  paper: PAPER,
  target: 'optional',
  parameters: [norm, eps, iterations(100), targetClasses, restarts, earlyStop, seed],
  resolve: (values) => ({ method: 'apgd-t', ...common(values), targetClasses: values.targetClasses as number }),
  refuses: (classes) => refusal(classes, 4, true),
  planned: (o) => o.iterations * o.restarts * o.targetClasses,
  ball: (o) => ({ norm: o.norm, eps: o.eps }),
  rounds: (o) => ({ count: o.restarts * o.targetClasses, name: 'run' }),
  start: (run, o) => new AutoPgd(run, { ...o, loss: 'dlr-targeted' }),
  loss: dlrLoss,
};

function refusal(classes: number, needed: number, targeted: boolean): string | null {
  return classes >= needed ? null : `the ${targeted ? 'targeted ' : ''}DLR loss needs at least ${needed} classes (it divides by the gap between the largest logit and the ${targeted ? 'mean of the third and fourth' : 'third'}), the model has ${classes}`;
}

interface AutoPgdParams {
  norm: Norm;
  /** In grey levels. */
  eps: number;
  iterations: number;
  restarts: number;
  /** Rounds per restart: the other classes in turn (apgd-t untargeted), else 1. */
  targetClasses: number;
  earlyStop: boolean;
  seed: number;
  loss: Loss;
}

/** The checkpoints w_j = ⌈p_j·N⌉ (j ≥ 1) of N iterations, flagged in an array indexed by k. */
export function checkpoints(n: number): Uint8Array {
  const at = new Uint8Array(n + 1);
  for (let before = 0, p = P1; p <= 1; ) {
    at[Math.ceil(p * n - 1e-9)] = 1;
    [before, p] = [p, p + Math.max(p - before - SHRINK, FLOOR)];
  }
  return at;
}

/** One batch's attack, an iteration at each step(): rounds (restarts, and APGD-T's target
 *  classes) of N iterations, each image's state in flat arrays. */
class AutoPgd extends Rounds {
  private readonly ball: { norm: Norm; eps: number };
  private readonly checkpoint: Uint8Array;
  /** The label of the cross-entropy or the DLR loss, and the targets of each image's rounds. */
  private readonly labels: Int32Array;
  private readonly targetsOf: Int32Array | null;
  protected readonly rounds: number;
  private readonly direction: number;
  private readonly xs: Float32Array;
  private readonly xPrev: Float32Array;
  private readonly xBest: Float32Array;
  private readonly gradBest: Float32Array;
  private readonly zs: Float32Array;
  private readonly xq: Float32Array;
  /** The objective f (raised) of each image: its value now and at the last iteration, the best,
   *  the best at the last checkpoint; η; steps that raised f since the last checkpoint. */
  private readonly f: Float64Array;
  private readonly fPrev: Float64Array;
  private readonly fBest: Float64Array;
  private readonly fBestChecked: Float64Array;
  private readonly eta: Float64Array;
  private readonly raised: Int32Array;
  private readonly halved: Uint8Array;
  /** Images whose best point was restored at this iteration: their step uses gradBest. */
  private readonly restored: Uint8Array;
  private readonly roundTargets: Int32Array;
  protected readonly loss: Float32Array;
  private readonly flags: Uint8Array;
  private lastCheckpoint = 0;

  constructor(run: BatchRun, private readonly p: AutoPgdParams) {
    super(run);
    const { ws, n, size, classes } = run;
    this.ball = { norm: p.norm, eps: p.eps * run.geo.unit };
    this.checkpoint = checkpoints(p.iterations);
    // The DLR losses' label is the original class; the cross-entropy's the target if any.
    this.labels = p.loss === 'ce' ? run.labels() : run.before;
    ws.setLabels(this.labels);
    this.direction = p.loss === 'ce' && run.targets ? -1 : 1;
    if (p.loss !== 'ce') ws.useDlr(p.loss === 'dlr-targeted');
    // APGD-T untargeted: image i's round r aims at its (r+1)-th largest other class originally.
    const count = run.targets ? 1 : Math.min(p.targetClasses, classes - 1);
    this.rounds = p.restarts * count;
    this.targetsOf = p.loss === 'dlr-targeted' ? new Int32Array(n * count) : null;
    if (this.targetsOf) {
      const z0 = ws.forward(run.x0);
      for (let i = 0; i < n; i++) {
        const order = Array.from({ length: classes }, (_, k) => k).filter((k) => k !== run.before[i]).sort((a, b) => z0[i * classes + b] - z0[i * classes + a]);
        for (let k = 0; k < count; k++) this.targetsOf[i * count + k] = run.targets ? run.targets[i] : order[k];
      }
    }
    this.roundTargets = new Int32Array(n);
    this.xs = new Float32Array(n * size);
    this.xPrev = new Float32Array(n * size);
    this.xBest = new Float32Array(n * size);
    this.gradBest = new Float32Array(n * size);
    this.zs = new Float32Array(n * size);
    this.xq = new Float32Array(n * size);
    this.f = new Float64Array(n);
    this.fPrev = new Float64Array(n);
    this.fBest = new Float64Array(n);
    this.fBestChecked = new Float64Array(n);
    this.eta = new Float64Array(n);
    this.raised = new Int32Array(n);
    this.halved = new Uint8Array(n);
    this.restored = new Uint8Array(n);
    this.loss = new Float32Array(n);
    this.flags = new Uint8Array(n);
  }

  /** A round starts from a random point of the ball (§3: as their code, uniform directions
   *  scaled to the ball's surface: L∞ by the largest coordinate, L2 a Gaussian by its norm),
   *  with η = 2ε, toward the round's target for APGD-T. */
  protected start(round: number): void {
    const { run, p, xs, ball } = this;
    const { n, size, x0, geo } = run;
    const perRestart = this.rounds / p.restarts;
    for (let i = 0; i < n; i++) {
      if (run.frozen[i]) continue;
      const o = i * size;
      const rand = random((Math.imul(p.seed + run.index[i], 0x9e3779b1) + round) >>> 0);
      let scale = 0;
      for (let j = o; j < o + size; j++) {
        const u = p.norm === 'linf' ? 2 * rand() - 1 : Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
        xs[j] = u;
        scale = p.norm === 'linf' ? Math.max(scale, Math.abs(u)) : scale + u * u;
      }
      const f = ball.eps / (p.norm === 'linf' ? scale : Math.sqrt(scale)) || 0;
      for (let j = o; j < o + size; j++) xs[j] = x0[j] + xs[j] * f;
      project(xs, x0, o, size, ball, geo);
      this.xPrev.set(xs.subarray(o, o + size), o);
      this.eta[i] = 2 * ball.eps;
      this.halved[i] = 0;
      this.raised[i] = 0;
      if (this.targetsOf) this.roundTargets[i] = this.targetsOf[i * perRestart + Math.floor(round / p.restarts)];
    }
    if (this.targetsOf) run.ws.setDlrTargets(this.roundTargets);
    this.lastCheckpoint = 0;
  }

  /** Evaluates x^(t) (its loss, and its gradient unless it is the last), judges it, keeps the
   *  best point, halves η at a checkpoint, and steps; false when the round is over. */
  protected iteration(r: number, t: number): boolean {
    const { run, p, xs, flags, f } = this;
    const { ws, n, classes } = run;
    run.checkAbort();
    const last = t === p.iterations;
    const z = run.forward(xs);
    let grad: Float32Array | null = null;
    if (p.loss === 'ce') {
      crossEntropies(z, this.labels, classes, this.loss);
      for (let i = 0; i < n; i++) f[i] = this.direction * this.loss[i];
      if (!last) grad = ws.crossEntropyGradient();
    } else {
      for (let i = 0; i < n; i++) f[i] = this.loss[i] = ws.dlrRows[i];
      if (!last) grad = ws.dlrGradient();
    }
    let any = false;
    for (let i = 0; i < n; i++) {
      flags[i] = !run.frozen[i] && (p.earlyStop || last) && run.isAdversarial(z, i) ? 1 : 0;
      if (flags[i]) any = true;
      if (grad && !run.frozen[i]) run.gradients[i]++;
    }
    if (any) {
      const zq = run.classifySaved(xs, this.xq, flags);
      for (let i = 0; i < n; i++) if (flags[i] && run.isAdversarial(zq, i)) run.succeed(i, this.xq, zq);
    }
    // The checkpoint k = w_j is judged once x^(k+1) is known (Alg. 1).
    const check = t >= 2 && this.checkpoint[t - 1] === 1;
    for (let i = 0; i < n; i++) {
      if (run.frozen[i]) continue;
      this.keep(i, t, grad);
      this.restored[i] = 0;
      if (check) this.checkProgress(i, t - 1);
      if (t > 0 && f[i] > this.fPrev[i]) this.raised[i]++;
      this.fPrev[i] = f[i];
    }
    if (check) this.lastCheckpoint = t - 1;
    if (last || run.active === 0) {
      if (last) this.judgeBest();
      return false;
    }
    const a = t === 0 ? 1 : ALPHA;
    for (let i = 0; i < n; i++) {
      if (run.frozen[i]) continue;
      this.stepFrom(i, this.restored[i] ? this.gradBest : grad!, a);
      run.iterations[i]++;
    }
    run.tick(r, t, xs, this.loss);
    return true;
  }

  /** x_max, f_max and the gradient there, when x^(t) is the best of the round so far. */
  private keep(i: number, t: number, grad: Float32Array | null): void {
    const f = this.f, size = this.run.size;
    if (t > 0 && !(f[i] > this.fBest[i])) return;
    this.fBest[i] = f[i];
    if (t === 0) this.fBestChecked[i] = f[i];
    const o = i * size;
    this.xBest.set(this.xs.subarray(o, o + size), o);
    if (grad) this.gradBest.set(grad.subarray(o, o + size), o);
  }

  /** §3.1's two conditions at the checkpoint k: η halves and x^(k+1) becomes x_max. */
  private checkProgress(i: number, k: number): void {
    const slowly = this.raised[i] < RHO * (k - this.lastCheckpoint);
    const stuck = !this.halved[i] && !(this.fBest[i] > this.fBestChecked[i]);
    this.halved[i] = slowly || stuck ? 1 : 0;
    this.fBestChecked[i] = this.fBest[i];
    this.raised[i] = 0;
    if (!this.halved[i]) return;
    this.eta[i] /= 2;
    const o = i * this.run.size;
    this.xs.set(this.xBest.subarray(o, o + this.run.size), o);
    this.restored[i] = 1;
  }

  /** z = P(x + η·d), x' = P(x + a(z − x) + (1 − a)(x − x_prev)), d the sign of the gradient
   *  (L∞) or the gradient over its L2 norm (+1e-12, as their code). */
  private stepFrom(i: number, grad: Float32Array, a: number): void {
    const { xs, xPrev, zs, ball, run } = this;
    const { size, x0, geo } = run;
    const o = i * size;
    let scale = this.direction * this.eta[i];
    if (ball.norm === 'l2') {
      let sq = 0;
      for (let j = o; j < o + size; j++) sq += grad[j] * grad[j];
      scale /= Math.sqrt(sq) + 1e-12;
    }
    for (let j = o; j < o + size; j++) zs[j] = xs[j] + scale * (ball.norm === 'linf' ? Math.sign(grad[j]) : grad[j]);
    project(zs, x0, o, size, ball, geo);
    for (let j = o; j < o + size; j++) zs[j] = xs[j] + a * (zs[j] - xs[j]) + (1 - a) * (xs[j] - xPrev[j]);
    project(zs, x0, o, size, ball, geo);
    xPrev.set(xs.subarray(o, o + size), o);
    xs.set(zs.subarray(o, o + size), o);
  }

  /** The round's end: each image still resisting is judged, and kept, at its best point. */
  private judgeBest(): void {
    const { run, flags } = this;
    for (let i = 0; i < run.n; i++) flags[i] = run.frozen[i] ? 0 : 1;
    if (!run.quantize) run.forward(this.xBest);
    const zq = run.classifySaved(this.xBest, this.xq, flags);
    for (let i = 0; i < run.n; i++) {
      if (!flags[i]) continue;
      if (run.isAdversarial(zq, i)) run.succeed(i, this.xq, zq);
      else run.record(i, this.xq, zq, false);
    }
  }
}
