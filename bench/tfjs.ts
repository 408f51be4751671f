// TensorFlow.js's side, on its WASM backend (single-threaded SIMD: tfjs-backend-wasm has no
// threads in Node) and its CPU backend (plain JavaScript): the same kernels through the public
// ops or `tf.engine().runKernel`, and the same loops with tf.variableGrads / optimizer.minimize.
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import type * as TFWasm from '@tensorflow/tfjs-backend-wasm';
import { parameterShapes, type Model } from '../src/formats/model.js';
import type { KernelRunner } from './mislead.js';
import { ARCH, MOBILENET, oneHot, random, type KernelCase, type KernelData } from './setup.js';

// Node's own loader for tfjs's Node bundles, as a user of tfjs in Node gets them (through
// vite-node, `import` would transform tfjs's ES module sources: 12 s instead of 1.5).
const require = createRequire(import.meta.url);
const tf: typeof TF = require('@tensorflow/tfjs');
const { setWasmPaths }: typeof TFWasm = require('@tensorflow/tfjs-backend-wasm');

export type Backend = 'tfjs-wasm' | 'tfjs-cpu';
export const BACKENDS: readonly Backend[] = ['tfjs-wasm', 'tfjs-cpu'];

/** A case the backend cannot run (a kernel it does not register). */
export class NotAvailable extends Error {}

/** Runs `f`, turning tfjs's "Kernel 'X' not registered for backend 'Y'" into NotAvailable. */
export function available<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    const message = (e as Error).message ?? String(e);
    if (/not registered for backend/.test(message)) throw new NotAvailable(message);
    throw e;
  }
}

let wasmPathsSet = false;

// The CPU backend's advice to install tfjs-node (a native TensorFlow, not what is compared here).
const warn = console.warn;
console.warn = (...args: unknown[]) => {
  if (!String(args[0]).includes('tfjs-node')) warn(...args);
};

export async function useBackend(backend: Backend): Promise<void> {
  const name = backend === 'tfjs-wasm' ? 'wasm' : 'cpu';
  if (name === 'wasm' && !wasmPathsSet) {
    // The .wasm binaries from node_modules, read from disk (no network).
    setWasmPaths(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + '/');
    wasmPathsSet = true;
  }
  tf.enableProdMode();
  if (!(await tf.setBackend(name))) throw new Error(`tfjs backend ${name} failed to initialise`);
  await tf.ready();
}

export function backendInfo(): { tfjs: string; wasmSimd: boolean; wasmThreads: boolean } {
  return {
    tfjs: tf.version.tfjs,
    wasmSimd: tf.env().getBool('WASM_HAS_SIMD_SUPPORT'),
    wasmThreads: tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT'),
  };
}

export const numTensors = (): number => tf.memory().numTensors;

export function tfjsKernel(c: KernelCase, data: KernelData): KernelRunner {
  const owned: TF.Tensor[] = [];
  const t = <T extends TF.Tensor>(values: Float32Array, shape: number[]): T => {
    const x = tf.tensor(values, shape, 'float32') as T;
    owned.push(x);
    return x;
  };
  let run: () => TF.Tensor;
  switch (c.kind) {
    case 'conv.fwd':
    case 'conv.bwd-input':
    case 'conv.bwd-filter': {
      const s = c.conv, n = c.n;
      const x = t<TF.Tensor4D>(data.x, [n, s.h, s.w, s.cin]), w = t<TF.Tensor4D>(data.w, [s.k, s.k, s.cin, s.cout]);
      const b = t<TF.Tensor1D>(data.b, [s.cout]), dy = t<TF.Tensor4D>(data.dy, [n, s.oh, s.ow, s.cout]);
      const common = { strides: s.stride, pad: s.padding, dataFormat: 'NHWC' } as const;
      if (c.kind === 'conv.fwd') {
        run = () => tf.fused.conv2d({ x, filter: w, bias: b, strides: s.stride, pad: s.padding, activation: s.relu ? 'relu' : 'linear' });
      } else if (c.kind === 'conv.bwd-input') {
        const attrs = { ...common, inputShape: [n, s.h, s.w, s.cin] };
        run = () => tf.engine().runKernel<TF.Tensor>('Conv2DBackpropInput', { dy, filter: w }, attrs);
      } else {
        const attrs = { ...common, filterShape: [s.k, s.k, s.cin, s.cout] };
        run = () => tf.engine().runKernel<TF.Tensor>('Conv2DBackpropFilter', { x, dy }, attrs);
      }
      break;
    }
    case 'dw.fwd':
    case 'dw.bwd-input':
    case 'dw.bwd-filter': {
      const s = c.conv, n = c.n;
      const x = t<TF.Tensor4D>(data.x, [n, s.h, s.w, s.cin]), w = t<TF.Tensor4D>(data.w, [s.k, s.k, s.cin, 1]);
      const b = t<TF.Tensor1D>(data.b, [s.cout]), dy = t<TF.Tensor4D>(data.dy, [n, s.oh, s.ow, s.cout]);
      const common = { strides: s.stride, pad: s.padding, dilations: 1 } as const;
      if (c.kind === 'dw.fwd') {
        run = () => tf.fused.depthwiseConv2d({ x, filter: w, bias: b, strides: s.stride, pad: s.padding });
      } else if (c.kind === 'dw.bwd-input') {
        run = () => tf.engine().runKernel<TF.Tensor>('DepthwiseConv2dNativeBackpropInput', { dy, filter: w }, { ...common, inputShape: [n, s.h, s.w, s.cin] });
      } else {
        run = () => tf.engine().runKernel<TF.Tensor>('DepthwiseConv2dNativeBackpropFilter', { x, dy }, { ...common, filterShape: [s.k, s.k, s.cin, 1] });
      }
      break;
    }
    case 'pool.fwd':
    case 'pool.bwd': {
      const s = c.pool, n = c.n;
      const x = t<TF.Tensor4D>(data.x, [n, s.h, s.w, s.c]);
      if (c.kind === 'pool.fwd') {
        run = () => tf.maxPool(x, s.size, s.stride, s.padding);
      } else {
        const y = tf.maxPool(x, s.size, s.stride, s.padding);
        owned.push(y);
        const dy = t<TF.Tensor4D>(data.dy, [n, s.oh, s.ow, s.c]);
        const attrs = { filterSize: s.size, strides: s.stride, pad: s.padding };
        run = () => tf.engine().runKernel<TF.Tensor>('MaxPoolGrad', { dy, input: x, output: y }, attrs);
      }
      break;
    }
    case 'dense.fwd': {
      const s = c.dense;
      const x = t<TF.Tensor2D>(data.x, [c.n, s.inputs]), w = t<TF.Tensor2D>(data.w, [s.inputs, s.outputs]), b = t<TF.Tensor1D>(data.b, [s.outputs]);
      run = () => tf.fused.matMul({ a: x, b: w, bias: b, activation: s.relu ? 'relu' : 'linear' });
      break;
    }
    case 'log-softmax': {
      const x = t<TF.Tensor2D>(data.x, [c.n, c.cols]);
      run = () => tf.logSoftmax(x);
      break;
    }
  }
  return {
    run: () => tf.tidy(() => void run()),
    result: () => available(() => {
      const y = run();
      const values = y.dataSync() as Float32Array;
      y.dispose();
      return Float32Array.from(values);
    }),
    dispose: () => owned.forEach((x) => x.dispose()),
  };
}

type Weights = Map<string, TF.Tensor>;

function weights(model: Model, variables: boolean): Weights {
  const map: Weights = new Map();
  for (const [key, shape] of parameterShapes(model.architecture)) {
    const value = tf.tensor(model.weights.get(key)!, shape, 'float32');
    map.set(key, variables ? tf.variable(value, true) : value);
    if (variables) value.dispose();
  }
  return map;
}

/** The network's forward pass on a batch [n, h, w, c]: fused conv + bias + ReLU, as the engine
 *  fuses them (under a gradient tfjs splits a fused ReLU into its ops itself). */
export function forward(w: Weights, x: TF.Tensor4D): TF.Tensor2D {
  let h: TF.Tensor = x;
  for (const layer of ARCH.layers) {
    if (layer.type === 'conv2d') {
      const activation = layer.activation === 'relu' ? 'relu' : 'linear';
      h = tf.fused.conv2d({ x: h as TF.Tensor4D, filter: w.get(`${layer.name}.w`) as TF.Tensor4D, bias: w.get(`${layer.name}.b`), strides: layer.stride, pad: layer.padding, activation });
    } else if (layer.type === 'maxpool') {
      h = tf.maxPool(h as TF.Tensor4D, layer.size, layer.stride, layer.padding);
    } else if (layer.type === 'flatten') {
      h = tf.reshape(h, [h.shape[0], -1]);
    } else if (layer.type === 'dense') {
      h = tf.matMul(h as TF.Tensor2D, w.get(`${layer.name}.w`) as TF.Tensor2D);
      h = tf.add(h, w.get(`${layer.name}.b`)!);
      if (layer.activation === 'relu') h = tf.relu(h);
    }
  }
  return h as TF.Tensor2D;
}

/** The attack's loop: DX a variable, loss −Σ y·log_softmax(f(X + DX)) + β·Σ DX²/2, SGD on DX. */
export class TfjsAttack {
  private readonly w: Weights;
  private readonly x: TF.Tensor4D;
  private readonly y: TF.Tensor2D;
  private readonly halfBeta: TF.Scalar;
  private readonly dx: TF.Variable;
  private readonly optimizer: TF.SGDOptimizer;

  constructor(model: Model, x: Float32Array, targets: number[], lr: number, beta: number, init?: Float32Array) {
    const [h, w, c] = ARCH.input, n = targets.length;
    this.w = weights(model, false);
    this.x = tf.tensor4d(x, [n, h, w, c]);
    this.y = tf.tensor2d(oneHot(targets, ARCH.labels.length), [n, ARCH.labels.length]);
    this.halfBeta = tf.scalar(beta / 2);
    const initial = init ? tf.tensor4d(init, [n, h, w, c]) : tf.zeros([n, h, w, c]);
    this.dx = tf.variable(initial, true);
    initial.dispose();
    this.optimizer = tf.train.sgd(lr);
  }

  private loss = (): TF.Scalar => {
    const logits = forward(this.w, tf.add(this.x, this.dx));
    const crossEntropy = tf.neg(tf.sum(tf.mul(this.y, tf.logSoftmax(logits))));
    return tf.add(crossEntropy, tf.mul(this.halfBeta, tf.sum(tf.square(this.dx))));
  };

  logits(): Float32Array {
    return tf.tidy(() => forward(this.w, tf.add(this.x, this.dx)).dataSync() as Float32Array).slice();
  }

  /** One SGD step; returns the loss before it, read back as the engine's loop does. */
  step(): number {
    const cost = available(() => this.optimizer.minimize(this.loss, true, [this.dx]))!;
    const value = cost.dataSync()[0];
    cost.dispose();
    return value;
  }

  gradient(): { loss: number; grad: Float32Array } {
    const { value, grads } = available(() => tf.variableGrads(this.loss, [this.dx]));
    const result = { loss: value.dataSync()[0], grad: (grads[this.dx.name].dataSync() as Float32Array).slice() };
    value.dispose();
    Object.values(grads).forEach((g) => g.dispose());
    return result;
  }

  dxValues(): Float32Array {
    return (this.dx.dataSync() as Float32Array).slice();
  }

  dispose(): void {
    for (const t of [...this.w.values(), this.x, this.y, this.halfBeta, this.dx]) t.dispose();
    this.optimizer.dispose();
  }
}

/** One training step: mean softmax cross-entropy, SGD on every weight (all tf.variable). */
export class TfjsTraining {
  private readonly w: Weights;
  private readonly x: TF.Tensor4D;
  private readonly y: TF.Tensor2D;
  private readonly optimizer: TF.SGDOptimizer;
  private readonly vars: TF.Variable[];

  constructor(model: Model, x: Float32Array, labels: number[], lr: number) {
    const [h, w, c] = ARCH.input, n = labels.length;
    this.w = weights(model, true);
    this.vars = [...this.w.values()] as TF.Variable[];
    this.x = tf.tensor4d(x, [n, h, w, c]);
    this.y = tf.tensor2d(oneHot(labels, ARCH.labels.length), [n, ARCH.labels.length]);
    this.optimizer = tf.train.sgd(lr);
  }

  private loss = (): TF.Scalar => tf.div(tf.neg(tf.sum(tf.mul(this.y, tf.logSoftmax(forward(this.w, this.x))))), this.x.shape[0]);

  logits(): Float32Array {
    return tf.tidy(() => forward(this.w, this.x).dataSync() as Float32Array).slice();
  }

  step(): number {
    const cost = available(() => this.optimizer.minimize(this.loss, true, this.vars))!;
    const value = cost.dataSync()[0];
    cost.dispose();
    return value;
  }

  gradients(): { loss: number; grads: Map<string, Float32Array> } {
    const { value, grads } = available(() => tf.variableGrads(this.loss, this.vars));
    const result = { loss: value.dataSync()[0], grads: new Map([...this.w].map(([key, v]) => [key, (grads[(v as TF.Variable).name].dataSync() as Float32Array).slice()])) };
    value.dispose();
    Object.values(grads).forEach((g) => g.dispose());
    return result;
  }

  dispose(): void {
    for (const t of [...this.w.values(), this.x, this.y]) t.dispose();
    this.optimizer.dispose();
  }
}

// ---- the MobileNet-style network -------------------------------------------------------------

/** A Layers model saved through an IO handler: model.json's content and its one weight file, and
 *  the artifacts themselves, from which tfjs loads it again on each backend. */
export interface SavedModel {
  json: Record<string, unknown>;
  weights: Uint8Array;
  artifacts: TF.io.ModelArtifacts;
}

/** The MobileNet of setup.ts built with tfjs-layers (layers named as Keras names MobileNet's),
 *  every weight drawn from the seeded generator: kernels uniform with variance 2/fan-in, batch
 *  norm's γ and moving variance in [0.5, 1.5), β and moving mean in [−0.5, 0.5), so that its
 *  statistics matter. Saved in memory, nothing written to disk. */
export async function mobileNet(): Promise<SavedModel> {
  const { input: shape, alpha, classes, first, blocks, seed } = MOBILENET;
  const input = tf.input({ shape: [...shape] });
  const bnRelu6 = (x: TF.SymbolicTensor, name: string) =>
    tf.layers.reLU({ maxValue: 6, name: `${name}_relu` }).apply(tf.layers.batchNormalization({ name: `${name}_bn` }).apply(x)) as TF.SymbolicTensor;
  let x = bnRelu6(tf.layers.conv2d({ name: 'conv1', filters: first * alpha, kernelSize: 3, strides: 2, padding: 'same', useBias: false }).apply(input) as TF.SymbolicTensor, 'conv1');
  blocks.forEach(([filters, strides], i) => {
    const dw = `conv_dw_${i + 1}`, pw = `conv_pw_${i + 1}`;
    x = bnRelu6(tf.layers.depthwiseConv2d({ name: dw, kernelSize: 3, strides, padding: 'same', useBias: false }).apply(x) as TF.SymbolicTensor, dw);
    x = bnRelu6(tf.layers.conv2d({ name: pw, filters: filters * alpha, kernelSize: 1, useBias: false }).apply(x) as TF.SymbolicTensor, pw);
  });
  x = tf.layers.globalAveragePooling2d({ name: 'global_pool' }).apply(x) as TF.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: tf.layers.dense({ name: 'logits', units: classes }).apply(x) as TF.SymbolicTensor });
  const rand = random(seed);
  const uniform = (lo: number, hi: number) => lo + (hi - lo) * rand();
  for (const layer of model.layers) {
    const values = layer.getWeights().map((w, i) => {
      const name = layer.weights[i].name;
      const fanIn = /depthwise_kernel/.test(name) ? w.shape[0]! * w.shape[1]! : w.shape.slice(0, -1).reduce((a, b) => a * b, 1);
      const limit = /kernel/.test(name) ? Math.sqrt(6 / fanIn) : 0.5;
      const draw = /gamma|moving_variance/.test(name) ? () => uniform(0.5, 1.5) : () => uniform(-limit, limit);
      return tf.tensor(Float32Array.from({ length: w.size }, draw), w.shape);
    });
    layer.setWeights(values);
    values.forEach((v) => v.dispose());
  }
  let saved: SavedModel | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    const json = { format: 'layers-model', modelTopology: a.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }] };
    saved = { json, weights: new Uint8Array(a.weightData as ArrayBuffer), artifacts: a };
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  model.dispose();
  return saved!;
}

/** A network run by a peer on the current backend, on a batch of pictures and targets. */
export interface NetworkPeer {
  /** The forward pass alone. */
  forward(): void;
  logits(): Float32Array;
  /** Forward, then the gradient to the input of the cross-entropy toward the targets. */
  iteration(): void;
  gradient(): Float32Array;
  dispose(): void;
}

/** An attack iteration on a tfjs-layers model as a tfjs user writes it: model.apply inside
 *  tf.valueAndGrad, the cross-entropy toward each image's target, its gradient to the input. */
export class TfjsNetworkAttack implements NetworkPeer {
  private readonly loss = (x: TF.Tensor): TF.Scalar => tf.neg(tf.sum(tf.mul(this.y, tf.logSoftmax(this.model.apply(x) as TF.Tensor)))) as TF.Scalar;

  private constructor(private readonly model: TF.LayersModel, private readonly x: TF.Tensor4D, private readonly y: TF.Tensor2D) {}

  /** The model loaded from `artifacts` on the current backend, a batch of pictures and targets. */
  static async load(artifacts: TF.io.ModelArtifacts, x: Float32Array, targets: number[]): Promise<TfjsNetworkAttack> {
    const model = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
    const classes = (model.outputs[0].shape as number[])[1];
    return new TfjsNetworkAttack(model, tf.tensor4d(x, [targets.length, ...(model.inputs[0].shape.slice(1) as number[])] as [number, number, number, number]), tf.tensor2d(oneHot(targets, classes), [targets.length, classes]));
  }

  forward(): void {
    tf.tidy(() => void this.model.apply(this.x));
  }

  logits(): Float32Array {
    return tf.tidy(() => (this.model.apply(this.x) as TF.Tensor).dataSync() as Float32Array).slice();
  }

  iteration(): void {
    available(() => tf.tidy(() => void tf.valueAndGrad(this.loss)(this.x)));
  }

  gradient(): Float32Array {
    return available(() => tf.tidy(() => tf.valueAndGrad(this.loss)(this.x).grad.dataSync() as Float32Array)).slice();
  }

  dispose(): void {
    this.model.dispose();
    this.x.dispose();
    this.y.dispose();
  }
}
