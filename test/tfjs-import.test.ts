// TensorFlow.js Layers models, built here from random weights with @tensorflow/tfjs-layers and
// saved through an IO handler, imported and run on the engine: logits and input gradients against
// TensorFlow.js's CPU backend (its WASM backend routes max-pool ties otherwise).
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../src/core/engine.js';
import { Net } from '../src/core/net.js';
import { dot } from '../src/core/ops.js';
import { random } from '../src/core/random.js';
import { Tape } from '../src/core/tape.js';
import { importTfjs, type TfjsImportOptions } from '../src/formats/tfjs.js';
import { endsInSoftmax, inputUnits, readModel, writeModel, type Model } from '../src/formats/model.js';
import { loadEngine } from '../src/node/engine.js';
import { relativeError } from './helpers.js';
import { randomizeWeights, saveNetwork, type Saved } from './support/tfjs-model.js';

let engine: Engine;
/** Each model's relative errors, printed at the end for the record. */
const measured: string[] = [];
beforeAll(async () => {
  await tf.setBackend('cpu');
  engine = await loadEngine();
});
afterAll(() => console.log(`imported models against TensorFlow.js (CPU), relative errors:\n${measured.join('\n')}`));

function load(saved: Saved, options?: TfjsImportOptions): Model {
  return importTfjs(JSON.parse(JSON.stringify(saved.json)), (path) => (path === 'weights.bin' ? saved.weights : new Uint8Array()), 'model.json', options);
}

/** Logits before a final softmax (TensorFlow.js returns probabilities after it). */
function tfLogits(model: tf.LayersModel, x: tf.Tensor): tf.Tensor {
  const last = model.layers[model.layers.length - 1];
  if (last.getClassName() === 'Softmax') return tf.model({ inputs: model.inputs, outputs: last.input as tf.SymbolicTensor }).apply(x) as tf.Tensor;
  const config = last.getConfig();
  if (config.activation !== 'softmax') return model.apply(x) as tf.Tensor;
  const body = tf.model({ inputs: model.inputs, outputs: last.input as tf.SymbolicTensor });
  const [w, b] = last.getWeights();
  return tf.add(tf.matMul(body.apply(x) as tf.Tensor, w), b);
}

/** Logits and the gradient of Σ g·logits to the pixels, on the engine (whose input is in the
 *  model's input units, x = (p − offset) / scale). */
function ours(model: Model, pixels: Float32Array, n: number, g: Float32Array): { logits: Float32Array; grad: Float32Array } {
  const net = new Net(engine, model);
  const tape = new Tape(engine);
  const { offset, scale } = inputUnits(model.architecture);
  const x = engine.tensor([n, ...model.architecture.input], Float32Array.from(pixels, (p) => (p - offset) / scale)).requireGrad();
  const logits = net.forward(tape, x);
  tape.backward(dot(tape, logits, engine.tensor(logits.shape, g)));
  const result = { logits: logits.toArray(), grad: x.grad!.toArray().map((v) => v / scale) };
  tape.dispose();
  return result;
}

/** Imports `model` and checks logits (≤ 1e-4) and input gradients (≤ 1e-3) on a batch of 2. */
async function compare(model: tf.LayersModel, seed: number, options?: TfjsImportOptions): Promise<{ logits: number; grad: number; imported: Model }> {
  randomizeWeights(model, seed);
  const imported = load(await saveNetwork(model), options);
  const [, h, w, c] = model.inputs[0].shape as number[];
  const rand = random(seed + 1);
  const n = 2;
  const pixels = Float32Array.from({ length: n * h * w * c }, () => Math.round(rand() * 255));
  const classes = imported.architecture.labels.length;
  const g = Float32Array.from({ length: n * classes }, () => rand() * 2 - 1);
  const x = tf.tensor4d(pixels, [n, h, w, c]);
  const expected = tfLogits(model, x).dataSync();
  const expectedGrad = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(tfLogits(model, input), tf.tensor2d(g, [n, classes]))))(x).dataSync();
  const got = ours(imported, pixels, n, g);
  const errors = { logits: relativeError(got.logits, expected), grad: relativeError(got.grad, expectedGrad) };
  measured.push(`  ${imported.architecture.layers.length} layers, ${imported.architecture.input.join('×')}: logits ${errors.logits.toExponential(1)}, input gradient ${errors.grad.toExponential(1)}`);
  return { ...errors, imported };
}

describe('TensorFlow.js Layers models, imported, against TensorFlow.js (CPU backend)', () => {
  it('a small ResNet-style graph: conv + batch norm + ReLU, residual adds, a strided 1×1 shortcut, global average pool', async () => {
    const input = tf.input({ shape: [24, 24, 3] });
    const convBn = (x: tf.SymbolicTensor, filters: number, kernel: number, stride: number, relu: boolean) => {
      let y = tf.layers.conv2d({ filters, kernelSize: kernel, strides: stride, padding: 'same', useBias: false }).apply(x) as tf.SymbolicTensor;
      y = tf.layers.batchNormalization().apply(y) as tf.SymbolicTensor;
      return relu ? (tf.layers.reLU().apply(y) as tf.SymbolicTensor) : y;
    };
    const stem = convBn(input, 8, 3, 1, true);
    const block1 = tf.layers.reLU().apply(tf.layers.add().apply([stem, convBn(convBn(stem, 8, 3, 1, true), 8, 3, 1, false)])) as tf.SymbolicTensor;
    const shortcut = convBn(block1, 16, 1, 2, false);
    const block2 = tf.layers.reLU().apply(tf.layers.add().apply([shortcut, convBn(convBn(block1, 16, 3, 2, true), 16, 3, 1, false)])) as tf.SymbolicTensor;
    const pooled = tf.layers.globalAveragePooling2d({}).apply(block2) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 5 }).apply(pooled) as tf.SymbolicTensor;
    const { logits, grad, imported } = await compare(tf.model({ inputs: input, outputs: out }), 11);
    expect(logits).toBeLessThan(1e-4);
    expect(grad).toBeLessThan(1e-3);
    // Every batch norm folded into its convolution, the ReLU after it fused.
    const types = imported.architecture.layers.map((l) => l.type);
    expect(types).not.toContain('affine');
    expect(types.filter((t) => t === 'add')).toHaveLength(2);
  });

  it('a MobileNet-style stack: zero padding, strided conv, depthwise and separable convs with batch norm and ReLU6, dropout, softmax', async () => {
    const input = tf.input({ shape: [32, 32, 3] });
    let x = tf.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]] }).apply(input) as tf.SymbolicTensor;
    x = tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'valid', useBias: false }).apply(x) as tf.SymbolicTensor;
    const bnRelu6 = (y: tf.SymbolicTensor) => tf.layers.reLU({ maxValue: 6 }).apply(tf.layers.batchNormalization().apply(y)) as tf.SymbolicTensor;
    x = bnRelu6(x);
    x = bnRelu6(tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false }).apply(x) as tf.SymbolicTensor);
    x = bnRelu6(tf.layers.conv2d({ filters: 16, kernelSize: 1, useBias: false }).apply(x) as tf.SymbolicTensor);
    x = bnRelu6(tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'same', depthMultiplier: 2 }).apply(x) as tf.SymbolicTensor);
    x = bnRelu6(tf.layers.separableConv2d({ filters: 24, kernelSize: 3, padding: 'same' }).apply(x) as tf.SymbolicTensor);
    x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
    x = tf.layers.dropout({ rate: 0.5 }).apply(x) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 3, activation: 'softmax' }).apply(x) as tf.SymbolicTensor;
    const { logits, grad, imported } = await compare(tf.model({ inputs: input, outputs: out }), 12);
    expect(logits).toBeLessThan(1e-4);
    expect(grad).toBeLessThan(1e-3);
    expect(endsInSoftmax(imported.architecture)).toBe(true);
    expect(imported.architecture.layers.map((l) => l.type)).toEqual(['pad', 'conv2d', 'depthwise_conv2d', 'conv2d', 'depthwise_conv2d', 'depthwise_conv2d', 'conv2d', 'global_avgpool', 'dense']);
  });

  it('a Sequential grayscale CNN: pools, leaky ReLU, ELU, tanh, sigmoid, flatten, softmax', async () => {
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [20, 20, 1], filters: 6, kernelSize: 3, padding: 'same', activation: 'relu' }),
        tf.layers.maxPooling2d({ poolSize: 2 }),
        // (TensorFlow.js has no gradient for dilated convolutions: dilation is checked against
        // the float64 reference in network.test.ts, and against TensorFlow.js forward in conv-tfjs.test.ts.)
        tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same' }),
        tf.layers.leakyReLU({ alpha: 0.1 }),
        // VALID: under SAME, TensorFlow.js's CPU avgPool gradient divides by the whole window, padding
        // included, unlike its own forward pass and TensorFlow (SAME is checked in layers.test.ts).
        tf.layers.averagePooling2d({ poolSize: 3, strides: 2, padding: 'valid' }),
        tf.layers.conv2d({ filters: 8, kernelSize: 2, activation: 'elu' }),
        tf.layers.conv2d({ filters: 8, kernelSize: 1, activation: 'tanh' }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 12, activation: 'sigmoid' }),
        tf.layers.dense({ units: 4, activation: 'softmax' }),
      ],
    });
    const { logits, grad } = await compare(model, 13, { labels: ['a', 'b', 'c', 'd'] });
    expect(logits).toBeLessThan(1e-4);
    expect(grad).toBeLessThan(1e-3);
  });

  it('a Softmax layer at the end, saved with TensorFlow.js\'s default axis (1, the last of a vector)', async () => {
    const model = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [6, 6, 3], filters: 3, kernelSize: 3 }), tf.layers.flatten(), tf.layers.dense({ units: 3 }), tf.layers.softmax()] });
    expect(model.layers[3].getConfig().axis).toBe(1);
    const { logits, grad, imported } = await compare(model, 15);
    expect(logits).toBeLessThan(1e-4);
    expect(grad).toBeLessThan(1e-3);
    expect(endsInSoftmax(imported.architecture)).toBe(true);
  });

  it('an RGB model with Rescaling, concatenated branches, a global max pool and an unfolded batch norm', async () => {
    const input = tf.input({ shape: [16, 16, 3] });
    const scaled = tf.layers.rescaling({ scale: 1 / 127.5, offset: -1 }).apply(input) as tf.SymbolicTensor;
    const a = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(scaled) as tf.SymbolicTensor;
    const b = tf.layers.conv2d({ filters: 5, kernelSize: 5, padding: 'same', activation: 'relu' }).apply(scaled) as tf.SymbolicTensor;
    let x = tf.layers.concatenate().apply([a, b]) as tf.SymbolicTensor;
    x = tf.layers.batchNormalization().apply(x) as tf.SymbolicTensor; // after a concatenation: an affine layer
    x = tf.layers.globalMaxPooling2d({}).apply(x) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 2 }).apply(x) as tf.SymbolicTensor;
    const { logits, grad, imported } = await compare(tf.model({ inputs: input, outputs: out }), 14);
    expect(logits).toBeLessThan(1e-4);
    expect(grad).toBeLessThan(1e-3);
    expect(imported.architecture.preprocess).toEqual({ offset: 127.5, scale: 127.5 });
    expect(imported.architecture.layers.map((l) => l.type)).toContain('affine');
  });
});

describe('weights as TensorFlow.js stores them', () => {
  /** Re-encodes every float32 weight of `saved` with `encode`, as tensorflowjs_converter's quantization does. */
  function quantized(saved: Saved, dtype: 'uint8' | 'uint16' | 'float16'): Saved {
    const specs = (saved.json.weightsManifest as { weights: tf.io.WeightsManifestEntry[] }[])[0].weights;
    const parts: Uint8Array[] = [];
    let at = 0;
    const out = specs.map((spec) => {
      const count = spec.shape.reduce((a, b) => a * b, 1);
      const values = new Float32Array(saved.weights.slice(at, at + count * 4).buffer);
      at += count * 4;
      if (dtype === 'float16') {
        parts.push(new Uint8Array(new Uint16Array(Array.from(values, toFloat16)).buffer));
        return { ...spec, quantization: { dtype, original_dtype: 'float32' } };
      }
      const min = Math.min(...values), max = Math.max(...values), levels = dtype === 'uint8' ? 255 : 65535;
      const scale = max > min ? (max - min) / levels : 1;
      const q = Array.from(values, (v) => Math.round((v - min) / scale));
      parts.push(new Uint8Array((dtype === 'uint8' ? Uint8Array.from(q) : new Uint16Array(q)).buffer));
      return { ...spec, quantization: { dtype, scale, min, original_dtype: 'float32' } };
    });
    const weights = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((o, p) => (weights.set(p, o), o + p.length), 0);
    return { json: { ...saved.json, weightsManifest: [{ paths: ['weights.bin'], weights: out }] }, weights };
  }

  it('uint8, uint16 and float16 quantized weights decode as TensorFlow.js decodes them', async () => {
    const model = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 5, kernelSize: 3 }), tf.layers.flatten(), tf.layers.dense({ units: 3 })] });
    randomizeWeights(model, 21);
    const saved = await saveNetwork(model);
    for (const dtype of ['uint8', 'uint16', 'float16'] as const) {
      const q = quantized(saved, dtype);
      const specs = (q.json.weightsManifest as { weights: tf.io.WeightsManifestEntry[] }[])[0].weights;
      const decoded = tf.io.decodeWeights(q.weights.buffer as ArrayBuffer, specs);
      const imported = load(q);
      for (const spec of specs) {
        const [layer, kind] = spec.name.split('/');
        const ours = imported.weights.get(`${layer}.${kind === 'kernel' ? 'w' : 'b'}`)!;
        expect(Array.from(ours), `${dtype} ${spec.name}`).toEqual(Array.from(decoded[spec.name].dataSync()));
      }
    }
  });
});

/** The nearest float16, as bits (round to nearest even; weights here are small and normal). */
function toFloat16(v: number): number {
  const f32 = new Float32Array([v]), bits = new Uint32Array(f32.buffer)[0];
  const sign = (bits >>> 16) & 0x8000, exponent = ((bits >>> 23) & 0xff) - 127 + 15, mantissa = bits & 0x7fffff;
  if (exponent <= 0) return sign; // below float16's normal range: 0 is close enough here
  const rounded = (mantissa >>> 13) + ((mantissa >>> 12) & 1 && ((mantissa & 0x1fff) !== 0x1000 || (mantissa >>> 13) & 1) ? 1 : 0);
  return sign | ((exponent << 10) + rounded);
}

/** The built command line, as a user runs it. */
function mislead(...args: string[]) {
  const r = spawnSync(process.execPath, [resolve(import.meta.dirname, '../dist/cli/main.js'), ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('mislead import-tfjs', () => {
  it('converts model.json and its weights into a model file that predict reads; a missing option or layer is one line, exit 2', async () => {
    const model = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [12, 12, 3], filters: 4, kernelSize: 3, activation: 'relu' }), tf.layers.globalAveragePooling2d({}), tf.layers.dense({ units: 2, activation: 'softmax' })] });
    randomizeWeights(model, 31);
    const saved = await saveNetwork(model);
    const dir = mkdtempSync(join(tmpdir(), 'mislead-tfjs-'));
    writeFileSync(join(dir, 'model.json'), JSON.stringify(saved.json));
    writeFileSync(join(dir, 'weights.bin'), saved.weights);
    const out = join(dir, 'model.safetensors');
    const done = mislead('import-tfjs', join(dir, 'model.json'), '--out', out, '--labels', 'cat,dog', '--offset', '127.5', '--scale', '127.5');
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toMatch(/labels cat, dog; its final softmax is left out/);
    const converted = readModel(readFileSync(out), out);
    expect(converted.architecture.preprocess).toEqual({ offset: 127.5, scale: 127.5 });
    expect(writeModel(converted)).toEqual(new Uint8Array(readFileSync(out)));

    const lstm = { ...saved.json, modelTopology: JSON.parse(JSON.stringify(saved.json.modelTopology).replace('"Conv2D"', '"LSTM"')) };
    writeFileSync(join(dir, 'lstm.json'), JSON.stringify(lstm));
    const refused = mislead('import-tfjs', join(dir, 'lstm.json'), '--out', join(dir, 'lstm.safetensors'));
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/^mislead: .*lstm\.json: layer "conv2d_\w+" \("LSTM"\): unsupported layer; supported: InputLayer, Conv2D, /);

    const missing = mislead('import-tfjs', join(dir, 'model.json'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^mislead: import-tfjs needs --out FILE\n$/);
  });
});
