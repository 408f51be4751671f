// FGSM, BIM, PGD and MI-FGSM: steps along the cross-entropy's input gradient (its sign for
// L∞, the gradient scaled to unit L2 norm for L2), each followed by a projection into the
// budget ball and the pixel box. One loop does them all:
//   FGSM     one step of size eps from the original (Goodfellow et al. 2015)
//   BIM      `iterations` steps of size `step` from the original (Kurakin et al. 2017)
//   PGD      BIM from a uniformly random point of the ball, `restarts` times (Madry et al. 2018)
//   MI-FGSM  BIM along a momentum g ← μ·g + ∇/‖∇‖₁ (Dong et al. 2018)
// Untargeted attacks raise the cross-entropy of the original class, targeted ones lower that
// of the target.
import { random } from '../core/random.js';
import { crossEntropies, project, Rounds, type BatchRun, type Norm } from './batch.js';

export interface GradientParams {
  norm: Norm;
  /** Budget and step in model units. */
  eps: number;
  step: number;
  iterations: number;
  restarts: number;
  randomStart: boolean;
  /** Momentum decay μ (MI-FGSM), or null for plain gradient steps. */
  decay: number | null;
  /** Stop (freeze) an image as soon as its saved form is adversarial. */
  earlyStop: boolean;
  /** Image i of the batch starts from random(seed + its index in the inputs, round). */
  seed: number;
}

/** The loop for a method's options in grey levels (eps, and step, iterations and early stop
 *  where it has them: else one step of size eps, as FGSM), converted to model units; `more` sets
 *  what only some methods use (PGD's restarts and random start, MI-FGSM's momentum). */
export function gradientSteps(
  run: BatchRun,
  o: { norm: Norm; eps: number; step?: number; iterations?: number; earlyStop?: boolean },
  more: Partial<Pick<GradientParams, 'restarts' | 'randomStart' | 'decay' | 'seed'>> = {},
): GradientAttack {
  const unit = run.geo.unit;
  return new GradientAttack(run, {
    norm: o.norm, eps: o.eps * unit, step: (o.step ?? o.eps) * unit, iterations: o.iterations ?? 1, earlyStop: o.earlyStop ?? true,
    restarts: 1, randomStart: false, decay: null, seed: 0, ...more,
  });
}

/** One batch's attack, an iteration at each step(): rounds (PGD's restarts) of up to
 *  `iterations` steps and a last judgement each. An iteration is a method of its own, so that it
 *  is optimised as a whole and allocates nothing. */
export class GradientAttack extends Rounds {
  protected readonly loss: Float32Array;
  private readonly labels: Int32Array;
  private readonly xs: Float32Array;
  private readonly xq: Float32Array;
  private readonly momentum: Float32Array | null;
  private readonly flags: Uint8Array;
  /** Untargeted attacks climb the cross-entropy, targeted ones descend it. */
  private readonly direction: number;

  constructor(run: BatchRun, private readonly p: GradientParams) {
    super(run);
    const { n, size } = run;
    this.labels = run.labels();
    run.ws.setLabels(this.labels);
    this.xs = new Float32Array(n * size);
    this.xq = new Float32Array(n * size);
    this.momentum = p.decay === null ? null : new Float32Array(n * size);
    this.loss = new Float32Array(n);
    this.flags = new Uint8Array(n);
    this.direction = run.targets === null ? 1 : -1;
  }

  protected get rounds(): number {
    return this.p.restarts;
  }

  /** A round starts from the original, or a random point of the ball, for the images still on.
   *  Each image draws from its own seeded stream, so results depend neither on the batch size
   *  nor on how images are split over workers. */
  protected start(round: number): void {
    const { run, p, xs } = this;
    const { n, size, x0, geo } = run;
    for (let i = 0; i < n; i++) {
      if (run.frozen[i]) continue;
      const o = i * size;
      xs.set(x0.subarray(o, o + size), o);
      if (p.randomStart) randomStart(xs, o, size, p.norm, p.eps, random((Math.imul(p.seed + run.index[i], 0x9e3779b1) + round) >>> 0));
      project(xs, x0, o, size, p, geo);
      this.momentum?.fill(0, o, o + size);
    }
  }

  /** Iteration t of round r: judge the current images, then step; false when the round is over. */
  protected iteration(r: number, t: number): boolean {
    const { run, p, xs, flags } = this;
    const { ws, n, size, x0, geo } = run;
    run.checkAbort();
    const last = t === p.iterations;
    const z = run.forward(xs);
    crossEntropies(z, this.labels, run.classes, this.loss);
    // On the last pass only the final images are judged: no gradient is needed.
    const grad = last ? null : ws.crossEntropyGradient();
    let any = false;
    for (let i = 0; i < n; i++) {
      flags[i] = !run.frozen[i] && (last || (p.earlyStop && run.isAdversarial(z, i))) ? 1 : 0;
      if (flags[i]) any = true;
      if (grad && !run.frozen[i]) run.gradients[i]++;
    }
    if (any) {
      const zq = run.classifySaved(xs, this.xq, flags);
      for (let i = 0; i < n; i++) {
        if (!flags[i]) continue;
        if (run.isAdversarial(zq, i)) run.succeed(i, this.xq, zq);
        else run.record(i, this.xq, zq, false); // the final images of a round that failed
      }
    }
    if (last || run.active === 0) return false;
    for (let i = 0; i < n; i++) {
      if (run.frozen[i]) continue;
      step(xs, grad!, this.momentum, i * size, size, p, this.direction);
      project(xs, x0, i * size, size, p, geo);
      run.iterations[i]++;
    }
    run.tick(r, t, xs, this.loss);
    return true;
  }
}

/** x ← x + direction·step·(sign of the gradient | gradient / ‖gradient‖₂), the gradient being
 *  the momentum when there is one (updated here). */
function step(x: Float32Array, grad: Float32Array, momentum: Float32Array | null, o: number, size: number, p: GradientParams, direction: number): void {
  let d = grad;
  if (momentum) {
    let l1 = 0;
    for (let j = o; j < o + size; j++) l1 += Math.abs(grad[j]);
    const f = l1 > 0 ? 1 / l1 : 0;
    for (let j = o; j < o + size; j++) momentum[j] = p.decay! * momentum[j] + grad[j] * f;
    d = momentum;
  }
  if (p.norm === 'linf') {
    const a = direction * p.step;
    for (let j = o; j < o + size; j++) x[j] += a * Math.sign(d[j]);
    return;
  }
  let sq = 0;
  for (let j = o; j < o + size; j++) sq += d[j] * d[j];
  if (sq === 0) return;
  const a = (direction * p.step) / Math.sqrt(sq);
  for (let j = o; j < o + size; j++) x[j] += a * d[j];
}

/** A uniformly random point of the ball: each coordinate uniform in [−eps, eps] for L∞; for
 *  L2 a Gaussian direction and a radius eps·u^(1/d) (Foolbox's uniform_l2_n_balls). */
function randomStart(x: Float32Array, o: number, size: number, norm: Norm, eps: number, rand: () => number): void {
  if (norm === 'linf') {
    for (let j = o; j < o + size; j++) x[j] += (2 * rand() - 1) * eps;
    return;
  }
  const g = new Float64Array(size);
  let sq = 0;
  for (let j = 0; j < size; j++) {
    g[j] = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    sq += g[j] * g[j];
  }
  const f = (eps * rand() ** (1 / size)) / Math.sqrt(sq);
  for (let j = 0; j < size; j++) x[o + j] += g[j] * f;
}
