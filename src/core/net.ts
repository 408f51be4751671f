// `Net`: a model placed in the engine's memory, which records its forward pass on a tape; and
// what is read off its logits.
import { EngineMemoryError, type Engine, type Tensor } from './engine.js';
import { activation, add, affine, avgPool, concat, conv2d, dense, depthwiseConv2d, flatten, globalAvgPool, globalMaxPool, maxPool, pad } from './ops.js';
import { Tape } from './tape.js';
import { channelCorrection, layerGraph, type Activation, type Architecture, type Layer, type Model, type Node } from '../formats/model.js';

/** A model in the engine's memory. */
export class Net {
  readonly params = new Map<string, Tensor>();
  private readonly nodes: Node[];
  /** Constants that turn input units into each channel's own (see channelCorrection). */
  private readonly correction: { scale: Tensor; shift: Tensor } | null;

  constructor(readonly engine: Engine, readonly model: Model) {
    const { nodes, parameters } = layerGraph(model.architecture);
    this.nodes = nodes;
    for (const [key, shape] of parameters) this.params.set(key, engine.tensor(shape, model.weights.get(key)!));
    const c = channelCorrection(model.architecture);
    this.correction = c && { scale: engine.tensor([c.scale.length], c.scale), shift: engine.tensor([c.shift.length], c.shift) };
  }

  get architecture(): Architecture {
    return this.model.architecture;
  }

  /** Records the forward pass of a batch x [n, h, w, c] on the tape; returns the logits [n, labels]
   *  (before a final softmax, which is left out). */
  forward(tape: Tape, x: Tensor): Tensor {
    const input = this.correction ? affine(tape, x, this.correction.scale, this.correction.shift) : x;
    const outputs: Tensor[] = [];
    for (const [i, { layer, inputs }] of this.nodes.entries()) {
      try {
        outputs.push(this.layer(tape, layer, inputs.map((j) => (j < 0 ? input : outputs[j]))));
      } catch (e) {
        if (!(e instanceof EngineMemoryError)) throw e;
        const name = layer.name ? `"${layer.name}" ` : '';
        throw new EngineMemoryError(`the model's layer ${i} ${name}(${layer.type}) on a batch of ${x.shape[0]}: ${e.message}`);
      }
    }
    return outputs[outputs.length - 1];
  }

  private layer(tape: Tape, layer: Layer, inputs: Tensor[]): Tensor {
    const h = inputs[0];
    switch (layer.type) {
      case 'conv2d':
      case 'depthwise_conv2d': {
        const options = { stride: layer.stride, padding: layer.padding, dilation: layer.dilation, ...fused(layer.activation) };
        const conv = layer.type === 'conv2d' ? conv2d : depthwiseConv2d;
        return activate(tape, conv(tape, h, this.param(layer.name, 'w'), this.param(layer.name, 'b'), options), layer);
      }
      case 'dense': {
        const { relu, ceiling } = fused(layer.activation);
        return activate(tape, dense(tape, h, this.param(layer.name, 'w'), this.param(layer.name, 'b'), relu, ceiling), layer);
      }
      case 'activation':
        return layer.activation === 'relu' ? activation(tape, h, 'relu') : activate(tape, h, layer);
      case 'maxpool':
        return maxPool(tape, h, layer);
      case 'avgpool':
        return avgPool(tape, h, layer);
      case 'global_maxpool':
        return globalMaxPool(tape, h);
      case 'global_avgpool':
        return globalAvgPool(tape, h);
      case 'flatten':
        return flatten(h);
      case 'add':
        return inputs.slice(1).reduce((sum, t) => add(tape, sum, t), h);
      case 'concat':
        return concat(tape, inputs);
      case 'affine':
        return affine(tape, h, this.param(layer.name, 'w'), this.param(layer.name, 'b'));
      case 'pad': {
        const [top, bottom, left, right] = layer.pad;
        return pad(tape, h, { top, bottom, left, right });
      }
    }
  }

  /** The current weights, copied out of the engine (after training, say). */
  toModel(): Model {
    const weights = new Map<string, Float32Array>();
    for (const [key, t] of this.params) weights.set(key, t.toArray());
    return { architecture: this.architecture, weights };
  }

  private param(layer: string, kind: 'w' | 'b'): Tensor {
    return this.params.get(`${layer}.${kind}`)!;
  }
}

/** The activations the conv and dense kernels apply as they store: ReLU and ReLU6. */
function fused(kind: Activation): { relu: boolean; ceiling: number } {
  return { relu: kind === 'relu' || kind === 'relu6', ceiling: kind === 'relu6' ? 6 : Infinity };
}

/** A layer's activation after its op, where the op has not fused it and it is applied at all (a
 *  final softmax is not: the network's outputs are logits). */
function activate(tape: Tape, y: Tensor, { activation: kind, alpha }: { activation: Activation; alpha?: number }): Tensor {
  if (kind === 'none' || kind === 'softmax' || fused(kind).relu) return y;
  return activation(tape, y, kind, alpha);
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

/** Index of the largest of `count` values starting at `from` (the first one on ties). */
export function argmax(values: ArrayLike<number>, from = 0, count = values.length - from): number {
  let best = 0;
  for (let i = 1; i < count; i++) if (values[from + i] > values[from + best]) best = i;
  return best;
}

/** Probabilities from logits (softmax, shifted by the maximum so that nothing overflows). */
export function softmax(logits: ArrayLike<number>): number[] {
  const max = Math.max(...Array.from(logits));
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / total);
}

