// `Net`: a model placed in the engine's memory, which records its forward pass on a tape; and
// what is read off its logits.
import { EngineMemoryError, type Engine, type Tensor } from './engine.js';
import { conv2d, dense, flatten, maxPool } from './ops.js';
import { Tape } from './tape.js';
import { parameterShapes, type Architecture, type Layer, type Model } from '../formats/model.js';

/** A model in the engine's memory. */
export class Net {
  readonly params = new Map<string, Tensor>();

  constructor(readonly engine: Engine, readonly model: Model) {
    for (const [key, shape] of parameterShapes(model.architecture)) this.params.set(key, engine.tensor(shape, model.weights.get(key)!));
  }

  get architecture(): Architecture {
    return this.model.architecture;
  }

  /** Records the forward pass of a batch x [n, h, w, c] on the tape; returns the logits [n, labels]. */
  forward(tape: Tape, x: Tensor): Tensor {
    let h = x;
    for (const [i, layer] of this.architecture.layers.entries()) {
      try {
        h = this.layer(tape, layer, h);
      } catch (e) {
        if (!(e instanceof EngineMemoryError)) throw e;
        const name = 'name' in layer ? `"${layer.name}" ` : '';
        throw new EngineMemoryError(`the model's layer ${i} ${name}(${layer.type}) on a batch of ${x.shape[0]}: ${e.message}`);
      }
    }
    return h;
  }

  private layer(tape: Tape, layer: Layer, h: Tensor): Tensor {
    switch (layer.type) {
      case 'conv2d':
        return conv2d(tape, h, this.param(layer.name, 'w'), this.param(layer.name, 'b'), { stride: layer.stride, padding: layer.padding, relu: layer.activation === 'relu' });
      case 'maxpool':
        return maxPool(tape, h, layer);
      case 'flatten':
        return flatten(h);
      case 'dense':
        return dense(tape, h, this.param(layer.name, 'w'), this.param(layer.name, 'b'), layer.activation === 'relu');
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

