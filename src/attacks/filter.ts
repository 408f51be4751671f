// The tutorial's attack ("Mislead a neural network"): learn a noise filter DX so that the model
// gives the target for X + DX. loss = −Σ y·log_softmax(f(X + DX)) + β·Σ DX²/2 with y one-hot on
// the target, plain SGD on DX, no clipping during the optimisation (unless asked). The tape is
// recorded once and replayed every iteration; a batch learns one filter per image.
import type { Tensor } from '../core/engine.js';
import type { Net } from '../core/net.js';
import { add, crossEntropy, l2Loss, scale, Scalar } from '../core/ops.js';
import { Tape } from '../core/tape.js';
import { crossEntropies, type BatchRun } from './batch.js';
import type { Method, Stepper } from './method.js';
import { InputError } from '../errors.js';

export interface FilterOptions {
  method: 'filter';
  /** SGD iterations: default 1000. */
  iterations?: number;
  /** SGD's learning rate: default 0.1. */
  lr?: number;
  /** β, the weight of Σ DX²/2: default 0. */
  beta?: number;
  /** Keep X + DX in the pixel box after every step (the tutorial does not: default false). */
  clip?: boolean;
  /** The filter each image starts from (by index of the images; absent: zeros), in model units. */
  init?: readonly (Float32Array | undefined)[];
}

type FilterParams = Required<Omit<FilterOptions, 'init'>> & { init: readonly (Float32Array | undefined)[] };

export const filter: Method<FilterParams> = {
  id: 'filter',
  name: 'Noise filter (the tutorial)',
  summary: 'Learns a noise filter DX, from zero, by plain gradient descent on −log p(target | X + DX) + β·ΣDX²/2. No clipping while it learns; the saved image is rounded to 8 bits.',
  paper: 'The TensorFlow tutorial "Mislead a neural network" (2020)',
  target: 'required',
  parameters: [
    { key: 'iterations', flag: 'iters', label: 'Iterations', kind: 'int', default: 1000, min: 1, max: 10_000_000, hint: 'Gradient steps on the noise filter.' },
    { key: 'lr', flag: 'lr', label: 'Learning rate', kind: 'float', default: 0.1, min: 0, above: true, max: 1e6, hint: 'Step size of each update of DX.' },
    { key: 'beta', flag: 'beta', label: 'β (L2 weight)', kind: 'float', default: 0, min: 0, max: 1e6, hint: '0 = any noise goes; larger keeps the noise smaller.' },
    { key: 'clip', flag: 'clip', label: 'Clip', kind: 'boolean', default: false, hint: 'Keep X + DX in the pixel box after every step.' },
  ],
  resolve: (v, given) => ({
    method: 'filter', iterations: v.iterations as number, lr: v.lr as number, beta: v.beta as number, clip: v.clip as boolean,
    init: (given as unknown as FilterOptions).init ?? [],
  }),
  planned: (o) => o.iterations,
  ball: () => null,
  start: (run, o) => new FilterRun(run, o),
  loss: { scale: 'log', about: () => '−log p(target) + β·ΣDX²/2' },
};

/** The filters of a batch on one tape: SGD steps, then the images X + DX judged as saved. */
class FilterRun implements Stepper {
  private readonly attack: FilterAttack;
  private readonly loss: Float32Array;
  private readonly xs: Float32Array;
  private readonly xq: Float32Array;
  private readonly all: Uint8Array;
  private t = 0;

  constructor(private readonly run: BatchRun, private readonly o: FilterParams) {
    const { n, size, geo, index } = run;
    let init: Float32Array | undefined;
    if (index.some((k) => o.init[k])) {
      init = new Float32Array(n * size);
      for (let i = 0; i < n; i++) {
        const d = o.init[index[i]];
        if (!d) continue;
        if (d.length !== size) throw new InputError(`filter: init of image ${index[i]} has ${d.length} values, the model takes ${size}`);
        init.set(d, i * size);
      }
    }
    this.attack = new FilterAttack(run.ws.net, run.x0, run.labels(), init, o.clip ? [geo.lo, geo.hi] : undefined);
    this.loss = new Float32Array(n);
    this.xs = new Float32Array(n * size);
    this.xq = new Float32Array(n * size);
    this.all = new Uint8Array(n).fill(1);
  }

  step(): boolean {
    const { run, o, attack } = this;
    run.checkAbort();
    if (this.t < o.iterations) {
      const total = attack.iterate(o.lr, o.beta, this.loss);
      // One image's loss is the batch's, as the tape computed it in float32 (the tutorial's log).
      if (run.n === 1) this.loss[0] = total;
      for (let i = 0; i < run.n; i++) run.iterations[i] = run.gradients[i] = run.queries[i] = this.t + 1;
      attack.image(this.xs);
      run.tick(0, this.t++, this.xs, this.loss);
      return true;
    }
    attack.image(this.xs);
    // Unrounded, the result is X + DX itself, and DX is kept as it is.
    if (!run.quantize) {
      run.perturbation = attack.dx.toArray();
      run.ws.forward(this.xs);
    }
    const z = run.classifySaved(this.xs, this.xq, this.all);
    for (let i = 0; i < run.n; i++) run.record(i, this.xq, z, run.isAdversarial(z, i));
    this.attack.dispose();
    run.finish(this.loss);
    return false;
  }
}

export class FilterAttack {
  /** The perturbations DX, [n, h, w, c] in model-input units. */
  readonly dx: Tensor;
  readonly logits: Tensor;
  private readonly tape: Tape;
  private readonly lossT: Tensor;
  private readonly x: Tensor;
  private readonly labels: Int32Array;
  private readonly beta = new Scalar(0);
  /** With a pixel box: the bounds of DX that keep X + DX inside it. */
  private readonly bounds?: { lower: Tensor; upper: Tensor };
  /** Views of X, DX and the logits in the engine's memory, made again only if it grew. */
  private buffer: ArrayBuffer | null = null;
  private view!: { x: Float32Array; dx: Float32Array; logits: Float32Array };

  /** `x` holds n images [n·h·w·c] in model-input units, `targets` the label each learns toward
   *  (a number for one image);
   *  DX starts at `init`, or zeros. With `box` [lo, hi] (model units), every step is followed by
   *  clipping X + DX into it (the tutorial clips nothing: that is the default). */
  constructor(net: Net, x: Float32Array, targets: Int32Array | number, init?: Float32Array, box?: readonly [number, number]) {
    const engine = net.engine;
    if (typeof targets === 'number') targets = Int32Array.of(targets);
    const n = targets.length;
    const shape = [n, ...net.architecture.input];
    const classes = net.architecture.labels.length;
    this.labels = targets;
    this.tape = new Tape(engine);
    this.x = engine.tensor(shape, x);
    this.dx = engine.tensor(shape, init).requireGrad();
    const y = engine.tensor([n, classes], oneHot(classes, targets));
    this.logits = net.forward(this.tape, add(this.tape, this.x, this.dx));
    this.lossT = filterLoss(this.tape, this.logits, y, this.dx, this.beta);
    if (box) {
      this.bounds = { lower: engine.tensor(shape, x.map((v) => box[0] - v)), upper: engine.tensor(shape, x.map((v) => box[1] - v)) };
      engine.kernels.clamp(this.dx.ptr, this.bounds.lower.ptr, this.bounds.upper.ptr, this.dx.size);
    }
  }

  /** One SGD step on DX; returns the loss of the whole batch before it, and, given `losses`,
   *  writes each image's own (its cross-entropy from the logits, and β·Σ DX²/2 of its filter). */
  iterate(lr: number, beta: number, losses?: Float32Array): number {
    const kernels = this.tape.engine.kernels;
    const dx = this.dx, grad = dx.grad!;
    this.beta.value = beta;
    this.tape.forward();
    this.tape.backward(this.lossT);
    const loss = this.lossT.item();
    if (losses) this.imageLosses(beta, losses);
    kernels.axpy(-lr, grad.ptr, dx.ptr, dx.size);
    if (this.bounds) kernels.clamp(dx.ptr, this.bounds.lower.ptr, this.bounds.upper.ptr, dx.size);
    return loss;
  }

  /** Runs SGD on DX, continuing from where the last run left it; returns the loss of each iteration. */
  run({ iterations, lr, beta, onIteration }: FilterStep): Float32Array {
    const losses = new Float32Array(iterations);
    for (let i = 0; i < iterations; i++) {
      losses[i] = this.iterate(lr, beta);
      onIteration?.(i, losses[i]);
    }
    this.tape.forward(); // so that `logits` are those of the final DX
    return losses;
  }

  /** X + DX, into `out`. */
  image(out: Float32Array): void {
    const { x, dx } = this.views();
    for (let j = 0; j < out.length; j++) out[j] = x[j] + dx[j];
  }

  private imageLosses(beta: number, out: Float32Array): void {
    const { logits, dx } = this.views();
    crossEntropies(logits, this.labels, this.logits.shape[1], out);
    const size = dx.length / out.length;
    for (let i = 0; i < out.length; i++) {
      let sq = 0;
      for (let j = i * size; j < (i + 1) * size; j++) sq += dx[j] * dx[j];
      out[i] += (beta * sq) / 2;
    }
  }

  private views() {
    const engine = this.tape.engine;
    if (this.buffer !== engine.kernels.memory.buffer) {
      this.buffer = engine.kernels.memory.buffer as ArrayBuffer;
      this.view = { x: engine.floats(this.x.ptr, this.x.size), dx: engine.floats(this.dx.ptr, this.dx.size), logits: engine.floats(this.logits.ptr, this.logits.size) };
    }
    return this.view;
  }

  /** Frees the attack's memory in the engine. */
  dispose(): void {
    this.tape.dispose();
  }
}

export interface FilterStep {
  iterations: number;
  lr: number;
  beta: number;
  /** Called after every iteration with the loss it computed (before its update). */
  onIteration?: (iteration: number, loss: number) => void;
}

/** −Σ y·log_softmax(logits) + β·Σ dx²/2 */
export function filterLoss(tape: Tape, logits: Tensor, y: Tensor, dx: Tensor, beta: Scalar): Tensor {
  return add(tape, crossEntropy(tape, logits, y), scale(tape, l2Loss(tape, dx), beta));
}

function oneHot(classes: number, targets: Int32Array): Float32Array {
  const y = new Float32Array(targets.length * classes);
  targets.forEach((t, i) => (y[i * classes + t] = 1));
  return y;
}

