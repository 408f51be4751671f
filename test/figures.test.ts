import { Resvg } from '@resvg/resvg-js';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { barChartSvg, figurePng, lossSvg } from '../src/cli/figures.js';
import { filterImage } from '../src/formats/preprocess.js';
import type { Image } from '../src/formats/image.js';

describe('filterImage', () => {
  it('maps 0 to 128 and ±max|DX| to 255/0, symmetrically', () => {
    const img = filterImage(Float32Array.from([0, 0.5, -0.5, 1, -1, 0.25]), 2, 3, 1);
    expect(img).toMatchObject({ width: 3, height: 2, channels: 1 });
    // 128 ± round(127.5·|v|/max): 0.5 → ±63.75 → ±64, 0.25 → +31.875 → +32; +1 → 256 clipped.
    expect(Array.from(img.data)).toEqual([128, 192, 64, 255, 0, 160]);
    expect(img.data[1] + img.data[2]).toBe(256);
  });

  it('scales three channels with their common max', () => {
    const img = filterImage(Float32Array.from([2, -1, 0, 0, 1, -2]), 1, 2, 3);
    expect(img).toMatchObject({ width: 2, height: 1, channels: 3 });
    expect(Array.from(img.data)).toEqual([255, 64, 128, 128, 192, 0]);
  });

  it('draws an all-zero DX mid grey and refuses a wrong size', () => {
    expect(Array.from(filterImage(new Float32Array(4), 2, 2, 1).data)).toEqual([128, 128, 128, 128]);
    expect(() => filterImage(new Float32Array(5), 2, 2, 1)).toThrow(RangeError);
  });
});

/** A gray or RGB image whose neighbouring pixels all differ. */
function pattern(width: number, height: number, channels: 1 | 3, seed: number): Image {
  const data = Uint8Array.from({ length: width * height * channels }, (_, i) => (i * 37 + ((i / width) | 0) * 11 + seed) % 256);
  return { width, height, channels, data };
}

function decode(png: Uint8Array): PNG {
  expect(Array.from(png.subarray(0, 8))).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return PNG.sync.read(Buffer.from(png));
}

/** Checks every pixel of the upscaled image at (left, top) against its source pixel; returns the number of mismatches. */
function mismatches(out: PNG, img: Image, left: number, top: number, scale: number): number {
  let bad = 0;
  for (let y = 0; y < img.height * scale; y++) {
    for (let x = 0; x < img.width * scale; x++) {
      const src = (Math.floor(y / scale) * img.width + Math.floor(x / scale)) * img.channels;
      const dst = ((top + y) * out.width + left + x) * 4;
      for (let c = 0; c < 3; c++) if (out.data[dst + c] !== img.data[src + (img.channels === 3 ? c : 0)]) bad++;
    }
  }
  return bad;
}

/** Pixels darker than mid grey in a rectangle. */
function darkPixels(out: PNG, x0: number, y0: number, x1: number, y1: number): number {
  let n = 0;
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (out.data[(y * out.width + x) * 4] < 100) n++;
  return n;
}

describe('figurePng', () => {
  it('draws the panels side by side, upscaled 5× with nearest neighbour, titled above', () => {
    const images = [pattern(48, 48, 1, 0), pattern(48, 48, 1, 90), pattern(48, 48, 1, 180)];
    const titles = ['Original: Woman', 'Noise filter', 'Adversarial: Man'];
    const out = decode(
      figurePng(images.map((image, k) => ({ title: titles[k], subtitle: `man ${k}.00 · woman -${k}.50`, image }))),
    );
    // 20 px margins, three 240 px columns 36 px apart, the images 240 px high under two lines of text.
    expect([out.width, out.height]).toEqual([20 + 3 * 240 + 2 * 36 + 20, 76 + 240 + 20]);
    const top = out.height - 20 - 240;
    images.forEach((img, k) => {
      const left = 20 + k * (240 + 36);
      expect(mismatches(out, img, left, top, 5)).toBe(0);
      expect(darkPixels(out, left, 0, left + 240, top - 2)).toBeGreaterThan(100); // the title and subtitle
    });
    expect(Array.from(out.data.subarray(0, 4))).toEqual([255, 255, 255, 255]); // white background
    expect(darkPixels(out, 0, 0, 20, out.height)).toBe(0); // the left margin is left blank
  });

  it('takes colour images of any size, without subtitles', () => {
    const img = pattern(32, 24, 3, 7); // 240 / 32 → 8×
    const out = decode(figurePng([{ title: 'A rather longer title than the image is wide', image: img }]));
    expect(out.height).toBe(20 + 18 + 14 + 24 * 8 + 20);
    expect(out.width).toBeGreaterThan(32 * 8 + 40); // the column widened for the title
    const left = Math.floor((out.width - 32 * 8) / 2);
    expect(mismatches(out, img, left, 20 + 18 + 14, 8)).toBe(0);
  });

  it('refuses an empty figure', () => {
    expect(() => figurePng([])).toThrow(RangeError);
  });
});

/** The coordinates of each <path>'s points, in order. */
function paths(svg: string): number[][][] {
  return [...svg.matchAll(/<path d="([^"]*)"/g)].map((m) =>
    [...m[1].matchAll(/[ML](-?[\d.]+) (-?[\d.]+)/g)].map((p) => [Number(p[1]), Number(p[2])]),
  );
}

describe('lossSvg', () => {
  it('draws one path per curve, one after the other, with a legend and log ticks', () => {
    const step1 = Array.from({ length: 1000 }, (_, i) => 2 * Math.exp(-i / 200));
    const step2 = Array.from({ length: 1000 }, (_, i) => 0.5 * Math.exp(-i / 300));
    const svg = lossSvg([{ name: 'step 1 <woman → man>', values: step1 }, { name: 'step 2', values: Float32Array.from(step2) }], 'Loss & more');
    expect(svg).toMatch(/^<\?xml[^>]*>\s*<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('step 1 &lt;woman → man&gt;');
    expect(svg).toContain('Loss &amp; more');
    expect(svg).toContain('>step 2<');
    for (const label of ['iteration', 'loss', '10⁰', '10⁻¹', '10⁻²', '10¹']) expect(svg).toContain(`>${label}<`);
    const [a, b] = paths(svg);
    expect([a.length, b.length]).toEqual([1000, 1000]);
    expect(b[0][0]).toBeGreaterThan(a[a.length - 1][0]); // step 2 starts where step 1 ended
    expect(a[0][1]).toBeLessThan(a[a.length - 1][1]); // falling loss: y grows downwards
    expect(() => new Resvg(svg, { font: { loadSystemFonts: false } }).render()).not.toThrow(); // well-formed: resvg's XML parser accepts it
  });

  it('draws values ≤ 0 on a line marked 0 under the log axis, with a note, and skips NaN', () => {
    const svg = lossSvg([{ name: 'loss', values: [1, 0.5, 0, -Infinity, 0.1, NaN, 0.2] }], 'floor');
    expect(svg).not.toMatch(/NaN|Infinity/);
    const [points] = paths(svg);
    expect(points).toHaveLength(6);
    expect(points[2][1]).toBe(points[3][1]); // 0 and -Infinity on the same line
    expect(points[2][1]).toBeGreaterThan(points[4][1]); // which is below 0.1
    const zeroLine = [...svg.matchAll(/<text[^>]*y="([\d.]+)"[^>]*>≤ 0</g)].map((m) => Number(m[1]));
    expect(zeroLine).toHaveLength(1); // -Infinity is below 0: the line says ≤ 0
    expect(Math.abs(zeroLine[0] - 5 - points[2][1])).toBeLessThan(1);
    expect(svg).not.toContain('>10⁻²<'); // no unlabelled floor a decade below the smallest value
    expect(svg).toContain('Losses ≤ 0, first at iteration 2, are drawn at ≤ 0.');
    expect(svg.match(/<path d="M[^"]*M/)).not.toBeNull(); // a gap at NaN

    const exact = lossSvg([{ name: 'loss', values: [0.3, 0.01, 0, 0] }], 'exact');
    expect(exact).toMatch(/>0</);
    expect(exact).toContain('Losses of exactly 0 (float32 rounds a probability to 1), first at iteration 2, are drawn at 0.');
    expect(lossSvg([{ name: 'loss', values: [0.3, 0.01] }], 'none')).not.toContain('first at iteration');
  });

  it('downsamples long curves and survives no data at all', () => {
    const long = Float64Array.from({ length: 100_000 }, (_, i) => 1 + Math.sin(i));
    const [points] = paths(lossSvg([{ name: 'long', values: long }], 'long'));
    expect(points.length).toBeLessThanOrEqual(2000);
    expect(points.length).toBeGreaterThan(1000);
    for (const svg of [lossSvg([], 'empty'), lossSvg([{ name: 'zeros', values: [0, 0, -1] }], 'zeros')]) {
      expect(svg).not.toMatch(/NaN|Infinity/);
      expect(() => new Resvg(svg, { font: { loadSystemFonts: false } }).render()).not.toThrow();
    }
  });
});

describe('barChartSvg', () => {
  /** The widths of the bars, in drawing order. */
  const widths = (svg: string) => [...svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="([\d.]+)" height="10" fill/g)].map((m) => Number(m[1]));

  it('draws bars on a log axis in proportion to their decades, and n/a for a missing value', () => {
    const svg = barChartSvg({ title: 't', axis: 'ms', series: ['a', 'b'], log: true, rows: [{ label: 'one', values: [10, 1000] }, { label: 'two', values: [100, null] }] });
    const [w10, w1000, w100] = widths(svg);
    expect(w10).toBe(1); // the axis starts at the smallest value's decade
    expect(w100 / w1000).toBeCloseTo(0.5, 3); // widths are written to 0.1 px
    expect(svg).toContain('>n/a<');
    expect(new Resvg(svg).render().width).toBe(860);
  });

  it('draws a linear axis from 0 to max, with the target line at its value', () => {
    const svg = barChartSvg({ title: 't', axis: '%', series: ['a'], log: false, max: 100, mark: { at: 65, label: 'target' }, rows: [{ label: 'x', values: [65] }] });
    const left = Number(/<rect x="([\d.]+)"[^>]*height="10"/.exec(svg)![1]);
    const markX = Number(/<line x1="([\d.]+)"[^>]*stroke-dasharray/.exec(svg)![1]);
    expect(left + widths(svg)[0]).toBeCloseTo(markX, 0);
  });

  it('writes a watermark across a chart that is no measurement (bench --quick)', () => {
    const rows = [{ label: 'x', values: [1, 10] }];
    expect(barChartSvg({ title: 't', axis: 'ms', series: ['a', 'b'], log: true, rows })).not.toContain('SMOKE');
    expect(barChartSvg({ title: 't', axis: 'ms', series: ['a', 'b'], log: true, rows, watermark: 'SMOKE RUN' })).toMatch(/<g transform="rotate[^"]*"[^>]*><text[^>]*>SMOKE RUN<\/text><\/g>/);
  });
});
