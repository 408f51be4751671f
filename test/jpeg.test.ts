// JPEG decoding against the reference: djpeg, libjpeg-turbo's own decoder (what OpenCV's imread links),
// with its default options as imread uses them (ISLOW IDCT, fancy upsampling). Files are made by cjpeg
// in every coding and sampling it has, and by ImageMagick for CMYK; the tools come from Debian's
// packages (test/setup-debian.sh installs them when missing; the tests are skipped, saying why,
// only when that fails).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { decodeImage, decodeResized, imageSize, resize, toGray, type Image } from '../src/formats/image.js';
import { decodeJpeg } from '../src/formats/jpeg.js';

const root = fileURLToPath(new URL('..', import.meta.url));

function ensureTools(): string | undefined {
  // cjpeg and djpeg are libjpeg-turbo's own (what OpenCV's imread decodes with); ImageMagick's convert
  // is the only encoder at hand that writes CMYK JPEGs.
  const r = spawnSync('sh', [join(root, 'test/setup-debian.sh'), 'command -v cjpeg && command -v djpeg', 'libjpeg-turbo-progs', 'convert -version | grep -q ImageMagick', 'imagemagick'], { encoding: 'utf8', timeout: 15 * 60_000 });
  return r.status === 0 ? undefined : (r.stderr || r.error?.message || `setup-debian.sh exited with ${r.status}`).trim();
}
const missing = ensureTools();
if (missing) console.warn(`test/jpeg.test.ts skipped: ${missing}`);

const dir = mkdtempSync(join(tmpdir(), 'mislead-jpeg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(cmd: string, args: string[], input?: Uint8Array): Buffer {
  const r = spawnSync(cmd, args, { input, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A PPM (P6) of a picture with gradients, edges and noise, so every block has detail. */
function ppm(width: number, height: number, seed: number): Buffer {
  const head = Buffer.from(`P6\n${width} ${height}\n255\n`);
  const px = Buffer.alloc(width * height * 3);
  let s = seed;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      s = (s * 1103515245 + 12345) >>> 0;
      const i = 3 * (y * width + x);
      px[i] = (x * 255) / Math.max(1, width - 1);
      px[i + 1] = (x >> 3) % 2 === (y >> 3) % 2 ? 200 : 40;
      px[i + 2] = ((s >>> 16) & 127) + ((y * 128) / Math.max(1, height - 1));
    }
  }
  return Buffer.concat([head, px]);
}

/** djpeg's output (default options) as 8-bit RGB: gray output copied to R, G and B, as imread does. */
function djpeg(file: string): Image {
  const out = run('djpeg', ['-pnm', file]);
  const m = /^P([56])\s+(\d+)\s+(\d+)\s+255\s/.exec(out.toString('latin1', 0, 40))!;
  const [gray, width, height] = [m[1] === '5', Number(m[2]), Number(m[3])];
  const px = out.subarray(m[0].length);
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    for (let k = 0; k < 3; k++) data[3 * i + k] = gray ? px[i] : px[3 * i + k];
  }
  return { width, height, channels: 3, data };
}

const CJPEG: [string, string[]][] = [
  ['baseline 4:2:0', []],
  ['baseline 4:2:0, quality 100', ['-quality', '100']],
  ['baseline 4:2:0, quality 10', ['-quality', '10']],
  ['progressive', ['-progressive']],
  ['optimised Huffman tables', ['-optimize']],
  ['restart every 2 MCU rows', ['-restart', '2']],
  ['restart every 3 MCUs, progressive', ['-restart', '3B', '-progressive']],
  ['4:2:2', ['-sample', '2x1']],
  ['4:4:0', ['-sample', '1x2']],
  ['4:4:4', ['-sample', '1x1']],
  ['4:1:1', ['-sample', '4x1']],
  ['3x2 luma (no TurboJPEG subsampling name)', ['-sample', '3x2']],
  ['4:4:4 progressive', ['-sample', '1x1', '-progressive']],
  ['grayscale', ['-grayscale']],
  ['grayscale progressive', ['-grayscale', '-progressive']],
  ['RGB (no colour transform)', ['-rgb']],
];
const SIZES: [number, number][] = [[203, 151], [17, 9], [1, 1], [64, 48], [33, 97]];

describe.skipIf(!!missing)('JPEG: decodeImage equals djpeg (libjpeg-turbo) bit for bit', () => {
  it.each(CJPEG)('cjpeg %s, at sizes 203×151, 17×9, 1×1, 64×48, 33×97', (_, args) => {
    let exact = 0;
    for (const [w, h] of SIZES) {
      const file = join(dir, `c-${w}x${h}-${args.join('')}.jpg`);
      writeFileSync(file, run('cjpeg', args, ppm(w, h, w * 31 + h)));
      const bytes = readFileSync(file);
      const got = decodeImage(bytes, file), want = djpeg(file);
      expect([got.width, got.height]).toEqual([want.width, want.height]);
      if (Buffer.compare(got.data, want.data) === 0) exact++;
      // The model-input path reads the same pixels.
      const to = { width: 48, height: 48, channels: 1 as const };
      expect(Buffer.compare(decodeResized(bytes, file, to).data, resize(toGray(want), 48, 48).data)).toBe(0);
    }
    expect(exact).toBe(SIZES.length);
  });

  it('refuses arithmetic-coded JPEGs (cjpeg -arithmetic) in one line: the decoder has no arithmetic decoding', () => {
    const file = join(dir, 'arith.jpg');
    writeFileSync(file, run('cjpeg', ['-arithmetic'], ppm(40, 30, 1)));
    expect(() => decodeImage(readFileSync(file), 'arith.jpg')).toThrow(/^arith\.jpg: unsupported JPEG \(arithmetic-coded; only Huffman-coded baseline and progressive are\)$/);
  });

  // CMYK. djpeg cannot write CMYK samples (its PPM writer turns them into RGB as
  // R = round(C·K / 255), ...), so the check has two steps: the CMYK samples the decoder gives,
  // through djpeg's formula, are djpeg's PPM exactly; and decodeImage is OpenCV's conversion
  // (icvCvt_CMYK2BGR_8u_C4C3R) of those samples.
  it.each([
    ['CMYK (ImageMagick, Adobe marker)', ['-colorspace', 'CMYK']],
    ['CMYK progressive', ['-colorspace', 'CMYK', '-interlace', 'JPEG']],
    ['CMYK 4:2:0', ['-colorspace', 'CMYK', '-sampling-factor', '2x2']],
  ])('%s: libjpeg\'s CMYK samples, converted as OpenCV does', (_, args) => {
    for (const [w, h] of [[203, 151], [9, 17]]) {
      const src = join(dir, `src-${w}x${h}.ppm`), file = join(dir, `cmyk-${w}x${h}-${args.join('')}.jpg`);
      writeFileSync(src, ppm(w, h, 7));
      run('convert', [src, ...args, '-quality', '90', file]);
      const bytes = readFileSync(file);
      const cmyk = decodeJpeg(bytes, w, h, 4, (s, channels) => (expect(channels).toBe(4), s.slice()));
      const want = djpeg(file);
      const viaDjpeg = new Uint8Array(w * h * 3), opencv = new Uint8Array(w * h * 3);
      for (let i = 0; i < w * h; i++) {
        const k = cmyk[4 * i + 3];
        for (let c = 0; c < 3; c++) {
          viaDjpeg[3 * i + c] = Math.floor((cmyk[4 * i + c] * k) / 255 + 0.5);
          opencv[3 * i + c] = k - (((255 - cmyk[4 * i + c]) * k) >> 8);
        }
      }
      expect(Buffer.compare(viaDjpeg, want.data)).toBe(0);
      expect(Buffer.compare(decodeImage(bytes, file).data, opencv)).toBe(0);
      const to = { width: 5, height: 7, channels: 3 as const };
      expect(Buffer.compare(decodeResized(bytes, file, to).data, resize({ width: w, height: h, channels: 3, data: opencv }, 5, 7).data)).toBe(0);
    }
  });

  it('refuses damaged files in one line with libjpeg\'s own message, and prints nothing', () => {
    const file = join(dir, 'ok.jpg');
    writeFileSync(file, run('cjpeg', ['-optimize'], ppm(64, 64, 3)));
    const good = readFileSync(file);
    const sos = good.lastIndexOf(Buffer.from([0xff, 0xda]));
    const cases: [Uint8Array, RegExp][] = [
      // Cut in the scan data, past the header check's lower bound: libjpeg's warning ends decoding.
      [good.subarray(0, good.length - 40), /^x\.jpg: truncated or corrupt JPEG \(Premature end of JPEG file\)$/],
      // A bad Huffman table (counts that add up to more than 256 codes).
      [Buffer.concat([good.subarray(0, 2), Buffer.from([0xff, 0xc4, 0, 19, 0x00, ...Array(16).fill(255)]), good.subarray(2)]), /^x\.jpg: corrupt JPEG \(Bogus Huffman table definition\)$/],
      // Garbage in the middle of the entropy-coded data.
      [Buffer.concat([good.subarray(0, sos + 200), Buffer.from([0xff, 0x99, 0xff, 0x99]), good.subarray(sos + 204)]), /^x\.jpg: corrupt JPEG \(Corrupt JPEG data: .+\)$/],
    ];
    for (const [bytes, pattern] of cases) {
      let error: unknown;
      try {
        decodeImage(bytes, 'x.jpg');
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InputError);
      expect((error as Error).message).toMatch(pattern);
    }
    // The decoder is whole again after its errors.
    expect(Buffer.compare(decodeImage(good, 'ok.jpg').data, djpeg(file).data)).toBe(0);
  });
});

// The model's input from real photographs: decodeResized (decoded by libjpeg here) equals djpeg's
// pixels through OpenCV's gray conversion and resize (toGray and resize, both OpenCV-exact).
const faces = join(root, '../shared/realfaces');
describe.skipIf(!!missing || !existsSync(faces))('real photographs (../shared/realfaces): the gray 48×48 input', () => {
  it('equals djpeg + COLOR_BGR2GRAY + INTER_LINEAR on every photo', () => {
    const files = readdirSync(faces).filter((f) => /\.jpe?g$/i.test(f));
    expect(files.length).toBeGreaterThan(200);
    let exact = 0;
    const unequal: string[] = [];
    for (const f of files) {
      const bytes = readFileSync(join(faces, f));
      const want = djpeg(join(faces, f));
      // djpeg ignores EXIF orientation: photos shown rotated are compared as stored, which is only
      // possible when they have none.
      const size = imageSize(bytes, f);
      expect([size.width, size.height]).toEqual([want.width, want.height]);
      const got = decodeResized(bytes, f, { width: 48, height: 48, channels: 1 });
      if (Buffer.compare(got.data, resize(toGray(want), 48, 48).data) === 0) exact++;
      else unequal.push(f);
    }
    console.log(`real photographs: ${exact}/${files.length} bit-exact 48×48 gray inputs`);
    expect(unequal).toEqual([]);
  }, 120_000);
});
