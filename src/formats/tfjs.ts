// `mislead import-tfjs`: a TensorFlow.js Layers model (model.json with its weights manifest and
// shards, as tensorflowjs_converter or model.save() writes it) as a model file. Keras layers map
// onto the architecture's layers one to one, except where a conversion makes the network simpler
// and exactly equal: batch normalisation folds into the convolution or dense layer before it, an
// activation into the layer before it (ReLU is then fused in the kernels), a Rescaling of the
// input into the preprocessing; Dropout and friends are identities at inference.
import { InputError, isPrintable, quote } from '../errors.js';
import { assembleModel, checkArchitecture, INPUT, MAX_LAYERS, MAX_WEIGHTS, unlabelledGraph, type Activation, type Layer, type LayerType, type Model, type Preprocess } from './model.js';

/** What a Keras layer config holds, loosely: every field is checked where it is read. */
type Config = Record<string, unknown>;

interface KerasLayer {
  className: string;
  name: string;
  config: Config;
  /** Names of the layers whose outputs this one reads. */
  inbound: string[];
}

export interface TfjsImportOptions {
  /** Class names, one per output; default class0…classN−1. */
  labels?: string[];
  /** Pixel → input: (p − offset) / scale, before any Rescaling layer of the model; default
   *  offset 0, scale 1 (the 0..255 values tf.browser.fromPixels gives). */
  preprocess?: Preprocess;
  /** [height, width] for a model whose input size is left open. */
  size?: [number, number];
}

/** The Keras class names this importer reads. */
export const SUPPORTED_LAYERS = [
  'InputLayer', 'Conv2D', 'DepthwiseConv2D', 'SeparableConv2D', 'Dense', 'MaxPooling2D', 'AveragePooling2D',
  'GlobalAveragePooling2D', 'GlobalMaxPooling2D', 'BatchNormalization', 'Activation', 'ReLU', 'LeakyReLU', 'ELU',
  'Softmax', 'Dropout', 'SpatialDropout2D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout', 'Flatten', 'Reshape',
  'Add', 'Concatenate', 'Rescaling', 'ZeroPadding2D',
] as const;
const IDENTITIES = new Set(['Dropout', 'SpatialDropout2D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout']);
/** Keras activation names and their own. */
const KERAS_ACTIVATIONS: Record<string, Activation> = { linear: 'none', relu: 'relu', relu6: 'relu6', elu: 'elu', sigmoid: 'sigmoid', tanh: 'tanh', softmax: 'softmax' };

/**
 * Returns the bytes of a weight file that model.json lists, by its path as written there (checked
 * to lie inside the model's folder). A reader of files refuses one of more than `maxBytes`, the
 * bytes its group of weights still needs, before reading it.
 */
export type ShardReader = (path: string, maxBytes: number) => Uint8Array;

/** model.json's text, parsed. */
export function parseModelJson(bytes: Uint8Array, name: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new InputError(`${name}: not a JSON file (${quote((e as Error).message)})`);
  }
}

/**
 * Converts a TF.js Layers model: `json` is model.json parsed, `readShard` returns the bytes of one
 * of the weight files it lists.
 */
export function importTfjs(json: unknown, readShard: ShardReader, name: string, options: TfjsImportOptions = {}): Model {
  const fail = (why: string): never => {
    throw new InputError(`${name}: ${why}`);
  };
  if (!isObject(json)) return fail('not a TensorFlow.js model (not a JSON object)');
  const topology = isObject(json.modelTopology) && isObject(json.modelTopology.model_config) ? json.modelTopology.model_config : json.modelTopology;
  if (!isObject(topology) || typeof topology.class_name !== 'string') return fail('not a TensorFlow.js Layers model (no "modelTopology"; a graph model from a SavedModel is not supported)');
  const layers = kerasLayers(topology, fail);
  const weights = readWeights(json.weightsManifest, readShard, fail);
  return convert(layers, weights, options, fail);
}

/** The layers in the order they run, each with the names of the layers it reads. */
function kerasLayers(topology: Config, fail: (why: string) => never): { layers: KerasLayer[]; output: string } {
  const config = topology.config;
  const list = Array.isArray(config) ? config : isObject(config) && Array.isArray(config.layers) ? config.layers : fail('the model topology lists no layers');
  const sequential = topology.class_name === 'Sequential';
  if (!sequential && topology.class_name !== 'Model' && topology.class_name !== 'Functional') fail(`unsupported model class ${quote(topology.class_name)} (Sequential and functional models are)`);
  const names = new Set<string>();
  const layers: KerasLayer[] = list.map((raw: unknown, i: number) => {
    if (!isObject(raw) || typeof raw.class_name !== 'string' || !isObject(raw.config)) return fail(`layer ${i} is not a {class_name, config} object`);
    const layerName = raw.config.name ?? raw.name ?? `layer${i}`;
    // Layer names become ours, printable text of at most 100 characters (model.ts), some with a
    // suffix (_depthwise, _2).
    if (typeof layerName !== 'string' || layerName === '' || layerName.length > 64 || !isPrintable(layerName)) fail(`layer ${i}: its name ${quote(layerName)} is not printable text of 1 to 64 characters`);
    if (names.has(layerName)) fail(`two layers are named ${quote(layerName)}`);
    names.add(layerName);
    return { className: raw.class_name, name: layerName, config: raw.config, inbound: sequential ? [] : inboundOf(raw.inbound_nodes, layerName, fail) };
  });
  if (sequential) {
    // A Sequential model is a chain; its input shape sits on its first layer (or an InputLayer).
    const first = layers[0];
    const input: KerasLayer = { className: 'InputLayer', name: INPUT, config: first?.config ?? {}, inbound: [] };
    const chain = first?.className === 'InputLayer' ? layers : [input, ...layers];
    chain.forEach((l, i) => (l.inbound = i === 0 ? [] : [chain[i - 1].name]));
    return { layers: chain, output: chain[chain.length - 1].name };
  }
  const outputs = (config as Config).output_layers;
  const outputNames = Array.isArray(outputs) ? (Array.isArray(outputs[0]) ? outputs : [outputs]).map((o) => (Array.isArray(o) ? o[0] : o)) : [];
  if (outputNames.length !== 1 || typeof outputNames[0] !== 'string') fail(`the model has ${outputNames.length} outputs; one (the logits or probabilities) is supported`);
  return { layers: ordered(layers, fail), output: outputNames[0] as string };
}

/** The names a functional layer reads: Keras 2's [[[name, node, tensor, kwargs], …]] or Keras
 *  3's [{args: [keras tensors…]}], where a tensor's config holds keras_history [name, node, tensor]. */
function inboundOf(nodes: unknown, layer: string, fail: (why: string) => never): string[] {
  if (nodes === undefined || (Array.isArray(nodes) && nodes.length === 0)) return [];
  if (!Array.isArray(nodes)) return fail(`layer ${quote(layer)}: "inbound_nodes" is not a list`);
  if (nodes.length > 1) fail(`layer ${quote(layer)} is called more than once (shared layers are not supported)`);
  const names: string[] = [];
  // Keras nests a node's inputs 3 to 5 deep; a file may nest them deeper than the stack goes.
  const visit = (v: unknown, depth: number): void => {
    if (depth > 16) fail(`layer ${quote(layer)}: "inbound_nodes" is nested too deeply`);
    if (Array.isArray(v)) {
      if (typeof v[0] === 'string' && typeof v[1] === 'number') {
        if (v[1] !== 0 || (v[2] ?? 0) !== 0) fail(`layer ${quote(layer)} reads output ${quote(v[1])}.${quote(v[2])} of ${quote(v[0])}; only single-output layers called once are supported`);
        names.push(v[0]);
      } else v.forEach((item) => visit(item, depth + 1));
    } else if (isObject(v)) {
      if (Array.isArray(v.keras_history)) visit(v.keras_history, depth + 1);
      else if (isObject(v.config) && Array.isArray(v.config.keras_history)) visit(v.config.keras_history, depth + 1);
      else if (Array.isArray(v.args)) visit(v.args, depth + 1);
    }
  };
  visit(nodes[0], 0);
  return names;
}

/** Layers sorted so that each comes after the layers it reads (Keras usually lists them so): a
 *  depth-first search with a stack of its own, as a chain may be longer than the call stack. */
function ordered(layers: KerasLayer[], fail: (why: string) => never): KerasLayer[] {
  const byName = new Map(layers.map((l) => [l.name, l]));
  const done = new Set<string>(), visiting = new Set<string>();
  const out: KerasLayer[] = [];
  for (const root of layers) {
    const stack: { layer: KerasLayer; next: number }[] = [];
    const enter = (l: KerasLayer) => {
      if (done.has(l.name)) return;
      if (visiting.has(l.name)) fail(`the layers form a cycle through ${quote(l.name)}`);
      visiting.add(l.name);
      stack.push({ layer: l, next: 0 });
    };
    enter(root);
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      if (top.next < top.layer.inbound.length) {
        const n = top.layer.inbound[top.next++];
        enter(byName.get(n) ?? fail(`layer ${quote(top.layer.name)} reads ${quote(n)}, which is not a layer of the model`));
        continue;
      }
      stack.pop();
      visiting.delete(top.layer.name);
      done.add(top.layer.name);
      out.push(top.layer);
    }
  }
  return out;
}

// ---- weights ---------------------------------------------------------------------------------

const BYTES: Record<string, number> = { float32: 4, int32: 4, uint8: 1, uint16: 2, float16: 2 };

interface WeightSpec {
  name: string;
  shape: number[];
  count: number;
  /** How it is stored: a dtype of BYTES. */
  stored: string;
  quantization: Config | null;
}

/**
 * Every weight of the manifest by name, as float32, dequantized as TF.js does. The whole manifest
 * is checked, and its sizes added up, before a weight file is read; each file is read only as
 * far as its group's weights need. Also the reader of weights that come without a Layers model
 * (faceapi.ts).
 */
export function readWeights(manifest: unknown, readShard: ShardReader, fail: (why: string) => never): Map<string, { shape: number[]; data: Float32Array }> {
  if (!Array.isArray(manifest)) return fail('no "weightsManifest"');
  let values = 0;
  const listed = new Set<string>();
  const groups = manifest.map((group: unknown) => {
    if (!isObject(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) return fail('a weights manifest group is not {paths, weights}');
    const specs = group.weights.map((spec: unknown): WeightSpec => {
      if (!isObject(spec) || typeof spec.name !== 'string' || !Array.isArray(spec.shape) || !spec.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) return fail('a weight entry is not {name, shape, dtype}');
      const count = (spec.shape as number[]).reduce((a, b) => a * b, 1);
      const quantization = isObject(spec.quantization) ? spec.quantization : null;
      const stored = quantization ? quantization.dtype : spec.dtype;
      const known = typeof stored === 'string' && Object.hasOwn(BYTES, stored);
      if (!known || (!quantization && stored !== 'float32' && stored !== 'int32')) fail(`weight ${quote(spec.name)} has dtype ${quote(stored)} (float32, int32, and uint8, uint16 or float16 quantization are supported)`);
      if ((stored === 'uint8' || stored === 'uint16') && !(Number.isFinite(quantization!.scale) && Number.isFinite(quantization!.min))) fail(`weight ${quote(spec.name)}: ${stored} quantization without a finite scale and min`);
      values += count;
      if (values > MAX_WEIGHTS) fail(`weight ${quote(spec.name)} of shape ${quote(spec.shape)} takes the weights over ${MAX_WEIGHTS} values, more than a model file holds`);
      return { name: spec.name, shape: spec.shape as number[], count, stored: stored as string, quantization };
    });
    const paths = group.paths.map((p: unknown) => {
      // Only files of the model's folder are read; listed twice, a file would be read twice.
      const parts = typeof p === 'string' ? p.split(/[\\/]/) : [];
      if (typeof p !== 'string' || p === '' || p.length > 1000 || !isPrintable(p) || /^([\\/]|[A-Za-z]:)/.test(p) || parts.includes('..')) {
        return fail(`weight file ${quote(p)}: only paths inside the model's folder are read`);
      }
      const key = parts.filter((s) => s !== '' && s !== '.').join('/');
      if (listed.has(key)) fail(`weight file ${quote(p)} is listed twice`);
      listed.add(key);
      return p;
    });
    return { specs, paths, bytes: specs.reduce((n: number, s: WeightSpec) => n + s.count * BYTES[s.stored], 0) };
  });
  const weights = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const { specs, paths, bytes: need } of groups) {
    const shards: Uint8Array[] = [];
    let got = 0;
    // A model without weights may list an empty file, which is left unread.
    for (const p of need > 0 ? paths : []) {
      if (got === need) fail(`weight file ${quote(p)} is one too many: the files before it hold the ${need} bytes of its group's weights`);
      const shard = readShard(p, need - got);
      if (shard.length > need - got) fail(`weight file ${quote(p)} holds ${shard.length} bytes, more than the ${need - got} its group's weights have left`);
      shards.push(shard);
      got += shard.length;
    }
    const bytes = concat(shards);
    let offset = 0;
    for (const { name, shape, count, stored, quantization: q } of specs) {
      const size = BYTES[stored];
      if (offset + count * size > bytes.length) fail(`the weight files hold ${bytes.length} bytes, too few for weight ${quote(name)} of shape ${quote(shape)} at byte ${offset}`);
      const at = bytes.subarray(offset, offset + count * size);
      const view = new DataView(at.buffer, at.byteOffset, at.byteLength);
      const data = new Float32Array(count);
      if (stored === 'float32') for (let i = 0; i < count; i++) data[i] = view.getFloat32(i * 4, true);
      else if (stored === 'int32') for (let i = 0; i < count; i++) data[i] = view.getInt32(i * 4, true);
      else if (stored === 'float16') for (let i = 0; i < count; i++) data[i] = float16(view.getUint16(i * 2, true));
      else {
        const scale = q!.scale as number, min = q!.min as number;
        for (let i = 0; i < count; i++) data[i] = (size === 1 ? at[i] : view.getUint16(i * 2, true)) * scale + min;
      }
      weights.set(name, { shape, data });
      offset += count * size;
    }
  }
  return weights;
}

/** An IEEE half-precision number. */
function float16(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1, exponent = (bits >> 10) & 0x1f, fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---- layers ----------------------------------------------------------------------------------

type Weight = { shape: number[]; data: Float32Array };

/** A layer of ours, with its weights, and how many Keras layers read the output it stands for. */
interface Emitted {
  layer: Layer;
  weights: Map<string, Weight>;
  readers: number;
}

function convert({ layers, output }: { layers: KerasLayer[]; output: string }, kerasWeights: Map<string, Weight>, options: TfjsImportOptions, fail: (why: string) => never): Model {
  const isIdentity = (l: KerasLayer) => IDENTITIES.has(l.className) || (l.className === 'Activation' && l.config.activation === 'linear');
  // The Keras layer each output really comes from, seen through identities; and its readers.
  const through = new Map<string, string>();
  const readers = new Map<string, number>();
  for (const l of layers) {
    const origin = (n: string) => through.get(n) ?? n;
    if (isIdentity(l) && l.inbound.length === 1) through.set(l.name, origin(l.inbound[0]));
    else for (const n of l.inbound) readers.set(origin(n), (readers.get(origin(n)) ?? 0) + 1);
  }
  // What each Keras layer's output is among ours: a layer's name, or "input".
  const alias = new Map<string, string>();
  const source = (name: string): string => alias.get(name) ?? fail(`a layer reads ${quote(name)}, which comes later or is missing`);
  const findWeight = weightFinder(kerasWeights);
  const emitted: Emitted[] = [];
  const byName = new Map<string, Emitted>();
  const taken = new Set<string>([INPUT]);
  let input: [number, number, number] | null = null;
  let preprocess: Preprocess = options.preprocess ?? { offset: 0, scale: 1 };
  let inputReaders = 0;

  for (const l of layers) {
    const c = l.config;
    const kind = (SUPPORTED_LAYERS as readonly string[]).includes(l.className) ? l.className : quote(l.className, 40);
    const bad = (why: string): never => fail(`layer ${quote(l.name)} (${kind}): ${why}`);
    if (l.className === 'InputLayer') {
      if (input) bad('a second input: models with one input are supported');
      input = inputShape(c, options.size, bad);
      inputReaders = readers.get(l.name) ?? 0;
      alias.set(l.name, INPUT);
      continue;
    }
    if (isIdentity(l)) {
      if (l.inbound.length !== 1) bad(`reads ${l.inbound.length} layers; it takes one`);
      alias.set(l.name, source(l.inbound[0]));
      continue;
    }
    if (!(SUPPORTED_LAYERS as readonly string[]).includes(l.className)) bad(`unsupported layer; supported: ${SUPPORTED_LAYERS.join(', ')}`);
    if (l.inbound.length === 0) bad('reads no layer');
    const from = l.inbound.map(source);
    const producer = from.length === 1 ? byName.get(from[0]) ?? null : null;
    const outputReaders = readers.get(l.name) ?? 0;
    const weight = (key: string): Weight => {
      const full = `${l.name}/${key}`;
      return findWeight(full) ?? bad(`no weight ${quote(full)} in the weights manifest`);
    };
    const bias = (count: number): Weight => (c.use_bias === false ? { shape: [count], data: new Float32Array(count) } : weight('bias'));
    const emit = (layer: Layer, weights: [string, Weight][] = [], inputs = from): Emitted => {
      if (emitted.length === MAX_LAYERS) bad(`makes the converted model longer than ${MAX_LAYERS} layers`);
      const name = uniqueName(layer.name ?? l.name, taken);
      const previous = emitted[emitted.length - 1];
      const follows = inputs.length === 1 && inputs[0] === (previous ? previous.layer.name : INPUT);
      const e: Emitted = { layer: { ...layer, name, ...(follows ? {} : { inputs }) } as Layer, weights: new Map(weights.map(([k, w]) => [`${name}.${k}`, w])), readers: outputReaders };
      emitted.push(e);
      byName.set(name, e);
      alias.set(l.name, name);
      return e;
    };
    /** The producer, when this layer alone reads it, so that it can take this layer in. */
    const foldable = (types: LayerType[]): Emitted | null =>
      producer && producer.readers === 1 && types.includes(producer.layer.type) && 'activation' in producer.layer && producer.layer.activation === 'none' ? producer : null;
    const activate = (activation: Activation, alpha?: number): void => {
      const options = alpha === undefined ? { activation } : { activation, alpha };
      if (activation === 'none') {
        alias.set(l.name, from[0]);
        return;
      }
      const into = foldable(['conv2d', 'depthwise_conv2d', 'dense']);
      if (!into) {
        emit({ type: 'activation', ...options });
        return;
      }
      Object.assign(into.layer, options);
      into.readers = outputReaders;
      alias.set(l.name, into.layer.name!);
    };

    switch (l.className) {
      case 'Conv2D':
      case 'DepthwiseConv2D':
      case 'SeparableConv2D': {
        channelsLast(c, bad);
        const window = { kernel: square(c.kernel_size, 'kernel_size', bad), stride: square(c.strides ?? 1, 'strides', bad), dilation: square(c.dilation_rate ?? 1, 'dilation_rate', bad), padding: paddingOf(c.padding, bad) };
        const activation = activationOf(c.activation, bad);
        if (l.className === 'Conv2D') {
          const filters = int(c.filters, 'filters', bad);
          emit({ type: 'conv2d', name: l.name, filters, ...window, activation }, [['w', weight('kernel')], ['b', bias(filters)]]);
          break;
        }
        const depthwise = weight('depthwise_kernel');
        const multiplier = int(c.depth_multiplier ?? 1, 'depth_multiplier', bad);
        // Its output channels, for a bias of zeros: so many values of the kernel itself at least.
        const [k0, k1, , m] = depthwise.shape;
        if (depthwise.shape.length !== 4 || k0 !== window.kernel || k1 !== window.kernel || m !== multiplier) bad(`depthwise_kernel has shape ${quote(depthwise.shape)}, expected [${window.kernel}, ${window.kernel}, channels, ${multiplier}]`);
        const channels = depthwise.shape[2] * multiplier;
        if (l.className === 'DepthwiseConv2D') {
          emit({ type: 'depthwise_conv2d', name: l.name, multiplier, ...window, activation }, [['w', depthwise], ['b', bias(channels)]]);
          break;
        }
        // Separable: the depthwise step without a bias, then a 1×1 convolution with it.
        const first = emit({ type: 'depthwise_conv2d', name: `${l.name}_depthwise`, multiplier, ...window, activation: 'none' }, [['w', depthwise], ['b', { shape: [channels], data: new Float32Array(channels) }]]);
        first.readers = 1;
        const filters = int(c.filters, 'filters', bad);
        emit({ type: 'conv2d', name: l.name, filters, kernel: 1, stride: 1, dilation: 1, padding: 'valid', activation }, [['w', weight('pointwise_kernel')], ['b', bias(filters)]], [first.layer.name!]);
        break;
      }
      case 'Dense': {
        const units = int(c.units, 'units', bad);
        emit({ type: 'dense', name: l.name, units, activation: activationOf(c.activation, bad) }, [['w', weight('kernel')], ['b', bias(units)]]);
        break;
      }
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        channelsLast(c, bad);
        const size = square(c.pool_size ?? 2, 'pool_size', bad);
        emit({ type: l.className === 'MaxPooling2D' ? 'maxpool' : 'avgpool', size, stride: c.strides == null ? size : square(c.strides, 'strides', bad), padding: paddingOf(c.padding, bad) });
        break;
      }
      case 'GlobalAveragePooling2D':
      case 'GlobalMaxPooling2D':
        channelsLast(c, bad);
        if (c.keepdims === true) bad('keepdims is not supported');
        emit({ type: l.className === 'GlobalMaxPooling2D' ? 'global_maxpool' : 'global_avgpool' });
        break;
      case 'BatchNormalization': {
        const { scale, shift } = batchNorm(c, weight, bad);
        const into = foldable(['conv2d', 'depthwise_conv2d', 'dense']);
        if (!into) {
          emit({ type: 'affine', name: l.name }, [['w', { shape: [scale.length], data: Float32Array.from(scale) }], ['b', { shape: [shift.length], data: Float32Array.from(shift) }]]);
          break;
        }
        foldScale(into, scale, shift, bad);
        into.readers = outputReaders;
        alias.set(l.name, into.layer.name!);
        break;
      }
      case 'Activation':
        activate(activationOf(c.activation, bad));
        break;
      case 'ReLU': {
        const max = c.max_value ?? null, slope = c.negative_slope ?? 0;
        if ((c.threshold ?? 0) !== 0) bad('a threshold other than 0 is not supported');
        if (max === null && slope === 0) activate('relu');
        else if (max === null) activate('leaky_relu', number(slope, 'negative_slope', bad, 0));
        else if (max === 6 && slope === 0) activate('relu6');
        else bad(`max_value ${quote(max)} with negative_slope ${quote(slope)} is not supported (relu, relu6 or a leaky relu are)`);
        break;
      }
      case 'LeakyReLU':
        activate('leaky_relu', number(c.alpha ?? c.negative_slope ?? 0.3, 'alpha', bad, 0));
        break;
      case 'ELU':
        activate('elu', number(c.alpha ?? 1, 'alpha', bad, 0));
        break;
      case 'Softmax':
        // TF.js's default axis is 1: the last of the vector that a network must end in.
        if (c.axis !== undefined && c.axis !== -1 && c.axis !== 1) bad('a softmax over an axis other than the last is not supported');
        activate('softmax');
        break;
      case 'Flatten':
        emit({ type: 'flatten' });
        break;
      case 'Reshape':
        if (!Array.isArray(c.target_shape) || c.target_shape.length !== 1) bad(`only a reshape to a vector is supported, not to ${quote(c.target_shape)}`);
        emit({ type: 'flatten' });
        break;
      case 'Add':
        emit({ type: 'add' });
        break;
      case 'Concatenate':
        if (c.axis !== undefined && c.axis !== -1 && c.axis !== 3) bad('concatenation along an axis other than the channels (-1) is not supported');
        emit({ type: 'concat' });
        break;
      case 'Rescaling': {
        const channels = input![2];
        const k = perChannel(c.scale, channels, 'scale', bad), b = perChannel(c.offset ?? 0, channels, 'offset', bad);
        if (from[0] !== INPUT || inputReaders !== 1) {
          emit({ type: 'affine', name: l.name }, [['w', { shape: [channels], data: Float32Array.from(k) }], ['b', { shape: [channels], data: Float32Array.from(b) }]]);
          break;
        }
        // The model's first step: ((p − o)/s)·k + b = (p − (o − b·s/k)) / (s/k), in the preprocessing.
        const o = perChannel(preprocess.offset, channels, 'offset', bad), s = perChannel(preprocess.scale, channels, 'scale', bad);
        const single = (v: number[]) => (v.every((x) => x === v[0]) ? v[0] : v);
        preprocess = { ...preprocess, offset: single(o.map((oc, i) => oc - (b[i] * s[i]) / k[i])), scale: single(s.map((sc, i) => sc / k[i])) };
        alias.set(l.name, INPUT);
        break;
      }
      case 'ZeroPadding2D': {
        channelsLast(c, bad);
        const pair = (v: unknown): number[] => (Array.isArray(v) ? v.map((x) => int(x, 'padding', bad, 0)) : [int(v, 'padding', bad, 0), int(v, 'padding', bad, 0)]);
        const p = c.padding ?? 1;
        const [rows, cols] = Array.isArray(p) && p.length === 2 ? [pair(p[0]), pair(p[1])] : [pair(p), pair(p)];
        if (rows.length !== 2 || cols.length !== 2) bad(`padding ${quote(p)} is not understood`);
        emit({ type: 'pad', pad: [rows[0], rows[1], cols[0], cols[1]] });
        break;
      }
    }
  }
  if (!input) return fail('the model declares no input shape');
  const last = emitted[emitted.length - 1];
  const outputSource = alias.get(output) ?? fail(`the model's output ${quote(output)} is not one of its layers`);
  if (!last || outputSource !== last.layer.name) fail(`the model's output ${quote(output)} is not its last layer`);
  const architecture = { input, preprocess, layers: emitted.map((e) => e.layer) };
  // The converted layers are checked as a model file's are: their refusals name the file too.
  const checked = <T>(check: () => T): T => {
    try {
      return check();
    } catch (e) {
      if (e instanceof InputError) fail(e.message);
      throw e;
    }
  };
  const graph = checked(() => unlabelledGraph(architecture));
  const out = graph.nodes[graph.nodes.length - 1].shape;
  if (out.length !== 1 || out[0] < 2) fail(`the model ends in shape [${out}]; mislead needs one logit per class (at least two)`);
  const labels = options.labels ?? Array.from({ length: out[0] }, (_, i) => `class${i}`);
  if (labels.length !== out[0]) fail(`${labels.length} labels given for the model's ${out[0]} outputs`);
  const weights = new Map(emitted.flatMap((e) => [...e.weights]));
  return checked(() => assembleModel(checkArchitecture({ ...architecture, labels }), 'the converted model', (key) => weights.get(key)));
}

/** Batch normalisation at inference as y = x·scale + shift per channel, from γ, β, the moving
 *  mean μ and variance σ² (in float64, rounded once to float32 where it is stored). */
function batchNorm(c: Config, weight: (key: string) => Weight, bad: (why: string) => never): { scale: number[]; shift: number[] } {
  const axis = Array.isArray(c.axis) && c.axis.length === 1 ? c.axis[0] : c.axis ?? -1;
  if (axis !== -1 && axis !== 3) bad(`normalisation along axis ${quote(c.axis)} is not supported (the channels: -1)`);
  const mean = weight('moving_mean').data, variance = weight('moving_variance').data;
  const gamma = c.scale === false ? null : weight('gamma').data, beta = c.center === false ? null : weight('beta').data;
  const epsilon = number(c.epsilon ?? 1e-3, 'epsilon', bad);
  if ([variance, gamma, beta].some((w) => w && w.length !== mean.length)) bad('its weights (moving_mean, moving_variance, gamma, beta) differ in length');
  const negative = variance.findIndex((v) => !(v + epsilon > 0));
  if (negative >= 0) bad(`moving_variance + epsilon is not positive for channel ${negative}`);
  const scale = Array.from(mean, (_, i) => (gamma ? gamma[i] : 1) / Math.sqrt(variance[i] + epsilon));
  return { scale, shift: Array.from(mean, (m, i) => (beta ? beta[i] : 0) - m * scale[i]) };
}

/** Folds y·scale + shift into the layer that computes y: its weights scaled per output channel,
 *  its bias b·scale + shift. Every layout (conv HWIO, depthwise [k, k, cin, m], dense [in, out])
 *  keeps output channels innermost, so channel = index mod the number of output channels. */
function foldScale(into: Emitted, scale: number[], shift: number[], bad: (why: string) => never): void {
  const name = into.layer.name!;
  const w = into.weights.get(`${name}.w`)!, b = into.weights.get(`${name}.b`)!;
  if (b.data.length !== scale.length) bad(`normalises ${scale.length} channels; the layer before it has ${b.data.length}`);
  const outputs = b.data.length;
  into.weights.set(`${name}.w`, { shape: w.shape, data: Float32Array.from(w.data, (v, i) => v * scale[i % outputs]) });
  into.weights.set(`${name}.b`, { shape: b.shape, data: Float32Array.from(b.data, (v, i) => v * scale[i] + shift[i]) });
}

function inputShape(c: Config, size: [number, number] | undefined, bad: (why: string) => never): [number, number, number] {
  const shape = (c.batch_input_shape ?? c.batch_shape ?? (Array.isArray(c.input_shape) ? [null, ...c.input_shape] : undefined)) as unknown;
  if (!Array.isArray(shape) || shape.length !== 4) return bad(`the input must be an image [height, width, channels], not ${quote(shape ?? 'undeclared')}`);
  const [, h, w, ch] = shape;
  if (ch !== 1 && ch !== 3) bad(`the input has ${quote(ch)} channels; 1 (grayscale) or 3 (RGB) are supported`);
  if (h === null || w === null) {
    if (!size) return bad('the input size is left open: give it with --size HxW');
    return [int(size[0], 'the input height', bad), int(size[1], 'the input width', bad), ch];
  }
  return [int(h, 'input height', bad), int(w, 'input width', bad), ch];
}

function activationOf(v: unknown, bad: (why: string) => never): Activation {
  const a = v === undefined || v === null ? 'none' : typeof v === 'string' && Object.hasOwn(KERAS_ACTIVATIONS, v) ? KERAS_ACTIVATIONS[v] : undefined;
  return a ?? bad(`activation ${quote(v)} is not supported (${Object.keys(KERAS_ACTIVATIONS).join(', ')} are)`);
}

function paddingOf(v: unknown, bad: (why: string) => never): 'same' | 'valid' {
  return v === 'same' || v === 'valid' ? v : v === undefined ? 'valid' : bad(`padding ${quote(v)} is not supported ("same" and "valid" are)`);
}

function channelsLast(c: Config, bad: (why: string) => never): void {
  if (c.data_format !== undefined && c.data_format !== null && c.data_format !== 'channels_last') bad(`data_format ${quote(c.data_format)} is not supported (channels_last is)`);
}

/** A size given as n or [n, n]. */
function square(v: unknown, what: string, bad: (why: string) => never): number {
  if (Array.isArray(v)) {
    if (v.length !== 2 || v[0] !== v[1]) bad(`${what} ${quote(v)}: only square windows and equal strides are supported`);
    return int(v[0], what, bad);
  }
  return int(v, what, bad);
}

function int(v: unknown, what: string, bad: (why: string) => never, min = 1): number {
  return Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= 4096 ? (v as number) : bad(`${what} must be a whole number from ${min} to 4096, not ${quote(v)}`);
}

function number(v: unknown, what: string, bad: (why: string) => never, min = -Infinity): number {
  return Number.isFinite(v) && (v as number) >= min ? (v as number) : bad(`${what} must be a number${min > -Infinity ? ` ≥ ${min}` : ''}, not ${quote(v)}`);
}

/** A value given once or per channel, per channel. */
function perChannel(v: unknown, channels: number, what: string, bad: (why: string) => never): number[] {
  const list = typeof v === 'number' ? new Array<number>(channels).fill(v) : Array.isArray(v) && v.length === channels ? v : bad(`${what} ${quote(v)}: one number or one per channel (${channels}) is supported`);
  return list.map((x) => number(x, what, bad));
}

/** Weights by their name in the manifest: `layer/key`, `layer/key:0`, or a name ending in
 *  `/layer/key` (a model's name in front), looked up in an index of the names' last parts rather
 *  than by going through every name for every layer. */
function weightFinder(weights: Map<string, Weight>): (full: string) => Weight | undefined {
  const byLastParts = new Map<number, Map<string, Weight>>();
  return (full) => {
    const exact = weights.get(full) ?? weights.get(`${full}:0`);
    if (exact) return exact;
    const parts = full.split('/').length;
    let index = byLastParts.get(parts);
    if (!index) {
      index = new Map();
      for (const [key, w] of weights) {
        const all = key.split('/'), suffix = all.slice(-parts).join('/');
        if (all.length > parts && !index.has(suffix)) index.set(suffix, w);
      }
      byLastParts.set(parts, index);
    }
    return index.get(full);
  };
}

function uniqueName(base: string, taken: Set<string>): string {
  let name = base, i = 1;
  while (taken.has(name)) name = `${base}_${i++}`;
  taken.add(name);
  return name;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
