// A model: its architecture (SPEC §2) and float32 weights, as stored in a .safetensors file
// (core/net.ts places it in the engine's memory). An architecture is a list of layers, each
// reading the layer before it or the layers it names, so residual networks are graphs.
import { sizeOf } from '../core/engine.js';
import { InputError, isPrintable, quote } from '../errors.js';
import { window, type Padding } from '../core/ops.js';
import { parseSafetensors, serializeSafetensors } from './safetensors.js';

/** What follows a layer. `softmax` may end the network only: it is recorded, never applied, so
 *  that attacks see the logits before it. */
export const ACTIVATIONS = ['none', 'relu', 'relu6', 'leaky_relu', 'elu', 'sigmoid', 'tanh', 'softmax'] as const;
export type Activation = (typeof ACTIVATIONS)[number];
/** The slope (leaky_relu) or the saturation (elu) of an activation that has one, Keras's defaults. */
export const DEFAULT_ALPHA: Partial<Record<Activation, number>> = { leaky_relu: 0.3, elu: 1 };

interface Activated {
  activation: Activation;
  /** For leaky_relu and elu. */
  alpha?: number;
}

interface Window {
  kernel: number;
  stride: number;
  dilation: number;
  padding: Padding;
}

interface PoolWindow {
  size: number;
  stride: number;
  padding: Padding;
}

/** Each layer reads `inputs` (layer names, or "input" for the model's input); without them, the
 *  layer before it. */
export type Layer = { name?: string; inputs?: string[] } & (
  | ({ type: 'conv2d'; name: string; filters: number } & Window & Activated)
  | ({ type: 'depthwise_conv2d'; name: string; multiplier: number } & Window & Activated)
  | ({ type: 'maxpool' | 'avgpool' } & PoolWindow)
  | { type: 'global_maxpool' | 'global_avgpool' | 'flatten' | 'add' | 'concat' }
  | ({ type: 'dense'; name: string; units: number } & Activated)
  | ({ type: 'activation' } & Activated)
  /** Per channel: x·w + b (batch normalisation that could not be folded into a convolution). */
  | { type: 'affine'; name: string }
  /** Zeros around the picture: [top, bottom, left, right]. */
  | { type: 'pad'; pad: [number, number, number, number] }
);
export type LayerType = Layer['type'];

/** Model input from a 0..255 pixel p of channel c: (p − offset_c) / scale_c. */
export interface Preprocess {
  offset: number | number[];
  scale: number | number[];
  /**
   * How a picture is brought to the input size. "opencv" (the default): stretched by OpenCV's
   * INTER_LINEAR (pixel centres), 8-bit. "face-api": as face-api.js feeds its networks, padded with
   * zeros to a centred square, then TensorFlow 1's bilinear resize (no half-pixel offset), not rounded.
   */
  resize?: Resize;
}

export const RESIZES = ['opencv', 'face-api'] as const;
export type Resize = (typeof RESIZES)[number];

export interface Architecture {
  input: [number, number, number];
  labels: string[];
  preprocess: Preprocess;
  layers: Layer[];
}

export interface Model {
  architecture: Architecture;
  /** `<layer>.w` and `<layer>.b` for each layer with weights. */
  weights: Map<string, Float32Array>;
}

/** A layer placed in the graph: where its inputs come from (−1: the model's input) and the shape
 *  of its output per image ([h, w, c] or [units]). */
export interface Node {
  layer: Layer;
  inputs: number[];
  shape: number[];
}

export const ARCHITECTURE_KEY = 'mislead.architecture';
/** The name by which a layer reads the model's input. */
export const INPUT = 'input';
const LAYER_TYPES: readonly LayerType[] = ['conv2d', 'depthwise_conv2d', 'dense', 'maxpool', 'avgpool', 'global_maxpool', 'global_avgpool', 'flatten', 'add', 'concat', 'activation', 'affine', 'pad'];
/** The options of each layer type, besides type, name and inputs: any other is refused, as a
 *  layer would otherwise silently leave out what its file asks for (an activation, say). */
const ACTIVATED = ['activation', 'alpha'], WINDOW = ['kernel', 'stride', 'dilation', 'padding'], POOL = ['size', 'stride', 'padding'];
const OPTIONS: Record<LayerType, readonly string[]> = {
  conv2d: ['filters', ...WINDOW, ...ACTIVATED], depthwise_conv2d: ['multiplier', ...WINDOW, ...ACTIVATED], dense: ['units', ...ACTIVATED],
  maxpool: POOL, avgpool: POOL, global_maxpool: [], global_avgpool: [], flatten: [], add: [], concat: [], activation: ACTIVATED, affine: [], pad: ['pad'],
};
/** Bounds that keep a hostile file from asking for a huge allocation. */
const MAX_SIDE = 4096;
const MAX_FLOATS = 1 << 26;
/** Weights of a network, all together: what a model file of 256 MiB holds. */
export const MAX_WEIGHTS = 1 << 26;
const MAX_LABEL = 100;
export const MAX_LAYERS = 10_000;

/** Checks an architecture (parsed JSON) and returns it typed and with defaults filled in:
 *  convolutions stride 1, dilation 1, padding "valid", activation "none"; pools stride = size,
 *  padding "valid"; depthwise multiplier 1. */
export function checkArchitecture(json: unknown): Architecture {
  const fail = (why: string): never => {
    throw new InputError(`invalid architecture: ${why}`);
  };
  if (!isObject(json)) return fail('not a JSON object');
  const input = json.input;
  if (!Array.isArray(input) || input.length !== 3 || !input.every((v) => isInt(v, 1, MAX_SIDE))) return fail('"input" must be [height, width, channels]');
  if (input[2] !== 1 && input[2] !== 3) fail(`input has ${input[2]} channels; 1 (grayscale) or 3 (RGB) are supported`);
  const labels = json.labels;
  // Labels are printed, drawn and matched against --target: short, printable text.
  const label = (l: unknown) => typeof l === 'string' && l.length > 0 && l.length <= MAX_LABEL && isPrintable(l);
  if (!Array.isArray(labels) || labels.length < 2 || !labels.every(label) || new Set(labels).size !== labels.length) {
    return fail(`"labels" must be at least two distinct non-empty strings of printable characters, at most ${MAX_LABEL} each`);
  }
  const preprocess = checkPreprocess(json.preprocess ?? { offset: 128, scale: 256 }, input[2], fail);
  if (!Array.isArray(json.layers) || json.layers.length === 0 || json.layers.length > MAX_LAYERS) return fail(`"layers" must be a list of 1 to ${MAX_LAYERS} layers`);
  const names = new Set<string>([INPUT]);
  const count = json.layers.length;
  const layers = json.layers.map((raw: unknown, i: number): Layer => {
    if (!isObject(raw)) return fail(`layer ${i} is not an object`);
    // A type is named as it is only when it is one of ours: file text goes through quote().
    const where = LAYER_TYPES.includes(raw.type as LayerType) ? `layer ${i} (${raw.type})` : `layer ${i}`;
    const int = (key: string, fallback?: number, min = 1): number => {
      const v = raw[key] ?? fallback;
      return isInt(v, min, MAX_SIDE) ? v : fail(`${where}: "${key}" must be an integer from ${min} to ${MAX_SIDE}`);
    };
    const padding = (): Padding => {
      const p = raw.padding ?? 'valid';
      return p === 'same' || p === 'valid' ? p : fail(`${where}: padding must be "same" or "valid", not ${quote(p)}`);
    };
    const activated = (): Activated => {
      const a = raw.activation ?? 'none';
      if (!ACTIVATIONS.includes(a as Activation)) fail(`${where}: activation must be one of ${ACTIVATIONS.join(', ')}, not ${quote(a)}`);
      if (a === 'softmax' && i !== count - 1) fail(`${where}: softmax may only end the network (attacks work on the logits before it)`);
      const fallback = DEFAULT_ALPHA[a as Activation];
      if (fallback === undefined) return raw.alpha === undefined ? { activation: a as Activation } : fail(`${where}: "alpha" is an option of leaky_relu and elu only`);
      const alpha = raw.alpha ?? fallback;
      return Number.isFinite(alpha) && (alpha as number) >= 0 ? { activation: a as Activation, alpha: alpha as number } : fail(`${where}: "alpha" must be a number ≥ 0`);
    };
    const windowOf = (): Window => {
      const w = { kernel: int('kernel'), stride: int('stride', 1), dilation: int('dilation', 1), padding: padding() };
      if (w.stride > 1 && w.dilation > 1) fail(`${where}: stride and dilation cannot both be above 1 (as in TensorFlow)`);
      return w;
    };
    const poolWindow = (): PoolWindow => {
      const size = int('size');
      return { size, stride: int('stride', size), padding: padding() };
    };
    // A name is needed by layers with weights (their tensors are named after it); any layer may
    // have one, so that others can name it among their inputs.
    const named = (required: boolean): { name?: string } => {
      const n = raw.name;
      if (n === undefined && !required) return {};
      if (typeof n !== 'string' || n === '' || !isPrintable(n) || n.length > MAX_LABEL) return fail(`${where} needs a ${required ? '' : 'printable '}"name"`);
      if (names.has(n)) fail(`${where}: the name ${quote(n)} is ${n === INPUT ? "the model input's" : 'taken by an earlier layer'}`);
      names.add(n);
      return { name: n };
    };
    const inputsOf = (): { inputs?: string[] } => {
      if (raw.inputs === undefined) return {};
      if (!Array.isArray(raw.inputs) || raw.inputs.length === 0 || !raw.inputs.every((v) => typeof v === 'string')) fail(`${where}: "inputs" must be a list of layer names`);
      return { inputs: [...(raw.inputs as string[])] };
    };
    const type = raw.type as LayerType;
    if (!LAYER_TYPES.includes(type)) return fail(`${where}: unknown layer type ${quote(raw.type)} (supported: ${LAYER_TYPES.join(', ')})`);
    const extra = Object.keys(raw).find((key) => key !== 'type' && key !== 'name' && key !== 'inputs' && !OPTIONS[type].includes(key));
    if (extra !== undefined) fail(`${where}: ${quote(extra)} is not an option of ${type}`);
    const weighted = type === 'conv2d' || type === 'depthwise_conv2d' || type === 'dense' || type === 'affine';
    const common = { ...named(weighted), ...inputsOf() };
    switch (type) {
      case 'conv2d':
        return { type, ...common, name: common.name!, filters: int('filters'), ...windowOf(), ...activated() };
      case 'depthwise_conv2d':
        return { type, ...common, name: common.name!, multiplier: int('multiplier', 1), ...windowOf(), ...activated() };
      case 'dense':
        return { type, ...common, name: common.name!, units: int('units'), ...activated() };
      case 'maxpool':
      case 'avgpool':
        return { type, ...common, ...poolWindow() };
      case 'activation':
        return { type, ...common, ...activated() };
      case 'affine':
        return { type, ...common, name: common.name! };
      case 'pad': {
        const p = raw.pad;
        if (!Array.isArray(p) || p.length !== 4 || !p.every((v) => isInt(v, 0, MAX_SIDE))) return fail(`${where}: "pad" must be [top, bottom, left, right], integers from 0 to ${MAX_SIDE}`);
        return { type, ...common, pad: p as [number, number, number, number] };
      }
      default:
        return { type, ...common };
    }
  });
  const architecture: Architecture = { input: input as [number, number, number], labels, preprocess, layers };
  layerGraph(architecture);
  return architecture;
}

function checkPreprocess(raw: unknown, channels: number, fail: (why: string) => never): Preprocess {
  const usage = `"preprocess" must be {offset, scale}, each a number or a list of ${channels} (one per channel), with scales non-zero and of one sign, and optionally "resize": ${RESIZES.map((r) => `"${r}"`).join(' or ')}`;
  if (!isObject(raw)) return fail(usage);
  const values = (v: unknown): number[] | null => {
    const list = typeof v === 'number' ? [v] : Array.isArray(v) && v.length === channels ? v : null;
    return list && list.every((x) => Number.isFinite(x)) ? (list as number[]) : null;
  };
  const offset = values(raw.offset), scale = values(raw.scale);
  if (!offset || !scale || scale.some((s) => s === 0 || Math.sign(s) !== Math.sign(scale[0]))) return fail(usage);
  if (raw.resize !== undefined && !RESIZES.includes(raw.resize as Resize)) return fail(usage);
  return { offset: raw.offset as number | number[], scale: raw.scale as number | number[], ...(raw.resize === undefined ? {} : { resize: raw.resize as Resize }) };
}

/**
 * The units of the engine's input, one offset and scale for every channel, as attacks and image
 * conversions use them: x = (p − offset) / scale. A model whose channels differ is given their
 * means here; `channelCorrection` is then the per-channel remainder, applied by the network
 * first, so that model units still measure every channel in grey levels alike.
 */
export function inputUnits(arch: Architecture): { offset: number; scale: number } {
  const mean = (v: number | number[]) => (typeof v === 'number' ? v : v.reduce((a, b) => a + b, 0) / v.length);
  return { offset: mean(arch.preprocess.offset), scale: mean(arch.preprocess.scale) };
}

/** Per channel c: x_c = x·scale_c + shift_c turns input units into the model's own; null when
 *  every channel has the same offset and scale. */
export function channelCorrection(arch: Architecture): { scale: number[]; shift: number[] } | null {
  const { offset, scale } = arch.preprocess;
  if (typeof offset === 'number' && typeof scale === 'number') return null;
  const channels = arch.input[2];
  const per = (v: number | number[], c: number) => (typeof v === 'number' ? v : v[c]);
  const units = inputUnits(arch);
  const cs = Array.from({ length: channels }, (_, c) => per(scale, c));
  const os = Array.from({ length: channels }, (_, c) => per(offset, c));
  if (cs.every((s) => s === cs[0]) && os.every((o) => o === os[0])) return null;
  return { scale: cs.map((s) => units.scale / s), shift: cs.map((s, c) => (units.offset - os[c]) / s) };
}

/** The layers as a graph, after checking that every input exists and comes earlier, that shapes
 *  agree and that the network ends in one logit per label; also the shape of every weight tensor. */
export function layerGraph(arch: Architecture): { nodes: Node[]; parameters: Map<string, number[]> } {
  const graph = unlabelledGraph(arch);
  const shape = graph.nodes[graph.nodes.length - 1].shape;
  if (shape.length !== 1 || shape[0] !== arch.labels.length) {
    throw new InputError(`invalid architecture: the network ends in shape [${shape}], expected [${arch.labels.length}] (one logit per label)`);
  }
  return graph;
}

/** layerGraph, but for the labels: what a network ends in, before labels are given to it. */
export function unlabelledGraph(arch: Omit<Architecture, 'labels'>): { nodes: Node[]; parameters: Map<string, number[]> } {
  const parameters = new Map<string, number[]>();
  const nodes: Node[] = [];
  const index = new Map<string, number>([[INPUT, -1]]);
  const later = new Set(arch.layers.map((l) => l.name).filter((n) => n !== undefined));
  const used = new Set<number>();
  let floats = 0, weightCount = 0;
  arch.layers.forEach((layer, i) => {
    const fail = (why: string): never => {
      throw new InputError(`invalid architecture: layer ${i}${layer.name ? ` ${quote(layer.name)}` : ''} (${layer.type}) ${why}`);
    };
    const inputs = (layer.inputs ?? [i === 0 ? INPUT : null]).map((name) => {
      if (name === null) return i - 1;
      const at = index.get(name);
      if (at !== undefined) return at;
      if (name === layer.name) return fail('reads its own output: a graph cannot have a cycle');
      return fail(later.has(name) ? `reads ${quote(name)}, which comes after it: layers must come after their inputs, so a graph cannot have a cycle` : `reads ${quote(name)}, which no layer is named`);
    });
    inputs.forEach((at) => used.add(at));
    const shapes = inputs.map((at) => (at < 0 ? [...arch.input] : nodes[at].shape));
    const many = layer.type === 'add' || layer.type === 'concat';
    if (many ? inputs.length < 2 : inputs.length !== 1) fail(many ? 'needs at least two inputs' : `takes one input, not ${inputs.length}`);
    const shape = shapes[0];
    const image = (): [number, number, number] => (shape.length === 3 ? (shape as [number, number, number]) : fail(`needs an image-shaped input [h, w, c], got [${shape}]`));
    const windowed = (k: number, stride: number, padding: Padding, dilation: number, channels: number): number[] => {
      const [h, w] = image();
      const rows = window(h, k, stride, padding, dilation), cols = window(w, k, stride, padding, dilation);
      if (rows.out < 1 || cols.out < 1) fail(`window ${k}${dilation > 1 ? ` (dilation ${dilation})` : ''} does not fit its ${h}×${w} input with padding "valid"`);
      return [rows.out, cols.out, channels];
    };
    const weights = (w: number[], b: number[]) => {
      weightCount += sizeOf(w) + sizeOf(b);
      if (weightCount > MAX_WEIGHTS) fail(`makes the network too large (over ${MAX_WEIGHTS} weights)`);
      parameters.set(`${layer.name}.w`, w);
      parameters.set(`${layer.name}.b`, b);
    };
    let out: number[];
    switch (layer.type) {
      case 'conv2d': {
        const cin = image()[2];
        weights([layer.kernel, layer.kernel, cin, layer.filters], [layer.filters]);
        out = windowed(layer.kernel, layer.stride, layer.padding, layer.dilation, layer.filters);
        break;
      }
      case 'depthwise_conv2d': {
        const cin = image()[2];
        weights([layer.kernel, layer.kernel, cin, layer.multiplier], [cin * layer.multiplier]);
        out = windowed(layer.kernel, layer.stride, layer.padding, layer.dilation, cin * layer.multiplier);
        break;
      }
      case 'maxpool':
      case 'avgpool':
        out = windowed(layer.size, layer.stride, layer.padding, 1, image()[2]);
        break;
      case 'global_maxpool':
      case 'global_avgpool':
        out = [image()[2]];
        break;
      case 'flatten':
        out = [sizeOf(image())];
        break;
      case 'dense':
        if (shape.length !== 1) fail(`needs a flat input, got [${shape}]: add a flatten layer before it`);
        weights([shape[0], layer.units], [layer.units]);
        out = [layer.units];
        break;
      case 'activation':
        out = shape;
        break;
      case 'affine': {
        const c = shape[shape.length - 1];
        weights([c], [c]);
        out = shape;
        break;
      }
      case 'pad': {
        const [h, w, c] = image();
        const [top, bottom, left, right] = layer.pad;
        out = [h + top + bottom, w + left + right, c];
        if (out[0] > MAX_SIDE || out[1] > MAX_SIDE) fail(`makes a picture over ${MAX_SIDE} cells a side`);
        break;
      }
      case 'add': {
        const j = shapes.findIndex((s) => s.length !== shape.length || s.some((d, k) => d !== shape[k]));
        if (j > 0) fail(`adds inputs of different shapes: [${shape}], [${shapes[j]}]${differing(j)}`);
        out = shape;
        break;
      }
      case 'concat': {
        const lead = (s: number[]) => s.slice(0, -1).join(',');
        const j = shapes.findIndex((s) => s.length !== shape.length || lead(s) !== lead(shape));
        if (j > 0) fail(`joins inputs whose shapes differ before the last axis: [${shape}], [${shapes[j]}]${differing(j)}`);
        out = [...shape.slice(0, -1), shapes.reduce((sum, s) => sum + s[s.length - 1], 0)];
        break;
      }
    }
    floats += sizeOf(out);
    if (floats > MAX_FLOATS) fail(`makes the network too large (over ${MAX_FLOATS} activations per image)`);
    if (layer.name !== undefined) index.set(layer.name, i);
    nodes.push({ layer, inputs, shape: out });
  });
  const last = nodes.length - 1;
  nodes.forEach((node, i) => {
    if (i < last && !used.has(i)) {
      throw new InputError(`invalid architecture: layer ${i}${node.layer.name ? ` ${quote(node.layer.name)}` : ''} (${node.layer.type}) feeds nothing: the model's output is its last layer`);
    }
  });
  return { nodes, parameters };
}

/** Which inputs a refusal names, when not the first two (a layer may have thousands). */
const differing = (j: number) => (j > 1 ? ` (inputs 0 and ${j})` : '');

/** The shape of every weight tensor (after checking the architecture's graph). */
export function parameterShapes(arch: Architecture): Map<string, number[]> {
  return layerGraph(arch).parameters;
}

/** Whether the network ends in a softmax, which the engine leaves out: its outputs are logits. */
export function endsInSoftmax(arch: Architecture): boolean {
  const last = arch.layers[arch.layers.length - 1];
  return 'activation' in last && last.activation === 'softmax';
}

/** Reads and checks a model file: everything is validated before any work is done. */
export function readModel(bytes: Uint8Array, name: string): Model {
  const file = parseSafetensors(bytes, name);
  const text = file.metadata[ARCHITECTURE_KEY];
  if (text === undefined) throw new InputError(`${name}: no "${ARCHITECTURE_KEY}" in the file's __metadata__`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new InputError(`${name}: the architecture is not valid JSON (${quote((e as Error).message)})`);
  }
  let architecture: Architecture;
  try {
    architecture = checkArchitecture(json);
  } catch (e) {
    if (e instanceof InputError) throw new InputError(`${name}: ${e.message}`);
    throw e;
  }
  return assembleModel(architecture, name, (key) => {
    const dtype = file.otherDtypes.get(key);
    if (dtype) throw new InputError(`${name}: tensor ${quote(key)} has dtype ${quote(dtype)}, expected F32`);
    return file.tensors.get(key);
  });
}

/** A model from its architecture and a source of named tensors, each checked for presence,
 *  shape and finiteness. */
export function assembleModel(
  architecture: Architecture,
  source: string,
  lookup: (key: string) => { shape: readonly number[]; data: Float32Array } | undefined,
): Model {
  const weights = new Map<string, Float32Array>();
  for (const [key, shape] of parameterShapes(architecture)) {
    const t = lookup(key);
    if (!t) throw new InputError(`${source}: missing tensor ${quote(key)}`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new InputError(`${source}: tensor ${quote(key)} has shape ${quote(t.shape)}, the architecture needs [${shape}]`);
    }
    const bad = t.data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new InputError(`${source}: tensor ${quote(key)} holds a non-finite value (${t.data[bad]}) at index ${bad}`);
    weights.set(key, t.data);
  }
  return { architecture, weights };
}

export function writeModel(model: Model): Uint8Array {
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [key, shape] of parameterShapes(model.architecture)) tensors.set(key, { shape, data: model.weights.get(key)! });
  return serializeSafetensors(tensors, { [ARCHITECTURE_KEY]: JSON.stringify(model.architecture) });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isInt(v: unknown, lo: number, hi: number): v is number {
  return Number.isSafeInteger(v) && (v as number) >= lo && (v as number) <= hi;
}
