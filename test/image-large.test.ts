// Large legal images and images that cannot be complete. decodeResized (the model-input path:
// crop, gray and resize while the file is read, keeping only the pixels the resize reads) must give
// exactly what the whole-image path gives (decodeImage, crop, toGray, resize) on PNGs of every colour
// type, bit depth, filter, interlacing, orientation and crop, and on JPEGs; files too short for the
// size they declare are refused from their headers, at once.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, deflateSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { crop, decodeImage, decodeResized, imageSize, resize, toGray, type Image, type Sampling } from '../src/formats/image.js';
import { fileToInput, imageToInput } from '../src/formats/preprocess.js';
import type { Architecture } from '../src/formats/model.js';
import { CHANNELS, chunk, DEPTHS, exifTiff, makePng, SIGNATURE, type PngSpec } from './support/png.js';

const root = fileURLToPath(new URL('..', import.meta.url));

// ---- a PNG writer with every colour type, bit depth, scanline filter, Adam7 and eXIf ----

/**
 * The image a PNG made by makePng shows, worked out from its spec alone (not by decoding the file):
 * 8-bit samples as imread has libpng make them (16 bits: the high byte; 1-, 2- and 4-bit gray scaled
 * up; palette indices looked up, black past the palette's end; alpha dropped), then the EXIF
 * orientation applied as OpenCV does (transpose for 5-8, then the flips).
 */
function pngReference(spec: PngSpec): Image {
  const { width: w, height: h, colorType, bitDepth } = spec;
  const cn = CHANNELS[colorType]!;
  const to8 = (v: number) => (bitDepth === 16 ? v >> 8 : colorType === 0 && bitDepth < 8 ? (v * 255) / (2 ** bitDepth - 1) : v);
  const stored = (x: number, y: number): number[] => {
    const i = (y * w + x) * cn;
    if (colorType === 3) return spec.palette?.[spec.samples[i]!] ?? [0, 0, 0];
    const s = Array.from({ length: cn }, (_, k) => to8(spec.samples[i + k]!));
    return cn <= 2 ? [s[0]!, s[0]!, s[0]!] : s.slice(0, 3);
  };
  const o = spec.orientation && spec.orientation >= 2 && spec.orientation <= 8 ? spec.orientation : 1;
  const transpose = o >= 5, flipX = [2, 3, 6, 7].includes(o), flipY = [3, 4, 7, 8].includes(o);
  const W = transpose ? h : w, H = transpose ? w : h;
  const data = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const tx = flipX ? W - 1 - x : x, ty = flipY ? H - 1 - y : y;
      data.set(transpose ? stored(ty, tx) : stored(tx, ty), (y * W + x) * 3);
    }
  }
  return { width: W, height: H, channels: 3, data };
}

/** A PNG header (signature, IHDR) for a w×h image of the given type. */
function pngHead(w: number, h: number, depth: number, colorType: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([depth, colorType], 8);
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr)]);
}

function baselineJpeg(width: number, height: number, pixel: (x: number, y: number) => number[], quality = 90): Buffer {
  const data = Buffer.alloc(width * height * 4, 255);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(pixel(x, y), (y * width + x) * 4);
  return jpeg.encode({ width, height, data }, quality).data;
}

function withExif(jpg: Buffer, orientation: number): Buffer {
  const tiff = exifTiff(orientation);
  const app1 = Buffer.concat([Buffer.from([0xff, 0xe1, 0, 8 + tiff.length]), Buffer.from('Exif\0\0', 'latin1'), tiff]);
  return Buffer.concat([jpg.subarray(0, 2), app1, jpg.subarray(2)]);
}

/** The frame header of a JPEG made to declare another size. */
function declaring(jpg: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(jpg);
  const sof = out.findIndex((b, i) => b === 0xff && (out[i + 1] === 0xc0 || out[i + 1] === 0xc2));
  out.writeUInt16BE(height, sof + 5);
  out.writeUInt16BE(width, sof + 7);
  return out;
}

// 8×8 flat gray 77, progressive (SOF2), one component: cv2.imencode with IMWRITE_JPEG_PROGRESSIVE.
const PROGRESSIVE_GRAY = Buffer.from(
  '/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4RDgsLEBYQERMU' +
    'FRUVDA8XGBYUGBIUFRT/wgALCAAIAAgBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAAB//aAAgBAQAAAAE7/8QAFBABAAAAAAAAAAAA' +
    'AAAAAAAAAP/aAAgBAQABBQJ//8QAFBABAAAAAAAAAAAAAAAAAAAAAP/aAAgBAQAGPwJ//8QAFBABAAAAAAAAAAAAAAAAAAAAAP/a' +
    'AAgBAQABPyF//9oACAEBAAAAEH//xAAUEAEAAAAAAAAAAAAAAAAAAAAA/9oACAEBAAE/EH//2Q==',
  'base64',
);

/** What the model-input path must equal: the whole image decoded, cropped, made gray, resized. */
function wholeImagePath(file: Uint8Array | Image, to: Sampling): Image {
  let img = file instanceof Uint8Array ? decodeImage(file, 'x') : file;
  if (to.crop) img = crop(img, ...to.crop);
  if (to.channels === 1) img = toGray(img);
  return resize(img, to.width, to.height);
}

/** A small deterministic generator (mulberry32). */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The outcome of a decode: its pixels, or the message it was refused with. */
function outcome(f: () => Image): { data?: number[]; size?: number[]; error?: string } {
  try {
    const img = f();
    return { data: Array.from(img.data), size: [img.width, img.height, img.channels] };
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    return { error: e.message };
  }
}

const arch = (h: number, w: number, c: number): Architecture => ({ input: [h, w, c], labels: ['a', 'b'], preprocess: { offset: 128, scale: 256 }, layers: [] }) as unknown as Architecture;

// ---------------------------------------------------------------------------------------------

// decodeImage and decodeResized share the PNG scanline reader, so the whole image is also checked
// against what the file was made from (pngReference), which shares nothing with either.
describe('decodeResized: the model-input path equals decodeImage + crop + toGray + resize, bit for bit', () => {
  it('on PNGs of every colour type and bit depth, plain and Adam7, every filter and orientation, with and without crop', () => {
    const rand = random(7);
    const int = (n: number) => Math.floor(rand() * n);
    let compared = 0;
    for (const [type, depths] of Object.entries(DEPTHS)) {
      const colorType = Number(type);
      for (const bitDepth of depths) {
        for (const interlace of [false, true]) {
          for (const [width, height] of [[1, 1], [1, 9], [7, 1], [13, 9], [37, 23], [64, 50], [97, 61]] as const) {
            const max = 2 ** bitDepth - 1, cn = CHANNELS[colorType]!;
            // smooth areas, edges and noise, so that every filter does something
            const samples = Uint16Array.from({ length: width * height * cn }, (_, i) => {
              const x = Math.floor(i / cn) % width, y = Math.floor(i / cn / width);
              return rand() < 0.2 ? int(max + 1) : Math.round((max * ((x * 3 + y * 5 + (i % cn) * 40) % 97)) / 96);
            });
            const palette = colorType === 3 ? Array.from({ length: 1 + int(Math.min(256, max + 1)) }, () => [int(256), int(256), int(256)]) : undefined;
            const orientation = int(10); // 0 and 9 are no orientation at all
            const spec = { width, height, colorType, bitDepth, samples, interlace, palette, orientation, filters: [0, 1, 2, 3, 4, int(5), int(5)] };
            const png = makePng(spec);
            const shown = decodeImage(png, 'x');
            expect(shown).toEqual(pngReference(spec));
            for (const channels of [1, 3] as const) {
              const cw = 1 + int(shown.width), ch = 1 + int(shown.height);
              const crops: (Sampling['crop'] | undefined)[] = [undefined, [int(shown.width - cw + 1), int(shown.height - ch + 1), cw, ch]];
              for (const region of crops) {
                const [w, h] = region ? [region[2], region[3]] : [shown.width, shown.height];
                for (const [tw, th] of [[48, 48], [w, h], [1 + int(2 * w), 1 + int(2 * h)], [5, 3]]) {
                  const to: Sampling = { width: tw!, height: th!, channels, crop: region };
                  const streamed = decodeResized(png, 'x', to);
                  const whole = wholeImagePath(shown, to);
                  expect(streamed.channels).toBe(channels);
                  expect([streamed.width, streamed.height]).toEqual([whole.width, whole.height]);
                  if (Buffer.compare(streamed.data, whole.data) !== 0) {
                    throw new Error(`differs: type ${colorType}, depth ${bitDepth}, interlace ${interlace}, ${width}x${height}, orientation ${orientation}, ${JSON.stringify(to)}`);
                  }
                  compared++;
                }
              }
            }
          }
        }
      }
    }
    expect(compared).toBe(15 * 2 * 7 * 2 * 2 * 4);
  });

  it('on a 640×480 RGBA 16-bit PNG, plain and Adam7, and on deflate streams of every kind', () => {
    const rand = random(11);
    const samples = Uint16Array.from({ length: 640 * 480 * 4 }, (_, i) => (i * 2654435761 + Math.floor(rand() * 4096)) & 0xffff);
    for (const interlace of [false, true]) {
      const spec = { width: 640, height: 480, colorType: 6, bitDepth: 16, samples, interlace, filters: [4, 1, 2, 3, 0] };
      const png = makePng(spec);
      const shown = decodeImage(png, 'x');
      expect(Buffer.compare(shown.data, pngReference(spec).data)).toBe(0);
      for (const to of [{ width: 48, height: 48, channels: 1 }, { width: 224, height: 224, channels: 3 }, { width: 60, height: 40, channels: 1, crop: [500, 300, 123, 77] }, { width: 1000, height: 700, channels: 3, crop: [1, 2, 600, 450] }] as Sampling[]) {
        expect(Buffer.compare(decodeResized(png, 'x', to).data, wholeImagePath(shown, to).data)).toBe(0);
      }
    }
    const gray = Uint16Array.from({ length: 300 * 200 }, (_, i) => (i * 7) & 255);
    for (const deflate of [{ level: 0 }, { level: 1 }, { level: 9 }, { strategy: 1 }, { strategy: 2 }, { strategy: 3 }, { strategy: 4 }]) {
      const png = makePng({ width: 300, height: 200, colorType: 0, bitDepth: 8, samples: gray, filters: [1, 2], deflate });
      const to: Sampling = { width: 48, height: 48, channels: 1 };
      expect(Buffer.compare(decodeResized(png, 'x', to).data, wholeImagePath(png, to).data)).toBe(0);
    }
  });

  it('on JPEGs, baseline and progressive, with every EXIF orientation, with and without crop', () => {
    const rand = random(3);
    for (const [w, h] of [[16, 16], [33, 17], [100, 75]]) {
      const base = baselineJpeg(w, h, (x, y) => [(x * 13) & 255, (y * 29) & 255, (x * y) & 255]);
      for (let orientation = 1; orientation <= 8; orientation++) {
        const file = withExif(base, orientation);
        const shown = decodeImage(file, 'x');
        for (const channels of [1, 3] as const) {
          const cw = 1 + Math.floor(rand() * shown.width), ch = 1 + Math.floor(rand() * shown.height);
          for (const region of [undefined, [shown.width - cw, shown.height - ch, cw, ch] as const]) {
            const to: Sampling = { width: 48, height: 48, channels, crop: region };
            expect(Buffer.compare(decodeResized(file, 'x', to).data, wholeImagePath(shown, to).data)).toBe(0);
          }
        }
      }
    }
    const to: Sampling = { width: 48, height: 48, channels: 1 };
    expect(Buffer.compare(decodeResized(PROGRESSIVE_GRAY, 'x', to).data, wholeImagePath(PROGRESSIVE_GRAY, to).data)).toBe(0);
  });

  it('fileToInput gives the numbers imageToInput gives, and refuses a crop outside the image as crop does', () => {
    const png = makePng({ width: 90, height: 70, colorType: 2, bitDepth: 8, samples: Uint16Array.from({ length: 90 * 70 * 3 }, (_, i) => (i * 31) & 255), filters: [4] });
    for (const a of [arch(48, 48, 1), arch(32, 24, 3), arch(70, 90, 1)]) {
      expect(fileToInput(png, 'x.png', a)).toEqual(imageToInput(decodeImage(png, 'x.png'), a));
      expect(fileToInput(png, 'x.png', a, [10, 5, 60, 60])).toEqual(imageToInput(crop(decodeImage(png, 'x.png'), 10, 5, 60, 60), a));
    }
    for (const region of [[40, 20, 60, 60], [0, 0, 0, 5], [-1, 0, 5, 5]] as [number, number, number, number][]) {
      expect(() => fileToInput(png, 'x.png', arch(48, 48, 1), region)).toThrow(outcome(() => crop(decodeImage(png, 'x.png'), ...region)).error);
    }
  });

  it('refuses every damaged file decodeImage refuses, and decodes the others alike', () => {
    const rand = random(5);
    const files = [
      makePng({ width: 30, height: 20, colorType: 2, bitDepth: 8, samples: Uint16Array.from({ length: 1800 }, () => Math.floor(rand() * 256)), filters: [0, 1, 2, 3, 4] }),
      makePng({ width: 17, height: 11, colorType: 6, bitDepth: 16, samples: Uint16Array.from({ length: 748 }, (_, i) => i * 97), interlace: true, filters: [4, 3] }),
      makePng({ width: 21, height: 13, colorType: 3, bitDepth: 2, samples: Uint16Array.from({ length: 273 }, (_, i) => i % 4), palette: [[1, 2, 3], [200, 100, 0], [9, 9, 9]], interlace: true }),
    ];
    let refused = 0;
    for (const file of files) {
      const idat = file.indexOf('IDAT') + 4, end = idat + file.readUInt32BE(idat - 8);
      const variants: Buffer[] = [];
      for (let n = 0; n < file.length; n += 5) variants.push(file.subarray(0, n));
      // damaged image data with a good CRC: zlib errors, bad filter types, streams that end early
      for (let i = idat; i < end; i++) {
        const c = Buffer.from(file);
        c[i] = i % 3 === 0 ? 5 : c[i]! ^ (1 << i % 8);
        c.writeUInt32BE(crc32(c.subarray(idat - 4, end)), end);
        variants.push(c);
      }
      for (const bytes of variants) {
        const to: Sampling = { width: 48, height: 48, channels: 3 };
        const whole = outcome(() => wholeImagePath(bytes, to)), streamed = outcome(() => decodeResized(bytes, 'x', to));
        if (whole.error) {
          refused++;
          // zlib's and the filters' messages may come in another order: the same kind of refusal
          expect(streamed.error?.replace(/\(.*/, '')).toBe(whole.error.replace(/\(.*/, ''));
        } else {
          expect(streamed).toEqual(whole);
        }
      }
    }
    expect(refused).toBeGreaterThan(100);
  });
});

// ---------------------------------------------------------------------------------------------

describe('files too short for the size they declare are refused from their headers', () => {
  const refusal = (f: () => unknown) => {
    const started = performance.now();
    const { error } = outcome(() => (f(), { width: 0, height: 0, channels: 1, data: new Uint8Array() }));
    return { error, ms: performance.now() - started };
  };

  it('a 1 KB JPEG declaring 10000×5000, baseline or progressive, in well under a second', () => {
    const liars = [declaring(baselineJpeg(16, 16, () => [200, 100, 50]), 10_000, 5000), declaring(PROGRESSIVE_GRAY, 10_000, 5000)];
    for (const bytes of liars) {
      expect(bytes.length).toBeLessThan(1024);
      for (const f of [() => decodeImage(bytes, 'big.jpg'), () => imageSize(bytes, 'big.jpg'), () => fileToInput(bytes, 'big.jpg', arch(48, 48, 1))]) {
        const { error, ms } = refusal(f);
        expect(error).toMatch(/^big\.jpg: truncated JPEG \(10000x5000 needs at least \d+ bytes of image data, the file has \d+\)$/);
        expect(ms).toBeLessThan(1000);
      }
    }
  });

  it('a PNG declaring 10000×5000 with a tiny IDAT, or half of its rows, in well under a second', () => {
    const tiny = Buffer.concat([pngHead(10_000, 5000, 8, 2), chunk('IDAT', deflateSync(Buffer.alloc(30_001))), chunk('IEND', new Uint8Array())]);
    const half = Buffer.concat([pngHead(10_000, 5000, 8, 0), chunk('IDAT', deflateSync(Buffer.alloc(2500 * 10_001), { level: 9 })), chunk('IEND', new Uint8Array())]);
    for (const bytes of [tiny, half]) {
      for (const f of [() => decodeImage(bytes, 'big.png'), () => imageSize(bytes, 'big.png'), () => fileToInput(bytes, 'big.png', arch(48, 48, 1))]) {
        const { error, ms } = refusal(f);
        expect(error).toMatch(/^big\.png: truncated PNG \(10000x5000 needs at least \d+ bytes of image data, the file has \d+\)$/);
        expect(ms).toBeLessThan(1000);
      }
    }
  });

  it('accepts the most compressible legal files: all-white 10000×5000 PNG (zlib level 9), all-grey 7000×7000 JPEG (quality 10)', () => {
    const rows = Buffer.alloc(5000 * 30_001, 255);
    for (let y = 0; y < 5000; y++) rows[y * 30_001] = 0; // filter type None
    const white = Buffer.concat([pngHead(10_000, 5000, 8, 2), chunk('IDAT', deflateSync(rows, { level: 9 })), chunk('IEND', new Uint8Array())]);
    expect(imageSize(white, 'white.png')).toEqual({ width: 10_000, height: 5000 });
    for (const channels of [1, 3] as const) {
      expect(decodeResized(white, 'white.png', { width: 48, height: 48, channels }).data.every((v) => v === 255)).toBe(true);
    }
    // decoding 49 MP with jpeg-js takes 20 s and 1.5 GB: the header check here, a whole decode of a smaller one below
    const grey = jpeg.encode({ width: 7000, height: 7000, data: Buffer.alloc(7000 * 7000 * 4, 128) }, 10).data;
    expect(imageSize(grey, 'grey.jpg')).toEqual({ width: 7000, height: 7000 });
    const small = jpeg.encode({ width: 1500, height: 1000, data: Buffer.alloc(1500 * 1000 * 4, 128) }, 10).data;
    expect(fileToInput(small, 'grey.jpg', arch(48, 48, 1)).every((v) => v === 0)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------

const faces = join(root, '../shared/realfaces');
const haveFaces = existsSync(faces);
describe.skipIf(!haveFaces)('real photographs (../shared/realfaces)', () => {
  it('are all accepted, and both paths agree on each, whole and cropped to its centre', () => {
    const files = readdirSync(faces).filter((f) => /\.jpe?g$/i.test(f));
    expect(files.length).toBeGreaterThan(200);
    for (const f of files) {
      const bytes = readFileSync(join(faces, f));
      const { width, height } = imageSize(bytes, f);
      const shown = decodeImage(bytes, f);
      for (const to of [{ width: 48, height: 48, channels: 1 }, { width: 48, height: 48, channels: 3, crop: [width >> 2, height >> 2, width >> 1, height >> 1] }] as Sampling[]) {
        expect(Buffer.compare(decodeResized(bytes, f, to).data, wholeImagePath(shown, to).data)).toBe(0);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('a big legal PNG is read in bounded time and memory (child process, built dist/)', () => {
  it('4000×4000 RGBA 16-bit: model input within seconds and well under 100 MB more than the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mislead-large-'));
    try {
      const [w, h] = [4000, 4000];
      const rows = Buffer.alloc(h * (1 + w * 8));
      for (let y = 0; y < h; y++) {
        const row = rows.subarray(y * (1 + w * 8) + 1, (y + 1) * (1 + w * 8));
        for (let i = 0; i < row.length; i++) row[i] = (i * 7 + y * 3 + ((i * y) >> 5)) & 255;
      }
      const file = join(dir, 'big.png');
      const png = Buffer.concat([pngHead(w, h, 16, 6), chunk('IDAT', deflateSync(rows, { level: 1 })), chunk('IEND', new Uint8Array())]);
      writeFileSync(file, png);
      const script = `
        const { readModelInput } = await import(${JSON.stringify(join(root, 'dist/node/files.js'))});
        const arch = { input: [48, 48, 1], preprocess: { offset: 128, scale: 256 } };
        const before = process.resourceUsage().maxRSS;
        const started = performance.now();
        const x = readModelInput(${JSON.stringify(file)}, arch);
        console.log(JSON.stringify({ ms: performance.now() - started, peakMB: (process.resourceUsage().maxRSS - before) / 1024, x: Array.from(x) }));`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      const { ms, peakMB, x } = JSON.parse(r.stdout) as { ms: number; peakMB: number; x: number[] };
      expect(x).toEqual(Array.from(fileToInput(png, 'big.png', arch(48, 48, 1))));
      expect(peakMB).toBeLessThan(png.length / 2 ** 20 + 100); // the file is read whole
      expect(ms).toBeLessThan(15_000); // about 1 s alone on one core
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
