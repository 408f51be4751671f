// Fuzz target: decodeImage on PNGs. Seeds: every colour type and bit depth, plain and Adam7,
// random filter types, palette, tRNS and eXIf chunks. Format-aware mutations keep the CRCs right
// (so that damage gets past the chunk check): IHDR fields, chunk lengths, chunk order, the
// decompressed scanlines (filter bytes, row lengths) re-deflated.
import { crc32, deflateSync, inflateSync } from 'node:zlib';
import { MAX_PIXELS, MAX_SIDE } from '../../src/formats/image.js';
import { random } from '../../src/core/random.js';
import type { Target } from './harness.js';
import { describeSampling, readImage, sampling } from './image.js';
import { below, chance, concat, interestingInt, mutate, mutateBytes, pick, randomBytes, streamOf, type Mutation, type Rand } from './mutate.js';

const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];

interface Chunk { type: string; data: Uint8Array }

export function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(Array.from(type, (c) => c.charCodeAt(0)), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

const build = (chunks: Chunk[], tail: Uint8Array = new Uint8Array()) => concat(SIGNATURE, ...chunks.map((c) => chunk(c.type, c.data)), tail);

/** The chunks of a PNG with a sane layout (whatever their CRCs), or undefined. */
function parse(bytes: Uint8Array): { chunks: Chunk[]; tail: Uint8Array } | undefined {
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunks: Chunk[] = [];
  let pos = 8;
  while (pos + 12 <= bytes.length) {
    const length = view.getUint32(pos);
    if (pos + 12 + length > bytes.length) break;
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    chunks.push({ type, data: bytes.slice(pos + 8, pos + 8 + length) });
    pos += 12 + length;
  }
  return chunks.length > 0 ? { chunks, tail: bytes.slice(pos) } : undefined;
}

/** A PNG of random samples; every row gets a random filter type (any bytes are valid filtered data). */
function makePng(r: Rand, width: number, height: number, colorType: number, depth: number, interlace: boolean): Uint8Array {
  const cn = CHANNELS[colorType];
  const raw: number[] = [];
  for (const [x0, y0, dx, dy] of interlace ? ADAM7 : [[0, 0, 1, 1]]) {
    const w = Math.max(0, Math.ceil((width - x0) / dx)), h = w ? Math.max(0, Math.ceil((height - y0) / dy)) : 0;
    const rowBytes = Math.ceil((w * cn * depth) / 8);
    for (let y = 0; y < h; y++) {
      raw.push(below(r, 5));
      for (let i = 0; i < rowBytes; i++) raw.push(below(r, 256));
    }
  }
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, width);
  new DataView(ihdr.buffer).setUint32(4, height);
  ihdr.set([depth, colorType, 0, 0, interlace ? 1 : 0], 8);
  const chunks: Chunk[] = [{ type: 'IHDR', data: ihdr }];
  if (colorType === 3) chunks.push({ type: 'PLTE', data: randomBytes(r, 3 * (1 + below(r, 1 << depth))) });
  if (chance(r, 0.3)) chunks.push({ type: 'tRNS', data: randomBytes(r, colorType === 3 ? 1 + below(r, 4) : colorType === 2 ? 6 : 2) });
  if (chance(r, 0.2)) chunks.push({ type: 'eXIf', data: exif(1 + below(r, 8)) });
  const idat = deflateSync(Uint8Array.from(raw), { level: below(r, 10) });
  const split = 1 + below(r, 3), step = Math.ceil(idat.length / split);
  for (let at = 0; at < idat.length; at += step) chunks.push({ type: 'IDAT', data: idat.subarray(at, at + step) });
  chunks.push({ type: 'IEND', data: new Uint8Array() });
  return build(chunks);
}

/** A little-endian TIFF block whose IFD0 holds just the orientation tag. */
function exif(orientation: number): Uint8Array {
  const out = new Uint8Array(26);
  const v = new DataView(out.buffer);
  out.set([0x49, 0x49, 42, 0]);
  v.setUint32(4, 8, true);
  v.setUint16(8, 1, true);
  v.setUint16(10, 0x0112, true);
  v.setUint16(12, 3, true);
  v.setUint32(14, 1, true);
  v.setUint16(18, orientation, true);
  return out;
}

export const SEEDS: { name: string; bytes: Uint8Array }[] = (() => {
  const r = random(0x504e47);
  const sizes = [[1, 1], [3, 5], [9, 7], [17, 3], [8, 8], [2, 13]];
  const seeds: { name: string; bytes: Uint8Array }[] = [];
  let k = 0;
  for (const [type, depths] of Object.entries(DEPTHS)) {
    for (const depth of depths) {
      for (const interlace of [false, true]) {
        const [w, h] = sizes[k++ % sizes.length];
        seeds.push({ name: `png-c${type}-d${depth}${interlace ? '-adam7' : ''}-${w}x${h}`, bytes: makePng(r, w, h, Number(type), depth, interlace) });
      }
    }
  }
  return seeds;
})();

/** Applies `edit` to the chunk list of a well-formed PNG, rebuilding it with correct CRCs. */
function structural(name: string, edit: (chunks: Chunk[], r: Rand) => string | undefined): Mutation {
  return (bytes, r, others) => {
    const png = parse(bytes);
    if (!png) return mutateBytes(bytes, r, others);
    const chunks = png.chunks.map((c) => ({ ...c }));
    const what = edit(chunks, r);
    if (what === undefined) return mutateBytes(bytes, r, others);
    return [build(chunks, png.tail), `${name}:${what}`];
  };
}

const index = (chunks: Chunk[], type: string) => chunks.findIndex((c) => c.type === type);

const MUTATIONS: Mutation[] = [
  structural('ihdr', (chunks, r) => {
    const i = index(chunks, 'IHDR');
    if (i < 0 || chunks[i].data.length < 13) return undefined;
    const data = chunks[i].data.slice(), v = new DataView(data.buffer);
    chunks[i] = { type: 'IHDR', data };
    const field = below(r, 6);
    if (field < 2) {
      const value = chance(r, 0.3) ? 1 + below(r, 64) : pick(r, [interestingInt(r), MAX_SIDE, MAX_SIDE + 1, Math.floor(MAX_PIXELS / MAX_SIDE), 7072]);
      v.setUint32(field * 4, value >>> 0);
      return `${field ? 'height' : 'width'}=${value >>> 0}`;
    }
    if (field === 2) {
      // both sides at once: a huge image whose data is tiny
      const w = pick(r, [MAX_SIDE, 7071, 5000, 3000, 1000]), h = Math.floor(pick(r, [MAX_PIXELS, MAX_PIXELS / 2, 1e6]) / w);
      v.setUint32(0, w);
      v.setUint32(4, h);
      return `size=${w}x${h}`;
    }
    const at = pick(r, [8, 9, 10, 11, 12]), value = pick(r, [0, 1, 2, 3, 4, 6, 8, 16, 7, 255]);
    data[at] = value;
    return `byte${at}=${value}`;
  }),
  (bytes, r) => {
    // a chunk length field set to an interesting value (the length is outside the CRC)
    const png = parse(bytes);
    if (!png) return mutateBytes(bytes, r, []);
    const i = below(r, png.chunks.length);
    let pos = 8;
    for (let k = 0; k < i; k++) pos += 12 + png.chunks[k].data.length;
    const out = bytes.slice(), value = chance(r, 0.5) ? interestingInt(r, png.chunks[i].data.length) : interestingInt(r, bytes.length - pos);
    new DataView(out.buffer).setUint32(pos, value >>> 0);
    return [out, `length:${png.chunks[i].type}#${i}=${value >>> 0}`];
  },
  structural('chunkdata', (chunks, r) => {
    const i = below(r, chunks.length);
    const [data, what] = mutateBytes(chunks[i].data, r, []);
    chunks[i] = { type: chunks[i].type, data };
    return `${chunks[i].type}#${i}:${what}`;
  }),
  structural('dupchunk', (chunks, r) => {
    const i = below(r, chunks.length), to = below(r, chunks.length + 1);
    chunks.splice(to, 0, chunks[i]);
    return `${chunks[i].type}#${i}->${to}`;
  }),
  structural('delchunk', (chunks, r) => {
    const i = below(r, chunks.length);
    const [gone] = chunks.splice(i, 1);
    return `${gone.type}#${i}`;
  }),
  structural('swapchunks', (chunks, r) => {
    const i = below(r, chunks.length), j = below(r, chunks.length);
    [chunks[i], chunks[j]] = [chunks[j], chunks[i]];
    return `${i}<->${j}`;
  }),
  structural('addchunk', (chunks, r) => {
    const type = pick(r, ['PLTE', 'tRNS', 'eXIf', 'eXIf', 'IDAT', 'IEND', 'IHDR', 'abCD', 'ABCD', 'gAMA', 'iCCP']);
    const data = type === 'eXIf' ? (chance(r, 0.5) ? exif(below(r, 12)) : mutateBytes(exif(6), r, [])[0])
      : type === 'PLTE' ? randomBytes(r, pick(r, [0, 3, 6, 768, 771, 9, 1]))
      : randomBytes(r, pick(r, [0, 1, 2, 13, 100]));
    const at = 1 + below(r, chunks.length);
    chunks.splice(at, 0, { type, data });
    return `${type}(${data.length})@${at}`;
  }),
  structural('scanlines', (chunks, r) => {
    // the decompressed image data itself, damaged and compressed again: filter types, row lengths
    const ihdr = chunks[index(chunks, 'IHDR')];
    const idat = chunks.filter((c) => c.type === 'IDAT');
    if (!ihdr || ihdr.data.length < 13 || idat.length === 0) return undefined;
    let raw: Uint8Array;
    try {
      raw = inflateSync(concat(...idat.map((c) => c.data)));
    } catch {
      return undefined;
    }
    let what: string;
    if (chance(r, 0.3)) {
      // a filter-type byte set to an invalid or different value
      const rowBytes = 1 + Math.ceil((new DataView(ihdr.data.buffer, ihdr.data.byteOffset).getUint32(0) * CHANNELS[ihdr.data[9]] * ihdr.data[8]) / 8);
      const at = rowBytes > 0 && Number.isFinite(rowBytes) ? below(r, Math.max(1, Math.ceil(raw.length / rowBytes))) * rowBytes : 0;
      raw = raw.slice();
      const value = pick(r, [0, 1, 2, 3, 4, 5, 255]);
      if (at < raw.length) raw[at] = value;
      what = `filter@${at}=${value}`;
    } else {
      [raw, what] = mutateBytes(raw, r, []);
    }
    const z = deflateSync(raw, { level: below(r, 10) });
    const first = chunks.indexOf(idat[0]);
    const rest = chunks.filter((c) => c.type !== 'IDAT');
    const split = 1 + below(r, 3), step = Math.max(1, Math.ceil(z.length / split));
    const parts: Chunk[] = [];
    for (let at = 0; at < z.length; at += step) parts.push({ type: 'IDAT', data: z.subarray(at, at + step) });
    rest.splice(Math.min(first, rest.length), 0, ...parts);
    chunks.length = 0;
    chunks.push(...rest);
    return what;
  }),
  structural('zlib', (chunks, r) => {
    // the zlib stream's own bytes (header, block types, Adler-32), damaged but with valid CRCs
    const i = index(chunks, 'IDAT');
    if (i < 0) return undefined;
    const [data, what] = mutateBytes(chunks[i].data, r, []);
    chunks[i] = { type: 'IDAT', data };
    return what;
  }),
];

export const pngTarget: Target = {
  name: 'png',
  parser: 'decodeImage + decodeResized (PNG)',
  make(index) {
    const r = streamOf('png', index);
    const seed = pick(r, SEEDS);
    const { bytes, ops } = mutate(seed.bytes, r, { structural: MUTATIONS, structuralShare: 0.7, others: SEEDS.map((s) => s.bytes) });
    const to = sampling(r);
    ops.push(`read as ${describeSampling(to)}`);
    return { seed: seed.name, ops, size: bytes.length, files: { 'fuzz.png': bytes }, run: () => readImage(bytes, 'fuzz.png', to) };
  },
};
