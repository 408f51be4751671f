// A model: its architecture (SPEC §2) and float32 weights, as stored in a .safetensors file
// (core/net.ts places it in the engine's memory).
import { sizeOf } from '../core/engine.js';
import { InputError, isPrintable, quote } from '../errors.js';
import { window, type Padding } from '../core/ops.js';
import { parseSafetensors, serializeSafetensors } from './safetensors.js';

export type Activation = 'relu' | 'none';
export type Layer =
  | { type: 'conv2d'; name: string; filters: number; kernel: number; stride: number; padding: Padding; activation: Activation }
  | { type: 'maxpool'; size: number; stride: number; padding: Padding }
  | { type: 'flatten' }
  | { type: 'dense'; name: string; units: number; activation: Activation };

export interface Architecture {
  input: [number, number, number];
  labels: string[];
  preprocess: { offset: number; scale: number };
  layers: Layer[];
}

export interface Model {
  architecture: Architecture;
  /** `<layer>.w` and `<layer>.b` for each conv2d and dense layer. */
  weights: Map<string, Float32Array>;
}

export const ARCHITECTURE_KEY = 'mislead.architecture';
/** Bounds that keep a hostile file from asking for a huge allocation. */
const MAX_SIDE = 4096;
const MAX_FLOATS = 1 << 26;
const MAX_LABEL = 100;

/** Checks an architecture (parsed JSON) and returns it typed and with defaults filled in:
 *  conv2d stride 1, padding "valid", activation "none"; maxpool stride = size, padding "valid". */
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
  const pre = json.preprocess ?? { offset: 128, scale: 256 };
  if (!isObject(pre) || !Number.isFinite(pre.offset) || !Number.isFinite(pre.scale) || pre.scale === 0) return fail('"preprocess" must be {offset, scale} with a non-zero scale');
  if (!Array.isArray(json.layers) || json.layers.length === 0) return fail('"layers" must be a non-empty list');
  const names = new Set<string>();
  const layers = json.layers.map((raw: unknown, i: number): Layer => {
    const where = `layer ${i}`;
    if (!isObject(raw)) return fail(`${where} is not an object`);
    const int = (key: string, fallback?: number): number => {
      const v = raw[key] ?? fallback;
      return isInt(v, 1, MAX_SIDE) ? v : fail(`${where} (${raw.type}): "${key}" must be an integer from 1 to ${MAX_SIDE}`);
    };
    const padding = (): Padding => {
      const p = raw.padding ?? 'valid';
      return p === 'same' || p === 'valid' ? p : fail(`${where}: padding must be "same" or "valid", not ${quote(p)}`);
    };
    const activation = (): Activation => {
      const a = raw.activation ?? 'none';
      return a === 'relu' || a === 'none' ? a : fail(`${where}: activation must be "relu" or "none", not ${quote(a)}`);
    };
    const name = (): string => {
      const n = raw.name;
      if (typeof n !== 'string' || n === '' || names.has(n)) fail(`${where} (${raw.type}) needs a unique "name"`);
      names.add(n as string);
      return n as string;
    };
    switch (raw.type) {
      case 'conv2d':
        return { type: 'conv2d', name: name(), filters: int('filters'), kernel: int('kernel'), stride: int('stride', 1), padding: padding(), activation: activation() };
      case 'maxpool': {
        const size = int('size');
        return { type: 'maxpool', size, stride: int('stride', size), padding: padding() };
      }
      case 'flatten':
        return { type: 'flatten' };
      case 'dense':
        return { type: 'dense', name: name(), units: int('units', undefined), activation: activation() };
      default:
        return fail(`${where}: unknown layer type ${quote(raw.type)} (supported: conv2d, maxpool, flatten, dense)`);
    }
  });
  const architecture: Architecture = { input: input as [number, number, number], labels, preprocess: { offset: pre.offset as number, scale: pre.scale as number }, layers };
  parameterShapes(architecture);
  return architecture;
}

/** The shape of every weight tensor, after checking that each layer's shapes agree. */
export function parameterShapes(arch: Architecture): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  let shape: number[] = [...arch.input];
  let floats = 0;
  arch.layers.forEach((layer, i) => {
    const fail = (why: string): never => {
      throw new InputError(`invalid architecture: layer ${i} (${layer.type}) ${why}`);
    };
    if (layer.type === 'dense') {
      if (shape.length !== 1) fail(`needs a flat input, got [${shape}]: add a flatten layer before it`);
      shapes.set(`${layer.name}.w`, [shape[0], layer.units]);
      shapes.set(`${layer.name}.b`, [layer.units]);
      shape = [layer.units];
    } else if (layer.type === 'flatten') {
      if (shape.length !== 3) fail(`needs an image-shaped input, got [${shape}]`);
      shape = [sizeOf(shape)];
    } else {
      if (shape.length !== 3) fail(`needs an image-shaped input [h, w, c], got [${shape}]`);
      const k = layer.type === 'conv2d' ? layer.kernel : layer.size;
      const rows = window(shape[0], k, layer.stride, layer.padding), cols = window(shape[1], k, layer.stride, layer.padding);
      if (rows.out < 1 || cols.out < 1) fail(`window ${k} does not fit its ${shape[0]}×${shape[1]} input with padding "valid"`);
      const channels = layer.type === 'conv2d' ? layer.filters : shape[2];
      if (layer.type === 'conv2d') {
        shapes.set(`${layer.name}.w`, [k, k, shape[2], layer.filters]);
        shapes.set(`${layer.name}.b`, [layer.filters]);
      }
      shape = [rows.out, cols.out, channels];
    }
    floats += sizeOf(shape);
    if (floats > MAX_FLOATS) fail(`makes the network too large (over ${MAX_FLOATS} activations per image)`);
  });
  if (shape.length !== 1 || shape[0] !== arch.labels.length) {
    throw new InputError(`invalid architecture: the network ends in shape [${shape}], expected [${arch.labels.length}] (one logit per label)`);
  }
  return shapes;
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
