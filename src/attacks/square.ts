// The Square attack (Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a query-efficient
// black-box adversarial attack via random search", ECCV 2020), as their code runs it. Random
// search on the logit margin z_y − max_{j≠y} z_j (untargeted; toward a target t, max_{j≠t} z_j −
// z_t), lowered: each iteration changes the perturbation on a random square window and keeps the
// change when the margin falls (Alg. 1), one query each. The window's side follows p, the share
// of the image changed: p_init halved at iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000 and
// 8000 of a 10,000-query scale (§3, their p_selection).
//   L∞ (§3.1, Alg. 2): starts from vertical stripes of ±ε (one sign per column and channel); a
//      window gets ±ε, one sign per channel.
//   L2 (§3.2, Alg. 3): starts from a grid of ±"pseudo-Gaussian" squares on the sphere of radius
//      ε; a window gets a new such square (its old content folded in) while a second window is
//      emptied, the budget it frees going to the first.
// It needs only the logits: no gradient, so it also tells whether a robustness is an artefact of
// masked gradients. Every query is on the image as it would be saved, so success is on that image.
import { random } from '../core/random.js';
import { bestOther, project, type BatchRun, type Norm } from './batch.js';
import { eps, norm, DEFAULT_EPS, type Method, type Stepper } from './method.js';

export interface SquareOptions {
  method: 'square';
  norm?: Norm;
  /** Budget in grey levels: default 8 (L∞) or 128 (L2). */
  eps?: number;
  /** Queries per image at most: default 5000 (AutoAttack's). */
  queries?: number;
  /** The share of the image changed at first: default 0.8 (L∞) or 0.1 (L2), the paper's. */
  pInit?: number;
  seed?: number;
}

type SquareParams = Required<SquareOptions>;

export const square: Method<SquareParams> = {
  id: 'square',
  name: 'Square (score-based)',
  summary: 'Random search on the logit margin with random square updates: needs no gradient, only the scores, so masked gradients do not stop it.',
  paper: 'Andriushchenko, Croce, Flammarion & Hein, Square Attack: a query-efficient black-box adversarial attack via random search, ECCV 2020',
  target: 'optional',
  parameters: [
    norm, eps,
    { key: 'queries', flag: 'queries', label: 'Queries', kind: 'int', default: 5000, min: 1, max: 10_000_000, hint: 'Queries of the model per image at most (it stops an image once fooled).' },
    { key: 'pInit', flag: 'p-init', label: 'p init', kind: 'float', derived: '0.8 for L∞, 0.1 for L2', min: 0, above: true, max: 1, hint: 'The share of the image the first squares change.' },
    { key: 'seed', flag: 'seed', label: 'Seed', kind: 'int', default: 0, min: 0, max: 0xffffffff, hint: 'Seed of the random squares.' },
  ],
  resolve: (v) => {
    const n = v.norm as Norm;
    return {
      method: 'square', norm: n, eps: (v.eps as number | undefined) ?? DEFAULT_EPS[n], queries: v.queries as number,
      pInit: (v.pInit as number | undefined) ?? (n === 'linf' ? 0.8 : 0.1), seed: v.seed as number,
    };
  },
  planned: (o) => o.queries,
  ball: (o) => ({ norm: o.norm, eps: o.eps }),
  start: (run, o) => new Square(run, o),
  loss: { scale: 'linear', about: () => 'The logit margin left to cross (below 0: crossed); the attack lowers it.' },
};

/** p at iteration `i` of `n`, on the paper's 10,000-query scale. */
export function pAt(pInit: number, i: number, n: number): number {
  const it = Math.floor((i / n) * 10000);
  const halvings = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000].filter((k) => it > k).length;
  return pInit / 2 ** halvings;
}

/** One batch's attack: the initialisation, then an iteration of random search at each step(). */
class Square implements Stepper {
  private readonly ball: { norm: Norm; eps: number };
  private readonly rands: (() => number)[];
  /** The best image of each (as saved) and its margin; the candidate; its saved form. */
  private readonly best: Float32Array;
  private readonly margin: Float64Array;
  private readonly xs: Float32Array;
  private readonly xq: Float32Array;
  private readonly loss: Float32Array;
  private readonly active: Uint8Array;
  /** L2: the pseudo-Gaussian squares made so far, by side (as is, transposed), and the window
   *  of a candidate: made once, so that an iteration allocates nothing. */
  private readonly bumps = new Map<number, [Float64Array, Float64Array]>();
  private readonly window: Float64Array;
  private i = -1;

  constructor(private readonly run: BatchRun, private readonly p: SquareParams) {
    const { n, size } = run;
    this.ball = { norm: p.norm, eps: p.eps * run.geo.unit };
    this.rands = Array.from({ length: n }, (_, i) => random(Math.imul(p.seed + run.index[i], 0x9e3779b1) >>> 0));
    this.best = new Float32Array(n * size);
    this.margin = new Float64Array(n);
    this.xs = new Float32Array(n * size);
    this.xq = new Float32Array(n * size);
    this.loss = new Float32Array(n);
    this.active = new Uint8Array(n);
    this.window = new Float64Array(run.geo.height * run.geo.width);
  }

  /** Their meta_pseudo_gaussian_pert of side s, transposed half of the time. */
  private bump(s: number, rand: () => number): Float64Array {
    let made = this.bumps.get(s);
    if (!made) this.bumps.set(s, (made = metaPseudoGaussian(s)));
    return rand() > 0.5 ? made[1] : made[0];
  }

  step(): boolean {
    const { run, p } = this;
    run.checkAbort();
    const i = this.i++;
    for (let k = 0; k < run.n; k++) {
      if (run.frozen[k]) continue;
      if (i < 0) this.initial(k);
      else if (p.norm === 'linf') this.linfCandidate(k, pAt(p.pInit, i, p.queries));
      else this.l2Candidate(k, pAt(p.pInit, i, p.queries));
    }
    this.query(i < 0);
    if (run.active > 0 && this.i + 1 < p.queries) {
      if (i >= 0) run.tick(0, i, this.best, this.loss);
      return true;
    }
    for (let k = 0; k < run.n; k++) if (!run.frozen[k]) run.record(k, this.best, this.after, false);
    run.finish(this.loss);
    return false;
  }

  /** The logits of each best image (kept for the record of those that never succeed). */
  private after!: Float32Array;

  /** Queries the candidates; each one whose margin is lower replaces its image's best. */
  private query(initial: boolean): void {
    const { run, xs, xq, active } = this;
    const { n, size, classes } = run;
    for (let k = 0; k < n; k++) active[k] = run.frozen[k] ? 0 : 1;
    if (!run.quantize) run.forward(xs);
    const z = run.classifySaved(xs, xq, active);
    if (initial) this.after = new Float32Array(z.length);
    for (let k = 0; k < n; k++) {
      if (!active[k]) continue;
      const own = run.targets ? run.targets[k] : run.before[k];
      const gap = z[k * classes + own] - z[k * classes + bestOther(z, k * classes, classes, own)];
      const m = run.targets ? -gap : gap;
      if (!initial) run.iterations[k]++;
      if (initial || m < this.margin[k]) {
        this.margin[k] = m;
        this.best.set(xq.subarray(k * size, (k + 1) * size), k * size);
        this.after.set(z.subarray(k * classes, (k + 1) * classes), k * classes);
      }
      this.loss[k] = this.margin[k];
      if (run.isAdversarial(z, k)) run.succeed(k, xq, z);
    }
  }

  /** The first candidate: L∞ vertical stripes of ±ε; L2 a grid of pseudo-Gaussian squares of
   *  random signs, scaled onto the sphere of radius ε. */
  private initial(k: number): void {
    const { run, xs, ball } = this;
    const { size, x0, geo } = run;
    const { height: h, width: w, channels: c } = geo;
    const rand = this.rands[k], o = k * size;
    if (ball.norm === 'linf') {
      for (let x = 0; x < w; x++) for (let ch = 0; ch < c; ch++) {
        const d = rand() < 0.5 ? -ball.eps : ball.eps;
        for (let y = 0; y < h; y++) xs[o + (y * w + x) * c + ch] = x0[o + (y * w + x) * c + ch] + d;
      }
    } else {
      const delta = new Float64Array(size);
      const s = Math.max(1, Math.floor(h / 5)), start = Math.floor((h - s * 5) / 2);
      for (let top = start; top + s <= h; top += s) for (let left = start; left + s <= w; left += s) {
        const bump = this.bump(s, rand);
        for (let ch = 0; ch < c; ch++) {
          const sign = rand() < 0.5 ? -1 : 1;
          for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) delta[((top + y) * w + left + x) * c + ch] += sign * bump[y * s + x];
        }
      }
      const norm = length(delta) || 1;
      for (let j = 0; j < size; j++) xs[o + j] = x0[o + j] + (delta[j] / norm) * ball.eps;
    }
    project(xs, x0, o, size, ball, geo);
  }

  /** Alg. 2: the best image with a random s×s window set to x0 ± ε (one sign per channel),
   *  drawn again while it would change nothing. */
  private linfCandidate(k: number, p: number): void {
    const { run, xs, best, ball } = this;
    const { size, x0, geo } = run;
    const { height: h, width: w, channels: c } = geo;
    const rand = this.rands[k], o = k * size;
    const s = Math.min(Math.max(Math.round(Math.sqrt(p * h * w)), 1), Math.max(Math.min(h, w) - 1, 1));
    const top = Math.floor(rand() * (h - s + 1)), left = Math.floor(rand() * (w - s + 1));
    xs.set(best.subarray(o, o + size), o);
    for (let tries = 0; tries < 100; tries++) {
      let changed = false;
      for (let ch = 0; ch < c; ch++) {
        const d = rand() < 0.5 ? -ball.eps : ball.eps;
        for (let y = top; y < top + s; y++) for (let x = left; x < left + s; x++) {
          const j = o + (y * w + x) * c + ch;
          xs[j] = Math.min(geo.hi, Math.max(geo.lo, x0[j] + d));
          if (Math.abs(xs[j] - best[j]) > 1e-7) changed = true;
        }
      }
      if (changed) break;
    }
  }

  /** Alg. 3: in a random s×s window (s odd, ≥ 3) a new pseudo-Gaussian square of random sign per
   *  channel plus the window's old content (normalised), scaled to the budget left over and the
   *  norm of this window and a second random one, which is emptied; then the whole perturbation
   *  is scaled back onto the sphere of radius ε (their code). */
  private l2Candidate(k: number, p: number): void {
    const { run, xs, best, ball } = this;
    const { size, x0, geo } = run;
    const { height: h, width: w, channels: c } = geo;
    const rand = this.rands[k], o = k * size;
    let s = Math.min(Math.max(Math.round(Math.sqrt(p * h * w)), 3), Math.min(h, w));
    if (s % 2 === 0) s = s + 1 <= Math.min(h, w) ? s + 1 : s - 1;
    const top = Math.floor(rand() * (h - s + 1)), left = Math.floor(rand() * (w - s + 1));
    const top2 = Math.floor(rand() * (h - s + 1)), left2 = Math.floor(rand() * (w - s + 1));
    const inFirst = (y: number, x: number) => y >= top && y < top + s && x >= left && x < left + s;
    const inSecond = (y: number, x: number) => y >= top2 && y < top2 + s && x >= left2 && x < left2 + s;
    let image = 0;
    for (let j = o; j < o + size; j++) image += (best[j] - x0[j]) ** 2;
    const bump = this.bump(s, rand);
    for (let j = o; j < o + size; j++) xs[j] = best[j] - x0[j];
    for (let ch = 0; ch < c; ch++) {
      // The window's own norm, and that of both windows together.
      let own = 0, both = 0;
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
        const d2 = xs[o + (y * w + x) * c + ch] ** 2;
        if (inFirst(y, x)) own += d2;
        if (inFirst(y, x) || inSecond(y, x)) both += d2;
      }
      const sign = rand() < 0.5 ? -1 : 1, ownNorm = Math.sqrt(own) + 1e-10;
      const fresh = this.window;
      let sq = 0;
      for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) {
        fresh[y * s + x] = sign * bump[y * s + x] + xs[o + ((top + y) * w + left + x) * c + ch] / ownNorm;
        sq += fresh[y * s + x] ** 2;
      }
      const f = Math.sqrt(Math.max(ball.eps ** 2 - image, 0) / c + both) / (Math.sqrt(sq) || 1);
      for (let y = top2; y < top2 + s; y++) for (let x = left2; x < left2 + s; x++) xs[o + (y * w + x) * c + ch] = 0;
      for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) xs[o + ((top + y) * w + left + x) * c + ch] = fresh[y * s + x] * f;
    }
    let total = 0;
    for (let j = o; j < o + size; j++) total += xs[j] ** 2;
    const f = ball.eps / (Math.sqrt(total) || 1);
    for (let j = o; j < o + size; j++) xs[j] = x0[j] + xs[j] * f;
    project(xs, x0, o, size, ball, geo);
  }
}

/** Their pseudo_gaussian_pert_rectangles: nested rectangles around the centre, each adding
 *  1/(r+1)², normalised to unit L2 norm ([rows·cols]). */
function pseudoGaussian(rows: number, cols: number): Float64Array {
  const d = new Float64Array(rows * cols);
  const cy = Math.floor(rows / 2) + 1, cx = Math.floor(cols / 2) + 1;
  let y0 = cy - 1, x0 = cx - 1;
  for (let r = 0; r < Math.max(cy, cx); r++, y0--, x0--) {
    for (let y = Math.max(y0, 0); y < Math.min(y0 + 2 * r + 1, rows); y++) {
      for (let x = Math.max(x0, 0); x < Math.min(x0 + 2 * r + 1, cols); x++) d[y * cols + x] += 1 / (r + 1) ** 2;
    }
  }
  const norm = length(d) || 1;
  return d.map((v) => v / norm);
}

/** Their meta_pseudo_gaussian_pert: an s×s square of two pseudo-Gaussian halves of opposite
 *  signs, unit norm; as is and transposed. */
function metaPseudoGaussian(s: number): [Float64Array, Float64Array] {
  const half = Math.floor(s / 2);
  const d = new Float64Array(s * s);
  const upper = pseudoGaussian(half, s), lower = pseudoGaussian(s - half, s);
  d.set(upper, 0);
  for (let j = 0; j < lower.length; j++) d[half * s + j] = -lower[j];
  const norm = length(d) || 1;
  const plain = d.map((v) => v / norm), transposed = new Float64Array(s * s);
  for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) transposed[y * s + x] = plain[x * s + y];
  return [plain, transposed];
}

function length(a: Float64Array): number {
  let sq = 0;
  for (let j = 0; j < a.length; j++) sq += a[j] * a[j];
  return Math.sqrt(sq);
}
