/**
 * Image I/O that feeds pixels exactly as OpenCV would: `cv2.imread(path)` (IMREAD_COLOR),
 * `cv2.cvtColor(img, COLOR_BGR2GRAY)` and `cv2.resize(img, size, interpolation=INTER_LINEAR)` on
 * 8-bit data, except that colour images keep RGB order. Works on Uint8Arrays and imports nothing
 * that needs Node (no `node:` module, no Buffer), so that it can be bundled for the browser.
 */
import { encode as fastPngEncode } from 'fast-png';
import { ZStream, Z_NO_FLUSH, Z_OK, Z_STREAM_END, zlibInflate, zlibInflateInit, type Z_CallStatus } from 'pako';
import { InputError } from '../errors.js';
import { crc32 } from './crc.js';
import { decodeJpeg, JpegError } from './jpeg.js';

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

// ---------------------------------------------------------------------------------------------
// PNG. Not pngjs: on current Node its synchronous inflate does not notice a corrupt zlib stream and
// hands back uninitialised memory as pixels, and it zeroes the colour of tRNS-transparent pixels.
// Libraries: pako (zlib's inflate, ported) and fast-png (encoding). Here: the chunk walk (libpng's
// checks, the size limit before any allocation, eXIf), the Adam7 pass geometry, undoing the scanline
// filters and the mapping of samples to 8-bit RGB as imread has libpng do it. The whole image and
// `decodeResized` go through the same scanline reader (gatherPng), one row at a time.

const PNG_DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/** Adam7 passes: first column, first row, column step, row step. */
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];

interface PngPass {
  x0: number;
  y0: number;
  dx: number;
  dy: number;
  /** Pixels per row and rows; an empty pass has no rows at all. */
  w: number;
  h: number;
  /** Bytes of one filtered scanline, without its filter-type byte. */
  rowBytes: number;
  /** Bytes of the pass's filtered scanlines, filter-type bytes included. */
  size: number;
}

interface PngFile {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  channels: number;
  orientation: number;
  palette?: Uint8Array;
  idat: Uint8Array[];
  /** The passes with rows: one for a plain image, up to seven for Adam7. */
  passes: PngPass[];
  /** Bytes the IDAT data must inflate to. */
  size: number;
}

/**
 * Walks the chunks of a PNG without decoding any pixel: sizes are checked from IHDR before anything
 * is allocated; truncation and CRC errors are named; IDAT data too short to hold the image is refused.
 */
function readPng(bytes: Uint8Array, name: string): PngFile {
  const corrupt = (what: string) => new InputError(`${name}: corrupt PNG (${what})`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let width = 0, height = 0, depth = 0, colorType = 0, interlaced = false, orientation = 1;
  let palette: Uint8Array | undefined;
  const idat: Uint8Array[] = [];
  // Other ancillary chunks than eXIf (tRNS, gAMA, ...) are skipped: imread drops alpha and applies
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
    if ((pos === 8) !== (type === 'IHDR')) throw corrupt('IHDR must be the first chunk');
    const critical = !(type.charCodeAt(0) & 0x20); // upper-case first letter: decoders must understand it
    const crcOk = crc32(bytes.subarray(pos + 4, end - 4)) === view.getUint32(end - 4);
    const data = bytes.subarray(pos + 8, end - 4);
    pos = end;
    if (!crcOk && critical) throw corrupt(`bad CRC in ${type} chunk`);
    if (!crcOk) continue; // libpng's default for ancillary chunks: warn and skip them

    if (type === 'IHDR') {
      if (length !== 13) throw corrupt(`IHDR chunk of ${length} bytes, expected 13`);
      const ihdr = new DataView(data.buffer, data.byteOffset, 13);
      [width, height, depth, colorType] = [ihdr.getUint32(0), ihdr.getUint32(4), data[8], data[9]];
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
    } else if (critical) {
      throw new InputError(`${name}: unsupported PNG (unknown critical chunk ${type})`);
    }
  }
  if (idat.length === 0) throw corrupt('no IDAT image data');
  if (colorType === 3 && !palette) throw corrupt('palette image without PLTE chunk');

  // The filtered scanlines of every pass, each row led by its filter-type byte; empty passes have no rows.
  const channels = PNG_CHANNELS[colorType];
  const passes = (interlaced ? ADAM7 : [[0, 0, 1, 1]]).map(([x0, y0, dx, dy]) => {
    const w = Math.max(0, Math.ceil((width - x0) / dx)), h = w ? Math.max(0, Math.ceil((height - y0) / dy)) : 0;
    const rowBytes = Math.ceil((w * channels * depth) / 8);
    return { x0, y0, dx, dy, w, h, rowBytes, size: h * (1 + rowBytes) };
  }).filter((p) => p.h > 0);
  const size = passes.reduce((n, p) => n + p.size, 0);
  // Deflate cannot do better than 1032:1 (a 258-byte match costs at least 2 bits), so less IDAT data
  // than size / 1032 cannot inflate to the whole image: refused before anything is inflated.
  const have = idat.reduce((n, d) => n + d.length, 0), need = Math.floor(size / 1032);
  if (have < need) {
    throw new InputError(`${name}: truncated PNG (${width}x${height} needs at least ${need} bytes of image data, the file has ${have})`);
  }
  return { width, height, depth, colorType, channels, orientation, palette, idat, passes, size };
}

function decodePngFile(bytes: Uint8Array, name: string): Image {
  const png = readPng(bytes, name);
  const { width, height, orientation } = png;
  const rgb = new Uint8Array(width * height * 3);
  gatherPng(png, name, Int32Array.from({ length: height }, (_, y) => 3 * width * y), Int32Array.from({ length: width }, (_, x) => 3 * x), rgb);
  return orient({ width, height, channels: 3, data: rgb }, orientation);
}

/** Encodes an 8-bit gray or RGB image as a non-interlaced PNG (fast-png). */
export function encodePng(img: Image): Uint8Array {
  return fastPngEncode({ width: img.width, height: img.height, data: img.data, channels: img.channels, depth: 8 });
}

// ---------------------------------------------------------------------------------------------
// JPEG: libjpeg-turbo in WebAssembly (see jpeg.ts), asked for what imread(IMREAD_COLOR) asks for

function decodeJpegFile(bytes: Uint8Array, name: string): Image {
  const { width, height, components, orientation } = scanJpeg(bytes, name);
  const data = withJpegSamples(bytes, name, width, height, components, (samples, channels) =>
    channels === 3 ? samples.slice() : cmykToRgb(samples),
  );
  return orient({ width, height, channels: 3, data }, orientation);
}

/**
 * Decodes the JPEG and hands its samples to `use` (valid only during the call): RGB, or, for a
 * 4-component (CMYK or YCCK) image, the CMYK samples libjpeg makes of it.
 */
function withJpegSamples<T>(
  bytes: Uint8Array, name: string, width: number, height: number, components: number,
  use: (samples: Uint8Array, channels: 3 | 4) => T,
): T {
  try {
    return decodeJpeg(bytes, width, height, components, use);
  } catch (e) {
    if (!(e instanceof JpegError)) throw e;
    const ended = bytes[bytes.length - 2] === 0xff && bytes[bytes.length - 1] === 0xd9; // EOI marker
    throw new InputError(`${name}: ${ended ? 'corrupt' : 'truncated or corrupt'} JPEG (${message(e)})`);
  }
}

/**
 * OpenCV's icvCvt_CMYK2BGR_8u_C4C3R (imgcodecs/src/utils.cpp), which imread applies to the JCS_CMYK
 * samples it asks libjpeg for when a JPEG has 4 components (libjpeg turns YCCK into CMYK; neither
 * undoes the inversion Adobe applications write, so such files come out as OpenCV shows them):
 *   R = K − ((255 − C)·K >> 8), G = K − ((255 − M)·K >> 8), B = K − ((255 − Y)·K >> 8).
 */
function cmykToRgb(cmyk: Uint8Array, out = new Uint8Array((cmyk.length / 4) * 3)): Uint8Array {
  for (let i = 0, o = 0; i < cmyk.length; i += 4, o += 3) {
    const k = cmyk[i + 3];
    out[o] = k - (((255 - cmyk[i]) * k) >> 8);
    out[o + 1] = k - (((255 - cmyk[i + 1]) * k) >> 8);
    out[o + 2] = k - (((255 - cmyk[i + 2]) * k) >> 8);
  }
  return out;
}

/**
 * Reads the JPEG markers up to the first scan: checks the frame size (SOFn) before the decoder
 * allocates anything, refuses codings it lacks, refuses a file too short to hold the first scan of
 * its frame (see scanBytesNeeded), and returns the frame size, its number of components and the EXIF
 * orientation.
 */
function scanJpeg(bytes: Uint8Array, name: string): { width: number; height: number; components: number; orientation: number } {
  let orientation = 0;
  let frame: Uint8Array | undefined;
  let progressive = false;
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
    const segment = bytes.subarray(pos + 4, pos + 2 + length);
    if (marker === 0xda) {
      if (!frame) throw new InputError(`${name}: corrupt JPEG (scan data before the frame header)`);
      const width = (frame[3] << 8) | frame[4], height = (frame[1] << 8) | frame[2];
      const need = scanBytesNeeded(frame, segment, progressive), have = bytes.length - pos - 2 - length;
      // jpeg-js would refuse such headers too, but only after allocating for the whole frame.
      if (need === undefined) throw new InputError(`${name}: corrupt JPEG (the first scan header does not fit the frame header)`);
      if (have < need) {
        throw new InputError(`${name}: truncated JPEG (${width}x${height} needs at least ${need} bytes of image data, the file has ${have})`);
      }
      return { width, height, components: frame[5], orientation: orientation || 1 };
    }
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (length < 8) throw new InputError(`${name}: corrupt JPEG (short frame header)`);
      // jpeg-js would allocate for the first frame before refusing the second: refuse it here.
      if (frame) throw new InputError(`${name}: corrupt JPEG (a second frame header; only single-frame JPEGs are supported)`);
      checkDimensions(name, 'JPEG', (segment[3] << 8) | segment[4], (segment[1] << 8) | segment[2]);
      if (marker === 0xc9 || marker === 0xca) {
        throw new InputError(`${name}: unsupported JPEG (arithmetic-coded; only Huffman-coded baseline and progressive are)`);
      }
      if (marker > 0xc2) {
        throw new InputError(`${name}: unsupported JPEG (lossless or hierarchical; only baseline and progressive are)`);
      }
      frame = segment;
      progressive = marker === 0xc2;
    }
    // The first APP1 "Exif\0\0" segment holds a TIFF header; OpenCV applies its orientation tag.
    if (marker === 0xe1 && !orientation && String.fromCharCode(...segment.subarray(0, 6)) === 'Exif\0\0') {
      orientation = exifOrientation(segment.subarray(6));
    }
    pos += 2 + length;
  }
}

/**
 * A lower bound on the bytes of entropy-coded data the first scan of a frame needs (undefined when
 * the headers do not allow one: a short header, no component, one the frame lacks, a sampling
 * factor outside 1 to 4). Every Huffman code is at least 1 bit long; in a sequential scan each
 * 8×8 block of each component codes a DC difference and at least one AC symbol (end-of-block, or
 * the 63rd coefficient), so 2 bits; the first DC scan of a progressive frame codes 1 DC difference
 * per block. A scan of one component covers that component's blocks, an interleaved scan whole MCUs
 * (ITU T.81, A.2). What follows the scan header is counted whole, later scans and markers included.
 */
function scanBytesNeeded(frame: Uint8Array, scan: Uint8Array, progressive: boolean): number | undefined {
  const height = (frame[1] << 8) | frame[2], width = (frame[3] << 8) | frame[4], nf = frame[5];
  const ns = scan[0];
  if (frame.length < 6 + 3 * nf || nf === 0 || scan.length < 4 + 2 * ns || ns === 0) return undefined;
  const components = new Map<number, [h: number, v: number]>();
  for (let i = 0; i < nf; i++) components.set(frame[6 + 3 * i], [frame[7 + 3 * i] >> 4, frame[7 + 3 * i] & 15]);
  const sampling = [...components.values()];
  if (sampling.some(([h, v]) => h < 1 || h > 4 || v < 1 || v > 4)) return undefined;
  const hmax = Math.max(...sampling.map(([h]) => h)), vmax = Math.max(...sampling.map(([, v]) => v));
  const inScan = Array.from({ length: ns }, (_, i) => components.get(scan[1 + 2 * i]));
  if (inScan.some((c) => !c)) return undefined;
  const ss = scan[1 + 2 * ns], ah = scan[3 + 2 * ns] >> 4;
  const bitsPerBlock = !progressive ? 2 : ss === 0 && ah === 0 ? 1 : 0;
  let blocks: number;
  if (ns === 1) {
    const [h, v] = inScan[0]!;
    blocks = Math.ceil(Math.ceil((width * h) / hmax) / 8) * Math.ceil(Math.ceil((height * v) / vmax) / 8);
  } else {
    const mcus = Math.ceil(width / (8 * hmax)) * Math.ceil(height / (8 * vmax));
    blocks = mcus * inScan.reduce((n, c) => n + c![0] * c![1], 0);
  }
  return Math.floor((blocks * bitsPerBlock) / 8);
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
      for (let k = 0; k < c; k++) out[(y * W + x) * c + k] = img.data[src + k];
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

/** A gray image as RGB, each value in all three channels (as imread reads a gray file in colour). */
export function toRgb(img: Image): Image {
  if (img.channels === 3) return { ...img, data: img.data.slice() };
  const out = new Uint8Array(img.data.length * 3);
  img.data.forEach((v, i) => out.fill(v, 3 * i, 3 * i + 3));
  return { width: img.width, height: img.height, channels: 3, data: out };
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
  return resample(img, width, height, linearTaps(img.width, width, true), linearTaps(img.height, height, false));
}

type Taps = ReturnType<typeof linearTaps>;

/** The fixed-point arithmetic of `resize`, with the taps given (indices into `img`'s columns and rows). */
function resample(img: Image, width: number, height: number, xs: Taps, ys: Taps): Image {
  const { width: sw, height: sh, channels: cn, data } = img;
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

/**
 * The source indices `taps` reads, in increasing order, and the same taps pointing into that list
 * instead: resampling the pixels at those indices alone gives the same result. (A tap of −1, into
 * padding, stays −1.)
 */
function usedBy<T extends { i0: Int32Array; i1: Int32Array }>(taps: T, srcLen: number): [used: number[], taps: T] {
  const at = new Int32Array(srcLen).fill(-1);
  const mark = (i: number) => i >= 0 && (at[i] = 0);
  for (let d = 0; d < taps.i0.length; d++) mark(taps.i0[d]), mark(taps.i1[d]);
  const used: number[] = [];
  for (let i = 0; i < srcLen; i++) if (at[i] === 0) at[i] = used.push(i) - 1;
  const to = (i: number) => (i < 0 ? -1 : at[i]);
  return [used, { ...taps, i0: taps.i0.map(to), i1: taps.i1.map(to) }];
}

// ---------------------------------------------------------------------------------------------
// TensorFlow 1's bilinear resize, as face-api.js reads a face for its networks

/** An image of float samples (a resize that does not round), laid out as Image. */
export interface FloatImage {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Float32Array;
}

/** Whether a resize first pads the picture with zeros to a centred square. */
export type Padding = 'none' | 'square';

/**
 * face-api.js's padToSquare(…, isCenterImage = true), as offsets into a square of side
 * max(width, height): round(difference / 2) zeros go after the picture, the rest before it.
 */
function squarePadding(width: number, height: number, padding: Padding) {
  if (padding === 'none') return { side: [width, height], before: [0, 0] };
  const side = Math.max(width, height);
  const before = (len: number) => side - len - Math.round((side - len) * 0.5);
  return { side: [side, side], before: [before(width), before(height)] };
}

/**
 * Per destination index d along one axis, TensorFlow 1's resize_bilinear (tf.image.resizeBilinear
 * with alignCorners and halfPixelCenters false, TensorFlow.js's CPU kernel): the source position is
 * d·len/dstLen, read between its floor and min(ceil, len − 1) with weight `frac` on the second.
 * The axis is `len` long, `before` zeros then the `srcLen` pixels then zeros: taps into the zeros
 * are −1.
 */
function tf1Taps(srcLen: number, dstLen: number, len: number, before: number) {
  const ratio = len / dstLen;
  const i0 = new Int32Array(dstLen), i1 = new Int32Array(dstLen), frac = new Float64Array(dstLen);
  const inside = (i: number) => (i >= before && i < before + srcLen ? i - before : -1);
  for (let d = 0; d < dstLen; d++) {
    const f = ratio * d, lo = Math.floor(f);
    i0[d] = inside(lo);
    i1[d] = inside(Math.min(len - 1, Math.ceil(f)));
    frac[d] = f - lo;
  }
  return { i0, i1, frac };
}

type Tf1Taps = ReturnType<typeof tf1Taps>;

function tf1Axes(width: number, height: number, to: { width: number; height: number }, padding: Padding): [Tf1Taps, Tf1Taps] {
  checkSize('resize', to.width, to.height);
  const { side, before } = squarePadding(width, height, padding);
  return [tf1Taps(width, to.width, side[0], before[0]), tf1Taps(height, to.height, side[1], before[1])];
}

/**
 * `tf.image.resizeBilinear(img, [height, width])` (TensorFlow 1's sampling, no half-pixel offset)
 * of the picture, first padded with zeros to a centred square when `padding` is "square" (as
 * face-api.js's NetInput.toBatchTensor does): float samples, not rounded, the same float32 numbers
 * as TensorFlow.js's CPU kernel.
 */
export function resizeTf1(img: Image, width: number, height: number, padding: Padding = 'none'): FloatImage {
  const [xs, ys] = tf1Axes(img.width, img.height, { width, height }, padding);
  return resampleTf1(img, width, height, xs, ys);
}

/** The arithmetic of resizeTf1 with the taps given: per row top = a + (b − a)·fx, then
 *  top + (bottom − top)·fy, in double as TensorFlow.js computes it, stored as float32. */
function resampleTf1(img: Image, width: number, height: number, xs: Tf1Taps, ys: Tf1Taps): FloatImage {
  const { width: sw, height: sh, channels: cn, data } = img;
  const rowLen = width * cn;
  const rows = new Float64Array((sh + 1) * rowLen); // the last row stays zero: the padding's
  const sample = (y: number, x: number, k: number) => (x < 0 ? 0 : data[(y * sw + x) * cn + k]);
  for (let y = 0; y < sh; y++) {
    for (let dx = 0; dx < width; dx++) {
      for (let k = 0; k < cn; k++) {
        const a = sample(y, xs.i0[dx], k), b = sample(y, xs.i1[dx], k);
        rows[y * rowLen + dx * cn + k] = a + (b - a) * xs.frac[dx];
      }
    }
  }
  const out = new Float32Array(height * rowLen);
  const row = (i: number) => (i < 0 ? sh : i) * rowLen;
  for (let dy = 0; dy < height; dy++) {
    const r0 = row(ys.i0[dy]), r1 = row(ys.i1[dy]), f = ys.frac[dy];
    for (let x = 0; x < rowLen; x++) {
      const top = rows[r0 + x], bottom = rows[r1 + x];
      out[dy * rowLen + x] = top + (bottom - top) * f;
    }
  }
  return { width, height, channels: cn, data: out };
}

/** The w×h rectangle whose top-left corner is (x, y). */
export function crop(img: Image, x: number, y: number, w: number, h: number): Image {
  checkCrop(img.width, img.height, x, y, w, h);
  const c = img.channels;
  const out = new Uint8Array(w * h * c);
  for (let row = 0; row < h; row++) {
    const start = ((y + row) * img.width + x) * c;
    out.set(img.data.subarray(start, start + w * c), row * w * c);
  }
  return { width: w, height: h, channels: c, data: out };
}

function checkCrop(width: number, height: number, x: number, y: number, w: number, h: number): void {
  checkSize('crop', w, h);
  if (!Number.isInteger(x) || !Number.isInteger(y) || x < 0 || y < 0 || x + w > width || y + h > height) {
    throw new InputError(`crop: rectangle ${w}x${h} at (${x}, ${y}) is outside the ${width}x${height} image`);
  }
}

// ---------------------------------------------------------------------------------------------
// Straight to a small size: the pixels the resize reads, and no others, kept in memory

/** What `decodeResized` makes of a file: `width`×`height`, gray (1) or RGB (3), from `crop` if given. */
export interface Sampling {
  width: number;
  height: number;
  channels: 1 | 3;
  /** x, y, width, height of a rectangle of the image as shown (EXIF orientation applied). */
  crop?: readonly [x: number, y: number, width: number, height: number];
}

/** A decoder that hands over the pixels at some rows and columns of the image as stored. */
interface PixelSource {
  width: number;
  height: number;
  orientation: number;
  /**
   * Writes the 8-bit RGB pixel of stored row y and column x at `out[rowAt[y] + colAt[x]]` for every
   * y and x whose offsets are not −1.
   */
  gather(rowAt: Int32Array, colAt: Int32Array, out: Uint8Array): void;
}

/**
 * `resize(toGray(crop(decodeImage(bytes, name), ...to.crop)), to.width, to.height)` (without
 * `toGray` for 3 channels, without `crop` when there is none), bit for bit, in memory that does not
 * grow with the image: INTER_LINEAR reads two source columns per output column and two source rows
 * per output row, so only those pixels are kept. A PNG is inflated, unfiltered and read row by row
 * (Adam7 pass by pass), never held whole; a JPEG is decoded whole by libjpeg, and the pixels used
 * are taken from its output buffer (in the decoder's memory, never copied whole). The crop is
 * checked against the header before any pixel is decoded.
 */
export function decodeResized(bytes: Uint8Array, name: string, to: Sampling): Image {
  const region = openRegion(bytes, name, to.crop);
  checkSize('resize', to.width, to.height);
  const [cols, xs] = usedBy(linearTaps(region.width, to.width, true), region.width);
  const [rows, ys] = usedBy(linearTaps(region.height, to.height, false), region.height);
  const picked = region.pick(cols, rows);
  return resample(to.channels === 1 ? toGray(picked) : picked, to.width, to.height, xs, ys);
}

/**
 * `resizeTf1(toGray(crop(decodeImage(bytes, name), ...to.crop)), to.width, to.height, padding)`
 * (without `toGray` for 3 channels, without `crop` when there is none), reading only the pixels the
 * resize reads, as decodeResized does.
 */
export function decodeResizedTf1(bytes: Uint8Array, name: string, to: Sampling, padding: Padding): FloatImage {
  const region = openRegion(bytes, name, to.crop);
  const [xTaps, yTaps] = tf1Axes(region.width, region.height, to, padding);
  const [cols, xs] = usedBy(xTaps, region.width);
  const [rows, ys] = usedBy(yTaps, region.height);
  const picked = region.pick(cols, rows);
  return resampleTf1(to.channels === 1 ? toGray(picked) : picked, to.width, to.height, xs, ys);
}

/**
 * A rectangle of an image file as shown (EXIF orientation applied; checked against the header
 * before any pixel is decoded), whose pixels are decoded only at the columns and rows asked for.
 */
function openRegion(bytes: Uint8Array, name: string, crop: Sampling['crop']) {
  const source = openImage(bytes, name);
  const { width: sw, height: sh, orientation } = source;
  const valid = orientation >= 2 && orientation <= 8;
  const transpose = valid && orientation >= 5;
  const flipX = valid && [2, 3, 6, 7].includes(orientation), flipY = valid && [3, 4, 7, 8].includes(orientation);
  const W = transpose ? sh : sw, H = transpose ? sw : sh; // as shown
  const [cx, cy, cw, ch] = crop ?? [0, 0, W, H];
  if (crop) checkCrop(W, H, cx, cy, cw, ch);
  /** The RGB pixels at columns `cols` and rows `rows` of the rectangle (increasing), as an image. */
  const pick = (cols: number[], rows: number[]): Image => {
    // Shown column X, row Y is stored at row X, column Y when transposed (then flipped as `orient` does).
    const rowAt = new Int32Array(sh).fill(-1), colAt = new Int32Array(sw).fill(-1);
    cols.forEach((c, i) => {
      const X = flipX ? W - 1 - (cx + c) : cx + c;
      (transpose ? rowAt : colAt)[X] = 3 * i;
    });
    rows.forEach((r, j) => {
      const Y = flipY ? H - 1 - (cy + r) : cy + r;
      (transpose ? colAt : rowAt)[Y] = 3 * cols.length * j;
    });
    const picked: Image = { width: cols.length, height: rows.length, channels: 3, data: new Uint8Array(3 * cols.length * rows.length) };
    source.gather(rowAt, colAt, picked.data);
    return picked;
  };
  return { width: cw, height: ch, pick };
}

/**
 * The size of the image as shown (EXIF orientation applied), from its headers alone: refuses what
 * `decodeImage` refuses before decoding pixels (not an image, too large, too short for its size).
 */
export function imageSize(bytes: Uint8Array, name: string): { width: number; height: number } {
  const { width, height, orientation } = openImage(bytes, name);
  return orientation >= 5 && orientation <= 8 ? { width: height, height: width } : { width, height };
}

function openImage(bytes: Uint8Array, name: string): PixelSource {
  if (bytes.length === 0) throw new InputError(`${name}: empty file`);
  if (PNG_SIGNATURE.every((b, i) => bytes[i] === b)) {
    const png = readPng(bytes, name);
    return { ...png, gather: (rowAt, colAt, out) => gatherPng(png, name, rowAt, colAt, out) };
  }
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    const { width, height, components, orientation } = scanJpeg(bytes, name);
    const gather = (rowAt: Int32Array, colAt: Int32Array, out: Uint8Array) =>
      withJpegSamples(bytes, name, width, height, components, (samples, channels) => gatherPixels(samples, channels, width, height, rowAt, colAt, out));
    return { width, height, orientation, gather };
  }
  throw new InputError(`${name}: not a PNG or JPEG image (unrecognised file signature)`);
}

/** `gather` over decoded RGB or CMYK samples (converted to RGB as cmykToRgb does). */
function gatherPixels(data: Uint8Array, channels: 3 | 4, width: number, height: number, rowAt: Int32Array, colAt: Int32Array, out: Uint8Array): void {
  const xs = colAt.reduce<number[]>((a, at, x) => (at >= 0 && a.push(x), a), []);
  const pixel = new Uint8Array(3);
  for (let y = 0; y < height; y++) {
    if (rowAt[y] < 0) continue;
    for (const x of xs) {
      const src = (y * width + x) * channels, dst = rowAt[y] + colAt[x];
      const rgb = channels === 3 ? data.subarray(src, src + 3) : cmykToRgb(data.subarray(src, src + 4), pixel);
      out[dst] = rgb[0];
      out[dst + 1] = rgb[1];
      out[dst + 2] = rgb[2];
    }
  }
}

/**
 * The PNG's pixels at the rows and columns asked for, as 8-bit RGB, with two scanlines in memory.
 *
 * Inflating: as libpng does it with zlib. pako is a port of zlib, driven through its zlib API like
 * libpng drives zlib: 8 KiB of IDAT data at a time, one scanline of output at a time, stopping once
 * the rows are full. So the same streams are refused: an error zlib meets while it fills the rows or
 * reads on through the rest of that input (often a wrong Adler-32). What follows is not looked at,
 * and a stream that would inflate to more than the header promises is never allocated. (One
 * difference: libpng then reads on to the end of the stream, and imread fails with "Not enough image
 * data" when it does not end within the IDAT chunks, e.g. lacks its Adler-32. Such files are decoded
 * here.) Each scanline is unfiltered against the one before (the first of each Adam7 pass against
 * zeros).
 *
 * Samples become 8 bits as imread(IMREAD_COLOR) has libpng make them: 16-bit samples keep their high
 * byte (png_set_strip_16 chops, it does not round); 1-, 2- and 4-bit gray is scaled up (×255, ×85,
 * ×17: png_set_expand_gray_1_2_4_to_8); palette indices past the PLTE entries give black, as
 * libpng's zero-filled palette does; alpha is dropped (never composited), so tRNS is not even read;
 * gray is copied to R, G and B.
 */
function gatherPng(png: PngFile, name: string, rowAt: Int32Array, colAt: Int32Array, out: Uint8Array): void {
  const { depth, colorType, channels, palette, idat, passes, size } = png;
  const lut = new Uint8Array(256 * 3);
  if (palette) lut.set(palette);
  const xs = colAt.reduce<number[]>((a, at, x) => (at >= 0 && a.push(x), a), []);
  const max = (1 << depth) - 1, scale = colorType === 0 && depth < 8 ? 255 / max : 1;
  const bpp = Math.max(1, (channels * depth) >> 3); // bytes per pixel, as the filters count them
  const longest = Math.max(...passes.map((p) => p.rowBytes));
  let line = new Uint8Array(1 + longest), prior = new Uint8Array(1 + longest);

  let p = 0, j = 0, done = 0; // pass, row within it, bytes of scanlines finished
  const use = (row: Uint8Array) => {
    const { x0, y0, dx, dy } = passes[p];
    const base = rowAt[y0 + j * dy];
    if (base < 0) return;
    for (const x of xs) {
      if (x < x0 || (x - x0) % dx !== 0) continue;
      const i = (x - x0) / dx, at = base + colAt[x];
      let r: number, g: number, b: number;
      if (depth < 8) {
        const s = ((row[1 + ((i * depth) >> 3)] >> (8 - depth - ((i * depth) & 7))) & max) * scale;
        [r, g, b] = colorType === 3 ? [lut[3 * s], lut[3 * s + 1], lut[3 * s + 2]] : [s, s, s];
      } else {
        const k = 1 + i * channels * (depth >> 3), step = depth >> 3; // 16-bit samples keep their high byte
        if (colorType === 3) [r, g, b] = [lut[3 * row[k]], lut[3 * row[k] + 1], lut[3 * row[k] + 2]];
        else if (channels <= 2) r = g = b = row[k];
        else [r, g, b] = [row[k], row[k + step], row[k + 2 * step]];
      }
      out[at] = r;
      out[at + 1] = g;
      out[at + 2] = b;
    }
  };

  const strm = new ZStream();
  zlibInflateInit(strm);
  [strm.output, strm.next_out, strm.avail_out] = [line, 0, 1 + passes[0].rowBytes];
  let status: Z_CallStatus = Z_OK;
  try {
    for (const chunk of idat) {
      for (let at = 0; at < chunk.length && done < size && status === Z_OK; at += 8192) {
        [strm.input, strm.next_in, strm.avail_in] = [chunk, at, Math.min(8192, chunk.length - at)];
        for (;;) {
          status = zlibInflate(strm, Z_NO_FLUSH);
          if (status !== Z_OK && status !== Z_STREAM_END) throw new Error(strm.msg || `zlib error ${status}`);
          if (strm.avail_out > 0) break; // this piece of input is used up, or the stream has ended
          // A whole scanline: unfilter it, use it, and go on with the next (of the next pass).
          const n = passes[p].rowBytes;
          unfilter(line, prior, n, bpp);
          use(line);
          [line, prior] = [prior, line];
          done += 1 + n;
          if (++j === passes[p].h && ++p < passes.length) {
            j = 0;
            prior.fill(0); // the first scanline of a pass has none above it
          }
          if (done === size) break;
          [strm.output, strm.next_out, strm.avail_out] = [line, 0, 1 + passes[p].rowBytes];
          if (strm.avail_in === 0 || status !== Z_OK) break;
        }
      }
    }
    if (done < size) throw new Error(`compressed data ends after ${done + strm.next_out} of ${size} bytes`);
  } catch (e) {
    throw new InputError(`${name}: corrupt PNG image data (${message(e)})`);
  }
}

/** Undoes the filter of a scanline (its type in `line[0]`, `n` bytes after it) given the one above. */
function unfilter(line: Uint8Array, prior: Uint8Array, n: number, bpp: number): void {
  const type = line[0];
  if (type === 0) return;
  if (type === 1) {
    for (let i = 1 + bpp; i <= n; i++) line[i] += line[i - bpp];
  } else if (type === 2) {
    for (let i = 1; i <= n; i++) line[i] += prior[i];
  } else if (type === 3) {
    for (let i = 1; i <= n; i++) line[i] += ((i > bpp ? line[i - bpp] : 0) + prior[i]) >> 1;
  } else if (type === 4) {
    for (let i = 1; i <= n; i++) {
      const a = i > bpp ? line[i - bpp] : 0, b = prior[i], c = i > bpp ? prior[i - bpp] : 0;
      const pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);
      line[i] += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
  } else {
    throw new Error(`Unsupported filter: ${type}`);
  }
}
