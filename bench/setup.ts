// The benchmark's workload, the same for every engine: the tutorial network's layer shapes, its
// random weights and inputs (seeded), the kernel cases on those shapes, and the flops of each.
import { TUTORIAL_ARCHITECTURE } from '../src/formats/importtf.js';
import { layerGraph, parameterShapes, type Architecture, type Model } from '../src/formats/model.js';
import { window, type Padding } from '../src/core/ops.js';

export const ARCH: Architecture = TUTORIAL_ARCHITECTURE;
/** The attack's and the training's hyper-parameters (the CLI's defaults, β of the tutorial's step 2). */
export const ATTACK = { lr: 0.1, beta: 0.5 } as const;
export const TRAIN = { lr: 0.01 } as const;

export { random } from '../src/core/random.js';
import { random } from '../src/core/random.js';

/** `count` samples of N(0, σ²) (Box–Muller). */
export function normal(count: number, sigma: number, seed: number): Float32Array {
  const rand = random(seed);
  return Float32Array.from({ length: count }, () => sigma * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand()));
}

/** `count` samples uniform in [lo, hi). */
export function uniform(count: number, lo: number, hi: number, seed: number): Float32Array {
  const rand = random(seed);
  return Float32Array.from({ length: count }, () => lo + (hi - lo) * rand());
}

/** A seed from a name, so that every case draws its own inputs, identically in every engine. */
export function seedOf(name: string): number {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** The tutorial network with weights and biases drawn from N(0, 0.1²). */
export function randomModel(seed = 1): Model {
  const weights = new Map<string, Float32Array>();
  for (const [key, shape] of parameterShapes(ARCH)) weights.set(key, normal(shape.reduce((a, b) => a * b, 1), 0.1, seed + seedOf(key)));
  return { architecture: ARCH, weights };
}

export interface ConvShape { layer: string; h: number; w: number; cin: number; cout: number; k: number; stride: number; padding: Padding; relu: boolean; oh: number; ow: number; padTop: number; padLeft: number }
export interface PoolShape { layer: string; h: number; w: number; c: number; size: number; stride: number; padding: Padding; oh: number; ow: number; padTop: number; padLeft: number }
export interface DenseShape { layer: string; inputs: number; outputs: number; relu: boolean }

/** Every layer's input and output shapes, per image. */
export function layerShapes(arch: Architecture): { convs: ConvShape[]; pools: PoolShape[]; denses: DenseShape[]; classes: number } {
  const convs: ConvShape[] = [], pools: PoolShape[] = [], denses: DenseShape[] = [];
  let [h, w, c] = arch.input;
  let flat = 0;
  for (const layer of arch.layers) {
    if (layer.type === 'conv2d' || layer.type === 'maxpool') {
      const k = layer.type === 'conv2d' ? layer.kernel : layer.size;
      const rows = window(h, k, layer.stride, layer.padding), cols = window(w, k, layer.stride, layer.padding);
      const common = { h, w, stride: layer.stride, padding: layer.padding, oh: rows.out, ow: cols.out, padTop: rows.before, padLeft: cols.before };
      if (layer.type === 'conv2d') {
        convs.push({ layer: layer.name, ...common, cin: c, cout: layer.filters, k, relu: layer.activation === 'relu' });
        c = layer.filters;
      } else {
        pools.push({ layer: `pool${pools.length + 1}`, ...common, c, size: k });
      }
      h = rows.out;
      w = cols.out;
    } else if (layer.type === 'flatten') {
      flat = h * w * c;
    } else if (layer.type === 'dense') {
      denses.push({ layer: layer.name, inputs: flat, outputs: layer.units, relu: layer.activation === 'relu' });
      flat = layer.units;
    }
  }
  return { convs, pools, denses, classes: flat };
}

export type KernelCase =
  | { kind: 'conv.fwd' | 'conv.bwd-input' | 'conv.bwd-filter'; name: string; n: number; flops: number; conv: ConvShape }
  /** Depthwise, multiplier 1: `conv.cin` = `conv.cout` channels, each with its own k × k filter. */
  | { kind: 'dw.fwd' | 'dw.bwd-input' | 'dw.bwd-filter'; name: string; n: number; flops: number; conv: ConvShape }
  | { kind: 'pool.fwd' | 'pool.bwd'; name: string; n: number; flops: number; pool: PoolShape }
  | { kind: 'dense.fwd'; name: string; n: number; flops: number; dense: DenseShape }
  | { kind: 'log-softmax'; name: string; n: number; flops: number; cols: number };

/** Multiply-adds of a convolution, ×2: the same for its forward pass and either gradient. */
export const convFlops = (s: ConvShape, n: number): number => 2 * s.k * s.k * s.cin * s.cout * s.oh * s.ow * n;
/** A depthwise convolution has one multiply-add per tap and output cell, ×2. */
export const depthwiseFlops = (s: ConvShape, n: number): number => 2 * s.k * s.k * s.cout * s.oh * s.ow * n;
export const denseFlops = (s: DenseShape, n: number): number => 2 * s.inputs * s.outputs * n;
/** Pooling counts one op per window cell visited (a max, or a compare-and-route backward). */
export const poolFlops = (s: PoolShape, n: number): number => s.size * s.size * s.c * s.oh * s.ow * n;
/** Log-softmax counts 4 ops per element (max, subtract-and-exp, sum, subtract). */
export const logSoftmaxFlops = (cols: number, n: number): number => 4 * cols * n;

/** The floats a convolution's case must read and write at the least (its operands and result,
 *  each once): what bounds it where memory is slower than its arithmetic (bench: the memory ceiling). */
export function convTraffic(c: KernelCase): { reads: number; writes: number } {
  if (!('conv' in c)) throw new Error(`${c.name} is not a convolution`);
  const s = c.conv, input = c.n * s.h * s.w * s.cin, output = c.n * s.oh * s.ow * s.cout;
  const filter = s.k * s.k * s.cin * (c.kind.startsWith('dw') ? 1 : s.cout);
  if (c.kind.endsWith('.fwd')) return { reads: input + filter, writes: output };
  if (c.kind.endsWith('.bwd-input')) return { reads: output + filter, writes: input };
  return { reads: input + output, writes: filter };
}

/** The kernel cases: every conv (forward, gradient to its input, to its filter), every pool
 *  (forward, backward), the dense layer and the log-softmax, at each batch size. */
export function kernelCases(arch: Architecture, batches: readonly number[]): KernelCase[] {
  const { convs, pools, denses, classes } = layerShapes(arch);
  const cases: KernelCase[] = [];
  for (const n of batches) {
    for (const kind of ['conv.fwd', 'conv.bwd-input', 'conv.bwd-filter'] as const) {
      for (const conv of convs) cases.push({ kind, name: `${kind} ${conv.layer} b${n}`, n, flops: convFlops(conv, n), conv });
    }
    for (const kind of ['pool.fwd', 'pool.bwd'] as const) {
      for (const pool of pools) cases.push({ kind, name: `${kind} ${pool.layer} b${n}`, n, flops: poolFlops(pool, n), pool });
    }
    for (const dense of denses) cases.push({ kind: 'dense.fwd', name: `dense.fwd ${dense.layer} b${n}`, n, flops: denseFlops(dense, n), dense });
    cases.push({ kind: 'log-softmax', name: `log-softmax b${n}`, n, flops: logSoftmaxFlops(classes, n), cols: classes });
  }
  return cases;
}

/** A kernel case's inputs by name (x, w, b, dy), drawn from the case's seed; weights are the model's. */
export type KernelData = Record<string, Float32Array>;

export function kernelData(c: KernelCase, model: Model): KernelData {
  const seed = seedOf(c.name);
  switch (c.kind) {
    case 'conv.fwd':
    case 'conv.bwd-input':
    case 'conv.bwd-filter':
    case 'dw.fwd':
    case 'dw.bwd-input':
    case 'dw.bwd-filter': {
      const s = c.conv;
      return {
        x: normal(c.n * s.h * s.w * s.cin, 1, seed),
        w: model.weights.get(`${s.layer}.w`)!,
        b: model.weights.get(`${s.layer}.b`)!,
        dy: normal(c.n * s.oh * s.ow * s.cout, 1, seed + 1),
      };
    }
    case 'pool.fwd':
    case 'pool.bwd': {
      // A pool's input is a ReLU's output: non-negative (|N(0, 1)|, so without ties). On negative
      // inputs tfjs-wasm's MaxPoolGrad is wrong: it drops the gradient of every window whose
      // maximum is negative (seen with tfjs 4.22; its CPU backend and the engine agree).
      const s = c.pool;
      return { x: normal(c.n * s.h * s.w * s.c, 1, seed).map(Math.abs), dy: normal(c.n * s.oh * s.ow * s.c, 1, seed + 1) };
    }
    case 'dense.fwd':
      return { x: normal(c.n * c.dense.inputs, 1, seed), w: model.weights.get(`${c.dense.layer}.w`)!, b: model.weights.get(`${c.dense.layer}.b`)! };
    case 'log-softmax':
      return { x: normal(c.n * c.cols, 3, seed) };
  }
}

/** Useful flops of one attack iteration (forward, gradient to the input) and of one training
 *  step (forward, gradients to every weight and to every layer's input but the first): the
 *  convolutions and dense layers only. */
export function endToEndFlops(arch: Architecture, n: number): { attack: number; train: number } {
  const { convs, denses } = layerShapes(arch);
  const conv = convs.map((s) => convFlops(s, n)), dense = denses.map((s) => denseFlops(s, n));
  const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
  return {
    attack: 2 * sum(conv) + 2 * sum(dense),
    train: 2 * sum(conv) + sum(conv.slice(1)) + 3 * sum(dense),
  };
}

/** The batch of images (model-input units, as preprocessing gives: [−0.5, 0.5)) and labels. */
export function images(n: number, seed = 7): { x: Float32Array; labels: number[] } {
  const [h, w, c] = ARCH.input;
  const rand = random(seed + 1);
  return { x: uniform(n * h * w * c, -0.5, 0.5, seed), labels: Array.from({ length: n }, () => Math.floor(rand() * ARCH.labels.length)) };
}

export function oneHot(labels: readonly number[], classes: number): Float32Array {
  const y = new Float32Array(labels.length * classes);
  labels.forEach((l, i) => (y[i * classes + l] = 1));
  return y;
}

/** max |a − b| / max |b|: the error relative to the scale of the expected tensor. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Infinity;
  let diff = 0, scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return Number.isFinite(diff) ? (scale === 0 ? diff : diff / scale) : Infinity;
}

// ---- the MobileNet-style network -----------------------------------------------------------

/** MobileNet v1 at width α = 0.5 on 112×112×3 pictures: a 3×3 convolution of stride 2, then 13
 *  blocks of a 3×3 depthwise and a 1×1 (pointwise) convolution, each followed by batch norm and
 *  ReLU6 (stride 2 in blocks 2, 4, 6 and 12, padding "same"), a global average pool and a dense
 *  layer to 5 classes. Built with tfjs-layers from the seeded weights (tfjs.ts), then imported. */
export const MOBILENET = {
  input: [112, 112, 3] as [number, number, number],
  alpha: 0.5,
  classes: 5,
  /** The first convolution's filters and each block's pointwise filters at α = 1, and strides. */
  first: 32,
  blocks: [[64, 1], [128, 2], [128, 1], [256, 2], [256, 1], [512, 2], [512, 1], [512, 1], [512, 1], [512, 1], [512, 1], [1024, 2], [1024, 1]] as const,
  seed: 5,
  /** The big batch of its attack iteration and kernel rows. */
  batch: 32,
} as const;

/** The layers timed alone: the first convolution, a depthwise convolution of stride 1 and one of
 *  stride 2, and two pointwise ones: an early, narrow one, and one of the five 7×7×256 → 256
 *  layers, which hold 41 % of the network's flops. */
const MOBILENET_KERNEL_LAYERS = ['conv1', 'conv_dw_3', 'conv_dw_4', 'conv_pw_3', 'conv_pw_7'];

/** The convolutions (ordinary and depthwise) of an imported network with their shapes, and the
 *  flops of one forward pass per image (convolutions and dense layers). */
export function networkConvs(arch: Architecture): { convs: { depthwise: boolean; shape: ConvShape }[]; flops: number } {
  const { nodes } = layerGraph(arch);
  const convs: { depthwise: boolean; shape: ConvShape }[] = [];
  let flops = 0;
  for (const { layer, inputs } of nodes) {
    const input = inputs[0] < 0 ? arch.input : nodes[inputs[0]].shape;
    if (layer.type === 'conv2d' || layer.type === 'depthwise_conv2d') {
      if (layer.dilation !== 1 || (layer.type === 'depthwise_conv2d' && layer.multiplier !== 1)) throw new Error(`${layer.name}: the benchmark times convolutions without dilation or channel multiplier`);
      const [h, w, cin] = input, depthwise = layer.type === 'depthwise_conv2d', k = layer.kernel;
      const rows = window(h, k, layer.stride, layer.padding), cols = window(w, k, layer.stride, layer.padding);
      const shape: ConvShape = { layer: layer.name, h, w, cin, cout: depthwise ? cin : layer.filters, k, stride: layer.stride, padding: layer.padding, relu: false, oh: rows.out, ow: cols.out, padTop: rows.before, padLeft: cols.before };
      convs.push({ depthwise, shape });
      flops += depthwise ? depthwiseFlops(shape, 1) : convFlops(shape, 1);
    } else if (layer.type === 'dense') {
      flops += 2 * input[0] * layer.units;
    }
  }
  return { convs, flops };
}

/** Kernel cases of the MobileNet layers above at each batch size: forward and both gradients
 *  (the first convolution: forward and input gradient, the one an attack on the picture needs).
 *  Named by shape: "dw" depthwise, "pw" pointwise (a matrix product). */
export function mobileNetKernelCases(arch: Architecture, batches: readonly number[]): KernelCase[] {
  const { convs } = networkConvs(arch);
  const cases: KernelCase[] = [];
  for (const n of batches) {
    for (const layer of MOBILENET_KERNEL_LAYERS) {
      const { depthwise, shape: s } = convs.find((c) => c.shape.layer === layer) ?? (() => { throw new Error(`the MobileNet has no layer ${layer}`); })();
      const size = `${s.h}×${s.w}×${s.cin}`;
      if (depthwise) {
        for (const kind of ['dw.fwd', 'dw.bwd-input', 'dw.bwd-filter'] as const) cases.push({ kind, name: `${kind} ${size} s${s.stride} b${n}`, n, flops: depthwiseFlops(s, n), conv: s });
      } else {
        const pointwise = s.k === 1, label = `${size}→${s.cout}${s.stride > 1 ? ` s${s.stride}` : ''}`;
        const kinds = pointwise ? (['conv.fwd', 'conv.bwd-input', 'conv.bwd-filter'] as const) : (['conv.fwd', 'conv.bwd-input'] as const);
        for (const kind of kinds) cases.push({ kind, name: `${pointwise ? kind.replace('conv', 'pw') : kind} ${label} b${n}`, n, flops: convFlops(s, n), conv: s });
      }
    }
  }
  return cases;
}

/** MobileNet pictures, uniform in [−1, 1) as its preprocessing gives, and a target class each. */
export function mobileNetImages(n: number, seed: number): { x: Float32Array; targets: number[] } {
  const [h, w, c] = MOBILENET.input;
  const rand = random(seed + 1);
  return { x: uniform(n * h * w * c, -1, 1, seed), targets: Array.from({ length: n }, () => Math.floor(rand() * MOBILENET.classes)) };
}
