/**
 * Image I/O that feeds pixels exactly as OpenCV would: `cv2.imread(path)` (IMREAD_COLOR),
 * `cv2.cvtColor(img, COLOR_BGR2GRAY)` and `cv2.resize(img, size, interpolation=INTER_LINEAR)` on
 * 8-bit data, except that colour images keep RGB order. Works on Uint8Arrays and imports no `node:`
 * module so that it can be bundled for the browser.
 */
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { InputError } from './errors.js';

export interface Image {
  width: number;
  height: number;
  channels: 1 | 3;
  /** Interleaved rows, RGB order when 3 channels. */
  data: Uint8Array;
}

/** Larger images are refused from their header, before anything is allocated for their pixels. */
export const MAX_SIDE = 10_000;
export const MAX_PIXELS = 50_000_000;

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Decodes a PNG or JPEG (told apart by their magic bytes) to 8-bit RGB, as `cv2.imread` would. */
export function decodeImage(bytes: Uint8Array, name: string): Image {
  if (bytes.length === 0) throw new InputError(`${name}: empty file`);
  if (PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return decodePngFile(bytes, name);
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return decodeJpegFile(bytes, name);
  throw new InputError(`${name}: not a PNG or JPEG image (unrecognised file signature)`);
}

function checkDimensions(name: string, kind: string, width: number, height: number): void {
  if (width === 0 || height === 0) {
    throw new InputError(`${name}: corrupt ${kind} (invalid dimensions ${width}x${height})`);
  }
  if (width > MAX_SIDE || height > MAX_SIDE || width * height > MAX_PIXELS) {
    throw new InputError(
      `${name}: image too large (${width}x${height}; the limit is ${MAX_SIDE} px per side and ${MAX_PIXELS / 1e6} megapixels)`,
    );
  }
}

/** One-line text of whatever a decoder threw. */
function message(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ').trim();
}

// pngjs works on Node Buffers (a Uint8Array subclass): share the memory, don't copy.
function toBuffer(a: Uint8Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

// ---------------------------------------------------------------------------------------------
// PNG: decoded here rather than by pngjs, whose synchronous inflate does not notice a corrupt zlib
// stream on current Node and hands back uninitialised memory as pixels. imread (libpng) refuses those.

const PNG_DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/** Adam7 passes: first column, first row, column step, row step. */
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function decodePngFile(bytes: Uint8Array, name: string): Image {
  const corrupt = (what: string) => new InputError(`${name}: corrupt PNG (${what})`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let width = 0, height = 0, depth = 0, colorType = 0, interlaced = false, orientation = 1;
  let palette: Uint8Array | undefined;
  const idat: Uint8Array[] = [];
  // Walk the chunks: sizes are checked from IHDR before anything is allocated; truncation and CRC
  // errors are named. Ancillary chunks (tRNS, gAMA, ...) are skipped: imread drops alpha and applies
  // no gamma. Bytes after IEND are ignored, as libpng does.
  for (let pos = 8; ; ) {
    if (pos + 12 > bytes.length) {
      throw new InputError(`${name}: truncated PNG (file ends at byte ${bytes.length}, before the IEND chunk)`);
    }
    const length = view.getUint32(pos);
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    if (!/^[A-Za-z]{4}$/.test(type)) throw corrupt(`invalid chunk type at byte ${pos}`);
    const end = pos + 12 + length;
    if (end > bytes.length) {
      throw new InputError(`${name}: truncated PNG (${type} chunk declares ${length} bytes, only ${bytes.length - pos - 12} left)`);
    }
    if (crc32(bytes.subarray(pos + 4, end - 4)) !== view.getUint32(end - 4)) throw corrupt(`bad CRC in ${type} chunk`);
    if ((pos === 8) !== (type === 'IHDR')) throw corrupt('IHDR must be the first chunk');
    const data = bytes.subarray(pos + 8, end - 4);
    pos = end;

    if (type === 'IHDR') {
      if (length !== 13) throw corrupt(`IHDR chunk of ${length} bytes, expected 13`);
      width = view.getUint32(16);
      height = view.getUint32(20);
      [depth, colorType] = [data[8], data[9]];
      checkDimensions(name, 'PNG', width, height);
      if (!PNG_DEPTHS[colorType]?.includes(depth)) throw corrupt(`invalid colour type ${colorType} with bit depth ${depth}`);
      if (data[10] !== 0 || data[11] !== 0 || data[12] > 1) throw corrupt('unknown compression, filter or interlace method');
      interlaced = data[12] === 1;
    } else if (type === 'PLTE') {
      if (length % 3 !== 0 || length > 768) throw corrupt(`PLTE chunk of ${length} bytes`);
      palette = data;
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'eXIf') {
      orientation = exifOrientation(data);
    } else if (type === 'IEND') {
      break;
    } else if (!(type.charCodeAt(0) & 0x20)) {
      // An upper-case first letter marks a chunk that decoders must understand (libpng fails too).
      throw new InputError(`${name}: unsupported PNG (unknown critical chunk ${type})`);
    }
  }
  if (idat.length === 0) throw corrupt('no IDAT image data');
  if (colorType === 3 && !palette) throw corrupt('palette image without PLTE chunk');

  // The filtered scanlines of every pass, each row led by its filter-type byte.
  const channels = PNG_CHANNELS[colorType];
  const pixelBits = channels * depth;
  const passes = (interlaced ? ADAM7 : [[0, 0, 1, 1]]).map(([x0, y0, dx, dy]) => {
    const w = Math.ceil((width - x0) / dx), h = Math.ceil((height - y0) / dy);
    const rowBytes = Math.ceil((w * pixelBits) / 8);
    return { x0, y0, dx, dy, w, h, rowBytes, size: w > 0 && h > 0 ? h * (1 + rowBytes) : 0 }; // empty passes have no rows
  });
  let raw: Uint8Array;
  try {
    raw = inflate(concat(idat), passes.reduce((n, p) => n + p.size, 0));
  } catch (e) {
    throw new InputError(`${name}: corrupt PNG image data (${message(e)})`);
  }

  // Every sample becomes 8 bits as imread(IMREAD_COLOR) has libpng make it (see samples8); palette
  // indices past the PLTE entries give black, as libpng's zero-filled palette does; alpha is dropped
  // (never composited); gray is copied to R, G and B.
  const lut = new Uint8Array(256 * 3);
  if (palette) lut.set(palette);
  const rgb = new Uint8Array(width * height * 3);
  let at = 0;
  for (const p of passes) {
    if (p.size === 0) continue;
    unfilter(raw.subarray(at, at + p.size), p.rowBytes, Math.max(1, pixelBits >> 3));
    for (let j = 0; j < p.h; j++, at += 1 + p.rowBytes) {
      const s = samples8(raw.subarray(at + 1, at + 1 + p.rowBytes), p.w * channels, depth, colorType !== 3);
      for (let i = 0, k = 0; i < p.w; i++, k += channels) {
        const out = ((p.y0 + j * p.dy) * width + p.x0 + i * p.dx) * 3;
        if (colorType === 3) {
          const q = s[k] * 3;
          [rgb[out], rgb[out + 1], rgb[out + 2]] = [lut[q], lut[q + 1], lut[q + 2]];
        } else if (channels <= 2) {
          rgb[out] = rgb[out + 1] = rgb[out + 2] = s[k];
        } else {
          [rgb[out], rgb[out + 1], rgb[out + 2]] = [s[k], s[k + 1], s[k + 2]];
        }
      }
    }
  }
  return orient({ width, height, channels: 3, data: rgb }, orientation);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

/**
 * A row's samples as 8-bit values, as libpng gives them to imread(IMREAD_COLOR): 16-bit samples keep
 * their high byte (png_set_strip_16 chops, it does not round); 1-, 2- and 4-bit gray is scaled up
 * (×255, ×85, ×17: png_set_expand_gray_1_2_4_to_8); palette indices are returned as they are.
 */
function samples8(row: Uint8Array, count: number, depth: number, scale: boolean): Uint8Array {
  if (depth === 8) return row;
  const out = new Uint8Array(count);
  if (depth === 16) {
    for (let k = 0; k < count; k++) out[k] = row[2 * k];
  } else {
    const max = (1 << depth) - 1, factor = scale ? 255 / max : 1;
    for (let k = 0; k < count; k++) out[k] = ((row[(k * depth) >> 3] >> (8 - depth - ((k * depth) & 7))) & max) * factor;
  }
  return out;
}

/** Undoes the PNG row filters in place; `bpp` is the byte distance to the pixel on the left. */
function unfilter(rows: Uint8Array, rowBytes: number, bpp: number): void {
  const stride = rowBytes + 1;
  for (let r = 0; r < rows.length; r += stride) {
    const type = rows[r];
    for (let i = r + 1; i < r + stride; i++) {
      const left = i - bpp > r ? rows[i - bpp] : 0;
      const up = r > 0 ? rows[i - stride] : 0;
      const upLeft = r > 0 && i - bpp > r ? rows[i - stride - bpp] : 0;
      if (type === 1) rows[i] += left;
      else if (type === 2) rows[i] += up;
      else if (type === 3) rows[i] += (left + up) >> 1;
      else if (type === 4) {
        const p = left + up - upLeft, pa = Math.abs(p - left), pb = Math.abs(p - up), pc = Math.abs(p - upLeft);
        rows[i] += pa <= pb && pa <= pc ? left : pb <= pc ? up : upLeft;
      } else if (type !== 0) throw new Error(`invalid filter type ${type}`);
    }
  }
}

// zlib inflate (RFC 1950/1951), enough to read PNG image data: decodes until `size` bytes are out.
// Like libpng, whatever follows them (extra data, the Adler-32 check) is not looked at.

const LENGTH_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LENGTH_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577];
const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
const CODE_LENGTH_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/** A canonical Huffman code: how many codes of each length, and the symbols in code order. */
interface Huffman { counts: Uint16Array; symbols: Uint16Array }

function huffman(lengths: ArrayLike<number>): Huffman {
  const counts = new Uint16Array(16), offsets = new Uint16Array(16), symbols = new Uint16Array(lengths.length);
  for (let s = 0; s < lengths.length; s++) counts[lengths[s]]++;
  counts[0] = 0;
  for (let len = 1; len < 16; len++) offsets[len] = offsets[len - 1] + counts[len - 1];
  for (let s = 0; s < lengths.length; s++) if (lengths[s]) symbols[offsets[lengths[s]]++] = s;
  return { counts, symbols };
}

const FIXED_LITERALS = huffman(Array.from({ length: 288 }, (_, s) => (s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8)));
const FIXED_DISTANCES = huffman(new Array<number>(30).fill(5));

function inflate(zlib: Uint8Array, size: number): Uint8Array {
  if (zlib.length < 2 || (zlib[0] & 0x0f) !== 8 || ((zlib[0] << 8) | zlib[1]) % 31 !== 0 || zlib[1] & 0x20) {
    throw new Error('bad zlib header');
  }
  const out = new Uint8Array(size);
  let pos = 2, bitBuf = 0, bitCount = 0, o = 0;
  const bits = (n: number): number => {
    while (bitCount < n) {
      if (pos >= zlib.length) throw new Error(`compressed data ends after ${o} of ${size} bytes`);
      bitBuf |= zlib[pos++] << bitCount;
      bitCount += 8;
    }
    const v = bitBuf & ((1 << n) - 1);
    bitBuf >>>= n;
    bitCount -= n;
    return v;
  };
  const decode = ({ counts, symbols }: Huffman): number => {
    // Canonical codes of each length are consecutive numbers: read one bit at a time until in range.
    for (let len = 1, code = 0, first = 0, index = 0; len < 16; len++) {
      code |= bits(1);
      if (code >= first && code - first < counts[len]) return symbols[index + code - first];
      index += counts[len];
      first = (first + counts[len]) << 1;
      code <<= 1;
    }
    throw new Error('invalid Huffman code');
  };

  for (let last = 0; !last && o < size; ) {
    last = bits(1);
    const kind = bits(2);
    if (kind === 0) {
      // stored block: byte-aligned LEN, ~LEN, then LEN raw bytes
      bitBuf = bitCount = 0;
      if (pos + 4 > zlib.length) throw new Error('truncated stored block');
      const len = zlib[pos] | (zlib[pos + 1] << 8);
      if ((len ^ (zlib[pos + 2] | (zlib[pos + 3] << 8))) !== 0xffff) throw new Error('bad stored block length');
      const n = Math.min(len, size - o, zlib.length - pos - 4);
      out.set(zlib.subarray(pos + 4, pos + 4 + n), o);
      [pos, o] = [pos + 4 + len, o + n];
      if (pos > zlib.length) throw new Error(`compressed data ends after ${o} of ${size} bytes`);
      continue;
    }
    if (kind === 3) throw new Error('invalid block type');
    let literals = FIXED_LITERALS, distances = FIXED_DISTANCES;
    if (kind === 2) {
      const nLit = bits(5) + 257, nDist = bits(5) + 1, nCode = bits(4) + 4;
      const codeLengths = new Uint8Array(19);
      for (let i = 0; i < nCode; i++) codeLengths[CODE_LENGTH_ORDER[i]] = bits(3);
      const lengthCode = huffman(codeLengths);
      const lengths = new Uint8Array(nLit + nDist);
      for (let i = 0; i < nLit + nDist; ) {
        const sym = decode(lengthCode);
        if (sym < 16) { lengths[i++] = sym; continue; }
        const [value, repeat] = sym === 16 ? [lengths[i - 1], 3 + bits(2)] : [0, sym === 17 ? 3 + bits(3) : 11 + bits(7)];
        if ((sym === 16 && i === 0) || i + repeat > nLit + nDist) throw new Error('invalid code lengths');
        lengths.fill(value, i, i + repeat);
        i += repeat;
      }
      literals = huffman(lengths.subarray(0, nLit));
      distances = huffman(lengths.subarray(nLit));
    }
    while (o < size) {
      const sym = decode(literals);
      if (sym === 256) break; // end of block
      if (sym < 256) { out[o++] = sym; continue; }
      if (sym > 285) throw new Error('invalid length code');
      const length = LENGTH_BASE[sym - 257] + bits(LENGTH_EXTRA[sym - 257]);
      const d = decode(distances);
      if (d > 29) throw new Error('invalid distance code');
      const distance = DIST_BASE[d] + bits(DIST_EXTRA[d]);
      if (distance > o) throw new Error('distance too far back');
      for (let end = Math.min(o + length, size); o < end; o++) out[o] = out[o - distance];
    }
  }
  if (o < size) throw new Error(`compressed data ends after ${o} of ${size} bytes`);
  return out;
}

/** Encodes an 8-bit gray or RGB image as a non-interlaced PNG (with pngjs). */
export function encodePng(img: Image): Uint8Array {
  const colorType = img.channels === 1 ? 0 : 2;
  // PNG.sync.write only reads width, height and data; a full PNG object would be a Node stream.
  const png = { width: img.width, height: img.height, data: toBuffer(img.data) } as PNG;
  const out = PNG.sync.write(png, { colorType, inputColorType: colorType, inputHasAlpha: false, bitDepth: 8 });
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

// ---------------------------------------------------------------------------------------------
// JPEG

function decodeJpegFile(bytes: Uint8Array, name: string): Image {
  const orientation = scanJpeg(bytes, name);
  let out: { width: number; height: number; data: Uint8Array };
  try {
    out = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false, // RGB; grayscale JPEGs come out with R = G = B, as imread gives them
      tolerantDecoding: true, // like libjpeg, skip blocks outside the frame instead of failing
      maxResolutionInMP: MAX_PIXELS / 1e6,
      maxMemoryUsageInMB: 4096, // jpeg-js keeps 256 bytes per 8×8 block: ~600 MB for 50 MP
    });
  } catch (e) {
    const ended = bytes[bytes.length - 2] === 0xff && bytes[bytes.length - 1] === 0xd9; // EOI marker
    throw new InputError(`${name}: ${ended ? 'corrupt' : 'truncated or corrupt'} JPEG (${message(e)})`);
  }
  if (out.data.length !== out.width * out.height * 3) throw new InputError(`${name}: corrupt JPEG (wrong decoded size)`);
  return orient({ width: out.width, height: out.height, channels: 3, data: out.data }, orientation);
}

/**
 * Reads the JPEG markers up to the first scan: checks the frame size (SOFn) before jpeg-js allocates
 * anything, refuses codings jpeg-js lacks, and returns the EXIF orientation.
 */
function scanJpeg(bytes: Uint8Array, name: string): number {
  let orientation = 0;
  let hasFrame = false;
  for (let pos = 2; ; ) {
    if (pos + 4 > bytes.length) throw new InputError(`${name}: truncated JPEG (file ends before the image data)`);
    if (bytes[pos] !== 0xff) throw new InputError(`${name}: corrupt JPEG (no marker at byte ${pos})`);
    const marker = bytes[pos + 1];
    if (marker === 0xff) { pos += 1; continue; } // fill byte
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) { pos += 2; continue; } // no length field
    if (marker === 0xd9) throw new InputError(`${name}: corrupt JPEG (end marker before any image data)`);
    const length = (bytes[pos + 2] << 8) | bytes[pos + 3];
    if (length < 2 || pos + 2 + length > bytes.length) {
      throw new InputError(`${name}: truncated JPEG (segment at byte ${pos} runs past the end of the file)`);
    }
    if (marker === 0xda) {
      if (!hasFrame) throw new InputError(`${name}: corrupt JPEG (scan data before the frame header)`);
      return orientation || 1;
    }
    const segment = bytes.subarray(pos + 4, pos + 2 + length);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (length < 8) throw new InputError(`${name}: corrupt JPEG (short frame header)`);
      checkDimensions(name, 'JPEG', (segment[3] << 8) | segment[4], (segment[1] << 8) | segment[2]);
      if (marker > 0xc2) {
        throw new InputError(`${name}: unsupported JPEG (lossless, hierarchical or arithmetic-coded; only baseline and progressive are)`);
      }
      hasFrame = true;
    }
    // The first APP1 "Exif\0\0" segment holds a TIFF header; OpenCV applies its orientation tag.
    if (marker === 0xe1 && !orientation && String.fromCharCode(...segment.subarray(0, 6)) === 'Exif\0\0') {
      orientation = exifOrientation(segment.subarray(6));
    }
    pos += 2 + length;
  }
}

// ---------------------------------------------------------------------------------------------
// EXIF orientation: imread applies it for IMREAD_COLOR (it is skipped only with IMREAD_IGNORE_ORIENTATION)

/** The orientation tag (0x0112) of IFD0 in a TIFF-structured EXIF block; 1 when absent or unreadable. */
function exifOrientation(tiff: Uint8Array): number {
  try {
    const v = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
    const le = v.getUint16(0) === 0x4949; // "II": little-endian, "MM": big-endian
    if (!le && v.getUint16(0) !== 0x4d4d) return 1;
    const ifd = v.getUint32(4, le);
    for (let i = 0, count = v.getUint16(ifd, le); i < count; i++) {
      const entry = ifd + 2 + 12 * i;
      if (v.getUint16(entry, le) === 0x0112) return v.getUint16(entry + 8, le);
    }
  } catch {
    // A truncated EXIF block is ignored, as OpenCV's ExifReader does.
  }
  return 1;
}

/**
 * OpenCV's ApplyExifOrientation: 2 flip left-right, 3 flip both, 4 flip up-down; 5-8 first transpose,
 * then 5 nothing, 6 flip left-right (= rotate 90° clockwise), 7 flip both, 8 flip up-down.
 */
function orient(img: Image, orientation: number): Image {
  if (orientation < 2 || orientation > 8) return img;
  const transpose = orientation >= 5;
  const flipX = [2, 3, 6, 7].includes(orientation);
  const flipY = [3, 4, 7, 8].includes(orientation);
  const { width: w, height: h, channels: c } = img;
  const W = transpose ? h : w, H = transpose ? w : h;
  const out = new Uint8Array(img.data.length);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const tx = flipX ? W - 1 - x : x, ty = flipY ? H - 1 - y : y; // pixel of the (transposed) image
      const src = (transpose ? tx * w + ty : ty * w + tx) * c;
      out.set(img.data.subarray(src, src + c), (y * W + x) * c);
    }
  }
  return { width: W, height: H, channels: c, data: out };
}

// ---------------------------------------------------------------------------------------------
// Pixel operations

/**
 * OpenCV 4's COLOR_BGR2GRAY for 8-bit data (RGB2Gray<uchar> in color_rgb.simd.hpp; its scalar and
 * SIMD paths agree), in 15-bit fixed point (gray_shift = 15, RY15/GY15/BY15):
 *   gray = (9798·R + 19235·G + 3735·B + 16384) >> 15
 * The weights are round(0.299, 0.587, 0.114 × 2^15) and sum to exactly 32768, so gray stays gray.
 * (OpenCV 3 used 14 bits, (4899·R + 9617·G + 1868·B + 8192) >> 14, which differs by 1 on some pixels.)
 */
export function toGray(img: Image): Image {
  if (img.channels === 1) return { ...img, data: img.data.slice() };
  const n = img.width * img.height;
  const d = img.data;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = (9798 * d[3 * i] + 19235 * d[3 * i + 1] + 3735 * d[3 * i + 2] + 16384) >> 15;
  }
  return { width: img.width, height: img.height, channels: 1, data: out };
}

function checkSize(what: string, width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new InputError(`${what}: size must be positive whole numbers, got ${width}x${height}`);
  }
}

/** Rounds to nearest, ties to even, like cvRound (which saturate_cast<short>(float) uses). */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Per destination index: the two source indices and their 11-bit fixed-point weights, computed as
 * OpenCV's resize does for INTER_LINEAR on 8-bit data: scale = 1 / (dst / src) in double,
 * f = float((d + 0.5)·scale − 0.5), s = floor(f), weights saturate_cast<short>((1 − f + s)·2048) and
 * saturate_cast<short>((f − s)·2048). Horizontally, positions left of the first or right of the last
 * source pixel use that pixel alone; vertically, OpenCV keeps the weights and clamps the rows.
 */
function linearTaps(srcLen: number, dstLen: number, horizontal: boolean) {
  const scale = 1 / (dstLen / srcLen);
  const i0 = new Int32Array(dstLen), i1 = new Int32Array(dstLen), w0 = new Int32Array(dstLen), w1 = new Int32Array(dstLen);
  for (let d = 0; d < dstLen; d++) {
    let f = Math.fround((d + 0.5) * scale - 0.5);
    let s = Math.floor(f);
    f = Math.fround(f - s);
    if (horizontal && (s < 0 || s >= srcLen - 1)) {
      s = Math.min(Math.max(s, 0), srcLen - 1);
      f = 0;
    }
    i0[d] = Math.min(Math.max(s, 0), srcLen - 1);
    i1[d] = Math.min(Math.max(s + 1, 0), srcLen - 1);
    w0[d] = roundHalfEven(Math.fround(1 - f) * 2048);
    w1[d] = roundHalfEven(f * 2048);
  }
  return { i0, i1, w0, w1 };
}

/**
 * `cv2.resize(img, (width, height), interpolation=INTER_LINEAR)` on 8-bit images, bit-exact.
 * Separable, fixed point with INTER_RESIZE_COEF_BITS = 11: each source row is first interpolated
 * horizontally to integers scaled by 2^11 (h = p0·a0 + p1·a1), then rows are blended exactly as
 * OpenCV's 8-bit VResizeLinear does (its scalar and SIMD code agree):
 *   out = (((b0·(h0 >> 4)) >> 16) + ((b1·(h1 >> 4)) >> 16) + 2) >> 2.
 * An exact 2× downscale, which OpenCV hands to INTER_AREA, gives the same (a+b+c+d+2) >> 2 here.
 */
export function resize(img: Image, width: number, height: number): Image {
  checkSize('resize', width, height);
  if (width === img.width && height === img.height) return { ...img, data: img.data.slice() };
  const { width: sw, height: sh, channels: cn, data } = img;
  const xs = linearTaps(sw, width, true);
  const ys = linearTaps(sh, height, false);
  const rowLen = width * cn;
  const rows = new Int32Array(sh * rowLen);
  for (let y = 0; y < sh; y++) {
    for (let dx = 0; dx < width; dx++) {
      const p0 = (y * sw + xs.i0[dx]) * cn, p1 = (y * sw + xs.i1[dx]) * cn;
      for (let k = 0; k < cn; k++) {
        rows[y * rowLen + dx * cn + k] = data[p0 + k] * xs.w0[dx] + data[p1 + k] * xs.w1[dx];
      }
    }
  }
  const out = new Uint8Array(height * rowLen);
  for (let dy = 0; dy < height; dy++) {
    const r0 = ys.i0[dy] * rowLen, r1 = ys.i1[dy] * rowLen, b0 = ys.w0[dy], b1 = ys.w1[dy];
    for (let x = 0; x < rowLen; x++) {
      out[dy * rowLen + x] = (((b0 * (rows[r0 + x] >> 4)) >> 16) + ((b1 * (rows[r1 + x] >> 4)) >> 16) + 2) >> 2;
    }
  }
  return { width, height, channels: cn, data: out };
}

/** The w×h rectangle whose top-left corner is (x, y). */
export function crop(img: Image, x: number, y: number, w: number, h: number): Image {
  checkSize('crop', w, h);
  if (!Number.isInteger(x) || !Number.isInteger(y) || x < 0 || y < 0 || x + w > img.width || y + h > img.height) {
    throw new InputError(`crop: rectangle ${w}x${h} at (${x}, ${y}) is outside the ${img.width}x${img.height} image`);
  }
  const c = img.channels;
  const out = new Uint8Array(w * h * c);
  for (let row = 0; row < h; row++) {
    const start = ((y + row) * img.width + x) * c;
    out.set(img.data.subarray(start, start + w * c), row * w * c);
  }
  return { width: w, height: h, channels: c, data: out };
}
