// A small RGB graph network built with TensorFlow.js Layers from seeded random weights, as a user
// would bring one: conv stride 2 + batch norm + ReLU6, a depthwise + pointwise branch added back
// (residual), a batch norm after the sum (it cannot fold: an affine layer), global average pool,
// dense 3 with softmax. Saved as model.save() writes it, and colourful pictures to run it on.
import * as tf from '@tensorflow/tfjs';
import { random } from '../../src/core/random.js';
import type { Image } from '../../src/formats/image.js';

export const SIDE = 32;
export const LABELS = ['cat', 'dog', 'bird'];
/** The per-channel preprocessing of ImageNet models, in 0..255 pixels. */
export const IMAGENET = { offset: [123.7, 116.3, 103.5], scale: [58.4, 57.1, 57.4] };

/** model.json (parsed) and its one weight file. */
export interface Saved {
  json: Record<string, unknown>;
  weights: Uint8Array;
}

/** The network with weights drawn from `seed` (batch-norm statistics far from 0 and 1). */
export function buildNetwork(seed: number): tf.LayersModel {
  const input = tf.input({ shape: [SIDE, SIDE, 3] });
  const relu6 = () => tf.layers.reLU({ maxValue: 6 });
  let x = tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', useBias: false }).apply(input) as tf.SymbolicTensor;
  x = relu6().apply(tf.layers.batchNormalization().apply(x)) as tf.SymbolicTensor;
  let branch = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same' }).apply(x) as tf.SymbolicTensor;
  branch = relu6().apply(branch) as tf.SymbolicTensor;
  branch = tf.layers.conv2d({ filters: 8, kernelSize: 1 }).apply(branch) as tf.SymbolicTensor;
  x = tf.layers.add().apply([x, branch]) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization().apply(x) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: LABELS.length, activation: 'softmax' }).apply(x) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  randomizeWeights(model, seed);
  return model;
}

/** Every weight random from `seed` (kernels He-like, batch-norm scales and variances from 0.5 to
 *  1.5, so that every weight matters). */
export function randomizeWeights(model: tf.LayersModel, seed: number): void {
  const rand = random(seed);
  for (const layer of model.layers) {
    const weights = layer.getWeights().map((w, i) => {
      const name = layer.weights[i].name;
      const fanIn = w.shape.slice(0, -1).reduce((a, b) => a * b, 1) || 1;
      const values = Float32Array.from({ length: w.size }, () => {
        if (/moving_variance|gamma/.test(name)) return 0.5 + rand();
        return (rand() * 2 - 1) * (/kernel/.test(name) ? 2 * Math.sqrt(3 / fanIn) : 0.5);
      });
      return tf.tensor(values, w.shape);
    });
    if (weights.length) layer.setWeights(weights);
  }
}

/** model.json and its weights, as model.save() writes them. */
export async function saveNetwork(model: tf.LayersModel): Promise<Saved> {
  let saved: Saved | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    saved = { json: { format: 'layers-model', modelTopology: a.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }] }, weights: new Uint8Array(a.weightData as ArrayBuffer) };
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  return saved!;
}

/** A smooth colourful picture: colour ramps across and down, and a disc of another colour, all
 *  drawn from `seed`. */
export function picture(seed: number, width = SIDE, height = SIDE): Image {
  const rand = random(seed);
  const ramp = () => [rand() * 255, (rand() - 0.5) * 300, (rand() - 0.5) * 300];
  const channels = [ramp(), ramp(), ramp()];
  const disc = { x: rand() * width, y: rand() * height, r: (0.2 + 0.3 * rand()) * Math.min(width, height), colour: [rand() * 255, rand() * 255, rand() * 255] };
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const inside = (x - disc.x) ** 2 + (y - disc.y) ** 2 < disc.r ** 2;
      for (let c = 0; c < 3; c++) {
        const [base, across, down] = channels[c];
        const v = inside ? disc.colour[c] : base + (across * x) / width + (down * y) / height;
        data[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return { width, height, channels: 3, data };
}
