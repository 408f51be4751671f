// Drawing: images into canvases, probability bars and the loss curve.
import type { Image } from '../../src/formats/image.js';
import { argmax, softmax } from '../../src/core/net.js';

/** Paints an 8-bit gray or RGB image into a canvas of the same size. */
export function paintImage(canvas: HTMLCanvasElement, img: Image): void {
  if (canvas.width !== img.width) canvas.width = img.width;
  if (canvas.height !== img.height) canvas.height = img.height;
  const ctx = canvas.getContext('2d')!;
  ctx.putImageData(toImageData(img), 0, 0);
}

export function toImageData(img: Image): ImageData {
  const n = img.width * img.height;
  const rgba = new Uint8ClampedArray(n * 4);
  const d = img.data;
  for (let i = 0; i < n; i++) {
    if (img.channels === 1) rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = d[i];
    else {
      rgba[4 * i] = d[3 * i];
      rgba[4 * i + 1] = d[3 * i + 1];
      rgba[4 * i + 2] = d[3 * i + 2];
    }
    rgba[4 * i + 3] = 255;
  }
  return new ImageData(rgba, img.width, img.height);
}

/**
 * A picture of any size, shown in a canvas at most `max` pixels on its long side (nearest
 * neighbour: the page only needs to show where the crop box is).
 */
export function paintPreview(canvas: HTMLCanvasElement, img: Image, max = 720): void {
  const f = Math.min(1, max / Math.max(img.width, img.height));
  const w = Math.max(1, Math.round(img.width * f)), h = Math.max(1, Math.round(img.height * f));
  if (f === 1) return paintImage(canvas, img);
  const c = img.channels;
  const out = new Uint8Array(w * h * c);
  for (let y = 0; y < h; y++) {
    const sy = Math.min(img.height - 1, Math.floor((y + 0.5) / f));
    for (let x = 0; x < w; x++) {
      const sx = Math.min(img.width - 1, Math.floor((x + 0.5) / f));
      for (let k = 0; k < c; k++) out[(y * w + x) * c + k] = img.data[(sy * img.width + sx) * c + k];
    }
  }
  paintImage(canvas, { width: w, height: h, channels: c, data: out });
}

/** A probability as people read it: 99.97 %, 0.03 %, < 0.01 %. */
export function percent(p: number): string {
  if (p >= 0.9999 && p < 1) return '> 99.99 %';
  if (p > 0 && p < 0.0001) return '< 0.01 %';
  return `${(100 * p).toFixed(p >= 0.995 || p < 0.1 ? 2 : 1)} %`;
}

/** One row per label: name, a bar and the probability; the target and the winner are marked. */
export function paintBars(host: HTMLElement, labels: readonly string[], logits: readonly number[] | undefined, target: number): void {
  const p = logits ? softmax(logits) : labels.map(() => 0);
  const best = logits ? argmax(logits) : -1;
  if (host.children.length !== labels.length) {
    host.replaceChildren(
      ...labels.map(() => {
        const row = document.createElement('div');
        row.className = 'bar';
        row.innerHTML = '<span class="bar-name"></span><span class="bar-track" aria-hidden="true"><span class="bar-fill"></span></span><span class="bar-value"></span>';
        return row;
      }),
    );
  }
  labels.forEach((label, i) => {
    const row = host.children[i] as HTMLElement;
    row.classList.toggle('is-target', i === target);
    row.classList.toggle('is-best', i === best);
    row.querySelector('.bar-name')!.textContent = label + (i === target ? ' (target)' : '');
    (row.querySelector('.bar-fill') as HTMLElement).style.width = `${(100 * p[i]).toFixed(2)}%`;
    row.querySelector('.bar-value')!.textContent = logits ? percent(p[i]) : '–';
    row.title = logits ? `logit ${logits[i].toFixed(6)}` : '';
  });
}

export interface Curve {
  /** Loss per iteration, over the whole run. */
  values: Float32Array;
  count: number;
  /** Iterations at which a new step started (the tutorial's β = 0.5 step). */
  marks: { at: number; label: string }[];
  /** Iterations the run is going to do, for the x axis while it runs. */
  planned: number;
  /** Log (the default; losses ≤ 0 go on a line of their own) or linear, for losses that go below 0. */
  scale?: 'log' | 'linear';
}

/** Room right of the plot. */
const RIGHT = 22;

/** The loss per iteration on a log (or linear) scale, drawn for the canvas's CSS size and the screen's pixel ratio. */
export function paintLoss(canvas: HTMLCanvasElement, curve: Curve): void {
  const ratio = window.devicePixelRatio || 1;
  const cssW = Math.max(200, canvas.clientWidth), cssH = Math.max(120, canvas.clientHeight);
  if (canvas.width !== Math.round(cssW * ratio) || canvas.height !== Math.round(cssH * ratio)) {
    canvas.width = Math.round(cssW * ratio);
    canvas.height = Math.round(cssH * ratio);
  }
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, cssW, cssH);
  const style = getComputedStyle(canvas);
  const ink = style.color || '#222';
  const grid = style.getPropertyValue('--grid') || '#ddd';
  const line = style.getPropertyValue('--line') || '#1f77b4';
  const font = `12px ${style.fontFamily || 'sans-serif'}`;
  ctx.font = font;
  const left = 52, right = RIGHT, top = 10, bottom = 30;
  const w = cssW - left - right, h = cssH - top - bottom;

  const n = curve.count;
  const xMax = Math.max(curve.planned, n, 1);
  const x = (i: number) => left + (i / xMax) * w;
  if (curve.scale === 'linear') return paintLinear(ctx, curve, { left, top, w, h, x, ink, grid, line });
  // float32 cross-entropy reaches exactly 0 once the network is sure enough: such losses are drawn
  // on a line of their own, labelled 0, under the log scale.
  let lo = Infinity, hi = -Infinity, zeros = false;
  for (let i = 0; i < n; i++) {
    const v = curve.values[i];
    if (v > 0 && Number.isFinite(v)) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    } else if (v <= 0) zeros = true;
  }
  if (!(lo <= hi)) {
    lo = 1e-3;
    hi = 1;
  }
  let d0 = Math.floor(Math.log10(lo)), d1 = Math.ceil(Math.log10(hi));
  if (d1 <= d0) d1 = d0 + 1;
  const zeroBand = zeros ? 18 : 0;
  const logH = h - zeroBand;
  const y = (v: number) => (v > 0 ? top + logH - ((Math.log10(Math.max(v, 10 ** d0)) - d0) / (d1 - d0)) * logH : top + h);

  ctx.strokeStyle = grid;
  ctx.fillStyle = ink;
  ctx.lineWidth = 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  const every = Math.ceil((d1 - d0) / Math.max(1, Math.floor(logH / 22)));
  const gridLine = (yy: number, label: string) => {
    ctx.beginPath();
    ctx.moveTo(left, yy);
    ctx.lineTo(left + w, yy);
    ctx.stroke();
    ctx.fillText(label, left - 6, yy);
  };
  for (let d = d0; d <= d1; d += every) gridLine(Math.round(y(10 ** d)) + 0.5, d === 0 ? '1' : `1e${d}`);
  if (zeros) gridLine(top + h - 0.5, '0');
  drawFrame(ctx, curve, { left, top, w, h, x, ink, grid, line });
  drawLine(ctx, curve, { left, top, w, h, x, ink, grid, line }, y);
}

interface Frame {
  left: number;
  top: number;
  w: number;
  h: number;
  x: (i: number) => number;
  ink: string;
  grid: string;
  line: string;
}

/** A linear y axis from the smallest to the largest loss (0 included when they straddle it). */
function paintLinear(ctx: CanvasRenderingContext2D, curve: Curve, f: Frame): void {
  const { top, h, left, w } = f;
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < curve.count; i++) {
    const v = curve.values[i];
    if (Number.isFinite(v)) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  if (!(lo <= hi)) [lo, hi] = [0, 1];
  if (lo < 0 && hi > 0) [lo, hi] = [Math.min(lo, 0), Math.max(hi, 0)];
  if (hi - lo < 1e-12) [lo, hi] = [lo - 0.5, hi + 0.5];
  const marks = ticks(hi - lo, Math.max(2, Math.floor(h / 30)), lo);
  [lo, hi] = [Math.min(lo, marks[0]), Math.max(hi, marks[marks.length - 1])];
  const y = (v: number) => top + h - ((v - lo) / (hi - lo)) * h;
  ctx.strokeStyle = f.grid;
  ctx.fillStyle = f.ink;
  ctx.lineWidth = 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const t of marks) {
    const yy = Math.round(y(t)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(left, yy);
    ctx.lineTo(left + w, yy);
    ctx.stroke();
    ctx.fillText(String(t), left - 6, yy);
  }
  if (lo < 0 && hi > 0) {
    ctx.strokeStyle = f.ink;
    ctx.beginPath();
    ctx.moveTo(left, Math.round(y(0)) + 0.5);
    ctx.lineTo(left + w, Math.round(y(0)) + 0.5);
    ctx.stroke();
  }
  drawFrame(ctx, curve, f);
  drawLine(ctx, curve, f, y);
}

/** The x axis's ticks, the box, and the marks where steps or rounds begin. */
function drawFrame(ctx: CanvasRenderingContext2D, curve: Curve, f: Frame): void {
  const { left, top, w, h, x, ink } = f;
  const xMax = Math.max(curve.planned, curve.count, 1);
  ctx.strokeStyle = f.grid;
  ctx.fillStyle = ink;
  ctx.lineWidth = 1;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (const t of ticks(xMax, Math.max(2, Math.floor(w / 80)))) {
    const xx = Math.round(x(t)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(xx, top + h);
    ctx.lineTo(xx, top + h + 4);
    ctx.stroke();
    const label = t.toLocaleString('en');
    // A long last label (300,000) would run off the canvas's right edge: it ends at the tick instead.
    const over = ctx.measureText(label).width / 2 > RIGHT - 2;
    ctx.textAlign = over && xx > left + w - 1 ? 'right' : 'center';
    ctx.fillText(label, xx, top + h + 7);
  }
  ctx.strokeStyle = ink;
  ctx.strokeRect(left + 0.5, top + 0.5, w, h);

  ctx.textBaseline = 'top';
  ctx.textAlign = 'left';
  const at = curve.marks.map((m) => Math.round(x(m.at)) + 0.5);
  /** Right end of the last label on each row of labels. */
  const rows: number[] = [];
  curve.marks.forEach((m, k) => {
    const xx = at[k];
    ctx.save();
    ctx.setLineDash([4, 4]);
    ctx.strokeStyle = ink;
    ctx.beginPath();
    ctx.moveTo(xx, top);
    ctx.lineTo(xx, top + h);
    ctx.stroke();
    ctx.restore();
    // A label longer than the room before the next mark is shortened ("Binary-search step 2",
    // "step 2", "2"); labels that would still overlap go on a row below.
    const room = (k + 1 < at.length ? at[k + 1] : left + w) - xx - 8;
    const label = shortenings(m.label).find((t) => ctx.measureText(t).width <= room) ?? shortenings(m.label).pop()!;
    const width = ctx.measureText(label).width;
    const from = xx + 4 + width > left + w - 2 ? xx - 4 - width : xx + 4;
    let row = rows.findIndex((end) => end + 6 <= from);
    if (row < 0) row = rows.length;
    rows[row] = from + width;
    ctx.fillText(label, from, top + 4 + row * 15);
  });
}

/** A mark's label, then shorter forms of it: the part before a colon, its last two words, its last word. */
function shortenings(label: string): string[] {
  const words = label.split(':')[0].trim().split(/\s+/);
  return [...new Set([label, words.slice(-2).join(' '), words[words.length - 1]])];
}

/** The losses, one vertical stroke per pixel column when there are more than two per column. */
function drawLine(ctx: CanvasRenderingContext2D, curve: Curve, f: Frame, y: (v: number) => number): void {
  const n = curve.count;
  const { w, x } = f;
  const xMax = Math.max(curve.planned, n, 1);
  if (n === 0) return;
  ctx.strokeStyle = f.line;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  // One vertical stroke per pixel column (min to max) keeps long runs cheap to draw.
  const perPixel = n / Math.max(1, (n / xMax) * w);
  if (perPixel <= 2) {
    for (let i = 0; i < n; i++) (i === 0 ? ctx.moveTo : ctx.lineTo).call(ctx, x(i), y(curve.values[i]));
  } else {
    for (let i = 0; i < n; ) {
      const end = Math.min(n, Math.floor(i + perPixel));
      let a = Infinity, b = -Infinity;
      for (let j = i; j < end; j++) {
        a = Math.min(a, curve.values[j]);
        b = Math.max(b, curve.values[j]);
      }
      const xx = x(i);
      if (i === 0) ctx.moveTo(xx, y(b));
      else ctx.lineTo(xx, y(b));
      ctx.lineTo(xx, y(a));
      i = Math.max(end, i + 1);
    }
  }
  ctx.stroke();
}

/** A loss as a short number: 0, 1.234e-5, 0.01234, 15.74. */
export function formatLoss(v: number): string {
  if (!Number.isFinite(v)) return '–';
  if (v === 0) return '0';
  return Math.abs(v) < 1e-3 ? v.toExponential(3) : v.toPrecision(4);
}

/** Round tick values over a span of `max` from `from` (from 0: whole numbers), about `count` of them. */
function ticks(max: number, count: number, from?: number): number[] {
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  if (from === undefined) {
    for (let t = 0; t <= max + 1e-9; t += step) out.push(Math.round(t));
    return out;
  }
  const first = Math.floor(from / step), last = Math.ceil((from + max) / step);
  for (let k = first; k <= last; k++) out.push(+(k * step).toPrecision(12));
  return out;
}
