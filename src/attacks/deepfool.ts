// DeepFool, L2 (Moosavi-Dezfooli, Fawzi & Frossard 2016), as Foolbox runs it. At each step the
// network is linearised around the current image: for each candidate class k (the `candidates`
// − 1 classes with the largest original logits after the original class k0), f_k = Z_k − Z_k0
// and w_k = ∇(Z_k − Z_k0); the nearest linearised boundary l = argmin |f_k| / ‖w_k‖ is crossed
// with r = (|f_l| + 1e-4) / ‖w_l‖² · w_l. The image is x0 + (1 + overshoot)·Σr, clipped to the
// box, until it is adversarial as saved. Each w_k is one backward pass of Σ G·Z with G = e_k −
// e_k0 per image. Targeted, the one boundary is the target's against the best other class.
import { bestOther, type BatchRun } from './batch.js';
import type { Method, Stepper } from './method.js';

export interface DeepFoolOptions {
  method: 'deepfool';
  /** Maximum steps: default 50. */
  steps?: number;
  /** The total step is scaled by 1 + overshoot: default 0.02. */
  overshoot?: number;
  /** Classes considered, the original included (the largest original logits): default 10. */
  candidates?: number;
}

type DeepFoolParams = Required<DeepFoolOptions>;

export const deepfool: Method<DeepFoolParams> = {
  id: 'deepfool',
  name: 'DeepFool',
  summary: 'Linearises the network and steps to the nearest class boundary, again until it is crossed: close to the smallest L2 change.',
  paper: 'Moosavi-Dezfooli, Fawzi & Frossard, DeepFool: a simple and accurate method to fool deep neural networks, CVPR 2016',
  target: 'optional',
  parameters: [
    { key: 'steps', flag: 'iters', label: 'Steps', kind: 'int', default: 50, min: 1, max: 10_000_000, hint: 'Linearise-and-cross steps at most.' },
    { key: 'overshoot', flag: 'overshoot', label: 'Overshoot', kind: 'float', default: 0.02, min: 0, max: 1000, hint: 'The total step is scaled by 1 + overshoot.' },
    { key: 'candidates', flag: 'candidates', label: 'Candidates', kind: 'int', default: 10, min: 2, max: 100_000, hint: 'Classes considered (the largest original logits, the own class included).' },
  ],
  resolve: (v) => ({ method: 'deepfool', steps: v.steps as number, overshoot: v.overshoot as number, candidates: v.candidates as number }),
  planned: (o) => o.steps,
  ball: () => null,
  start: (run, o) => new DeepFool(run, o),
  loss: { scale: 'linear', about: () => 'The logit margin left to cross (below 0: crossed).' },
};

/** One batch's attack, a linearise-and-cross step at each step(). */
class DeepFool implements Stepper {
  private readonly count: number;
  private readonly candidates: Int32Array;
  private readonly grads: Float32Array;
  private readonly f: Float64Array;
  private readonly total: Float64Array;
  private readonly xs: Float32Array;
  private readonly xq: Float32Array;
  private readonly loss: Float32Array;
  private readonly flags: Uint8Array;
  private readonly against: Int32Array;
  private t = 0;

  constructor(private readonly run: BatchRun, private readonly p: DeepFoolParams) {
    const { ws, n, size, classes, x0 } = run;
    const targeted = run.targets !== null;
    // Candidate classes of each image, by decreasing original logit, without its own class.
    const count = (this.count = targeted ? 1 : Math.min(p.candidates, classes) - 1);
    const z0 = ws.forward(x0);
    this.candidates = new Int32Array(n * count);
    for (let i = 0; i < n; i++) {
      const order = Array.from({ length: classes }, (_, k) => k)
        .filter((k) => k !== run.before[i])
        .sort((a, b) => z0[i * classes + b] - z0[i * classes + a]);
      for (let k = 0; k < count; k++) this.candidates[i * count + k] = targeted ? run.targets![i] : order[k];
    }
    this.grads = new Float32Array(count * n * size);
    this.f = new Float64Array(count * n);
    this.total = new Float64Array(n * size);
    this.xs = new Float32Array(x0);
    this.xq = new Float32Array(n * size);
    this.loss = new Float32Array(n);
    this.flags = new Uint8Array(n);
    this.against = new Int32Array(n);
  }

  step(): boolean {
    const { run, p, count, candidates, grads, f, total, xs, xq, loss, flags, against } = this;
    const { ws, n, size, classes, x0, geo } = run;
    const targets = run.targets;
    const t = this.t++;
    run.checkAbort();
    const last = t === p.steps;
    const z = run.forward(xs);
    for (let i = 0; i < n; i++) {
      // Targeted, the class to overtake is the best one other than the target; untargeted,
      // the original class.
      against[i] = targets ? bestOther(z, i * classes, classes, targets[i]) : run.before[i];
      const to = targets ? targets[i] : bestOther(z, i * classes, classes, against[i]);
      loss[i] = z[i * classes + against[i]] - z[i * classes + to];
    }
    if (!last) {
      for (let k = 0; k < count; k++) {
        const g = ws.g;
        g.fill(0);
        for (let i = 0; i < n; i++) {
          if (run.frozen[i]) continue;
          const c = candidates[i * count + k];
          g[i * classes + c] += 1;
          g[i * classes + against[i]] -= 1;
          f[k * n + i] = z[i * classes + c] - z[i * classes + against[i]];
        }
        // Σ G·Z's gradient reuses this forward's activations.
        const grad = ws.linearGradient();
        grads.set(grad, k * n * size);
        for (let i = 0; i < n; i++) if (!run.frozen[i]) run.gradients[i]++;
      }
    }
    let any = false;
    for (let i = 0; i < n; i++) {
      flags[i] = !run.frozen[i] && (last || run.isAdversarial(z, i)) ? 1 : 0;
      if (flags[i]) any = true;
    }
    if (any) {
      const zq = run.classifySaved(xs, xq, flags);
      for (let i = 0; i < n; i++) {
        if (!flags[i]) continue;
        if (run.isAdversarial(zq, i)) run.succeed(i, xq, zq);
        else run.record(i, xq, zq, false);
      }
    }
    if (last || run.active === 0) {
      run.finish(loss);
      return false;
    }
    for (let i = 0; i < n; i++) {
      if (run.frozen[i]) continue;
      const o = i * size;
      let bestK = -1, bestDistance = Infinity, bestNorm = 0;
      for (let k = 0; k < count; k++) {
        const go = k * n * size + o;
        let sq = 0;
        for (let j = 0; j < size; j++) sq += grads[go + j] ** 2;
        if (sq === 0) continue;
        const d = Math.abs(f[k * n + i]) / Math.sqrt(sq);
        if (d < bestDistance) (bestK = k), (bestDistance = d), (bestNorm = sq);
      }
      if (bestK < 0) continue; // a flat network around x: nowhere to go
      const a = (Math.abs(f[bestK * n + i]) + 1e-4) / bestNorm, go = bestK * n * size + o;
      for (let j = 0; j < size; j++) {
        total[o + j] += a * grads[go + j];
        xs[o + j] = Math.min(geo.hi, Math.max(geo.lo, x0[o + j] + (1 + p.overshoot) * total[o + j]));
      }
      run.iterations[i]++;
    }
    run.tick(0, t, xs, loss);
    return true;
  }
}
