// Fuzz target: readModel (the safetensors container and the architecture in its metadata). Seeds:
// model files from writeModel, for the tutorial's network, two small chains and two graphs (every
// layer type and option). Format-aware mutations edit the JSON header (dtypes, shapes, data_offsets,
// keys) and the architecture (input, labels, per-channel preprocessing, layers and their fields;
// the graph: inputs naming unknown, later or own layers, cycles, huge fan-in, chains of thousands
// of layers; odd kernels, dilations, multipliers, pads and alphas; activations where a layer takes
// none, softmax before the end; layers that ask for huge activations or weights) and write the
// file again with a matching header length; others set the 8-byte header length, or non-finite
// weights.
import { TUTORIAL_ARCHITECTURE } from '../../src/formats/importtf.js';
import { sizeOf } from '../../src/core/engine.js';
import { ARCHITECTURE_KEY, checkArchitecture, layerGraph, MAX_WEIGHTS, parameterShapes, readModel, writeModel, type Architecture, type Model } from '../../src/formats/model.js';
import { initialModel } from '../../src/train/train.js';
import { Invalid, type Target } from './harness.js';
import { below, chance, concat, interestingBig, interestingInt, mutate, mutateBytes, NUMBER_TEXTS, pick, streamOf, type Mutation, type Rand } from './mutate.js';

const small: Architecture = checkArchitecture({
  input: [5, 4, 1], labels: ['a', 'b'], preprocess: { offset: 0, scale: 1 },
  layers: [
    { type: 'conv2d', name: 'c', filters: 2, kernel: 3, stride: 1, padding: 'same', activation: 'relu' },
    { type: 'maxpool', size: 2, stride: 2, padding: 'same' },
    { type: 'flatten' },
    { type: 'dense', name: 'd', units: 2 },
  ],
});
const rgb: Architecture = checkArchitecture({
  input: [6, 6, 3], labels: ['x', 'y', 'z'],
  layers: [
    { type: 'conv2d', name: 'c1', filters: 3, kernel: 2, stride: 2, padding: 'valid' },
    { type: 'maxpool', size: 3, stride: 1, padding: 'valid' },
    { type: 'flatten' },
    { type: 'dense', name: 'h', units: 4, activation: 'relu' },
    { type: 'dense', name: 'o', units: 3 },
  ],
});

const residual: Architecture = checkArchitecture({
  input: [8, 8, 3], labels: ['p', 'q'], preprocess: { offset: [120, 110, 100], scale: [60, 50, 40] },
  layers: [
    { type: 'conv2d', name: 'stem', filters: 4, kernel: 3, stride: 2, padding: 'same', activation: 'relu6' },
    { type: 'depthwise_conv2d', name: 'dw', kernel: 3, multiplier: 2, padding: 'same', activation: 'leaky_relu', alpha: 0.1 },
    { type: 'conv2d', name: 'pw', filters: 4, kernel: 1 },
    { type: 'add', name: 'sum', inputs: ['stem', 'pw'] },
    { type: 'concat', name: 'cat', inputs: ['sum', 'stem'] },
    { type: 'affine', name: 'bn' },
    { type: 'pad', pad: [1, 0, 0, 1] },
    { type: 'avgpool', size: 3, stride: 2, padding: 'same' },
    { type: 'global_maxpool' },
    { type: 'dense', name: 'fc', units: 2, activation: 'softmax' },
  ],
});
const dilated: Architecture = checkArchitecture({
  input: [9, 9, 1], labels: ['u', 'v', 'w'], preprocess: { offset: [127.5], scale: 127.5 },
  layers: [
    { type: 'conv2d', name: 'a', filters: 3, kernel: 3, dilation: 2, padding: 'same', activation: 'elu', alpha: 0.5 },
    { type: 'maxpool', name: 'pool', size: 2 },
    { type: 'activation', activation: 'tanh' },
    { type: 'depthwise_conv2d', name: 'b', kernel: 2, dilation: 2, padding: 'same', activation: 'sigmoid' },
    { type: 'conv2d', name: 'c', filters: 2, kernel: 1, inputs: ['pool'] },
    { type: 'concat', inputs: ['b', 'c'] },
    { type: 'global_avgpool' },
    { type: 'dense', name: 'h', units: 4, activation: 'relu' },
    { type: 'dense', name: 'o', units: 3 },
  ],
});

export const SEEDS = [
  { name: 'model-tutorial', bytes: writeModel(initialModel(TUTORIAL_ARCHITECTURE, 1)) },
  { name: 'model-small-gray', bytes: writeModel(initialModel(small, 2)) },
  { name: 'model-small-rgb', bytes: writeModel(initialModel(rgb, 3)) },
  { name: 'model-residual', bytes: writeModel(initialModel(residual, 4)) },
  { name: 'model-dilated', bytes: writeModel(initialModel(dilated, 5)) },
];

// ---- the file as header object + data, and back ----

interface File { header: Record<string, unknown>; data: Uint8Array }

function parse(bytes: Uint8Array): File | undefined {
  if (bytes.length < 8) return undefined;
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n > bytes.length - 8) return undefined;
  try {
    const header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
    return typeof header === 'object' && header !== null && !Array.isArray(header) ? { header, data: bytes.subarray(8 + n) } : undefined;
  } catch {
    return undefined;
  }
}

/** The header as JSON text, padded with spaces to a multiple of 8 (or not), with its length in front. */
function serialize(text: string, data: Uint8Array, r: Rand): Uint8Array {
  const json = new TextEncoder().encode(text);
  const padded = chance(r, 0.8) ? Math.ceil(json.length / 8) * 8 : json.length;
  const header = new Uint8Array(padded).fill(0x20);
  header.set(json);
  const out = concat(new Uint8Array(8), header, data);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  return out;
}

/** JSON values that a field should not hold, plus some it may. */
function oddValue(r: Rand): unknown {
  return pick(r, [0, -1, 1, 2, 1.5, -0.5, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 1e308, null, true, '', 'x', '3', [], [1], {}, { a: 1 }, interestingInt(r)]);
}

/** A shape that is wrong, huge or degenerate. */
function oddShape(r: Rand, shape: unknown): unknown {
  const old = Array.isArray(shape) ? shape : [];
  return pick(r, [
    [], [0], [1], [-1], [1.5], ['3'], [null], [2 ** 31, 2 ** 31], [2 ** 26, 4], [2 ** 53], [1e308], [2 ** 32 + 1],
    [...old, 1], old.slice(1), old.map((d) => (typeof d === 'number' ? d + 1 : d)), [...old].reverse(), Array(64).fill(1),
    [0, 2 ** 40], 'shape', 7,
  ]);
}

/** Edits of one tensor entry. */
function editTensor(entry: Record<string, unknown>, r: Rand, dataLength: number): string {
  const field = below(r, 6);
  if (field === 0) {
    entry.dtype = pick(r, ['F16', 'BF16', 'F64', 'I64', 'U8', 'BOOL', 'f32', '', 'F32 ', 5, null]);
    return `dtype=${JSON.stringify(entry.dtype)}`;
  }
  if (field === 1) {
    entry.shape = oddShape(r, entry.shape);
    return `shape=${JSON.stringify(entry.shape).slice(0, 40)}`;
  }
  if (field <= 3) {
    const [b, e] = Array.isArray(entry.data_offsets) ? (entry.data_offsets as number[]) : [0, 0];
    const big = () => Number(interestingBig(r, dataLength));
    entry.data_offsets = pick(r, [
      [b, big()], [big(), e], [big(), big()], [e, b], [-1, e], [b, e + 4], [b - 4, e - 4], [b + 0.5, e], [b], [b, e, e], [],
      [0, dataLength], [dataLength, dataLength], [b, 1e308], null, 'x',
    ]);
    return `data_offsets=${JSON.stringify(entry.data_offsets)}`;
  }
  if (field === 4) {
    delete entry[pick(r, ['dtype', 'shape', 'data_offsets'])];
    return 'field-removed';
  }
  entry[pick(r, ['dtype', 'shape', 'data_offsets'])] = oddValue(r);
  return 'field=odd';
}

const TYPES = ['conv2d', 'depthwise_conv2d', 'dense', 'maxpool', 'avgpool', 'global_maxpool', 'global_avgpool', 'flatten', 'add', 'concat', 'activation', 'affine', 'pad'];
const ACTIVATION_NAMES = ['none', 'relu', 'relu6', 'leaky_relu', 'elu', 'sigmoid', 'tanh', 'softmax', 'gelu', 'RELU', ''];
type Raw = Record<string, unknown>;

/** A layer of `type` with ordinary options (a name when it needs one). */
function layerOf(type: string, name: string, r: Rand): Raw {
  const options: Record<string, Raw> = {
    conv2d: { filters: pick(r, [1, 2, 4]), kernel: pick(r, [1, 2, 3]), padding: pick(r, ['same', 'valid']) },
    depthwise_conv2d: { kernel: pick(r, [1, 3]), multiplier: pick(r, [1, 2]), padding: 'same' },
    dense: { units: pick(r, [2, 3]) },
    maxpool: { size: 2 }, avgpool: { size: 2, stride: 1, padding: 'same' },
    activation: { activation: pick(r, ACTIVATION_NAMES) },
    pad: { pad: [1, 0, 1, 0] },
  };
  return { type, ...(type === 'conv2d' || type === 'depthwise_conv2d' || type === 'dense' || type === 'affine' || chance(r, 0.3) ? { name } : {}), ...options[type] };
}

/** A value for a layer option: one of its kind, or an odd one. */
function optionValue(key: string, names: string[], r: Rand): unknown {
  if (chance(r, 0.25)) return oddValue(r);
  switch (key) {
    case 'padding': return pick(r, ['same', 'valid', 'SAME', 'full']);
    case 'activation': return pick(r, ACTIVATION_NAMES);
    case 'type': return pick(r, [...TYPES, 'conv', 'dropout']);
    case 'name': return pick(r, [...names, 'input', 'n', '', '__metadata__', 'x'.repeat(101), '\u001b[31mx']);
    case 'alpha': return pick(r, [0, 0.1, 1, -1, -0.5, 1e308, 1e-300]);
    case 'pad': return pick(r, [[0, 0, 0, 0], [1, 2, 3, 4], [4096, 4096, 4096, 4096], [2048, 2047, 0, 0], [1, 1, 1], [1, 1, 1, 1, 1], [-1, 0, 0, 0], [1.5, 0, 0, 0], [null, 0, 0, 0], [], 4]);
    case 'inputs': return pick(r, [['nowhere'], ['input'], [], 'input', [5], [names[0]], [names[0], names[names.length - 1]], names.slice(0, 3), ['input', 'input']]);
    default: return pick(r, [0, 1, 2, 3, 5, 48, 4096, 4097, 2 ** 31, -1]);
  }
}

/** Edits of the graph: inputs, cycles, long chains, layers asking for huge memory, activations
 *  where they do not belong. */
function editGraph(layers: Raw[], r: Rand): string {
  // Names for every layer, so that edits can refer to them.
  const names = layers.map((l, i) => (typeof l.name === 'string' ? l.name : `L${i}`));
  const i = below(r, layers.length), own = names[i];
  const name = (j: number) => {
    if (layers[j].name === undefined) layers[j] = { ...layers[j], name: names[j] };
    return names[j];
  };
  const kind = below(r, 9);
  if (kind === 0) {
    const later = i + 1 < layers.length ? name(i + 1 + below(r, layers.length - i - 1)) : 'nowhere';
    const fanIn = pick(r, [2, 100, 10_000]), earlier = i > 0 ? name(below(r, i)) : 'input';
    layers[i] = { ...layers[i], inputs: pick(r, [['nowhere'], [later], [own], ['input'], Array(fanIn).fill(earlier), [earlier, 'input'], [later, earlier]]) };
    if ((layers[i].inputs as string[]).includes(own)) name(i);
    return `layer${i}.inputs=${JSON.stringify(layers[i].inputs).slice(0, 40)}`;
  }
  if (kind === 1) {
    // a cycle: i reads j, and j reads i
    const j = below(r, layers.length);
    layers[i] = { ...layers[i], inputs: [name(j)] };
    layers[j] = { ...layers[j], inputs: [name(i)] };
    return `cycle${i}<->${j}`;
  }
  if (kind === 2) {
    // a chain of thousands of layers after layer i
    const n = pick(r, [100, 3000, 10_001]);
    const link = pick(r, [{ type: 'activation', activation: 'relu' }, { type: 'pad', pad: [0, 0, 0, 0] }, { type: 'affine' }]);
    layers.splice(i + 1, 0, ...Array.from({ length: n }, (_, k) => (link.type === 'affine' ? { ...link, name: `chain${k}` } : link)));
    return `chain${n}x${link.type}@${i}`;
  }
  if (kind === 3) {
    // layers that ask for huge activations or weights
    const prev = i > 0 ? name(i - 1) : 'input';
    const huge = pick(r, [
      () => Array(pick(r, [2, 10_000])).fill({ type: 'pad', pad: [4096, 4096, 4096, 4096] }),
      () => Array(pick(r, [3, 100])).fill({ type: 'pad', pad: [1000, 1000, 1000, 1000] }),
      () => [{ type: 'concat', inputs: Array(10_000).fill(prev) }],
      () => [{ type: 'add', inputs: Array(10_000).fill(prev) }],
      () => [{ type: 'depthwise_conv2d', name: 'deep', kernel: pick(r, [1, 3, 4096]), multiplier: 4096, padding: 'same' }],
      () => [{ type: 'conv2d', name: 'wide', kernel: pick(r, [1, 4096]), filters: 4096, padding: 'same', dilation: pick(r, [1, 4096]) }],
      () => [{ type: 'flatten' }, ...Array.from({ length: pick(r, [2, 50]) }, (_, k) => ({ type: 'dense', name: `fc${k}`, units: 4096 }))],
      () => [{ type: 'pad', pad: [2000, 2000, 2000, 2000] }, { type: 'depthwise_conv2d', name: 'deep', kernel: 1, multiplier: 4096 }],
    ])();
    layers.splice(i, 0, ...huge);
    return `huge(${huge.length}x${huge[0].type})@${i}`;
  }
  if (kind === 4) {
    // softmax before the end
    const j = below(r, Math.max(1, layers.length - 1));
    layers[j] = { ...layers[j], activation: 'softmax' };
    return `softmax@${j}`;
  }
  if (kind === 5) {
    // an activation or alpha on a layer that takes none, or an option of another type
    const key = pick(r, ['activation', 'alpha', 'filters', 'kernel', 'multiplier', 'dilation', 'pad', 'size', 'units', 'stride', 'inputs', 'bias']);
    layers[i] = { ...layers[i], [key]: optionValue(key, names, r) };
    return `layer${i}.${key}=${JSON.stringify(layers[i][key])?.slice(0, 30)}`;
  }
  if (kind === 6) {
    // a new layer of any type, reading the one before it or others
    const type = pick(r, TYPES);
    const layer = layerOf(type, `new${i}`, r);
    if (type === 'add' || type === 'concat' || chance(r, 0.2)) layer.inputs = [i > 0 ? name(i - 1) : 'input', i > 1 ? name(i - 2) : 'input'];
    layers.splice(i, 0, layer);
    return `new-${type}@${i}`;
  }
  if (kind === 7) {
    // a layer repeated under the same name, or renamed
    const copy = { ...layers[i] };
    if (chance(r, 0.5)) copy.name = optionValue('name', names, r);
    layers.splice(below(r, layers.length + 1), 0, copy);
    return `repeat${i}`;
  }
  const key = pick(r, ['kernel', 'stride', 'dilation', 'multiplier', 'pad', 'alpha', 'activation', 'size', 'filters', 'units', 'padding', 'inputs', 'type', 'name']);
  layers[i] = { ...layers[i], [key]: optionValue(key, names, r) };
  return `layer${i}.${key}=${JSON.stringify(layers[i][key])?.slice(0, 30)}`;
}

/** Edits of the architecture object. */
function editArchitecture(a: Record<string, unknown>, r: Rand): string {
  const layers = Array.isArray(a.layers) ? (a.layers as Record<string, unknown>[]) : [];
  const what = below(r, 9);
  if (what === 0) {
    const input = Array.isArray(a.input) ? [...a.input] : [48, 48, 1];
    input[below(r, 4)] = chance(r, 0.5) ? oddValue(r) : pick(r, [0, 1, 2, 3, 4, 4096, 4097, 65536]);
    a.input = chance(r, 0.1) ? oddValue(r) : input;
    return `input=${JSON.stringify(a.input)}`;
  }
  if (what === 1) {
    const labels = Array.isArray(a.labels) ? [...a.labels] : [];
    const kind = below(r, 5);
    if (kind === 0) a.labels = labels.slice(0, 1);
    else if (kind === 1) a.labels = [...labels, labels[0]];
    else if (kind === 2) a.labels = Array.from({ length: pick(r, [3, 100, 10_000]) }, (_, i) => `l${i}`);
    else if (kind === 3) a.labels = [...labels.slice(1), oddValue(r)];
    else a.labels = oddValue(r);
    return `labels(${kind})`;
  }
  if (what === 2) {
    const value = () => (chance(r, 0.3) ? oddValue(r) : pick(r, [0, 1, 127.5, -1, 1e-300, 1e308, [1, 2, 3], [1, 2], [1], [1, 2, 3, 4], [1, -1, 1], [0, 1, 1], [null, 1, 1], ['1', 1, 1], Array(10_000).fill(1)]));
    a.preprocess = chance(r, 0.1) ? oddValue(r) : { offset: chance(r, 0.8) ? value() : 0, scale: chance(r, 0.8) ? value() : 1 };
    return `preprocess=${JSON.stringify(a.preprocess).slice(0, 60)}`;
  }
  if (what === 3) {
    delete a[pick(r, ['input', 'labels', 'preprocess', 'layers'])];
    return 'key-removed';
  }
  if (layers.length === 0 || what === 4) {
    a.layers = chance(r, 0.5) ? [] : oddValue(r);
    return `layers=${JSON.stringify(a.layers)}`;
  }
  const i = below(r, layers.length);
  const layer = { ...layers[i] };
  const copy = [...layers];
  a.layers = copy;
  if (what === 5) {
    copy.splice(i, 1);
    return `layer${i}-removed`;
  }
  if (what === 6) {
    copy.splice(below(r, copy.length + 1), 0, chance(r, 0.5) ? layer : layerOf(pick(r, TYPES), 'n', r));
    return `layer${i}-added`;
  }
  const key = pick(r, ['type', 'name', 'filters', 'kernel', 'stride', 'padding', 'activation', 'size', 'units']);
  layer[key] = key === 'padding' ? pick(r, ['same', 'valid', 'SAME', 'full', oddValue(r)])
    : key === 'activation' ? pick(r, ['relu', 'none', 'sigmoid', oddValue(r)])
    : key === 'type' ? pick(r, ['conv2d', 'maxpool', 'flatten', 'dense', 'conv', oddValue(r)])
    : key === 'name' ? pick(r, ['c', 'd', 'cv1', 'fc', '', '__metadata__', oddValue(r)])
    : chance(r, 0.6) ? pick(r, [0, 1, 2, 3, 5, 48, 4096, 4097, 2 ** 31]) : oddValue(r);
  copy[i] = layer;
  return `layer${i}.${key}=${JSON.stringify(layer[key])}`;
}

/**
 * A valid model for a changed architecture, when it is small enough: readModel then accepts it,
 * so the checks of accepted models see more than the three seed architectures.
 */
function rebuilt(architecture: unknown, r: Rand): Uint8Array | undefined {
  try {
    const a = checkArchitecture(architecture);
    let floats = 0;
    for (const shape of parameterShapes(a).values()) floats += shape.reduce((x, y) => x * y, 1);
    return floats <= 200_000 ? writeModel(initialModel(a, below(r, 1000))) : undefined;
  } catch {
    return undefined;
  }
}

/** Edits the architecture in the file's metadata; with probability `valid`, writes a new file
 *  for it with weights of the right shapes when it is sound and small. */
function architectureMutation(name: string, edit: (a: Record<string, unknown>, r: Rand) => string, valid: number): Mutation {
  return (bytes, r, others) => {
    const file = parse(bytes);
    const meta = file?.header.__metadata__ as Record<string, unknown> | undefined;
    if (!file || typeof meta !== 'object' || meta === null) return mutateBytes(bytes, r, others);
    let architecture: Record<string, unknown>;
    try {
      architecture = JSON.parse(String(meta[ARCHITECTURE_KEY]));
    } catch {
      return mutateBytes(bytes, r, others);
    }
    if (typeof architecture !== 'object' || architecture === null || Array.isArray(architecture)) return mutateBytes(bytes, r, others);
    const what = edit(architecture, r);
    const rebuiltFile = chance(r, valid) ? rebuilt(architecture, r) : undefined;
    if (rebuiltFile) return [rebuiltFile, `${name}+weights:${what}`];
    file.header.__metadata__ = { ...meta, [ARCHITECTURE_KEY]: JSON.stringify(architecture) };
    return [serialize(JSON.stringify(file.header), file.data, r), `${name}:${what}`];
  };
}

const graphMutation = architectureMutation('graph', (a, r) => (Array.isArray(a.layers) && a.layers.length > 0 ? editGraph((a.layers = [...a.layers]), r) : editArchitecture(a, r)), 0.5);

const MUTATIONS: Mutation[] = [
  (bytes, r) => {
    const out = bytes.slice(), v = interestingBig(r, bytes.length - 8);
    new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, v), true);
    return [out, `header-length=${v}`];
  },
  (bytes, r, others) => {
    const file = parse(bytes);
    const keys = file ? Object.keys(file.header).filter((k) => k !== '__metadata__') : [];
    if (!file || keys.length === 0) return mutateBytes(bytes, r, others);
    const key = pick(r, keys), kind = below(r, 5);
    let what: string;
    if (kind <= 2) {
      const entry = { ...(file.header[key] as Record<string, unknown>) };
      file.header[key] = entry;
      what = `${key}.${editTensor(entry, r, file.data.length)}`;
    } else if (kind === 3) {
      delete file.header[key];
      what = `${key}-removed`;
    } else {
      file.header[pick(r, [`${key}x`, 'extra', ''])] = chance(r, 0.5) ? file.header[key] : oddValue(r);
      what = `${key}-copied`;
    }
    return [serialize(JSON.stringify(file.header), file.data, r), `tensor:${what}`];
  },
  architectureMutation('architecture', editArchitecture, 0.3),
  // The graph twice as often as the rest: it has the most checks to reach.
  graphMutation,
  graphMutation,
  (bytes, r, others) => {
    // the header or the architecture as text: numbers replaced, bytes damaged, then re-framed
    const file = parse(bytes);
    if (!file) return mutateBytes(bytes, r, others);
    const meta = file.header.__metadata__ as Record<string, string> | undefined;
    if (meta && typeof meta[ARCHITECTURE_KEY] === 'string' && chance(r, 0.5)) {
      const [text, what] = mutateBytes(new TextEncoder().encode(meta[ARCHITECTURE_KEY]), r, others, true);
      file.header.__metadata__ = { ...meta, [ARCHITECTURE_KEY]: new TextDecoder().decode(text) };
      return [serialize(JSON.stringify(file.header), file.data, r), `architecture-text:${what}`];
    }
    const [text, what] = mutateBytes(new TextEncoder().encode(JSON.stringify(file.header)), r, others, true);
    return [serialize(new TextDecoder().decode(text), file.data, r), `header-text:${what}`];
  },
  (bytes, r, others) => {
    const file = parse(bytes);
    if (!file) return mutateBytes(bytes, r, others);
    const kind = below(r, 4);
    if (kind === 0) {
      // __metadata__ with a value that is not a string, or without the architecture
      file.header.__metadata__ = pick(r, [{}, { [ARCHITECTURE_KEY]: oddValue(r) }, oddValue(r), { [ARCHITECTURE_KEY]: pick(r, NUMBER_TEXTS) }]);
      return [serialize(JSON.stringify(file.header), file.data, r), 'metadata=odd'];
    }
    // a weight that is NaN, infinite, denormal or huge; or a data section one float short or long
    const out = bytes.slice(), start = bytes.length - file.data.length;
    if (kind === 1 && file.data.length >= 4) {
      const at = start + 4 * below(r, file.data.length >> 2), v = pick(r, [NaN, Infinity, -Infinity, 1e-45, 3.4e38, -0]);
      new DataView(out.buffer).setFloat32(at, v, true);
      return [out, `weight@${at}=${v}`];
    }
    return kind === 2 ? [out.subarray(0, out.length - 4), 'data-4'] : [concat(out, new Uint8Array(4)), 'data+4'];
  },
];

export const modelTarget: Target = {
  name: 'model',
  parser: 'readModel (safetensors + architecture)',
  make(index) {
    const r = streamOf('model', index);
    const seed = pick(r, SEEDS);
    const { bytes, ops } = mutate(seed.bytes, r, { structural: MUTATIONS, structuralShare: 0.7, others: SEEDS.map((s) => s.bytes) });
    return { seed: seed.name, ops, size: bytes.length, files: { 'fuzz.safetensors': bytes }, run: () => checkModel(readModel(bytes, 'fuzz.safetensors')) };
  },
};

/** What an accepted model must be: every tensor its architecture needs, of the right size, finite;
 *  activations and weights within model.ts's bounds (2^26 values each). */
export function checkModel(model: Model): void {
  const { nodes, parameters: shapes } = layerGraph(model.architecture);
  const activations = nodes.reduce((n, node) => n + sizeOf(node.shape), 0);
  const weights = [...shapes.values()].reduce((n, shape) => n + sizeOf(shape), 0);
  if (activations > 2 ** 26 || weights > MAX_WEIGHTS) throw new Invalid(`${activations} activations and ${weights} weights per image`);
  for (const [key, shape] of shapes) {
    const w = model.weights.get(key);
    const n = shape.reduce((a, b) => a * b, 1);
    if (!w || w.length !== n) throw new Invalid(`tensor ${key} has ${w?.length} values for shape [${shape}]`);
    if (!w.every(Number.isFinite)) throw new Invalid(`tensor ${key} holds a non-finite value`);
  }
}
