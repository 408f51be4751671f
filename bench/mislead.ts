// The project's side. A kernel case is one op (conv2d, maxPool, dense, logSoftmax from src/ops.ts)
// recorded on a tape of its own, whose recorded step is then called directly: `forward()`, or
// `backward()` with the output's gradient set to the case's dy. That times exactly the kernels the
// network runs for that layer (layout conversions included, e.g. a stride-1 conv's planar copies),
// on buffers the op allocated once, without the tape's zero-filling or any other op.
import { Workspace } from '../src/attacks/batch.js';
import { FilterAttack, filterLoss } from '../src/attacks/filter.js';
import type { Engine, Tensor } from '../src/core/engine.js';
import { type Model } from '../src/formats/model.js';
import { Net } from '../src/core/net.js';
import { add, conv2d, crossEntropy, dense, depthwiseConv2d, flatten, logSoftmax, maxPool, Scalar, window } from '../src/core/ops.js';
import { Tape, type Step } from '../src/core/tape.js';
import { ARCH, oneHot, relativeError, type KernelCase, type KernelData } from './setup.js';

export interface KernelRunner {
  /** One call of the op's step (a backward step accumulates into its input's gradient, as in the tape). */
  run(): void;
  /** The output of one call from zeroed gradients, for the agreement check. */
  result(): Float32Array;
  dispose(): void;
}

/** A tape that keeps the step of the (one) op recorded on it, and runs its backward rule alone
 *  (as the first to write its input's gradient, which it then sets where it can, as in a network). */
class OneOpTape extends Tape {
  step: Step | null = null;

  override record(y: Tensor, step: Step): void {
    this.step ??= step;
    super.record(y, step);
  }

  backwardStep(): void {
    this.beginPass();
    this.step!.backward();
  }
}

export function misleadKernel(engine: Engine, c: KernelCase, data: KernelData): KernelRunner {
  const tape = new OneOpTape(engine); // first, so that dispose() frees the case's tensors too
  const t = (shape: number[], values: Float32Array, grad = false): Tensor => {
    const x = engine.tensor(shape, values);
    return grad ? x.requireGrad() : x;
  };
  const backward = c.kind.includes('.bwd');
  let y: Tensor, out: Tensor;
  switch (c.kind) {
    case 'conv.fwd':
    case 'conv.bwd-input':
    case 'conv.bwd-filter': {
      const s = c.conv, n = c.n;
      const x = t([n, s.h, s.w, s.cin], data.x, c.kind === 'conv.bwd-input');
      const w = t([s.k, s.k, s.cin, s.cout], data.w, c.kind === 'conv.bwd-filter');
      const b = t([s.cout], data.b);
      // The gradients without the ReLU's (tfjs's Conv2DBackprop* kernels do not include it either).
      y = conv2d(tape, x, w, b, { stride: s.stride, padding: s.padding, relu: s.relu && !backward });
      out = c.kind === 'conv.fwd' ? y : c.kind === 'conv.bwd-input' ? x.grad! : w.grad!;
      break;
    }
    case 'dw.fwd':
    case 'dw.bwd-input':
    case 'dw.bwd-filter': {
      const s = c.conv, n = c.n;
      const x = t([n, s.h, s.w, s.cin], data.x, c.kind === 'dw.bwd-input');
      const w = t([s.k, s.k, s.cin, 1], data.w, c.kind === 'dw.bwd-filter');
      y = depthwiseConv2d(tape, x, w, t([s.cout], data.b), { stride: s.stride, padding: s.padding, relu: false });
      out = c.kind === 'dw.fwd' ? y : c.kind === 'dw.bwd-input' ? x.grad! : w.grad!;
      break;
    }
    case 'pool.fwd':
    case 'pool.bwd': {
      const s = c.pool;
      const x = t([c.n, s.h, s.w, s.c], data.x, backward);
      y = maxPool(tape, x, { size: s.size, stride: s.stride, padding: s.padding });
      out = backward ? x.grad! : y;
      break;
    }
    case 'dense.fwd': {
      const s = c.dense;
      y = out = dense(tape, t([c.n, s.inputs], data.x), t([s.inputs, s.outputs], data.w), t([s.outputs], data.b), s.relu);
      break;
    }
    case 'log-softmax':
      y = out = logSoftmax(tape, t([c.n, c.cols], data.x));
      break;
  }
  const step = tape.step!;
  if (backward) y.grad!.write(data.dy);
  const run = backward ? () => tape.backwardStep() : () => step.forward();
  return {
    run,
    result() {
      if (backward) engine.kernels.fill(out.ptr, 0, out.size);
      run();
      return out.toArray();
    },
    dispose: () => tape.dispose(),
  };
}

/** The tutorial's attack on one image: `FilterAttack` itself. */
export function misleadAttack(engine: Engine, model: Model, x: Float32Array, target: number, init?: Float32Array): FilterAttack {
  return new FilterAttack(new Net(engine, model), x, target, init);
}

/** The attack's loop on a batch: the tape FilterAttack records, with n images and targets. */
export class MisleadBatchAttack {
  readonly dx: Tensor;
  readonly loss: Tensor;
  private readonly tape: Tape;

  constructor(readonly engine: Engine, model: Model, x: Float32Array, targets: number[], readonly lr: number, beta: number, init?: Float32Array) {
    const net = new Net(engine, model);
    const [h, w, c] = ARCH.input, n = targets.length;
    this.tape = new Tape(engine);
    const image = engine.tensor([n, h, w, c], x);
    this.dx = engine.tensor([n, h, w, c], init).requireGrad();
    const y = engine.tensor([n, ARCH.labels.length], oneHot(targets, ARCH.labels.length));
    this.loss = filterLoss(this.tape, net.forward(this.tape, add(this.tape, image, this.dx)), y, this.dx, new Scalar(beta));
  }

  /** Forward, backward to DX, SGD step on DX; returns the loss (before the step). */
  step(): number {
    this.tape.forward();
    this.tape.backward(this.loss);
    const loss = this.loss.item();
    this.engine.kernels.axpy(-this.lr, this.dx.grad!.ptr, this.dx.ptr, this.dx.size);
    return loss;
  }

  /** The loss and its gradient to DX at the current DX, without a step. */
  gradient(): { loss: number; grad: Float32Array } {
    this.tape.forward();
    this.tape.backward(this.loss);
    return { loss: this.loss.item(), grad: this.dx.grad!.toArray() };
  }
}

/** An attack iteration on an imported network as the attacks run it (src/attacks/batch.ts): the
 *  Workspace's tape, recorded once and replayed; the picture copied in, the forward pass, the
 *  gradient to the input of the cross-entropy toward each image's target. */
export class MisleadNetworkAttack {
  private readonly ws: Workspace;

  constructor(engine: Engine, model: Model, readonly x: Float32Array, targets: number[]) {
    this.ws = new Workspace(new Net(engine, model), targets.length);
    this.ws.setLabels(Int32Array.from(targets));
  }

  /** The forward pass alone; returns the logits (a view). */
  forward(): Float32Array {
    return this.ws.forward(this.x);
  }

  /** Forward, then the gradient to the input; returns it (a view). */
  iteration(): Float32Array {
    this.ws.forward(this.x);
    return this.ws.crossEntropyGradient();
  }

  result(): { logits: Float32Array; grad: Float32Array } {
    const grad = this.iteration().slice();
    return { logits: this.ws.logits.slice(), grad };
  }

  dispose(): void {
    this.ws.dispose();
  }
}

/** One training step on a batch: mean softmax cross-entropy, SGD on every weight. */
export class MisleadTraining {
  readonly net: Net;
  readonly logits: Tensor;
  private readonly loss: Tensor;
  private readonly tape: Tape;

  constructor(readonly engine: Engine, model: Model, x: Float32Array, labels: number[], readonly lr: number) {
    this.net = new Net(engine, model);
    for (const p of this.net.params.values()) p.requireGrad();
    const [h, w, c] = ARCH.input, n = labels.length;
    this.tape = new Tape(engine);
    const images = engine.tensor([n, h, w, c], x);
    const y = engine.tensor([n, ARCH.labels.length], oneHot(labels, ARCH.labels.length));
    this.logits = this.net.forward(this.tape, images);
    this.loss = crossEntropy(this.tape, this.logits, y, 1 / n);
  }

  step(): number {
    this.tape.forward();
    this.tape.backward(this.loss);
    const loss = this.loss.item();
    const k = this.engine.kernels;
    for (const p of this.net.params.values()) k.axpy(-this.lr, p.grad!.ptr, p.ptr, p.size);
    return loss;
  }

  /** The loss and the gradient of every weight, without a step. */
  gradients(): { loss: number; grads: Map<string, Float32Array> } {
    this.tape.forward();
    this.tape.backward(this.loss);
    return { loss: this.loss.item(), grads: new Map([...this.net.params].map(([key, p]) => [key, p.grad!.toArray()])) };
  }
}

/** Whether the input gradient of the cross-entropy toward `target` at one picture x (in the
 *  model's units) is steady: a nudge of 1e-6·sin(index) moves it by at most `gap` (relative). At a
 *  kink of ReLU or ReLU6 (a pre-activation within rounding of 0 or 6), float32 rounding, which
 *  differs between engines (batch norm folded into the convolution or not), decides the gradient:
 *  one MobileNet picture in 32 differed from tfjs by 1e-2 that way, and its own gradient moved by
 *  1e-2 under such a nudge, the others' by 1e-6. So the agreement checks use pictures without any,
 *  as they use inputs without near-ties (below). */
export function steadyGradient(engine: Engine, model: Model, x: Float32Array, target: number, gap = 1e-3): boolean {
  const gradient = (at: Float32Array) => {
    const start = engine.mark(); // the network's weights too
    try {
      return new MisleadNetworkAttack(engine, model, at, [target]).result().grad;
    } finally {
      engine.release(start);
    }
  };
  return relativeError(gradient(x.map((v, i) => v + 1e-6 * Math.sin(i))), gradient(x)) <= gap;
}

/** How many max-pool windows, in the network's forward pass on the batch x, have their two
 *  largest candidates within `gap` (relative) of each other. There the gradient is ill-conditioned:
 *  float32 rounding, which differs between engines, decides which cell receives it (a 1e-7 near-tie
 *  moved 1e-2 of a weight gradient's scale), so the agreement checks use inputs without any. */
export function nearTies(engine: Engine, model: Model, x: Float32Array, n: number, gap = 1e-6): number {
  const tape = new Tape(engine); // first, so that dispose() frees the weights and activations too
  const net = new Net(engine, model);
  const [h0, w0, c0] = ARCH.input;
  let hdn = engine.tensor([n, h0, w0, c0], x);
  let ties = 0;
  for (const layer of ARCH.layers) {
    if (layer.type === 'conv2d') {
      const { stride, padding } = layer;
      hdn = conv2d(tape, hdn, net.params.get(`${layer.name}.w`)!, net.params.get(`${layer.name}.b`)!, { stride, padding, relu: layer.activation === 'relu' });
    } else if (layer.type === 'maxpool') {
      const [, h, w, c] = hdn.shape;
      const v = hdn.toArray();
      const rows = window(h, layer.size, layer.stride, layer.padding), cols = window(w, layer.size, layer.stride, layer.padding);
      for (let img = 0; img < n; img++) {
        for (let oy = 0; oy < rows.out; oy++) {
          for (let ox = 0; ox < cols.out; ox++) {
            for (let ch = 0; ch < c; ch++) {
              let top = -Infinity, second = -Infinity;
              for (let iy = oy * layer.stride - rows.before; iy < oy * layer.stride - rows.before + layer.size; iy++) {
                for (let ix = ox * layer.stride - cols.before; ix < ox * layer.stride - cols.before + layer.size; ix++) {
                  if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                  const value = v[((img * h + iy) * w + ix) * c + ch];
                  if (value > top) [top, second] = [value, top];
                  else if (value > second) second = value;
                }
              }
              if (top > 0 && top - second <= gap * top) ties++;
            }
          }
        }
      }
      hdn = maxPool(tape, hdn, layer);
    } else if (layer.type === 'flatten') {
      hdn = flatten(hdn);
    } else if (layer.type === 'dense') {
      hdn = dense(tape, hdn, net.params.get(`${layer.name}.w`)!, net.params.get(`${layer.name}.b`)!, layer.activation === 'relu');
    }
  }
  tape.dispose();
  return ties;
}
