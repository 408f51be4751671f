// Fuzz target: importTfjs (model.json: the Keras topology and the weights manifest; the weight
// files it lists). Seeds: TensorFlow.js Layers models built here with random weights and saved
// through an IO handler, as test/tfjs-import.test.ts does (Sequential and functional, in Keras 2
// and Keras 3 forms; float32, uint8/uint16/float16-quantized and sharded weights), kept in memory.
// Format-aware mutations edit the topology (class names, configs, inbound nodes: unknown, later or
// own layers, cycles, shared layers, deep nesting, huge fan-in; layers removed, repeated,
// reordered, chains of thousands), the manifest (shapes, dtypes, quantization, paths outside the
// folder, repeated, empty or huge lists) and the weight files (truncated, extended, damaged).
// The weight files are read through a reader that records what it is asked for: a path outside
// the model's folder is a failure even when the input is refused.
import { createRequire } from 'node:module';
import { posix } from 'node:path';
import { random } from '../../src/core/random.js';
import { InputError } from '../../src/errors.js';
import { readModel, writeModel, type Model } from '../../src/formats/model.js';
import { importTfjs, parseModelJson, type TfjsImportOptions } from '../../src/formats/tfjs.js';
import { checkModel } from './model.js';
import { Invalid, type Target } from './harness.js';
import { below, chance, interestingInt, mutateBytes, pick, streamOf, type Rand } from './mutate.js';

type Json = Record<string, unknown>;
interface Seed {
  name: string;
  json: Json;
  shards: Map<string, Uint8Array>;
}

let SEEDS: Seed[] = [];

// ---- seeds ---------------------------------------------------------------------------------

/** TensorFlow.js, loaded through Node's require: its CommonJS build loads in about a second,
 *  where vite-node would transform its modules one by one. */
type Tf = typeof import('@tensorflow/tfjs');
type LayersModel = import('@tensorflow/tfjs').LayersModel;
type SymbolicTensor = import('@tensorflow/tfjs').SymbolicTensor;

async function buildSeeds(): Promise<Seed[]> {
  const tf = createRequire(import.meta.url)('@tensorflow/tfjs') as Tf;
  tf.env().set('PROD', true); // no advice to install the native backend on stdout
  await tf.setBackend('cpu');
  const L = tf.layers;
  const apply = (layer: { apply(x: SymbolicTensor | SymbolicTensor[]): unknown }, x: SymbolicTensor | SymbolicTensor[]) => layer.apply(x) as SymbolicTensor;

  const sequential = tf.sequential({
    name: 'gray',
    layers: [
      L.conv2d({ name: 'c1', inputShape: [9, 9, 1], filters: 3, kernelSize: 3, padding: 'same', activation: 'relu' }),
      L.maxPooling2d({ name: 'p1', poolSize: 2 }),
      L.conv2d({ name: 'c2', filters: 4, kernelSize: 2, dilationRate: 2, padding: 'same' }),
      L.leakyReLU({ name: 'lr', alpha: 0.1 }),
      L.averagePooling2d({ name: 'p2', poolSize: 2, strides: 1, padding: 'valid' }),
      L.conv2d({ name: 'c3', filters: 3, kernelSize: 1, activation: 'elu' }),
      L.flatten({ name: 'f' }),
      L.dense({ name: 'd1', units: 5, activation: 'sigmoid' }),
      L.dense({ name: 'd2', units: 3, activation: 'softmax' }),
    ],
  });

  const residual = (() => {
    const input = tf.input({ name: 'image', shape: [8, 8, 3] });
    const convBn = (x: SymbolicTensor, name: string, filters: number, kernel: number, stride: number) =>
      apply(L.batchNormalization({ name: `${name}_bn` }), apply(L.conv2d({ name, filters, kernelSize: kernel, strides: stride, padding: 'same', useBias: false }), x));
    const stem = apply(L.reLU({ name: 'stem_relu' }), convBn(input, 'stem', 4, 3, 1));
    const body = convBn(apply(L.reLU({ name: 'b1_relu' }), convBn(stem, 'b1a', 4, 3, 1)), 'b1b', 4, 3, 1);
    const block = apply(L.reLU({ name: 'out1' }), apply(L.add({ name: 'add1' }), [stem, body]));
    const shortcut = convBn(block, 'short', 6, 1, 2);
    const block2 = apply(L.add({ name: 'add2' }), [shortcut, convBn(block, 'b2', 6, 3, 2)]);
    const pooled = apply(L.globalAveragePooling2d({ name: 'gap' }), apply(L.activation({ name: 'tanh', activation: 'tanh' }), block2));
    return tf.model({ name: 'residual', inputs: input, outputs: apply(L.dense({ name: 'logits', units: 3 }), pooled) });
  })();

  const mobile = (() => {
    const input = tf.input({ name: 'rgb', shape: [10, 10, 3] });
    const bnRelu6 = (x: SymbolicTensor, name: string) => apply(L.reLU({ name: `${name}_relu`, maxValue: 6 }), apply(L.batchNormalization({ name: `${name}_bn` }), x));
    let x = apply(L.rescaling({ name: 'scale', scale: 1 / 127.5, offset: -1 }), input);
    x = apply(L.zeroPadding2d({ name: 'pad', padding: [[0, 1], [0, 1]] }), x);
    x = bnRelu6(apply(L.conv2d({ name: 'conv', filters: 4, kernelSize: 3, strides: 2, useBias: false }), x), 'conv');
    x = bnRelu6(apply(L.depthwiseConv2d({ name: 'dw', kernelSize: 3, padding: 'same', depthMultiplier: 2 }), x), 'dw');
    const a = apply(L.separableConv2d({ name: 'sep', filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }), x);
    const b = apply(L.conv2d({ name: 'pw', filters: 3, kernelSize: 1 }), x);
    x = apply(L.batchNormalization({ name: 'cat_bn' }), apply(L.concatenate({ name: 'cat' }), [a, b]));
    x = apply(L.dropout({ name: 'drop', rate: 0.5 }), apply(L.globalMaxPooling2d({ name: 'gmp' }), x));
    x = apply(L.elu({ name: 'elu' }), apply(L.dense({ name: 'hidden', units: 6 }), x));
    return tf.model({ name: 'mobile', inputs: input, outputs: apply(L.softmax({ name: 'probs' }), apply(L.dense({ name: 'out', units: 2 }), x)) });
  })();

  const seeds: Seed[] = [];
  for (const [i, [name, model]] of ([['sequential', sequential], ['residual', residual], ['mobile', mobile]] as const).entries()) {
    randomize(tf, model, i + 1);
    const saved = await save(tf, model);
    seeds.push({ name, ...saved }, { name: `${name}-sharded`, ...sharded(saved.json, saved.shards, 3) });
  }
  const [seq, , res, , mob] = seeds;
  seeds.push({ ...quantized(seq, 'uint8'), name: 'sequential-uint8' });
  seeds.push({ ...quantized(mob, 'uint16'), name: 'mobile-uint16' });
  seeds.push({ ...quantized(res, 'float16'), name: 'residual-float16' });
  seeds.push({ ...res, json: keras3(res.json), name: 'residual-keras3' });
  seeds.push({ ...mob, json: keras3(mob.json), name: 'mobile-keras3' });
  // Unchanged, every seed converts: otherwise the mutations would start from a refusal.
  for (const s of seeds) importTfjs(clone(s.json), (p) => s.shards.get(p)!, s.name);
  return seeds;
}

/** Random weights, and batch-norm variances from 0.5 to 1.5, from a seed of ours. */
function randomize(tf: Tf, model: LayersModel, seed: number): void {
  const rand = random(seed);
  for (const layer of model.layers) {
    const weights = layer.getWeights().map((w, i) => {
      const variance = /moving_variance/.test(layer.weights[i].name);
      return tf.tensor(Float32Array.from({ length: w.size }, () => (variance ? 0.5 + rand() : rand() - 0.5)), w.shape);
    });
    if (weights.length) layer.setWeights(weights);
  }
}

async function save(tf: Tf, model: LayersModel): Promise<Omit<Seed, 'name'>> {
  let saved: Omit<Seed, 'name'> | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    const json = { format: 'layers-model', modelTopology: a.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }] };
    saved = { json: JSON.parse(JSON.stringify(json)), shards: new Map([['weights.bin', new Uint8Array(a.weightData as ArrayBuffer)]]) };
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  return saved!;
}

const groupOf = (json: Json) => (json.weightsManifest as { paths: string[]; weights: Json[] }[])[0];
const clone = <T>(v: T): T => structuredClone(v);

/** The weights split into `n` files at arbitrary bytes, as tensorflowjs_converter splits them. */
function sharded(json: Json, shards: Map<string, Uint8Array>, n: number): Omit<Seed, 'name'> {
  const all = shards.get('weights.bin')!;
  const out = new Map<string, Uint8Array>();
  for (let i = 0; i < n; i++) out.set(`group1-shard${i + 1}of${n}.bin`, all.subarray(Math.floor((all.length * i) / n), Math.floor((all.length * (i + 1)) / n)));
  const copy = clone(json);
  groupOf(copy).paths = [...out.keys()];
  return { json: copy, shards: out };
}

/** Every float32 weight re-encoded as tensorflowjs_converter's quantization does. */
function quantized(seed: Seed, dtype: 'uint8' | 'uint16' | 'float16'): Omit<Seed, 'name'> {
  const json = clone(seed.json);
  const all = seed.shards.get('weights.bin')!;
  const floats = new Float32Array(all.buffer.slice(all.byteOffset, all.byteOffset + all.length));
  const parts: number[] = [];
  let at = 0;
  for (const spec of groupOf(json).weights) {
    const count = (spec.shape as number[]).reduce((a, b) => a * b, 1);
    const values = floats.subarray(at, (at += count));
    if (dtype === 'float16') {
      for (const v of values) parts.push(...u16(toFloat16(v)));
      spec.quantization = { dtype, original_dtype: 'float32' };
      continue;
    }
    const min = Math.min(...values), max = Math.max(...values), levels = dtype === 'uint8' ? 255 : 65535;
    const scale = max > min ? (max - min) / levels : 1;
    for (const v of values) {
      const q = Math.round((v - min) / scale);
      parts.push(...(dtype === 'uint8' ? [q] : u16(q)));
    }
    spec.quantization = { dtype, scale, min, original_dtype: 'float32' };
  }
  return { json, shards: new Map([['weights.bin', Uint8Array.from(parts)]]) };
}

const u16 = (v: number) => [v & 0xff, v >> 8];

/** The nearest float16 (weights here are small and normal; tiny ones become 0). */
function toFloat16(v: number): number {
  const bits = new Uint32Array(new Float32Array([v]).buffer)[0];
  const sign = (bits >>> 16) & 0x8000, exponent = ((bits >>> 23) & 0xff) - 112, mantissa = bits & 0x7fffff;
  return exponent <= 0 ? sign : sign | ((exponent << 10) + Math.round(mantissa / 8192));
}

/** A functional model's topology as Keras 3 writes it: inbound nodes as {args, kwargs} of Keras
 *  tensors, each naming its history, and `batch_shape` on the input layer. */
function keras3(json: Json): Json {
  const copy = clone(json);
  const topology = copy.modelTopology as Json;
  topology.class_name = 'Functional';
  const config = topology.config as { layers: Json[] };
  for (const layer of config.layers) {
    const c = layer.config as Json;
    if (layer.class_name === 'InputLayer') {
      c.batch_shape = c.batch_input_shape;
      delete c.batch_input_shape;
    }
    const nodes = layer.inbound_nodes as [string, number, number, Json][][];
    layer.inbound_nodes = nodes.map((node) => {
      const tensors = node.map(([name, n, t]) => kerasTensor(name, n, t));
      return { args: tensors.length === 1 ? tensors : [tensors], kwargs: {} };
    });
  }
  return copy;
}

const kerasTensor = (name: string, node = 0, tensor = 0) => ({ class_name: '__keras_tensor__', config: { shape: [null, 4], dtype: 'float32', keras_history: [name, node, tensor] } });

// ---- mutations -----------------------------------------------------------------------------

/** An input under construction: model.json as an object (or, once its text was damaged, as text)
 *  and the weight files. */
interface State {
  json: Json;
  text?: Uint8Array;
  shards: Map<string, Uint8Array>;
  options: TfjsImportOptions;
}

type Edit = (s: State, r: Rand) => string;

const ESC = '\u001b[31m';

/** A value nested `depth` lists deep (around 1, or around an inbound node reading `name`): too
 *  deep for JSON.stringify, so it stands in the object as a placeholder that toText() expands. */
const deep = (depth: number, name?: string) => `@deep:${depth}${name === undefined ? '' : `:${name}`}@`;

function toText(json: Json): Uint8Array {
  const text = JSON.stringify(json).replace(/"@deep:(\d+)(?::([^"@]*))?@"/g, (_, depth: string, name?: string) =>
    '['.repeat(Number(depth)) + (name === undefined ? '1' : JSON.stringify([name, 0, 0, {}])) + ']'.repeat(Number(depth)));
  return new TextEncoder().encode(text);
}

/** JSON values a field should not hold, plus some it may. */
function oddValue(r: Rand): unknown {
  return pick(r, [
    0, -1, 1, 2, 3, 1.5, -0.5, 4096, 4097, 2 ** 31, 2 ** 53, 1e308, -1e308, null, true, false, '', 'x', '3', 'same', 'relu', 'constructor', '__proto__',
    `${ESC}x`, 'y'.repeat(500), [], [1], [3, 3], [3, 4], [1, 1, 1], [[0, 1], [1, 0]], [2 ** 31, 1], ['3', 3], [-1], {}, { class_name: 'X' }, interestingInt(r),
    deep(pick(r, [100, 100_000])),
  ]);
}

const CLASS_NAMES = [
  'InputLayer', 'Conv2D', 'DepthwiseConv2D', 'SeparableConv2D', 'Dense', 'MaxPooling2D', 'AveragePooling2D', 'GlobalAveragePooling2D',
  'GlobalMaxPooling2D', 'BatchNormalization', 'Activation', 'ReLU', 'LeakyReLU', 'ELU', 'Softmax', 'Dropout', 'Flatten', 'Reshape', 'Add',
  'Concatenate', 'Rescaling', 'ZeroPadding2D', 'LSTM', 'Lambda', 'Multiply', 'Conv1D', 'Functional', 'Sequential', 'constructor', '__proto__',
  'toString', 'hasOwnProperty', '', `${ESC}Conv2D`, 'C'.repeat(300), 5, null,
];

const CONFIG_KEYS = [
  'kernel_size', 'strides', 'dilation_rate', 'padding', 'activation', 'filters', 'units', 'depth_multiplier', 'use_bias', 'axis', 'epsilon',
  'pool_size', 'alpha', 'negative_slope', 'max_value', 'threshold', 'target_shape', 'scale', 'offset', 'data_format', 'batch_input_shape',
  'batch_shape', 'input_shape', 'keepdims', 'name', 'center', 'rate',
];

/** A value for a config key: one of its kind first, often odd. */
function configValue(key: string, r: Rand): unknown {
  if (chance(r, 0.4)) return oddValue(r);
  switch (key) {
    case 'padding':
      return pick(r, ['same', 'valid', 'causal', 'SAME', [[0, 1], [2, 3]], [[4096, 4096], [4096, 4096]], [1, 2, 3], 4096, -1, [[0, 1]]]);
    case 'activation':
      return pick(r, ['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'tanh', 'softmax', 'gelu', 'swish', 'selu', 'constructor', 'toString', `${ESC}relu`]);
    case 'data_format':
      return pick(r, ['channels_last', 'channels_first', null, '']);
    case 'batch_input_shape':
    case 'batch_shape':
      return pick(r, [[null, 8, 8, 3], [null, 9, 9, 1], [null, null, null, 3], [null, 8, 8, 4], [null, 8, 8], [null, 4096, 4096, 3], [null, 0, 8, 3], [null, 2 ** 31, 2, 1], [8, 8, 3], [null, '8', 8, 3]]);
    case 'target_shape':
      return pick(r, [[-1], [12], [2, 6], [], [0]]);
    case 'alpha':
    case 'negative_slope':
    case 'epsilon':
    case 'scale':
    case 'offset':
    case 'max_value':
    case 'threshold':
    case 'rate':
      return pick(r, [0, 1, 6, -1, -0.5, 1e-3, 1e308, -1e308, 0.3, [1, 2, 3], [1], null]);
    case 'axis':
      return pick(r, [-1, 3, 1, 0, [3], [-1], [1, 2], null]);
    case 'use_bias':
    case 'center':
    case 'keepdims':
      return pick(r, [true, false, 0, 'false']);
    case 'name':
      return pick(r, ['c1', 'd1', 'stem', 'add1', 'image', 'input', 'logits', 'x/y', '', `${ESC}name`, 'n'.repeat(101), 'n'.repeat(100)]);
    default:
      return pick(r, [0, 1, 2, 3, 5, 4096, 4097, 2 ** 31, [1, 1], [2, 2], [3, 3], [2, 3], [4096, 4096], [0, 0], [1], [2, 2, 2]]);
  }
}

const topologyOf = (s: State): Json | undefined => {
  const t = s.json.modelTopology;
  if (typeof t !== 'object' || t === null || Array.isArray(t)) return undefined;
  const inner = (t as Json).model_config;
  return (typeof inner === 'object' && inner !== null ? inner : t) as Json;
};

/** The layer list, whether the config is one (old Sequential) or holds one. */
function layersOf(s: State): Json[] | undefined {
  const config = topologyOf(s)?.config;
  const list = Array.isArray(config) ? config : typeof config === 'object' && config !== null ? (config as Json).layers : undefined;
  return Array.isArray(list) && list.length > 0 ? (list as Json[]) : undefined;
}

const nameOf = (layer: Json): string => String((layer?.config as Json | undefined)?.name ?? layer?.name ?? '?');

/** A Keras 2 inbound node reading `names`. */
const node2 = (names: string[]) => [names.map((n) => [n, 0, 0, {}])];
/** A Keras 3 one. */
const node3 = (names: string[]) => [{ args: names.length === 1 ? [kerasTensor(names[0])] : [names.map((n) => kerasTensor(n))], kwargs: {} }];

const topologyEdits: Edit[] = [
  // class names
  (s, r) => {
    const layers = layersOf(s);
    if (!layers) return 'no-layers';
    const i = below(r, layers.length);
    layers[i] = { ...layers[i], class_name: pick(r, CLASS_NAMES) };
    return `layer${i}.class_name=${JSON.stringify(layers[i].class_name)?.slice(0, 30)}`;
  },
  // config fields
  (s, r) => {
    const layers = layersOf(s);
    if (!layers) return 'no-layers';
    const i = below(r, layers.length), config = { ...(layers[i].config as Json) };
    const key = pick(r, CONFIG_KEYS);
    const what = below(r, 10);
    if (what === 0) delete config[key];
    else config[key] = configValue(key, r);
    layers[i] = { ...layers[i], config: what === 1 && chance(r, 0.3) ? (oddValue(r) as Json) : config };
    return `layer${i}.${key}${what === 0 ? '-removed' : `=${JSON.stringify(config[key])?.slice(0, 30)}`}`;
  },
  // inbound nodes
  (s, r) => {
    const layers = layersOf(s);
    if (!layers) return 'no-layers';
    const i = below(r, layers.length), names = layers.map(nameOf), own = names[i];
    const other = () => pick(r, names);
    const later = names[Math.min(names.length - 1, i + 1 + below(r, 3))];
    const form = chance(r, 0.5) ? node2 : node3;
    const kind = below(r, 14);
    const nodes: unknown = [
      () => form(['nowhere']),
      () => form([later]),
      () => form([own]),
      () => form([names[names.length - 1]]),
      () => [],
      () => [...form([other()]), ...form([other()])],
      () => [[[other(), 1, 0, {}]]],
      () => [[[other(), 0, pick(r, [1, -1, 'x', `${ESC}`, { a: 1 }]), {}]]],
      () => [deep(pick(r, [20, 1000, 100_000]), other())],
      () => form(Array(pick(r, [2, 100, 10_000])).fill(other())),
      () => form([other(), other()]),
      () => [{ args: [{ config: {} }], kwargs: {} }],
      () => oddValue(r),
      () => {
        // two layers reading each other
        const j = below(r, layers.length);
        layers[j] = { ...layers[j], inbound_nodes: form([own]) };
        return form([names[j]]);
      },
    ][kind]();
    layers[i] = { ...layers[i], inbound_nodes: nodes };
    return `layer${i}.inbound(${kind})`;
  },
  // the layer list
  (s, r) => {
    const layers = layersOf(s);
    if (!layers) return 'no-layers';
    const i = below(r, layers.length), kind = below(r, 7);
    if (kind === 0) layers.splice(i, 1);
    else if (kind === 1) layers.splice(below(r, layers.length + 1), 0, clone(layers[i]));
    else if (kind === 2) {
      const copy = clone(layers[i]);
      (copy.config as Json).name = `${nameOf(copy)}_copy`;
      layers.splice(i + 1, 0, copy);
    } else if (kind === 3) layers.reverse();
    else if (kind === 4) {
      const [moved] = layers.splice(i, 1);
      layers.splice(below(r, layers.length + 1), 0, moved);
    } else if (kind === 5) layers.splice(i, 0, { class_name: pick(r, ['LSTM', 'Lambda', 'Multiply', 'Conv3D']), config: { name: `odd${i}` }, inbound_nodes: layers[i].inbound_nodes });
    else {
      // a long chain of identities or activations after layer i (the rest reads its end)
      const n = pick(r, [100, 3000, 10_500]), kindName = pick(r, ['Dropout', 'ReLU', 'Activation']);
      const functional = layers.some((l) => Array.isArray(l.inbound_nodes) && l.inbound_nodes.length > 0);
      const chain = Array.from({ length: n }, (_, k) => ({
        class_name: kindName, config: { name: `chain${k}`, activation: 'linear' },
        ...(functional ? { inbound_nodes: node2([k === 0 ? nameOf(layers[i]) : `chain${k - 1}`]) } : {}),
      }));
      if (functional) {
        for (const l of layers) {
          if (l !== layers[i] && JSON.stringify(l.inbound_nodes ?? null).includes(JSON.stringify(nameOf(layers[i])))) {
            l.inbound_nodes = JSON.parse(JSON.stringify(l.inbound_nodes).replaceAll(JSON.stringify(nameOf(layers[i])), JSON.stringify(`chain${n - 1}`)));
          }
        }
      }
      layers.splice(i + 1, 0, ...chain);
    }
    return `layers(${kind})@${i}`;
  },
  // the model
  (s, r) => {
    const topology = topologyOf(s);
    if (!topology) return 'no-topology';
    const config = topology.config as Json;
    const kind = below(r, 6);
    if (kind === 0) topology.class_name = pick(r, ['Sequential', 'Model', 'Functional', 'Graph', '', null, 'constructor']);
    else if (kind === 1 && typeof config === 'object' && config !== null) {
      const names = (layersOf(s) ?? []).map(nameOf);
      config.output_layers = pick(r, [[['nowhere', 0, 0]], [[names[0], 0, 0]], [[names[names.length - 1], 0, 0], [names[0], 0, 0]], [], 'x', [names[names.length - 1], 0, 0], [[5, 0, 0]], null]);
    } else if (kind === 2) s.json.modelTopology = { model_config: topology, keras_version: '2.15.0' };
    else if (kind === 3) s.json.modelTopology = pick(r, [null, {}, [], 'model', { class_name: 'Sequential' }]);
    else if (kind === 4 && Array.isArray((config as Json)?.layers)) topology.config = (config as Json).layers;
    else delete s.json.modelTopology;
    return `model(${kind})`;
  },
];

interface Group { paths: unknown; weights: unknown }
const groupsOf = (s: State): Group[] | undefined => {
  const groups = Array.isArray(s.json.weightsManifest) ? (s.json.weightsManifest as unknown[]).filter((g) => typeof g === 'object' && g !== null) : [];
  return groups.length > 0 ? (groups as Group[]) : undefined;
};
const specsOf = (s: State): Json[] | undefined => {
  const g = groupsOf(s);
  const group = g ? g[0] : undefined;
  return group && Array.isArray(group.weights) && group.weights.length > 0 ? (group.weights as Json[]) : undefined;
};

const manifestEdits: Edit[] = [
  // a weight's shape
  (s, r) => {
    const specs = specsOf(s);
    if (!specs) return 'no-weights';
    const i = below(r, specs.length), old = Array.isArray(specs[i].shape) ? (specs[i].shape as number[]) : [];
    specs[i] = {
      ...specs[i],
      shape: pick(r, [
        [], [0], [1], [-1], [1.5], ['3'], [null], [2 ** 31, 2 ** 31], [2 ** 26, 4], [2 ** 53], [1e308], [0, 2 ** 40], [0, 1, 2 ** 30, 4096],
        [...old, 1], old.slice(1), old.map((d) => d + 1), [...old].reverse(), Array(64).fill(1), Array(10_000).fill(1), 'shape', 7,
      ]),
    };
    return `weight${i}.shape=${JSON.stringify(specs[i].shape).slice(0, 30)}`;
  },
  // dtypes and quantization
  (s, r) => {
    const specs = specsOf(s);
    if (!specs) return 'no-weights';
    const i = below(r, specs.length), spec = { ...specs[i] };
    specs[i] = spec;
    if (chance(r, 0.4)) {
      spec.dtype = pick(r, ['float32', 'int32', 'float64', 'string', 'bool', 'complex64', 'uint8', 'constructor', '__proto__', '', null, 5]);
      return `weight${i}.dtype=${JSON.stringify(spec.dtype)}`;
    }
    const q = { ...((spec.quantization as Json | undefined) ?? {}) };
    const field = pick(r, ['dtype', 'scale', 'min', 'all']);
    if (field === 'all') spec.quantization = pick(r, [undefined, null, 'uint8', [], { dtype: 'uint8' }, { dtype: 'float16' }, { dtype: 'uint16', scale: 1, min: 0 }]);
    else {
      q[field] = field === 'dtype' ? pick(r, ['uint8', 'uint16', 'float16', 'int8', 'float32', 'int32', 'constructor', 'toString', null]) : pick(r, [0, 1, -1, 1e308, 1e-45, null, '1', [1], 2 ** 53]);
      spec.quantization = q;
    }
    return `weight${i}.quantization.${field}=${JSON.stringify(field === 'all' ? spec.quantization : q[field])}`;
  },
  // paths
  (s, r) => {
    const groups = groupsOf(s);
    if (!groups) return 'no-groups';
    const g = groups[below(r, groups.length)];
    const paths = Array.isArray(g.paths) ? [...(g.paths as unknown[])] : [];
    const kind = below(r, 6);
    const odd = () => pick(r, [
      '../weights.bin', '/etc/passwd', '', 'a/../../b', '..\\weights.bin', 'C:\\weights.bin', 'sub/../weights.bin', './weights.bin', 'weights.bin/',
      '.', '..', '/', '//weights.bin', '\\\\host\\share', `${ESC}weights.bin`, 'w\u0000.bin', 'x'.repeat(2000), 'missing.bin', 'group1-shard2of3.bin', 5, null,
    ]);
    if (kind === 0 && paths.length > 0) paths[below(r, paths.length)] = odd();
    else if (kind === 1) paths.push(odd());
    else if (kind === 2 && paths.length > 0) paths.push(paths[below(r, paths.length)]);
    else if (kind === 3) g.paths = Array(pick(r, [2, 1000, 10_000])).fill(paths[0] ?? 'weights.bin');
    else if (kind === 4) paths.reverse();
    else paths.length = 0;
    if (kind !== 3) g.paths = chance(r, 0.05) ? oddValue(r) : paths;
    return `paths(${kind})=${JSON.stringify(g.paths).slice(0, 40)}`;
  },
  // the weight list
  (s, r) => {
    const specs = specsOf(s);
    if (!specs) return 'no-weights';
    const i = below(r, specs.length), kind = below(r, 6);
    if (kind === 0) specs.splice(i, 1);
    else if (kind === 1) specs.splice(below(r, specs.length + 1), 0, clone(specs[i]));
    else if (kind === 2) [specs[i], specs[0]] = [specs[0], specs[i]];
    else if (kind === 3) specs.push(...Array.from({ length: pick(r, [1000, 10_000]) }, (_, k) => ({ name: `extra${k}/kernel`, shape: pick(r, [[0], [1], [0, 2 ** 40]]), dtype: 'float32' })));
    else if (kind === 4) specs[i] = { ...specs[i], name: pick(r, ['nowhere/kernel', `prefix/${specs[i].name}`, `${specs[i].name}:0`, '', 5, null, `${ESC}k`]) };
    else specs[i] = oddValue(r) as Json;
    return `weights(${kind})@${i}`;
  },
  // groups and the manifest
  (s, r) => {
    const groups = groupsOf(s);
    const kind = below(r, 5);
    if (kind === 0 && groups && Array.isArray(groups[0].weights)) {
      // split the first group's weights in two, over the same files
      const weights = groups[0].weights as Json[];
      const cut = below(r, weights.length + 1);
      s.json.weightsManifest = [{ paths: groups[0].paths, weights: weights.slice(0, cut) }, { paths: groups[0].paths, weights: weights.slice(cut) }, ...groups.slice(1)];
    } else if (kind === 1) s.json.weightsManifest = [...(groups ?? []), { paths: [], weights: [] }];
    else if (kind === 2) s.json.weightsManifest = Array.from({ length: pick(r, [100, 10_000]) }, () => ({ paths: [], weights: [] }));
    else if (kind === 3) s.json.weightsManifest = pick(r, [null, {}, [], 'x', [null], [{ paths: 'weights.bin', weights: [] }]]);
    else delete s.json.weightsManifest;
    return `manifest(${kind})`;
  },
];

const shardEdits: Edit[] = [
  (s, r) => {
    const names = [...s.shards.keys()];
    if (names.length === 0) return 'no-shards';
    const name = pick(r, names), bytes = s.shards.get(name)!;
    const kind = below(r, 6);
    if (kind === 0) s.shards.set(name, bytes.subarray(0, below(r, bytes.length + 1)));
    else if (kind === 1) s.shards.set(name, bytes.subarray(0, Math.max(0, bytes.length - pick(r, [1, 2, 4]))));
    else if (kind === 2) s.shards.set(name, Uint8Array.from([...bytes, ...new Uint8Array(pick(r, [1, 4, 4096]))]));
    else if (kind === 3) s.shards.delete(name);
    else if (kind === 4) s.shards.set(name, new Uint8Array());
    else {
      const out = bytes.slice();
      // a float32 weight that is NaN, infinite or huge, or damaged bytes
      if (out.length >= 4) new DataView(out.buffer).setFloat32(4 * below(r, out.length >> 2), pick(r, [NaN, Infinity, -Infinity, 3.4e38, 1e-45]), true);
      s.shards.set(name, out);
    }
    return `shard(${kind}):${name}`;
  },
  (s, r) => {
    const names = [...s.shards.keys()];
    if (names.length === 0) return 'no-shards';
    const name = pick(r, names);
    const [bytes, what] = mutateBytes(s.shards.get(name)!, r, [...s.shards.values()]);
    s.shards.set(name, bytes);
    return `shard-bytes:${name}:${what}`;
  },
];

/** model.json's text, damaged: numbers replaced, bytes flipped, cut. */
const textEdit: Edit = (s, r) => {
  const [bytes, what] = mutateBytes(s.text ?? toText(s.json), r, [], true);
  s.text = bytes;
  return `text:${what}`;
};

const optionEdit: Edit = (s, r) => {
  const kind = below(r, 4);
  if (kind === 0) s.options.labels = pick(r, [['a'], ['a', 'b'], ['a', 'b', 'c'], ['a', 'a', 'b'], ['', 'b', 'c'], [`${ESC}a`, 'b', 'c'], Array.from({ length: 10_000 }, (_, i) => `l${i}`)]);
  else if (kind === 1) s.options.preprocess = pick(r, [{ offset: 127.5, scale: 127.5 }, { offset: [1, 2, 3], scale: 2 }, { offset: 0, scale: 0 }, { offset: 0, scale: [1, -1, 1] }, { offset: [1, 2], scale: 1 }]);
  else s.options.size = pick(r, [[8, 8], [1, 1], [0, 5], [4096, 4096], [4097, 2], [2 ** 31, 1]] as [number, number][]);
  return `options.${Object.keys(s.options).join('+')}`;
};

const EDITS: [number, Edit[]][] = [[5, topologyEdits], [4, manifestEdits], [2, shardEdits], [1, [textEdit]], [0.5, [optionEdit]]];
const WEIGHT = EDITS.reduce((n, [w]) => n + w, 0);

function pickEdit(r: Rand): Edit {
  let x = r() * WEIGHT;
  for (const [w, edits] of EDITS) {
    if ((x -= w) < 0) return pick(r, edits);
  }
  return textEdit;
}

// ---- the target ----------------------------------------------------------------------------

export const tfjsTarget: Target = {
  name: 'tfjs',
  parser: 'importTfjs (model.json + weight files)',
  async prepare() {
    if (SEEDS.length === 0) SEEDS = await buildSeeds();
  },
  make(index) {
    if (SEEDS.length === 0) throw new Error('tfjsTarget.prepare() has not been awaited');
    const r = streamOf('tfjs', index);
    const seed = pick(r, SEEDS);
    const state: State = { json: clone(seed.json), shards: new Map(seed.shards), options: {} };
    const ops: string[] = [];
    for (let k = pick(r, [1, 1, 1, 2, 2, 3, 4]); k > 0; k--) {
      let edit = pickEdit(r);
      if (state.text && edit !== optionEdit && edit !== textEdit && !shardEdits.includes(edit)) {
        // the text no longer parses as the object: edit it further as text
        edit = textEdit;
      }
      ops.push(edit(state, r));
    }
    const text = state.text ?? toText(state.json);
    const files: Record<string, Uint8Array> = { 'model.json': text, ...Object.fromEntries(state.shards) };
    // Half the time the reader refuses a file larger than asked for, as the command line's does;
    // otherwise importTfjs must notice by itself.
    const strict = chance(r, 0.5);
    return {
      seed: seed.name,
      ops,
      size: Object.values(files).reduce((n, b) => n + b.length, 0),
      files,
      run: () => checkImport(text, state.shards, state.options, strict),
    };
  },
};

/** Imports the input; a path outside the folder asked for, or an accepted model that is not
 *  sound, is a failure. */
function checkImport(text: Uint8Array, shards: Map<string, Uint8Array>, options: TfjsImportOptions, strict: boolean): void {
  const asked: string[] = [];
  const readShard = (path: string, maxBytes: number): Uint8Array => {
    asked.push(path);
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new Invalid(`asked for ${JSON.stringify(path)} with maxBytes ${maxBytes}`);
    const bytes = shards.get(path);
    if (!bytes) throw new InputError(`${path}: cannot read a weight file of model.json (ENOENT)`);
    if (strict && bytes.length > maxBytes) throw new InputError(`${path}: ${bytes.length} bytes is too large for a weight file of model.json (the limit is ${maxBytes} bytes)`);
    return bytes;
  };
  let model: Model;
  try {
    model = importTfjs(parseModelJson(text, 'model.json'), readShard, 'model.json', options);
  } finally {
    const outside = asked.find((p) => !inside(p));
    if (outside !== undefined) throw new Invalid(`read ${JSON.stringify(outside.slice(0, 60))}, outside the model's folder`);
    if (new Set(asked).size !== asked.length) throw new Invalid('read a weight file twice');
  }
  checkModel(model);
  // What the converter writes, the reader of model files takes back as it is.
  const again = readModel(writeModel(model), 'converted.safetensors');
  if (JSON.stringify(again.architecture) !== JSON.stringify(model.architecture)) throw new Invalid('the converted architecture does not read back the same');
}

/** Whether a path, relative to the model's folder, stays in it (backslashes taken as separators). */
function inside(path: string): boolean {
  const normal = posix.normalize(path.replaceAll('\\', '/'));
  return !normal.startsWith('/') && normal !== '..' && !normal.startsWith('../') && !/^[A-Za-z]:/.test(normal) && !normal.includes('\0');
}
