/**
 * The pictures written after an attack, drawn as the tutorial's matplotlib figures are: the images
 * side by side with their titles and scores, and the loss per iteration on a log scale. Figures are
 * composed as SVG; `figurePng` renders it with resvg, with DejaVu Sans (matplotlib's default font)
 * shipped by the `dejavu-fonts-ttf` package so that no system font is needed.
 */
import { createRequire } from 'node:module';
import { Resvg } from '@resvg/resvg-js';
import { encodePng, type Image } from '../formats/image.js';

const FONT_OPTIONS = {
  fontFiles: [createRequire(import.meta.url).resolve('dejavu-fonts-ttf/ttf/DejaVuSans.ttf')],
  loadSystemFonts: false,
  defaultFontFamily: 'DejaVu Sans',
};
const FONT = 'DejaVu Sans, Verdana, sans-serif';
/** matplotlib's default colour cycle (tab10). */
const COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

export interface Panel {
  title: string;
  subtitle?: string;
  image: Image;
}

const MARGIN = 20;
const GAP = 36;
const TITLE_SIZE = 18;
const SUBTITLE_SIZE = 14;

/** Panels side by side (or in a grid of `columns`), each image upscaled with nearest-neighbour (pixelated, not blurred) so a 48×48 face is ~240 px wide, titled above (e.g. "Original: Woman") with a subtitle (e.g. "man -0.79 · woman 1.69"), on a white background, as the tutorial's matplotlib figures. Returns PNG bytes. */
export function figurePng(panels: Panel[], { columns = panels.length, size = 240 } = {}): Uint8Array {
  if (panels.length === 0) throw new RangeError('figurePng: no panels');
  const hasSubtitle = panels.some((p) => p.subtitle);
  const header = TITLE_SIZE + (hasSubtitle ? SUBTITLE_SIZE + 10 : 0) + 14;
  const laid = panels.map(({ title, subtitle, image }) => {
    const scale = Math.max(1, Math.round(size / Math.max(image.width, image.height)));
    const [w, h] = [image.width * scale, image.height * scale];
    return { title, subtitle, image, w, h, width: Math.ceil(Math.max(w, textWidth(title, TITLE_SIZE), textWidth(subtitle ?? '', SUBTITLE_SIZE))) };
  });
  // A grid: each column as wide as its widest panel, each row as tall as its tallest image.
  const widths = Array.from({ length: Math.min(columns, laid.length) }, (_, c) => Math.max(...laid.filter((_, i) => i % columns === c).map((p) => p.width)));
  const lefts = widths.map((_, c) => MARGIN + widths.slice(0, c).reduce((a, b) => a + b + GAP, 0));
  const rows = Math.ceil(laid.length / columns);
  const tops = [MARGIN];
  for (let r = 0; r < rows; r++) tops.push(tops[r] + header + Math.max(...laid.slice(r * columns, (r + 1) * columns).map((p) => p.h)) + GAP);
  const parts = laid.map(({ title, subtitle, image, w, h }, i) => {
    const [c, top] = [i % columns, tops[Math.floor(i / columns)]];
    const [left, centre] = [lefts[c] + Math.floor((widths[c] - w) / 2), lefts[c] + widths[c] / 2];
    const imageTop = top + header;
    const png = Buffer.from(encodePng(image)).toString('base64');
    return [
      text(centre, top + TITLE_SIZE, TITLE_SIZE, title),
      subtitle ? text(centre, top + TITLE_SIZE + SUBTITLE_SIZE + 8, SUBTITLE_SIZE, subtitle, '#444') : '',
      // A hairline frame just outside the image, as light images would melt into the background.
      `<rect x="${left - 0.5}" y="${imageTop - 0.5}" width="${w + 1}" height="${h + 1}" fill="none" stroke="#bbb"/>`,
      // resvg scales with nearest neighbour for optimizeSpeed (it ignores the CSS value pixelated).
      `<image x="${left}" y="${imageTop}" width="${w}" height="${h}" preserveAspectRatio="none" image-rendering="optimizeSpeed" href="data:image/png;base64,${png}"/>`,
    ].join('\n');
  });
  const width = lefts[widths.length - 1] + widths[widths.length - 1] + MARGIN;
  const svg = svgDocument(width, tops[rows] - GAP + MARGIN, parts.join('\n'));
  return svgToPng(svg);
}

export interface Curve {
  name: string;
  values: ArrayLike<number>;
}

const PLOT = { width: 720, height: 440, left: 80, right: 700, top: 40, bottom: 385 };
const MAX_POINTS = 2000;

/** Loss per iteration, log-scale y axis (values ≤ 0 on a line of their own marked 0, with a note), x = iteration (curves may be consecutive steps: draw them one after the other on a shared x axis, e.g. step 1 = iterations 0–999, step 2 = 1000–1999, each its own colour with a legend), axes with ticks and labels ("iteration", "loss"), a title. Returns standalone SVG text (viewable in a browser). Downsample to at most ~2000 points per curve. */
export function lossSvg(curves: Curve[], title: string): string {
  // A float32 cross-entropy reaches exactly 0 once the network is sure enough, as the log and
  // report.json say: values ≤ 0 (-Infinity too) go on a line of their own under the log axis,
  // marked 0 (≤ 0 when some are negative) and explained in a note, never at an unlabelled floor.
  // NaN and Infinity leave a gap.
  let [min, max] = [Infinity, 0];
  let firstZero = -1, negative = false, at = 0;
  for (const { values } of curves) {
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v > 0 && Number.isFinite(v)) [min, max] = [Math.min(min, v), Math.max(max, v)];
      if (v <= 0 && firstZero < 0) firstZero = at + i;
      if (v < 0) negative = true;
    }
    at += values.length;
  }
  if (max === 0) [min, max] = [1, 1];
  const [lo, hi] = [Math.floor(Math.log10(min)), Math.ceil(Math.log10(max))];
  const [decadeLo, decadeHi] = [lo, Math.max(hi, lo + 1)];
  const total = curves.reduce((n, c) => n + c.values.length, 0);
  const xMax = Math.max(1, total - 1);
  const px = (i: number) => PLOT.left + ((PLOT.right - PLOT.left) * i) / xMax;
  const zeroY = PLOT.bottom - 10;
  const logBottom = firstZero < 0 ? PLOT.bottom : PLOT.bottom - 32;
  const py = (v: number) =>
    v > 0 ? logBottom - ((logBottom - PLOT.top) * (Math.log10(v) - decadeLo)) / (decadeHi - decadeLo) : zeroY;

  const out: string[] = [];
  const zeroLabel = negative ? '≤ 0' : '0';
  if (firstZero >= 0) {
    out.push(`<line x1="${PLOT.left}" x2="${PLOT.right}" y1="${zeroY}" y2="${zeroY}" stroke="#e6e6e6"/>`);
    out.push(`<line x1="${PLOT.left - 6}" x2="${PLOT.left}" y1="${zeroY}" y2="${zeroY}" stroke="black"/>`);
    out.push(text(PLOT.left - 9, zeroY + 5, 13, zeroLabel, 'black', 'end'));
    const why = negative ? '' : ' (float32 rounds a probability to 1)';
    out.push(text(20, PLOT.height + 8, 13, `Losses ${negative ? '≤ 0' : 'of exactly 0'}${why}, first at iteration ${firstZero}, are drawn at ${zeroLabel}.`, '#444', 'start'));
  }
  // Grid and ticks: every decade (or every few, so that at most 8 are labelled), minor ticks at
  // 2..9 × 10^k while there are few decades, some labelled when there is only one; the x axis in
  // steps of 1, 2 or 5 × 10^k.
  const decadeStep = Math.ceil((decadeHi - decadeLo) / 8);
  for (let k = decadeLo; k <= decadeHi; k++) {
    const y = py(10 ** k).toFixed(1);
    if ((k - decadeLo) % decadeStep === 0) {
      out.push(`<line x1="${PLOT.left}" x2="${PLOT.right}" y1="${y}" y2="${y}" stroke="#e6e6e6"/>`);
      out.push(`<line x1="${PLOT.left - 6}" x2="${PLOT.left}" y1="${y}" y2="${y}" stroke="black"/>`);
      out.push(text(PLOT.left - 9, +y + 5, 13, `10${superscript(k)}`, 'black', 'end'));
    }
    for (let m = 2; m <= 9 && k < decadeHi && decadeHi - decadeLo <= 6; m++) {
      const ym = py(m * 10 ** k).toFixed(1);
      out.push(`<line x1="${PLOT.left - 3}" x2="${PLOT.left}" y1="${ym}" y2="${ym}" stroke="black"/>`);
      if (decadeHi - decadeLo === 1 && [2, 3, 5].includes(m)) {
        out.push(text(PLOT.left - 9, +ym + 4.5, 12, `${m}×10${superscript(k)}`, 'black', 'end'));
      }
    }
  }
  const raw = xMax / 6;
  const unit = 10 ** Math.floor(Math.log10(raw));
  const xStep = unit * ([1, 2, 5, 10].find((m) => m * unit >= raw) ?? 10);
  for (let i = 0; i <= xMax; i += xStep) {
    const x = px(i).toFixed(1);
    out.push(`<line x1="${x}" x2="${x}" y1="${PLOT.bottom}" y2="${PLOT.bottom + 6}" stroke="black"/>`);
    out.push(text(+x, PLOT.bottom + 22, 13, String(i)));
  }

  // The curves, one after the other; a dashed line where each later one starts.
  let offset = 0;
  curves.forEach(({ values }, c) => {
    if (c > 0 && values.length > 0) {
      const x = px(offset).toFixed(1);
      out.push(`<line x1="${x}" x2="${x}" y1="${PLOT.top}" y2="${PLOT.bottom}" stroke="#999" stroke-dasharray="4 4"/>`);
    }
    let d = '';
    let penDown = false;
    for (const i of sampleIndices(values)) {
      const v = values[i];
      if (Number.isNaN(v) || v === Infinity) {
        penDown = false;
        continue;
      }
      d += `${penDown ? 'L' : 'M'}${px(offset + i).toFixed(1)} ${py(v).toFixed(1)}`;
      penDown = true;
    }
    out.push(`<path d="${d}" fill="none" stroke="${COLOURS[c % COLOURS.length]}" stroke-width="1.5" stroke-linejoin="round"/>`);
    offset += values.length;
  });

  // Frame, labels, title, legend (top right, as matplotlib's).
  out.push(...frame(title, 'iteration', 'loss'));
  if (curves.length > 0) out.push(...legend(curves.map((c) => c.name), 'top'));
  return svgDocument(PLOT.width, PLOT.height + (firstZero < 0 ? 0 : 20), out.join('\n'));
}

/** y of a rate (0 to 1) on the plots of rates. */
const rateY = (a: number) => PLOT.bottom - (PLOT.bottom - PLOT.top) * a;

/** The horizontal grid of a plot of rates, 0 to 100 % by 20. */
function rateGrid(): string[] {
  const out: string[] = [];
  for (let a = 0; a <= 1.0001; a += 0.2) {
    const y = rateY(a).toFixed(1);
    out.push(`<line x1="${PLOT.left}" x2="${PLOT.right}" y1="${y}" y2="${y}" stroke="#e6e6e6"/>`);
    out.push(text(PLOT.left - 9, +y + 5, 13, `${Math.round(a * 100)} %`, 'black', 'end'));
  }
  return out;
}

/** The plot's box, its title and its axes' names. */
function frame(title: string, xLabel: string, yLabel: string): string[] {
  return [
    `<rect x="${PLOT.left}" y="${PLOT.top}" width="${PLOT.right - PLOT.left}" height="${PLOT.bottom - PLOT.top}" fill="none" stroke="black"/>`,
    text((PLOT.left + PLOT.right) / 2, PLOT.top - 14, 16, title),
    text((PLOT.left + PLOT.right) / 2, PLOT.height - 14, 14, xLabel),
    `<g transform="translate(22 ${(PLOT.top + PLOT.bottom) / 2}) rotate(-90)">${text(0, 0, 14, yLabel)}</g>`,
  ];
}

/** A legend of the curves `names` (in COLOURS' order), in the plot's top or bottom right corner. */
function legend(names: readonly string[], corner: 'top' | 'bottom'): string[] {
  const width = 44 + Math.max(...names.map((name) => textWidth(name, 13)));
  const height = names.length * 20 + 8;
  const [lx, ly] = [PLOT.right - 10 - width, corner === 'top' ? PLOT.top + 10 : PLOT.bottom - 10 - height];
  const out = [`<rect x="${lx.toFixed(1)}" y="${ly}" width="${width.toFixed(1)}" height="${height}" rx="3" fill="white" fill-opacity="0.85" stroke="#ccc"/>`];
  names.forEach((name, c) => {
    const y = ly + 14 + c * 20;
    out.push(`<line x1="${(lx + 8).toFixed(1)}" x2="${(lx + 30).toFixed(1)}" y1="${y}" y2="${y}" stroke="${COLOURS[c % COLOURS.length]}" stroke-width="2"/>`);
    out.push(text(lx + 36, y + 4.5, 13, name, 'black', 'start'));
  });
  return out;
}

/** Accuracy under attack against the budget, as RobustBench reports it: linear axes, accuracy
 *  from 0 to 1, one point per budget. Returns standalone SVG text (`svgToPng` for a PNG). */
export function robustnessSvg(points: readonly { eps: number; accuracy: number }[], title: string, xLabel = 'budget ε (grey levels)'): string {
  const xMax = Math.max(1, ...points.map((p) => p.eps));
  const px = (e: number) => PLOT.left + ((PLOT.right - PLOT.left) * e) / xMax;
  const out = rateGrid();
  for (const { eps } of points) {
    const x = px(eps).toFixed(1);
    out.push(`<line x1="${x}" x2="${x}" y1="${PLOT.bottom}" y2="${PLOT.bottom + 6}" stroke="black"/>`);
    out.push(text(+x, PLOT.bottom + 22, 13, String(eps)));
  }
  const d = points.map((p, i) => `${i ? 'L' : 'M'}${px(p.eps).toFixed(1)} ${rateY(p.accuracy).toFixed(1)}`).join('');
  out.push(`<path d="${d}" fill="none" stroke="${COLOURS[0]}" stroke-width="2"/>`);
  for (const p of points) out.push(`<circle cx="${px(p.eps).toFixed(1)}" cy="${rateY(p.accuracy).toFixed(1)}" r="4" fill="${COLOURS[0]}"/>`);
  out.push(...frame(title, xLabel, 'accuracy under attack'));
  return svgDocument(PLOT.width, PLOT.height, out.join('\n'));
}

/** A score-based attack's success against its queries: per curve, the share of its `total`
 *  images fooled within q queries, q from 0 to `budget`, as the Square attack's paper plots it;
 *  `queries` are those the successful images took. Linear axes. Standalone SVG. */
export function successCurveSvg(curves: readonly { name: string; queries: readonly number[]; total: number }[], budget: number, title: string): string {
  const px = (q: number) => PLOT.left + ((PLOT.right - PLOT.left) * q) / Math.max(budget, 1);
  const out = rateGrid();
  const unit = 10 ** Math.floor(Math.log10(Math.max(budget, 1) / 6));
  const step = unit * ([1, 2, 5, 10].find((m) => m * unit >= budget / 6) ?? 10);
  for (let q = 0; q <= budget; q += step) {
    const x = px(q).toFixed(1);
    out.push(`<line x1="${x}" x2="${x}" y1="${PLOT.bottom}" y2="${PLOT.bottom + 6}" stroke="black"/>`);
    out.push(text(+x, PLOT.bottom + 22, 13, String(q)));
  }
  curves.forEach(({ queries, total }, c) => {
    // A staircase: up by 1/total at each success's query count.
    const sorted = [...queries].sort((a, b) => a - b);
    let d = `M${px(0).toFixed(1)} ${rateY(0).toFixed(1)}`;
    sorted.forEach((q, k) => (d += `H${px(q).toFixed(1)}V${rateY((k + 1) / Math.max(total, 1)).toFixed(1)}`));
    d += `H${px(budget).toFixed(1)}`;
    out.push(`<path d="${d}" fill="none" stroke="${COLOURS[c % COLOURS.length]}" stroke-width="2"/>`);
  });
  out.push(...frame(title, 'queries per image', 'success rate'));
  if (curves.length > 1) out.push(...legend(curves.map((c) => c.name), 'bottom'));
  return svgDocument(PLOT.width, PLOT.height, out.join('\n'));
}

export interface BarRow {
  label: string;
  /** One value per series; null where that series has none (drawn as "n/a"). */
  values: (number | null)[];
  /** Text after each bar (its value when absent). */
  notes?: (string | undefined)[];
}

/** Horizontal bars: a group per row, a bar per series (coloured as the legend), on a log axis
 *  (decades) or a linear one from 0 to `max`, each bar followed by its note; `mark` draws a
 *  dashed line across the bars (a target). Standalone SVG. */
export function barChartSvg({ title, axis, series, rows, log, max, mark, watermark }: { title: string; axis: string; series: string[]; rows: BarRow[]; log: boolean; max?: number; mark?: { at: number; label: string }; watermark?: string }): string {
  const BAR = 12, GROUP_GAP = 14, WIDTH = 860;
  const known = rows.flatMap((r) => r.values).filter((v): v is number => v !== null && v > 0);
  const [lo, hi] = log ? [Math.floor(Math.log10(Math.min(...known))), Math.ceil(Math.log10(Math.max(...known)))] : [0, max ?? Math.max(...known)];
  const left = 20 + Math.max(...rows.map((r) => textWidth(r.label, 13))), right = WIDTH - 90;
  const top = 72, groupHeight = series.length * BAR + GROUP_GAP, bottom = top + rows.length * groupHeight;
  const px = (v: number) => left + ((right - left) * ((log ? Math.log10(v) : v) - lo)) / Math.max(hi - lo, 1e-9);
  const out: string[] = [];
  const ticks = log ? Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i)) : Array.from({ length: 6 }, (_, i) => (hi * i) / 5);
  for (const t of ticks) {
    const x = px(t).toFixed(1);
    out.push(`<line x1="${x}" x2="${x}" y1="${top - 4}" y2="${bottom}" stroke="#e6e6e6"/>`);
    out.push(text(+x, bottom + 18, 12, log ? String(+t.toPrecision(1)) : String(+t.toFixed(0))));
  }
  rows.forEach((row, r) => {
    const y0 = top + r * groupHeight;
    out.push(text(left - 10, y0 + (series.length * BAR) / 2 + 4.5, 13, row.label, 'black', 'end'));
    row.values.forEach((v, s) => {
      const y = y0 + s * BAR;
      if (v === null) {
        out.push(text(left + 4, y + BAR - 2, 10, 'n/a', '#777', 'start'));
        return;
      }
      const x1 = px(Math.max(v, log ? 10 ** lo : 0));
      out.push(`<rect x="${left}" y="${y}" width="${Math.max(x1 - left, 1).toFixed(1)}" height="${BAR - 2}" fill="${COLOURS[s % COLOURS.length]}"/>`);
      out.push(text(x1 + 4, y + BAR - 2.5, 10, row.notes?.[s] ?? String(+v.toPrecision(3)), '#333', 'start'));
    });
  });
  out.push(`<line x1="${left}" x2="${left}" y1="${top - 4}" y2="${bottom}" stroke="black"/>`);
  if (mark) {
    const x = px(mark.at).toFixed(1);
    out.push(`<line x1="${x}" x2="${x}" y1="${top - 8}" y2="${bottom}" stroke="#d62728" stroke-dasharray="5 4"/>`);
    out.push(text(+x, top - 12, 11, mark.label, '#d62728'));
  }
  out.push(text(WIDTH / 2, 24, 16, title));
  out.push(text((left + right) / 2, bottom + 40, 13, axis));
  let lx = left;
  series.forEach((name, s) => {
    out.push(`<rect x="${lx.toFixed(1)}" y="40" width="14" height="10" fill="${COLOURS[s % COLOURS.length]}"/>`);
    out.push(text(lx + 20, 49, 12, name, 'black', 'start'));
    lx += 40 + textWidth(name, 12);
  });
  // Written across the bars, so that no crop of the chart loses it.
  if (watermark) {
    const [cx, cy] = [WIDTH / 2, (bottom + 56) / 2];
    out.push(`<g transform="rotate(-6 ${cx} ${cy.toFixed(1)})" fill-opacity="0.3">${text(cx, cy + 15, 40, watermark, '#d62728')}</g>`);
  }
  return svgDocument(WIDTH, bottom + 56, out.join('\n'));
}

/** Indices of the points to draw: all of them, or for long curves the lowest and the highest value of each of 1000 runs, so that spikes survive. */
function sampleIndices(values: ArrayLike<number>): number[] {
  const n = values.length;
  if (n <= MAX_POINTS) return Array.from({ length: n }, (_, i) => i);
  const run = Math.ceil(n / (MAX_POINTS / 2));
  const out: number[] = [];
  for (let start = 0; start < n; start += run) {
    let [lo, hi] = [start, start];
    for (let i = start; i < Math.min(n, start + run); i++) {
      if (values[i] < values[lo]) lo = i;
      if (values[i] > values[hi]) hi = i;
    }
    out.push(...(lo === hi ? [lo] : [Math.min(lo, hi), Math.max(lo, hi)]));
  }
  return out;
}

/** The width of a line of text in DejaVu Sans, as resvg lays it out. */
function textWidth(s: string, size: number): number {
  if (!s.trim()) return 0;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1">${text(0, size, size, s, 'black', 'start')}</svg>`;
  const box = new Resvg(svg, { font: FONT_OPTIONS }).getBBox();
  return box ? box.x + box.width : 0;
}

function superscript(k: number): string {
  return String(k).replace(/./g, (ch) => '⁻⁰¹²³⁴⁵⁶⁷⁸⁹'['-0123456789'.indexOf(ch)]);
}

function text(x: number, y: number, size: number, content: string, fill = 'black', anchor = 'middle'): string {
  return `<text x="${+x.toFixed(1)}" y="${+y.toFixed(1)}" font-size="${size}" fill="${fill}" text-anchor="${anchor}">${escapeXml(content)}</text>`;
}

function escapeXml(s: string): string {
  return s.replace(/[&<>"]/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[ch]!);
}

function svgDocument(width: number, height: number, body: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">
<rect width="100%" height="100%" fill="white"/>
${body}
</svg>
`;
}

/** A standalone SVG from this module, rendered to PNG with the shipped font only, so that the
 *  result is the same on every machine. */
export function svgToPng(svg: string): Uint8Array {
  return new Resvg(svg, { font: FONT_OPTIONS }).render().asPng();
}
