// Fuzz target: readNpy. Seeds: files from writeNpy (version 1.0, '<f4') of several shapes, and
// hand-made version 2.0 / 3.0 and '<f8' files. Format-aware mutations: the version bytes, the
// header-length field, and the header dict (descr, fortran_order, shape) rewritten with huge,
// negative, malformed or missing values, the data resized to match or not.
import { readNpy, writeNpy } from '../../src/formats/npy.js';
import { random } from '../../src/core/random.js';
import { Invalid, type Target } from './harness.js';
import { below, chance, concat, interestingInt, mutate, mutateBytes, NUMBER_TEXTS, pick, streamOf, type Mutation, type Rand } from './mutate.js';

const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0) & 255);

/** A .npy file around `dict` (padded to 64 bytes, or not), version 1.0, 2.0 or 3.0. */
function npy(dict: string, data: Uint8Array, version: number, align = true): Uint8Array {
  const prefix = version === 1 ? 10 : 12;
  const length = align ? Math.ceil((prefix + dict.length + 1) / 64) * 64 - prefix : dict.length + 1;
  const out = new Uint8Array(prefix + length + data.length);
  out.set([0x93, ...ascii('NUMPY'), version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, length & 0xffff, true);
  else view.setUint32(8, length, true);
  out.set(ascii(dict.padEnd(length - 1) + '\n'), prefix);
  out.set(data, prefix + length);
  return out;
}

const dictOf = (descr: string, shape: string, fortran = 'False') => `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;

export const SEEDS: { name: string; bytes: Uint8Array }[] = (() => {
  const r = random(0x4e5059);
  const floats = (n: number) => Float32Array.from({ length: n }, () => r() * 2 - 1);
  const seeds = [[48, 48, 1], [3], [], [0], [2, 3, 4], [1, 1, 1, 1, 1], [7, 5, 3]].map((shape) => ({
    name: `npy-v1-f4-[${shape}]`,
    bytes: writeNpy(floats(shape.reduce((a, b) => a * b, 1)), shape),
  }));
  const f8 = new Uint8Array(Float64Array.from({ length: 6 }, () => r()).buffer);
  seeds.push({ name: 'npy-v1-f8-[2,3]', bytes: npy(dictOf('<f8', '(2, 3)'), f8, 1) });
  seeds.push({ name: 'npy-v2-f4-[4,2]', bytes: npy(dictOf('<f4', '(4, 2)'), new Uint8Array(floats(8).buffer), 2) });
  seeds.push({ name: 'npy-v3-f8-[6]', bytes: npy(dictOf('<f8', '(6,)'), f8, 3) });
  return seeds;
})();

const SHAPES = [
  '()', '(0,)', '(1,)', '(3,)', '(6,)', '(2, 3)', '(3, 2)', '(48, 48, 1)', '(-1,)', '(1, -1)', '(,)', '(1,,2)', '(1 2)', '(4,4,)',
  `(${'1, '.repeat(64)})`, '(1e3,)', '(0x10,)', '(2**31,)', '( 6 , )', '(6L,)', '[6]', '6', '(', ')', '(0, ' + '9'.repeat(400) + ')',
  '(' + '1'.repeat(400) + ',)', '(4294967296, 4294967296)', '(0, 4294967296, 4294967296)', '(9007199254740993,)',
];

/** The header (after the length field) of a parseable file and where its data starts. */
function split(bytes: Uint8Array): { version: number; dict: string; data: Uint8Array } | undefined {
  if (bytes.length < 12 || bytes[0] !== 0x93) return undefined;
  const version = bytes[6], prefix = version === 1 ? 10 : 12;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = version === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (prefix + length > bytes.length) return undefined;
  return { version, dict: String.fromCharCode(...bytes.subarray(prefix, prefix + length)).trimEnd(), data: bytes.subarray(prefix + length) };
}

/** The data resized to what `shape` needs, when that is small: the file may then be accepted. */
function fit(data: Uint8Array, shape: string, descr: string, r: Rand): Uint8Array {
  const dims = /^\(([^)]*)\)$/.exec(shape)?.[1].split(',').map((d) => d.trim()).filter(Boolean).map(Number);
  if (!dims || !chance(r, 0.6)) return data;
  const n = dims.reduce((a, b) => a * b, 1) * (descr.endsWith('8') ? 8 : 4);
  if (!Number.isSafeInteger(n) || n < 0 || n > 1 << 20) return data;
  const out = new Uint8Array(n);
  out.set(data.subarray(0, n));
  return out;
}

const MUTATIONS: Mutation[] = [
  (bytes, r) => {
    const out = bytes.slice(), at = chance(r, 0.7) ? 6 : 7, v = pick(r, [0, 1, 2, 3, 4, 255]);
    if (out.length > at) out[at] = v;
    return [out, `version-byte${at}=${v}`];
  },
  (bytes, r) => {
    const out = bytes.slice(), v = interestingInt(r, bytes.length - 10), wide = bytes[6] !== 1;
    if (out.length >= 12) new DataView(out.buffer).setUint32(8, v >>> 0, true);
    if (!wide && out.length >= 10) new DataView(out.buffer).setUint16(8, v & 0xffff, true);
    return [out, `header-length=${wide ? v >>> 0 : v & 0xffff}`];
  },
  (bytes, r, others) => {
    const file = split(bytes);
    if (!file) return mutateBytes(bytes, r, others);
    const descr = chance(r, 0.6) ? pick(r, ['<f4', '<f8']) : pick(r, ['>f4', '>f8', '|u1', '<f2', '<i4', '', '<f16', 'f4', "<f4'", '<c8']);
    const shape = chance(r, 0.7) ? pick(r, SHAPES) : `(${pick(r, NUMBER_TEXTS)}, ${pick(r, NUMBER_TEXTS)})`;
    const fortran = pick(r, ['False', 'False', 'True', 'false', '0', 'None']);
    let dict = dictOf(descr, shape, fortran);
    const extra = below(r, 6);
    if (extra === 0) dict = dict.replace(/'fortran_order': \w+, /, '');
    if (extra === 1) dict = dict.replace('{', `{'shape': ${pick(r, SHAPES)}, `);
    if (extra === 2) dict = dict.replace('}', `'extra': '${'x'.repeat(below(r, 200))}', }`);
    const version = chance(r, 0.8) ? file.version : pick(r, [1, 2, 3]);
    return [npy(dict, fit(file.data, shape, descr, r), version, chance(r, 0.8)), `dict:v${version} ${descr} ${shape.length > 30 ? shape.slice(0, 30) + '…' : shape} ${fortran} extra${extra}`];
  },
  (bytes, r, others) => {
    // the dict as text, damaged (numbers replaced, bytes changed), its length kept consistent
    const file = split(bytes);
    if (!file) return mutateBytes(bytes, r, others);
    const [text, what] = mutateBytes(ascii(file.dict), r, others, true);
    return [npy(String.fromCharCode(...text), file.data, file.version, chance(r, 0.8)), `dict-text:${what}`];
  },
  (bytes, r) => {
    const n = pick(r, [1, 3, 4, 8, 64]);
    return chance(r, 0.5) ? [bytes.subarray(0, Math.max(0, bytes.length - n)).slice(), `data-${n}`] : [concat(bytes, new Uint8Array(n)), `data+${n}`];
  },
];

export const npyTarget: Target = {
  name: 'npy',
  parser: 'readNpy',
  make(index) {
    const r = streamOf('npy', index);
    const seed = pick(r, SEEDS);
    const { bytes, ops } = mutate(seed.bytes, r, { structural: MUTATIONS, structuralShare: 0.6, others: SEEDS.map((s) => s.bytes), text: true });
    return {
      seed: seed.name, ops, size: bytes.length, files: { 'fuzz.npy': bytes },
      run() {
        const { data, shape } = readNpy(bytes, 'fuzz.npy');
        if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Invalid(`shape [${shape}]`);
        if (shape.reduce((a, b) => a * b, 1) !== data.length) throw new Invalid(`shape [${shape}] with ${data.length} values`);
      },
    };
  },
};
