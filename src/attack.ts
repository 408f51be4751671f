// The tutorial's attack: learn a noise filter DX so that the model gives `target` for X + DX.
// loss = −Σ y·log_softmax(f(X + DX)) + β·Σ DX²/2 with y one-hot on the target, plain SGD on DX,
// no clipping during the optimisation. The tape is recorded once and replayed every iteration.
import type { Tensor } from './engine.js';
import type { Net } from './model.js';
import { add, dot, l2Loss, logSoftmax, scale, Scalar } from './ops.js';
import { Tape } from './tape.js';

export interface FilterStep {
  iterations: number;
  lr: number;
  beta: number;
  /** Called after every iteration with the loss it computed (before its update). */
  onIteration?: (iteration: number, loss: number) => void;
}

export class FilterAttack {
  /** The perturbation DX, [1, h, w, c] in model-input units. */
  readonly dx: Tensor;
  readonly logits: Tensor;
  private readonly tape: Tape;
  private readonly loss: Tensor;
  private readonly beta = new Scalar(0);
  /** With a pixel box: the bounds of DX that keep X + DX inside it. */
  private readonly bounds?: { lower: Tensor; upper: Tensor };

  /** `x` is one image in model-input units; DX starts at `init`, or zeros. With `box` [lo, hi]
   *  (model units), every step is followed by clipping X + DX into it (the tutorial clips
   *  nothing: that is the default). */
  constructor(net: Net, x: Float32Array, target: number, init?: Float32Array, box?: readonly [number, number]) {
    const engine = net.engine;
    const [h, w, c] = net.architecture.input;
    const classes = net.architecture.labels.length;
    this.tape = new Tape(engine);
    const image = engine.tensor([1, h, w, c], x);
    this.dx = engine.tensor([1, h, w, c], init).requireGrad();
    const y = engine.tensor([1, classes], oneHot(classes, target));
    this.logits = net.forward(this.tape, add(this.tape, image, this.dx));
    this.loss = filterLoss(this.tape, this.logits, y, this.dx, this.beta);
    if (box) {
      this.bounds = { lower: engine.tensor(this.dx.shape, x.map((v) => box[0] - v)), upper: engine.tensor(this.dx.shape, x.map((v) => box[1] - v)) };
      engine.kernels.clamp(this.dx.ptr, this.bounds.lower.ptr, this.bounds.upper.ptr, this.dx.size);
    }
  }

  /** Runs SGD on DX, continuing from where the last run left it; returns the loss of each iteration. */
  run({ iterations, lr, beta, onIteration }: FilterStep): Float32Array {
    const kernels = this.tape.engine.kernels;
    const dx = this.dx, grad = dx.grad!;
    const losses = new Float32Array(iterations);
    this.beta.value = beta;
    for (let i = 0; i < iterations; i++) {
      this.tape.forward();
      this.tape.backward(this.loss);
      losses[i] = this.loss.item();
      kernels.axpy(-lr, grad.ptr, dx.ptr, dx.size);
      if (this.bounds) kernels.clamp(dx.ptr, this.bounds.lower.ptr, this.bounds.upper.ptr, dx.size);
      onIteration?.(i, losses[i]);
    }
    this.tape.forward(); // so that `logits` are those of the final DX
    return losses;
  }

  /** Frees the attack's memory in the engine. */
  dispose(): void {
    this.tape.dispose();
  }
}

/** −Σ y·log_softmax(logits) + β·Σ dx²/2 */
export function filterLoss(tape: Tape, logits: Tensor, y: Tensor, dx: Tensor, beta: Scalar): Tensor {
  const crossEntropy = scale(tape, dot(tape, y, logSoftmax(tape, logits)), new Scalar(-1));
  return add(tape, crossEntropy, scale(tape, l2Loss(tape, dx), beta));
}

function oneHot(classes: number, index: number): Float32Array {
  const y = new Float32Array(classes);
  y[index] = 1;
  return y;
}

/** Logits [n, labels] of a batch of images, each in model-input units. */
export function predictLogits(net: Net, images: Float32Array[]): Float32Array[] {
  const [h, w, c] = net.architecture.input;
  const tape = new Tape(net.engine);
  const x = net.engine.tensor([images.length, h, w, c]);
  const size = h * w * c;
  const flat = new Float32Array(images.length * size);
  images.forEach((img, i) => flat.set(img, i * size));
  x.write(flat);
  const logits = net.forward(tape, x).toArray();
  tape.dispose();
  const classes = net.architecture.labels.length;
  return images.map((_, i) => logits.slice(i * classes, (i + 1) * classes));
}
