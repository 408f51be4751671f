// Training a network with the same kernels and tape as the attacks: mean softmax cross-entropy
// over mini-batches, Adam on every weight. The tape is recorded once for the batch size and
// replayed per batch; a last partial batch of an epoch is left out (shuffling changes it).
import type { Engine, Tensor } from '../core/engine.js';
import { parameterShapes, type Architecture, type Model } from '../formats/model.js';
import { argmax, Net } from '../core/net.js';
import { crossEntropy } from '../core/ops.js';
import { random, shuffle, truncatedNormal } from '../core/random.js';
import { Tape } from '../core/tape.js';
import type { Image } from '../formats/image.js';
import { imageToInput } from '../formats/preprocess.js';

/** Images in model-input units, [count, h, w, c] back to back, and their label indices. */
export interface LabelledSet {
  inputs: Float32Array;
  labels: Uint8Array;
}

export interface EpochStats {
  epoch: number;
  loss: number;
  trainAccuracy: number;
  testAccuracy?: number;
  seconds: number;
  imagesPerSecond: number;
}

export interface TrainOptions {
  epochs: number;
  batch: number;
  /** Adam's learning rate, decayed along a half cosine to 0 by the last step. */
  lr: number;
  seed: number;
  onEpoch?: (stats: EpochStats) => void;
  onBatch?: (done: number, total: number) => void;
}

/** Labelled images (already at the model's input size) as model inputs. */
export function facesToSet(faces: readonly { image: Image; label: number }[], architecture: Architecture): LabelledSet {
  const size = architecture.input[0] * architecture.input[1] * architecture.input[2];
  const inputs = new Float32Array(faces.length * size);
  faces.forEach((f, i) => inputs.set(imageToInput(f.image, architecture), i * size));
  return { inputs, labels: Uint8Array.from(faces, (f) => f.label) };
}

/** Weights as the tutorial's Layers.py initialises them: truncated normal σ 0.1, zero biases. */
export function initialModel(architecture: Architecture, seed: number): Model {
  const rand = random(seed);
  const weights = new Map<string, Float32Array>();
  for (const [key, shape] of parameterShapes(architecture)) {
    const w = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (key.endsWith('.w')) for (let i = 0; i < w.length; i++) w[i] = truncatedNormal(rand, 0.1);
    weights.set(key, w);
  }
  return { architecture, weights };
}

const BETA1 = 0.9, BETA2 = 0.999, EPSILON = 1e-7; // Keras's Adam defaults

/** The mean cross-entropy of a model on mini-batches of a fixed size, and its gradient for
 *  every weight: the tape is recorded once and replayed per batch. */
export class BatchGradients {
  readonly net: Net;
  readonly params: Tensor[];
  private readonly tape: Tape;
  private readonly x: Tensor;
  private readonly y: Tensor;
  private readonly logits: Tensor;
  private readonly loss: Tensor;
  private readonly xs: Float32Array;
  private readonly ys: Float32Array;

  /** `share` scales the loss: 1/batch for a whole batch, 1/(whole batch) for a worker's part of one. */
  constructor(engine: Engine, model: Model, readonly batch: number, share = 1 / batch) {
    const arch = model.architecture;
    this.net = new Net(engine, model);
    this.params = [...this.net.params.values()].map((p) => p.requireGrad());
    this.tape = new Tape(engine);
    this.x = engine.tensor([batch, ...arch.input]);
    this.y = engine.tensor([batch, arch.labels.length]);
    this.logits = this.net.forward(this.tape, this.x);
    this.loss = crossEntropy(this.tape, this.logits, this.y, share);
    this.xs = new Float32Array(this.x.size);
    this.ys = new Float32Array(this.y.size);
  }

  /** Loss and gradients on the images `indices[from … from + batch)` of `data`; returns the loss
   *  and how many of those images the model classified correctly. */
  compute(data: LabelledSet, indices: ArrayLike<number>, from: number): { loss: number; correct: number } {
    const size = this.x.size / this.batch, classes = this.y.size / this.batch;
    this.ys.fill(0);
    for (let i = 0; i < this.batch; i++) {
      const k = indices[from + i];
      this.xs.set(data.inputs.subarray(k * size, (k + 1) * size), i * size);
      this.ys[i * classes + data.labels[k]] = 1;
    }
    this.x.write(this.xs);
    this.y.write(this.ys);
    this.tape.forward();
    this.tape.backward(this.loss);
    return { loss: this.loss.item(), correct: countCorrect(this.logits, this.ys, classes) };
  }
}

/** Where the gradients of each batch come from: this thread, or workers (see parallel.ts). */
export interface GradientSource {
  /** Fills the gradients of `params` for the batch `indices[from … from + batch)`. */
  compute(params: Tensor[], indices: Uint32Array, from: number): Promise<{ loss: number; correct: number }>;
}

export async function train(engine: Engine, model: Model, data: LabelledSet, test: LabelledSet | undefined, options: TrainOptions, source?: GradientSource): Promise<{ model: Model; history: EpochStats[] }> {
  const count = data.labels.length;
  const batch = Math.min(options.batch, count);
  const start = engine.mark();
  const local = new BatchGradients(engine, model, batch);
  const gradients = source ?? { compute: async (_: Tensor[], indices: Uint32Array, from: number) => local.compute(data, indices, from) };
  const adam = local.params.map((p) => ({ p, m: engine.alloc(p.size), v: engine.alloc(p.size) }));
  const order = Uint32Array.from({ length: count }, (_, i) => i);
  const rand = random(options.seed);
  const history: EpochStats[] = [];
  const batches = Math.floor(count / batch);
  let step = 0;
  for (let epoch = 1; epoch <= options.epochs; epoch++) {
    const began = performance.now();
    shuffle(order, rand);
    let lossSum = 0, correct = 0;
    for (let b = 0; b < batches; b++) {
      const result = await gradients.compute(local.params, order, b * batch);
      lossSum += result.loss;
      correct += result.correct;
      const lr = (options.lr * (1 + Math.cos((Math.PI * step) / (options.epochs * batches)))) / 2;
      step++;
      const lrT = (lr * Math.sqrt(1 - BETA2 ** step)) / (1 - BETA1 ** step);
      for (const { p, m, v } of adam) engine.kernels.adam(p.ptr, p.grad!.ptr, m, v, p.size, lrT, BETA1, BETA2, EPSILON);
      options.onBatch?.(b + 1, batches);
    }
    const seconds = (performance.now() - began) / 1000;
    const stats: EpochStats = { epoch, loss: lossSum / batches, trainAccuracy: correct / (batches * batch), seconds, imagesPerSecond: (batches * batch) / seconds };
    if (test) stats.testAccuracy = evaluate(local.net, test).accuracy;
    history.push(stats);
    options.onEpoch?.(stats);
  }
  const trained = local.net.toModel();
  engine.release(start);
  return { model: trained, history };
}

function countCorrect(logits: Tensor, ys: Float32Array, classes: number): number {
  const values = logits.engine.floats(logits.ptr, logits.size);
  let correct = 0;
  for (let r = 0; r < values.length / classes; r++) if (ys[r * classes + argmax(values, r * classes, classes)] === 1) correct++;
  return correct;
}

/** Predicted class of every image, in batches, the accuracy against the labels, and the logits
 *  ([count, labels] back to back). */
export function evaluate(net: Net, data: LabelledSet, batch = 256): { predictions: Uint8Array; accuracy: number; logits: Float32Array } {
  const arch = net.architecture;
  const classes = arch.labels.length;
  const size = arch.input[0] * arch.input[1] * arch.input[2];
  const count = data.labels.length;
  const n = Math.min(batch, count);
  const tape = new Tape(net.engine);
  const x = net.engine.tensor([n, ...arch.input]);
  const logits = net.forward(tape, x);
  const predictions = new Uint8Array(count);
  const all = new Float32Array(count * classes);
  const xs = new Float32Array(n * size);
  for (let first = 0; first < count; first += n) {
    const rows = Math.min(n, count - first);
    xs.fill(0);
    xs.set(data.inputs.subarray(first * size, (first + rows) * size));
    x.write(xs);
    tape.forward();
    const values = logits.toArray();
    all.set(values.subarray(0, rows * classes), first * classes);
    for (let r = 0; r < rows; r++) predictions[first + r] = argmax(values, r * classes, classes);
  }
  tape.dispose();
  const correct = predictions.reduce((s, p, i) => s + (p === data.labels[i] ? 1 : 0), 0);
  return { predictions, accuracy: correct / count, logits: all };
}
