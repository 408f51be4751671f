// Fuzz target: decodeImage on JPEGs. Seeds: baseline JPEGs from jpeg-js's encoder (several sizes,
// qualities, sizes that are not multiples of 8) and two progressive ones made with OpenCV (colour
// 4:2:0 and gray). Format-aware mutations work on the marker segments: frame (SOFn) sizes, sampling
// factors and component counts, segment lengths, segment order, tables and scan data, restart markers.
import jpeg from 'jpeg-js';
import { MAX_PIXELS, MAX_SIDE } from '../../src/formats/image.js';
import { random } from '../../src/core/random.js';
import type { Target } from './harness.js';
import { below, chance, concat, interestingInt, mutate, mutateBytes, pick, randomBytes, streamOf, type Mutation, type Rand } from './mutate.js';
import { describeSampling, readImage, sampling } from './image.js';
import { PROGRESSIVE_GRAY, PROGRESSIVE_RGB } from '../support/jpeg.js';

export const SEEDS: { name: string; bytes: Uint8Array }[] = (() => {
  const r = random(0x4a504547);
  const seeds = [
    { name: 'jpeg-progressive-rgb-16x16', bytes: Uint8Array.from(Buffer.from(PROGRESSIVE_RGB, 'base64')) },
    { name: 'jpeg-progressive-gray-8x8', bytes: Uint8Array.from(Buffer.from(PROGRESSIVE_GRAY, 'base64')) },
  ];
  for (const [w, h, q] of [[1, 1, 90], [8, 8, 50], [13, 7, 95], [16, 16, 75], [33, 17, 30], [5, 24, 100]]) {
    const data = new Uint8Array(w * h * 4);
    const smooth = chance(r, 0.5);
    for (let i = 0; i < data.length; i++) data[i] = smooth ? ((i >> 2) * 7 + (i & 3) * 40) & 255 : below(r, 256);
    seeds.push({ name: `jpeg-baseline-${w}x${h}-q${q}`, bytes: Uint8Array.from(jpeg.encode({ width: w, height: h, data }, q).data) });
  }
  return seeds;
})();

/** The marker segments after SOI (each with its marker; a scan with its entropy-coded data), and what follows EOI. */
function parse(bytes: Uint8Array): { segments: Uint8Array[]; tail: Uint8Array } | undefined {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return undefined;
  const segments: Uint8Array[] = [];
  let pos = 2;
  while (pos + 1 < bytes.length) {
    if (bytes[pos] !== 0xff) return undefined;
    const marker = bytes[pos + 1];
    if (marker === 0xd9) {
      segments.push(bytes.slice(pos, pos + 2));
      return { segments, tail: bytes.slice(pos + 2) };
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      segments.push(bytes.slice(pos, pos + 2));
      pos += 2;
      continue;
    }
    if (pos + 4 > bytes.length) return undefined;
    let end = pos + 2 + ((bytes[pos + 2] << 8) | bytes[pos + 3]);
    if (end > bytes.length) return undefined;
    if (marker === 0xda) {
      // entropy-coded data runs to the next marker other than a stuffed 0xff00 or a restart marker
      while (end + 1 < bytes.length && !(bytes[end] === 0xff && bytes[end + 1] !== 0 && !(bytes[end + 1] >= 0xd0 && bytes[end + 1] <= 0xd7))) end++;
      if (end + 1 >= bytes.length) end = bytes.length;
    }
    segments.push(bytes.slice(pos, end));
    pos = end;
  }
  return { segments, tail: new Uint8Array() };
}

const SOI = Uint8Array.of(0xff, 0xd8);
const isFrame = (s: Uint8Array) => s[1] >= 0xc0 && s[1] <= 0xcf && s[1] !== 0xc4 && s[1] !== 0xc8 && s[1] !== 0xcc;

function structural(name: string, edit: (segments: Uint8Array[], r: Rand) => string | undefined): Mutation {
  return (bytes, r, others) => {
    const file = parse(bytes);
    if (!file) return mutateBytes(bytes, r, others);
    const segments = file.segments.slice();
    const what = edit(segments, r);
    if (what === undefined) return mutateBytes(bytes, r, others);
    return [concat(SOI, ...segments, file.tail), `${name}:${what}`];
  };
}

const u16 = (n: number) => Uint8Array.of((n >> 8) & 255, n & 255);
const segment = (marker: number, body: Uint8Array) => concat(Uint8Array.of(0xff, marker), u16(body.length + 2), body);

const MUTATIONS: Mutation[] = [
  structural('sof', (segments, r) => {
    const i = segments.findIndex(isFrame);
    if (i < 0 || segments[i].length < 10) return undefined;
    const s = (segments[i] = segments[i].slice());
    const field = below(r, 6);
    if (field <= 1) {
      const value = chance(r, 0.4) ? 1 + below(r, 64) : pick(r, [0, 1, 2, 8, 9, 0xffff, 0x8000, MAX_SIDE, MAX_SIDE + 1, 7071, 7072, 8192, 5000, interestingInt(r) & 0xffff]);
      s.set(u16(value), field === 0 ? 5 : 7);
      return `${field === 0 ? 'height' : 'width'}=${value}`;
    }
    if (field === 2) {
      // a large frame for the tiny scan data
      const w = pick(r, [MAX_SIDE, 7071, 5000, 2048]), h = Math.min(0xffff, Math.floor(pick(r, [MAX_PIXELS, MAX_PIXELS / 2, 4e6]) / w));
      s.set(u16(h), 5);
      s.set(u16(w), 7);
      return `size=${w}x${h}`;
    }
    if (field === 3) {
      const value = pick(r, [0, 1, 2, 3, 4, 5, 255]);
      s[9] = value;
      return `components=${value}`;
    }
    if (field === 4) {
      const c = below(r, Math.max(1, Math.floor((s.length - 10) / 3))), value = pick(r, [0x00, 0x11, 0x12, 0x21, 0x22, 0x44, 0x41, 0x14, 0x0f, 0xf0, 0xff, 0x33]);
      if (11 + 3 * c < s.length) s[11 + 3 * c] = value;
      return `sampling${c}=${value.toString(16)}`;
    }
    const value = pick(r, [0, 1, 2, 3, 4, 12, 16, 255]);
    if (chance(r, 0.5)) s[4] = value;
    else if (12 < s.length) s[12] = value;
    return `precision-or-table=${value}`;
  }),
  structural('length', (segments, r) => {
    const candidates = segments.map((s, i) => [s, i] as const).filter(([s]) => s.length >= 4);
    if (candidates.length === 0) return undefined;
    const [s, i] = pick(r, candidates);
    const value = chance(r, 0.5) ? pick(r, [0, 1, 2, 3, 0xffff, 0x8000]) : (s.length - 2 + pick(r, [-3, -2, -1, 1, 2, 64])) & 0xffff;
    const out = (segments[i] = s.slice());
    out.set(u16(value), 2);
    return `${out[1].toString(16)}#${i}=${value}`;
  }),
  structural('body', (segments, r) => {
    // the contents of a table, frame or scan header, or the entropy-coded data, its length kept
    const i = below(r, segments.length), s = segments[i];
    if (s.length < 5) return undefined;
    const [body, what] = mutateBytes(s.subarray(4), r, []);
    const out = concat(s.subarray(0, 4), body);
    if (s[1] !== 0xda) out.set(u16(Math.min(0xffff, body.length + 2)), 2);
    segments[i] = out;
    return `${s[1].toString(16)}#${i}:${what}`;
  }),
  structural('dup', (segments, r) => {
    const i = below(r, segments.length), to = below(r, segments.length + 1);
    segments.splice(to, 0, segments[i]);
    return `${segments[i][1].toString(16)}#${i}->${to}`;
  }),
  structural('del', (segments, r) => {
    const i = below(r, segments.length);
    const [gone] = segments.splice(i, 1);
    return `${gone[1].toString(16)}#${i}`;
  }),
  structural('swap', (segments, r) => {
    const i = below(r, segments.length), j = below(r, segments.length);
    [segments[i], segments[j]] = [segments[j], segments[i]];
    return `${i}<->${j}`;
  }),
  structural('add', (segments, r) => {
    const kind = below(r, 7);
    const added =
      kind === 0 ? segment(0xdd, u16(pick(r, [0, 1, 2, 0xffff]))) // DRI: restart interval
      : kind === 1 ? Uint8Array.of(0xff, 0xd0 + below(r, 8)) // RSTn
      : kind === 2 ? Uint8Array.of(0xff, 0xd9) // EOI early
      : kind === 3 ? segment(0xe1, concat(Uint8Array.from('Exif\0\0', (c) => c.charCodeAt(0)), exifTiff(r))) // APP1 Exif
      : kind === 4 ? segment(pick(r, [0xc1, 0xc3, 0xc5, 0xc9, 0xcf]), randomBytes(r, 15)) // other frame codings
      : kind === 5 ? segment(pick(r, [0xc4, 0xdb]), randomBytes(r, pick(r, [0, 1, 17, 65, 200]))) // DHT, DQT
      : segment(0xfe, randomBytes(r, below(r, 40))); // COM
    const at = below(r, segments.length + 1);
    segments.splice(at, 0, added);
    return `${added[1].toString(16)}@${at}`;
  }),
];

/** A TIFF block for an Exif segment: an orientation tag, or a garbled IFD. */
function exifTiff(r: Rand): Uint8Array {
  const le = chance(r, 0.5);
  const out = new Uint8Array(26);
  const v = new DataView(out.buffer);
  out.set(le ? [0x49, 0x49, 42, 0] : [0x4d, 0x4d, 0, 42]);
  v.setUint32(4, chance(r, 0.8) ? 8 : interestingInt(r), le);
  v.setUint16(8, chance(r, 0.8) ? 1 : 0xffff, le);
  v.setUint16(10, 0x0112, le);
  v.setUint16(12, 3, le);
  v.setUint32(14, 1, le);
  v.setUint16(18, below(r, 10), le);
  return chance(r, 0.2) ? out.subarray(0, below(r, 26)) : out;
}

export const jpegTarget: Target = {
  name: 'jpeg',
  parser: 'decodeImage + decodeResized (JPEG)',
  make(index) {
    const r = streamOf('jpeg', index);
    const seed = pick(r, SEEDS);
    const { bytes, ops } = mutate(seed.bytes, r, { structural: MUTATIONS, structuralShare: 0.6, others: SEEDS.map((s) => s.bytes) });
    const to = sampling(r);
    ops.push(`read as ${describeSampling(to)}`);
    return { seed: seed.name, ops, size: bytes.length, files: { 'fuzz.jpg': bytes }, run: () => readImage(bytes, 'fuzz.jpg', to) };
  },
};
