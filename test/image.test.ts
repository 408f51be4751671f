import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants as zlibConstants, crc32, deflateRawSync, deflateSync, inflateSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { crop, decodeImage, encodePng, resize, toGray, type Image } from '../src/formats/image.js';
import { PROGRESSIVE_GRAY, PROGRESSIVE_RGB } from './support/jpeg.js';
import { CHANNELS, chunk, exifTiff, makePng, SIGNATURE as PNG_SIGNATURE, type PngSpec } from './support/png.js';

// PNGs come from test/support/png.ts (every colour type and bit depth, palette, tRNS, eXIf, Adam7).

/** pngjs's writer, for the 8- and 16-bit gray/RGB(A) files other tools would write. */
function pngjsWrite(width: number, height: number, colorType: 0 | 2 | 4 | 6, bitDepth: 8 | 16, samples: number[]): Buffer {
  const data = bitDepth === 16 ? Buffer.from(Uint16Array.from(samples).buffer) : Buffer.from(samples);
  const png = { width, height, data } as PNG;
  return PNG.sync.write(png, { colorType, inputColorType: colorType, inputHasAlpha: colorType >= 4, bitDepth });
}

const rgbOf = (img: Image) => Array.from(img.data);
const decode = (bytes: Uint8Array, name = 'test.png') => decodeImage(bytes, name);
const gray3 = (values: number[]) => values.flatMap((v) => [v, v, v]);

// ---------------------------------------------------------------------------------------------

describe('decodeImage: PNG, as cv2.imread(path) gives it (RGB order)', () => {
  it('decodes pngjs-written 8-bit gray, RGB, gray+alpha and RGBA; alpha is dropped, not composited', () => {
    expect(rgbOf(decode(pngjsWrite(3, 1, 0, 8, [0, 128, 255])))).toEqual(gray3([0, 128, 255]));
    const rgb = decode(pngjsWrite(2, 2, 2, 8, [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]));
    expect([rgb.width, rgb.height, rgb.channels]).toEqual([2, 2, 3]);
    expect(rgbOf(rgb)).toEqual([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]);
    // alpha 0 and 128 leave the colour as stored (imread uses png_set_strip_alpha)
    expect(rgbOf(decode(pngjsWrite(2, 1, 4, 8, [200, 0, 50, 128])))).toEqual(gray3([200, 50]));
    expect(rgbOf(decode(pngjsWrite(2, 1, 6, 8, [1, 2, 3, 0, 250, 251, 252, 128])))).toEqual([1, 2, 3, 250, 251, 252]);
  });

  it('reduces 16-bit samples to their high byte (libpng png_set_strip_16), not by rounding', () => {
    // 0x12FF would round to 0x13 (0x12FF·255/65535 = 18.92); its high byte is 0x12 = 18.
    const s = [0x12ff, 0xff00, 0x00ff, 0x8080];
    const hi = [0x12, 0xff, 0x00, 0x80];
    expect(rgbOf(decode(pngjsWrite(4, 1, 0, 16, s)))).toEqual(gray3(hi));
    expect(rgbOf(decode(pngjsWrite(1, 1, 2, 16, s.slice(0, 3))))).toEqual(hi.slice(0, 3));
    expect(rgbOf(decode(pngjsWrite(2, 1, 4, 16, s)))).toEqual(gray3([0x12, 0x00]));
    expect(rgbOf(decode(pngjsWrite(1, 1, 6, 16, s)))).toEqual(hi.slice(0, 3));
    expect(rgbOf(decode(makePng({ width: 2, height: 1, colorType: 0, bitDepth: 16, samples: [0x12ff, 0xfffe] })))).toEqual(gray3([0x12, 0xff]));
  });

  it('scales 1-, 2- and 4-bit gray as libpng does (×255, ×85, ×17)', () => {
    expect(rgbOf(decode(makePng({ width: 3, height: 1, colorType: 0, bitDepth: 1, samples: [1, 0, 1] })))).toEqual(gray3([255, 0, 255]));
    expect(rgbOf(decode(makePng({ width: 4, height: 1, colorType: 0, bitDepth: 2, samples: [0, 1, 2, 3] })))).toEqual(gray3([0, 85, 170, 255]));
    expect(rgbOf(decode(makePng({ width: 3, height: 1, colorType: 0, bitDepth: 4, samples: [0, 7, 15] })))).toEqual(gray3([0, 119, 255]));
  });

  it('looks palette images up at 1, 2, 4 and 8 bits; tRNS alpha is dropped', () => {
    const palette = [[10, 20, 30], [40, 50, 60], [70, 80, 90], [250, 0, 5]];
    for (const bitDepth of [2, 4, 8]) {
      const img = decode(makePng({ width: 5, height: 1, colorType: 3, bitDepth, samples: [3, 0, 1, 2, 3], palette, trns: [0, 128] }));
      expect(rgbOf(img)).toEqual([250, 0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 250, 0, 5]);
    }
    const bw = decode(makePng({ width: 9, height: 1, colorType: 3, bitDepth: 1, samples: [0, 1, 1, 0, 0, 0, 0, 0, 1], palette: palette.slice(0, 2) }));
    expect(rgbOf(bw).slice(0, 6)).toEqual([10, 20, 30, 40, 50, 60]);
    expect(rgbOf(bw).slice(24)).toEqual([40, 50, 60]);
  });

  it('keeps the colour of gray and RGB pixels that tRNS marks transparent (the pngjs decoder would zero them)', () => {
    const gray = makePng({ width: 2, height: 1, colorType: 0, bitDepth: 8, samples: [7, 9], trns: [0, 7] });
    expect(rgbOf(decode(gray))).toEqual(gray3([7, 9]));
    const rgb = makePng({ width: 2, height: 1, colorType: 2, bitDepth: 8, samples: [1, 2, 3, 4, 5, 6], trns: [0, 1, 0, 2, 0, 3] });
    expect(rgbOf(decode(rgb))).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('decodes Adam7-interlaced files like the same image non-interlaced', () => {
    const cases: Omit<PngSpec, 'samples'>[] = [
      { width: 9, height: 9, colorType: 2, bitDepth: 8 }, // every pass non-empty
      { width: 5, height: 3, colorType: 0, bitDepth: 1 }, // some passes empty
      { width: 4, height: 7, colorType: 4, bitDepth: 16 },
      { width: 10, height: 2, colorType: 3, bitDepth: 4, palette: Array.from({ length: 16 }, (_, i) => [i * 16, 255 - i, i]) },
      { width: 1, height: 1, colorType: 6, bitDepth: 8 },
    ];
    for (const spec of cases) {
      const max = spec.colorType === 3 ? 15 : 2 ** spec.bitDepth - 1;
      const n = spec.width * spec.height * CHANNELS[spec.colorType]!;
      const samples = Array.from({ length: n }, (_, i) => (i * 2654435761) % (max + 1));
      const plain = decode(makePng({ ...spec, samples }));
      const interlaced = decode(makePng({ ...spec, samples, interlace: true }));
      expect([interlaced.width, interlaced.height]).toEqual([spec.width, spec.height]);
      expect(rgbOf(interlaced)).toEqual(rgbOf(plain));
    }
    // and the values themselves, on the 9×9 RGB one
    const samples = Array.from({ length: 9 * 9 * 3 }, (_, i) => i % 256);
    expect(rgbOf(decode(makePng({ width: 9, height: 9, colorType: 2, bitDepth: 8, samples, interlace: true })))).toEqual(samples);
  });

  it('inflates stored, fixed-Huffman and dynamic-Huffman data, split over several IDAT chunks', () => {
    const samples = Array.from({ length: 40 * 30 * 3 }, (_, i) => ((i * i) >> 3) & 255);
    const spec = { width: 40, height: 30, colorType: 2, bitDepth: 8, samples };
    for (const deflate of [{ level: 0 }, { strategy: zlibConstants.Z_FIXED }, { strategy: zlibConstants.Z_HUFFMAN_ONLY }, { strategy: zlibConstants.Z_RLE }, { level: 9 }]) {
      expect(rgbOf(decode(makePng({ ...spec, deflate, idatSize: 100 })))).toEqual(samples);
    }
    // Huffman blocks, a sync flush (an empty stored block) and then stored blocks, in one stream
    const png = makePng(spec);
    const raw = inflateSync(png.subarray(png.indexOf('IDAT') + 4)); // filter bytes + rows
    const half = 15 * (1 + 40 * 3);
    const z = Buffer.concat([deflateSync(raw.subarray(0, half), { finishFlush: zlibConstants.Z_SYNC_FLUSH }), deflateRawSync(raw.subarray(half), { level: 0 })]);
    const idat = png.indexOf('IDAT') - 4;
    const mixed = Buffer.concat([png.subarray(0, idat), chunk('IDAT', z), chunk('IEND', new Uint8Array())]);
    expect(rgbOf(decode(mixed))).toEqual(samples);
  });

  // The next three checked against cv2.imdecode (OpenCV 4.6.0 with libpng 1.6.39).
  it('refuses what zlib meets while filling the rows: a wrong Adler-32 right after them, an unknown row filter', () => {
    const raw = Buffer.from([0, 1, 2, 3, 4, 5, 6, 0, 7, 8, 9, 10, 11, 12]); // 2×2 RGB, filter 0
    const head = makePng({ width: 2, height: 2, colorType: 2, bitDepth: 8, samples: Array(12).fill(0) }).subarray(0, 33); // signature, IHDR
    const png = (z: Uint8Array) => Buffer.concat([head, chunk('IDAT', z), chunk('IEND', new Uint8Array())]);
    expect(rgbOf(decode(png(deflateSync(raw))))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const badAdler = deflateSync(raw);
    badAdler[badAdler.length - 1]! ^= 1;
    expect(() => decode(png(badAdler))).toThrow(/^test\.png: corrupt PNG image data \(incorrect data check\)$/);
    const badFilter = Buffer.from(raw);
    badFilter[7] = 5;
    expect(() => decode(png(deflateSync(badFilter)))).toThrow(InputError);
    expect(() => decode(png(deflateSync(badFilter)))).toThrow(/^test\.png: corrupt PNG image data \(/);
  });

  it('reads no further than libpng: damage past the 8 KiB read that completes the rows is ignored', () => {
    // 1636×5 gray, stored: 2 + 5 + 5·1637 = 8192 bytes of zlib data before the Adler-32, which is wrong
    const samples = Array.from({ length: 1636 * 5 }, (_, i) => (i * 7) & 255);
    const png = makePng({ width: 1636, height: 5, colorType: 0, bitDepth: 8, samples, deflate: { level: 0 } });
    const data = png.indexOf('IDAT') + 4, crcAt = png.indexOf('IEND') - 8; // the IDAT chunk's data and CRC
    expect(crcAt - data).toBe(8192 + 4);
    png[crcAt - 1]! ^= 1;
    png.writeUInt32BE(crc32(png.subarray(data - 4, crcAt)), crcAt);
    expect(rgbOf(decode(png))).toEqual(gray3(samples));
  });

  it('inflates only what the header asks for: a stream of 16 MB for a 1×1 image is neither read nor allocated', () => {
    const png = Buffer.concat([makePng({ width: 1, height: 1, colorType: 0, bitDepth: 8, samples: [0] }).subarray(0, 33), chunk('IDAT', deflateSync(Buffer.alloc(16e6))), chunk('IEND', new Uint8Array())]);
    const started = performance.now();
    expect(rgbOf(decode(png))).toEqual([0, 0, 0]);
    expect(performance.now() - started).toBeLessThan(100);
  });

  it('applies the EXIF orientation of an eXIf chunk, as imread does', () => {
    // 3×2 image:  1  2  3 / 11 12 13, stored as gray
    const samples = [1, 2, 3, 11, 12, 13];
    const expected: Record<number, [number, number, number[]]> = {
      1: [3, 2, [1, 2, 3, 11, 12, 13]],
      2: [3, 2, [3, 2, 1, 13, 12, 11]], // mirrored left-right
      3: [3, 2, [13, 12, 11, 3, 2, 1]], // rotated 180°
      4: [3, 2, [11, 12, 13, 1, 2, 3]], // mirrored top-bottom
      5: [2, 3, [1, 11, 2, 12, 3, 13]], // transposed
      6: [2, 3, [11, 1, 12, 2, 13, 3]], // rotated 90° clockwise
      7: [2, 3, [13, 3, 12, 2, 11, 1]], // transverse
      8: [2, 3, [3, 13, 2, 12, 1, 11]], // rotated 90° counter-clockwise
    };
    for (const [orientation, [w, h, values]] of Object.entries(expected)) {
      for (const bigEndian of [false, true]) {
        const img = decode(makePng({ width: 3, height: 2, colorType: 0, bitDepth: 8, samples, exif: exifTiff(Number(orientation), bigEndian) }));
        expect([img.width, img.height, rgbOf(img)]).toEqual([w, h, gray3(values)]);
      }
    }
    // an unreadable EXIF block is ignored
    const junk = decode(makePng({ width: 3, height: 2, colorType: 0, bitDepth: 8, samples, exif: Uint8Array.from([0x49, 0x49, 42, 0, 99]) }));
    expect(rgbOf(junk)).toEqual(gray3(samples));
  });

  it('ignores ancillary chunks (even with a bad CRC) and bytes after IEND, as libpng does', () => {
    const png = pngjsWrite(2, 1, 2, 8, [1, 2, 3, 4, 5, 6]);
    const text = chunk('tEXt', Buffer.from('Comment\0hi'));
    const badExif = chunk('eXIf', exifTiff(6));
    badExif[badExif.length - 1]! ^= 1;
    const withExtras = Buffer.concat([png.subarray(0, 33), text, badExif, png.subarray(33), Buffer.from('trailing')]);
    expect(rgbOf(decode(withExtras))).toEqual([1, 2, 3, 4, 5, 6]);
  });
});

// Progressive JPEGs made with OpenCV: test/support/jpeg.ts.

/** A baseline JPEG from jpeg-js's encoder (a dev dependency); `pixel(x, y)` gives RGB. */
function baselineJpeg(width: number, height: number, pixel: (x: number, y: number) => number[]): Buffer {
  const data = Buffer.alloc(width * height * 4, 255);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(pixel(x, y), (y * width + x) * 4);
  return jpeg.encode({ width, height, data }, 95).data;
}

function expectNear(actual: ArrayLike<number>, expected: number[], tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i]! - expected[i]!)).toBeLessThanOrEqual(tolerance);
}

describe('decodeImage: JPEG (libjpeg-turbo; baseline and progressive; see jpeg.test.ts for the comparison with djpeg)', () => {
  it('decodes a baseline JPEG to RGB, whatever the file is called', () => {
    const img = decodeImage(baselineJpeg(16, 16, () => [200, 100, 50]), 'photo.png');
    expect([img.width, img.height, img.channels]).toEqual([16, 16, 3]);
    expectNear(img.data, Array.from({ length: 256 }, () => [200, 100, 50]).flat(), 2);
  });

  it('decodes each JPEG on its own: one without quantization tables is refused, even right after one that had them', () => {
    const good = Buffer.from(PROGRESSIVE_GRAY, 'base64');
    const at = good.indexOf(Buffer.from([0xff, 0xdb]));
    const noTables = Buffer.concat([good.subarray(0, at), good.subarray(at + 2 + good.readUInt16BE(at + 2))]);
    expect(decodeImage(good, 'good.jpg').width).toBe(8);
    expect(() => decodeImage(noTables, 'no-tables.jpg')).toThrow(/Quantization table 0x00 was not defined/);
  });

  it('decodes progressive colour and grayscale JPEGs (gray comes out with R = G = B)', () => {
    const rgb = decodeImage(Buffer.from(PROGRESSIVE_RGB, 'base64'), 'p.jpg');
    expect([rgb.width, rgb.height]).toEqual([16, 16]);
    expectNear(rgb.data, Array.from({ length: 256 }, () => [200, 100, 50]).flat(), 2);
    const gray = decodeImage(Buffer.from(PROGRESSIVE_GRAY, 'base64'), 'g.jpg');
    expect([gray.width, gray.height, gray.channels]).toEqual([8, 8, 3]);
    expect(rgbOf(gray)).toEqual(gray3(Array(64).fill(77)));
  });

  it('applies the EXIF orientation of an APP1 segment', () => {
    // left half black, right half white; orientation 6 rotates it 90° clockwise: black on top
    const jpg = baselineJpeg(16, 8, (x) => (x < 8 ? [0, 0, 0] : [255, 255, 255]));
    const tiff = exifTiff(6);
    const app1 = Buffer.concat([Buffer.from([0xff, 0xe1, 0, 8 + tiff.length]), Buffer.from('Exif\0\0', 'latin1'), tiff]);
    const img = decodeImage(Buffer.concat([jpg.subarray(0, 2), app1, jpg.subarray(2)]), 'rotated.jpg');
    expect([img.width, img.height]).toEqual([8, 16]);
    expect(img.data[(3 * 8 + 4) * 3]).toBeLessThan(20);
    expect(img.data[(12 * 8 + 4) * 3]).toBeGreaterThan(235);
  });
});

describe('decodeImage refuses bad input with a one-line InputError naming the file', () => {
  const good = pngjsWrite(4, 4, 2, 8, Array.from({ length: 48 }, (_, i) => i * 5));
  const idat = good.indexOf('IDAT') - 4; // start of the IDAT chunk
  const ihdr = (w: number, h: number) => Buffer.concat([PNG_SIGNATURE, chunk('IHDR', Buffer.from([w >>> 24, (w >> 16) & 255, (w >> 8) & 255, w & 255, h >>> 24, (h >> 16) & 255, (h >> 8) & 255, h & 255, 8, 2, 0, 0, 0]))]);
  const sof = (w: number, h: number) => Buffer.from([0xff, 0xd8, 0xff, 0xc0, 0, 17, 8, h >> 8, h & 255, w >> 8, w & 255, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xff, 0xd9]);
  const flipped = Buffer.from(good);
  flipped[idat + 10]! ^= 0x40;
  const badZlib = Buffer.concat([good.subarray(0, idat), chunk('IDAT', Buffer.from('not zlib data at all')), good.subarray(good.length - 12)]);
  const garbageScan = baselineJpeg(16, 16, (x, y) => [x * 16, y * 16, 99]);
  // a 13×7 JPEG with another frame header before its own, of 10000×400
  const twoFrames = (() => {
    const jpg = baselineJpeg(13, 7, () => [1, 2, 3]), at = jpg.indexOf(Buffer.from([0xff, 0xc0]));
    const first = Buffer.from(jpg.subarray(at, at + 2 + jpg.readUInt16BE(at + 2)));
    first.writeUInt16BE(400, 5);
    first.writeUInt16BE(10_000, 7);
    return Buffer.concat([jpg.subarray(0, at), first, jpg.subarray(at)]);
  })();
  // a 10000×400 frame whose second component is not the one the scan names
  const strayComponent = (() => {
    const jpg = baselineJpeg(13, 7, () => [1, 2, 3]), at = jpg.indexOf(Buffer.from([0xff, 0xc0]));
    jpg.writeUInt16BE(400, at + 5);
    jpg.writeUInt16BE(10_000, at + 7);
    jpg[at + 13] = 9;
    return jpg;
  })();
  for (let i = garbageScan.length - 60; i < garbageScan.length - 2; i++) garbageScan[i] = 0xff;

  const cases: [string, Uint8Array, RegExp][] = [
    ['empty file', new Uint8Array(), /^empty\.png: empty file$/],
    ['text file named .png', Buffer.from('hello, I am text\n'), /^notes\.png: not a PNG or JPEG image/],
    ['PNG signature only', PNG_SIGNATURE, /truncated PNG/],
    ['PNG cut inside IDAT', good.subarray(0, idat + 20), /truncated PNG \(IDAT chunk declares \d+ bytes, only \d+ left\)/],
    ['PNG without IEND', good.subarray(0, good.length - 12), /truncated PNG/],
    ['PNG with a bad CRC', flipped, /corrupt PNG \(bad CRC in IDAT chunk\)/],
    ['PNG whose IDAT is not zlib', badZlib, /corrupt PNG image data \(/],
    ['PNG not starting with IHDR', Buffer.concat([PNG_SIGNATURE, good.subarray(idat)]), /IHDR must be the first chunk/],
    ['PNG with an unknown critical chunk', Buffer.concat([good.subarray(0, idat), chunk('ABCD', new Uint8Array(1)), good.subarray(idat)]), /unknown critical chunk ABCD/],
    ['PNG with bit depth 16 palette', Buffer.concat([PNG_SIGNATURE, chunk('IHDR', Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 16, 3, 0, 0, 0]))]), /invalid colour type 3 with bit depth 16/],
    ['PNG of 0×5', ihdr(0, 5), /invalid dimensions 0x5/],
    ['PNG of 100000×100000', ihdr(100_000, 100_000), /image too large \(100000x100000; the limit is 10000 px per side and 50 megapixels\)/],
    ['PNG of 8000×8000 (64 MP)', ihdr(8000, 8000), /image too large \(8000x8000/],
    ['JPEG of 20000×10', sof(20_000, 10), /image too large \(20000x10/],
    ['JPEG garbage after a comment', Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xfe, 0, 4, 0x68, 0x69]), Buffer.from('garbage garbage')]), /corrupt JPEG \(no marker at byte 8\)/],
    ['JPEG cut in its headers', garbageScan.subarray(0, 100), /truncated JPEG/],
    ['JPEG with garbage scan data', garbageScan, /corrupt JPEG \(/],
    ['JPEG cut in its scan data', baselineJpeg(32, 32, (x, y) => [x * 8, y * 8, 0]).subarray(0, 700), /truncated or corrupt JPEG \(/],
    ['JPEG with two frame headers', twoFrames, /corrupt JPEG \(a second frame header/],
    ['JPEG whose scan names a component its frame lacks', strayComponent, /corrupt JPEG \(the first scan header does not fit the frame header\)/],
    ['lossless JPEG', Buffer.from([0xff, 0xd8, 0xff, 0xc3, 0, 11, 8, 0, 8, 0, 8, 1, 1, 0x11, 0, 0xff, 0xd9]), /unsupported JPEG/],
  ];
  it.each(cases)('%s', (what, bytes, pattern) => {
    const name = what === 'empty file' ? 'empty.png' : what === 'text file named .png' ? 'notes.png' : 'in.png';
    const started = performance.now();
    let error: unknown;
    try {
      decodeImage(bytes, name);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    const msg = (error as Error).message;
    expect(msg).toMatch(pattern);
    expect(msg.startsWith(`${name}: `)).toBe(true);
    expect(msg).not.toContain('\n');
    expect(performance.now() - started).toBeLessThan(200); // refused from the header, nothing big allocated
  });

  it('throws nothing but InputError for any truncation or corrupted byte', () => {
    const jpg = baselineJpeg(24, 16, (x, y) => [x * 10, y * 15, 128]);
    for (const file of [good, jpg, makePng({ width: 5, height: 4, colorType: 3, bitDepth: 2, samples: Array(20).fill(1), palette: [[1, 2, 3], [4, 5, 6]], interlace: true })]) {
      const variants: Uint8Array[] = [];
      for (let n = 0; n < file.length; n += 3) variants.push(file.subarray(0, n));
      for (let i = 0; i < file.length; i += 2) {
        for (const v of [0x00, 0xff]) {
          const c = Uint8Array.from(file);
          c[i] = v;
          variants.push(c);
        }
      }
      for (const bytes of variants) {
        try {
          decodeImage(bytes, 'fuzz');
        } catch (e) {
          if (!(e instanceof InputError)) throw e;
        }
      }
    }
  });
});

describe('toGray: OpenCV 4 COLOR_BGR2GRAY, (9798·R + 19235·G + 3735·B + 16384) >> 15', () => {
  it('matches hand-computed values', () => {
    const pixels = [
      [255, 0, 0], // (9798·255 + 16384) >> 15 = 2514874 >> 15 = 76 (76.75)
      [0, 255, 0], // (19235·255 + 16384) >> 15 = 4921309 >> 15 = 150 (150.18)
      [0, 0, 255], // (3735·255 + 16384) >> 15 = 968809 >> 15 = 29 (29.57)
      [158, 140, 27], // 1548084 + 2692900 + 100845 + 16384 = 4358213 >> 15 = 133 (OpenCV 3's 14-bit formula: 132)
      [0, 0, 250], // (933750 + 16384) >> 15 = 950134 >> 15 = 28, where round(0.114·250 = 28.5) would give 29
      [10, 20, 30], // 97980 + 384700 + 112050 + 16384 = 611114 >> 15 = 18
      [128, 128, 128], // the weights sum to 32768, so gray stays gray: 128
    ];
    const img: Image = { width: pixels.length, height: 1, channels: 3, data: Uint8Array.from(pixels.flat()) };
    const gray = toGray(img);
    expect(gray.channels).toBe(1);
    expect(Array.from(gray.data)).toEqual([76, 150, 29, 133, 28, 18, 128]);
    // The float formula round(0.299 R + 0.587 G + 0.114 B) agrees on all but 22,411 of the 2^24 colours
    // (checked against OpenCV); here it differs on (0, 0, 250) only.
    expect(pixels.map(([r, g, b]) => Math.round(0.299 * r! + 0.587 * g! + 0.114 * b!))).toEqual([76, 150, 29, 133, 29, 18, 128]);
  });

  it('returns every gray level unchanged, and copies a 1-channel image', () => {
    const levels = Uint8Array.from({ length: 256 }, (_, i) => i);
    const rgb: Image = { width: 256, height: 1, channels: 3, data: Uint8Array.from(gray3(Array.from(levels))) };
    expect(toGray(rgb).data).toEqual(levels);
    const g: Image = { width: 256, height: 1, channels: 1, data: levels };
    const copy = toGray(g);
    expect(copy.data).toEqual(levels);
    expect(copy.data).not.toBe(levels);
  });
});

describe('resize: cv2.resize INTER_LINEAR on 8-bit data, bit-exact', () => {
  const gray = (width: number, height: number, values: number[]): Image => ({ width, height, channels: 1, data: Uint8Array.from(values) });

  it('4×4 → 2×2 (an exact 2× reduction: the rounded mean of each 2×2 block)', () => {
    // src x = (dx + 0.5)·2 − 0.5 = 2dx + 0.5: weights 1024/1024 both ways, so
    // out = (a + b + c + d + 2) >> 2, which is also what OpenCV's INTER_AREA shortcut computes.
    const src = gray(4, 4, [0, 1, 10, 20, 2, 4, 30, 41, 100, 101, 255, 254, 103, 103, 253, 255]);
    const out = resize(src, 2, 2);
    // (0+1+2+4+2)>>2 = 2 · (10+20+30+41+2)>>2 = 25 · (100+101+103+103+2)>>2 = 102 · (255+254+253+255+2)>>2 = 254
    expect(Array.from(out.data)).toEqual([2, 25, 102, 254]);
  });

  it('2×2 → 4×4 (upscaling, clamped borders)', () => {
    // x = (dx + 0.5)·0.5 − 0.5 = −0.25, 0.25, 0.75, 1.25: columns p0 | (1536·p0 + 512·p1) | (512·p0 + 1536·p1) | p1
    // (outside the image: the border pixel alone). Rows likewise; rows above/below clamp to the edge row.
    // Row 0 horizontally: [0, 51200, 153600, 204800] (×2048); row 1: [409600, 437760, 494080, 522240].
    // Output row 1 (b0 = 1536 on row 0, b1 = 512 on row 1), column 1:
    //   ((1536·(51200 >> 4)) >> 16) + ((512·(437760 >> 4)) >> 16) = 75 + 213 (213.75 truncated); (288 + 2) >> 2 = 72
    const out = resize(gray(2, 2, [0, 100, 200, 255]), 4, 4);
    expect(Array.from(out.data)).toEqual([0, 25, 75, 100, 50, 72, 117, 139, 150, 167, 200, 216, 200, 214, 241, 255]);
  });

  it('3×3 → 5×5 (non-integer ratio)', () => {
    // scale = 1/(5/3) = 0.6: x = −0.2 (clamped: p0), 0.4, 1.0, 1.6, 2.2 (clamped: p2).
    // f = float(0.4) → weights round((1 − f)·2048) = 1229 and round(f·2048) = 819; f = 0.6 gives 819, 1229.
    // Cell (1, 1): row 0 → 819·50 = 40950, row 1 → 1229·60 + 819·120 = 172020;
    //   ((1229·(40950 >> 4)) >> 16) + ((819·(172020 >> 4)) >> 16) = 47 + 134; (181 + 2) >> 2 = 45,
    //   where exact arithmetic gives 0.6·20 + 0.4·84 = 45.6 → 46: the fixed point matters.
    const out = resize(gray(3, 3, [0, 50, 100, 60, 120, 180, 255, 0, 30]), 5, 5);
    expect(Array.from(out.data)).toEqual([
      0, 20, 50, 80, 100,
      24, 45, 78, 110, 132,
      60, 84, 120, 156, 180,
      177, 125, 48, 73, 90,
      255, 153, 0, 18, 30,
    ]);
  });

  it('resizes each RGB channel like a gray image', () => {
    const values = Array.from({ length: 5 * 4 * 3 }, (_, i) => (i * 37) % 256);
    const rgb: Image = { width: 5, height: 4, channels: 3, data: Uint8Array.from(values) };
    const out = resize(rgb, 7, 3);
    expect([out.width, out.height, out.channels]).toEqual([7, 3, 3]);
    for (let c = 0; c < 3; c++) {
      const plane = resize(gray(5, 4, values.filter((_, i) => i % 3 === c)), 7, 3);
      expect(Array.from(out.data).filter((_, i) => i % 3 === c)).toEqual(Array.from(plane.data));
    }
  });

  it('returns a copy for the same size and refuses sizes that are not positive integers', () => {
    const src = gray(2, 1, [3, 4]);
    const same = resize(src, 2, 1);
    expect(same.data).toEqual(src.data);
    expect(same.data).not.toBe(src.data);
    expect(() => resize(src, 0, 5)).toThrow(InputError);
    expect(() => resize(src, 2.5, 5)).toThrow(/positive whole numbers/);
  });
});

describe('crop', () => {
  const img: Image = { width: 3, height: 2, channels: 3, data: Uint8Array.from({ length: 18 }, (_, i) => i) };
  it('cuts the rectangle out', () => {
    const out = crop(img, 1, 1, 2, 1);
    expect([out.width, out.height, Array.from(out.data)]).toEqual([2, 1, [12, 13, 14, 15, 16, 17]]);
  });
  it('refuses rectangles outside the image', () => {
    expect(() => crop(img, 2, 0, 2, 1)).toThrow(/crop: rectangle 2x1 at \(2, 0\) is outside the 3x2 image/);
    expect(() => crop(img, -1, 0, 1, 1)).toThrow(InputError);
    expect(() => crop(img, 0, 0, 0, 1)).toThrow(InputError);
  });
});

describe('encodePng', () => {
  it('round-trips gray and RGB images through decodeImage and pngjs', () => {
    const g: Image = { width: 5, height: 3, channels: 1, data: Uint8Array.from({ length: 15 }, (_, i) => i * 17) };
    const pngGray = encodePng(g);
    expect(PNG.sync.read(Buffer.from(pngGray)).colorType).toBe(0);
    const back = decodeImage(pngGray, 'g.png');
    expect(toGray(back)).toEqual(g);
    const rgb: Image = { width: 4, height: 2, channels: 3, data: Uint8Array.from({ length: 24 }, (_, i) => (i * 41) % 256) };
    expect(decodeImage(encodePng(rgb), 'rgb.png')).toEqual(rgb);
  });
});

// The tutorial's own input (only when ../shared/tutorial is present; never copied into the project)
const shared = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../shared/tutorial');
const inputPng = path.join(shared, 'input.png');
const haveInput = fs.existsSync(inputPng);
if (!haveInput) console.log(`image.test: ${inputPng} is absent, skipping the tutorial input checks`);

describe.skipIf(!haveInput)("the tutorial's input.png", () => {
  it('decodes to 48×48 and its gray levels round-trip unchanged', () => {
    const bytes = fs.readFileSync(inputPng);
    const img = decodeImage(bytes, 'input.png');
    expect([img.width, img.height, img.channels]).toEqual([48, 48, 3]);
    const stored = PNG.sync.read(bytes).data.filter((_, i) => i % 4 === 0); // its 8-bit gray samples
    const gray = toGray(img);
    expect(Array.from(gray.data)).toEqual(Array.from(stored));
    expect(resize(gray, 48, 48)).toEqual(gray);
    expect(decodeImage(encodePng(gray), 'again.png')).toEqual(img);
  });
});
