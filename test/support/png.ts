// A PNG writer for the tests, written from the PNG specification and sharing no code with the
// decoder: every colour type and bit depth, palette, tRNS, eXIf (raw or an orientation), Adam7
// interlacing, any of the five scanline filters, any deflate settings, IDAT split at will.
import { crc32, deflateSync, type ZlibOptions } from 'node:zlib';

export const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Samples per pixel of each colour type, and the bit depths it allows. */
export const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
export const DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];

export interface PngSpec {
  width: number;
  height: number;
  colorType: number;
  bitDepth: number;
  /** Row-major samples, CHANNELS[colorType] per pixel (palette indices for type 3). */
  samples: ArrayLike<number>;
  interlace?: boolean;
  palette?: number[][];
  /** Raw tRNS chunk bytes. */
  trns?: number[];
  /** Raw eXIf chunk bytes, or an orientation to write as a little-endian TIFF block. */
  exif?: Uint8Array;
  orientation?: number;
  /** Filter type of scanline i: filters[i % filters.length] (default: none). */
  filters?: number[];
  deflate?: ZlibOptions;
  /** Split the compressed data into IDAT chunks of this many bytes. */
  idatSize?: number;
}

export function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

function packRow(samples: number[], depth: number): Uint8Array {
  const bytes = new Uint8Array(Math.ceil((samples.length * depth) / 8));
  samples.forEach((s, i) => {
    if (depth === 16) bytes.set([s >> 8, s & 255], 2 * i);
    else if (depth === 8) bytes[i] = s;
    else bytes[(i * depth) >> 3]! |= s << (8 - depth - ((i * depth) & 7));
  });
  return bytes;
}

/** PNG filter `type` applied to a scanline, given the (unfiltered) one above; bpp as the filters count it. */
function filterRow(type: number, row: Uint8Array, prior: Uint8Array, bpp: number): Uint8Array {
  return row.map((x, i) => {
    const a = i >= bpp ? row[i - bpp]! : 0, b = prior[i] ?? 0, c = i >= bpp ? prior[i - bpp] ?? 0 : 0;
    const pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);
    return x - [0, a, b, (a + b) >> 1, pa <= pb && pa <= pc ? a : pb <= pc ? b : c][type]!;
  });
}

export function makePng(spec: PngSpec): Buffer {
  const { width, height, colorType, bitDepth } = spec;
  const cn = CHANNELS[colorType]!, bpp = Math.max(1, (cn * bitDepth) >> 3), filters = spec.filters ?? [0];
  const raw: Uint8Array[] = [];
  let line = 0;
  for (const [x0, y0, dx, dy] of spec.interlace ? ADAM7 : [[0, 0, 1, 1]]) {
    const xs: number[] = [];
    for (let x = x0!; x < width; x += dx!) xs.push(x);
    if (xs.length === 0) continue; // an empty pass has no rows at all
    let prior: Uint8Array = new Uint8Array();
    for (let y = y0!; y < height; y += dy!) {
      const values: number[] = [];
      for (const x of xs) for (let k = 0; k < cn; k++) values.push(spec.samples[(y * width + x) * cn + k]!);
      const row = packRow(values, bitDepth);
      const type = filters[line++ % filters.length]!;
      raw.push(Uint8Array.of(type), filterRow(type, row, prior, bpp));
      prior = row;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([bitDepth, colorType, 0, 0, spec.interlace ? 1 : 0], 8);
  const chunks = [chunk('IHDR', ihdr)];
  if (spec.palette) chunks.push(chunk('PLTE', Uint8Array.from(spec.palette.flat())));
  if (spec.trns) chunks.push(chunk('tRNS', Uint8Array.from(spec.trns)));
  const exif = spec.exif ?? (spec.orientation ? exifTiff(spec.orientation) : undefined);
  if (exif) chunks.push(chunk('eXIf', exif));
  const z = deflateSync(Buffer.concat(raw), spec.deflate);
  for (let at = 0, step = spec.idatSize ?? z.length; at < z.length; at += step) chunks.push(chunk('IDAT', z.subarray(at, at + step)));
  chunks.push(chunk('IEND', new Uint8Array()));
  return Buffer.concat([SIGNATURE, ...chunks]);
}

/** A TIFF block whose IFD0 holds only the orientation tag. */
export function exifTiff(orientation: number, bigEndian = false): Uint8Array {
  const b = Buffer.alloc(26);
  const u16 = (v: number, at: number) => (bigEndian ? b.writeUInt16BE(v, at) : b.writeUInt16LE(v, at));
  const u32 = (v: number, at: number) => (bigEndian ? b.writeUInt32BE(v, at) : b.writeUInt32LE(v, at));
  b.write(bigEndian ? 'MM' : 'II', 0, 'latin1');
  u16(42, 2);
  u32(8, 4); // IFD0 offset
  u16(1, 8); // one entry:
  u16(0x0112, 10); // Orientation
  u16(3, 12); // SHORT
  u32(1, 14); // count
  u16(orientation, 18);
  u32(0, 22); // no next IFD
  return b;
}
