/**
 * Verifies the float64 reference (`reference.ts`) against central finite differences, plus
 * hand-computed cases for padding geometry, max-pool ties and relu'(0), and (when
 * ../shared/tutorial is present) the tutorial's published logits.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { PNG } from 'pngjs';
import {
  activation,
  activationBackward,
  add,
  affine,
  affineBackward,
  avgpool,
  avgpoolBackward,
  concat,
  concatBackward,
  conv2d,
  conv2dBackward,
  dense,
  denseBackward,
  depthwiseConv2d,
  depthwiseConv2dBackward,
  flatten,
  flattenBackward,
  globalAvgPool,
  globalAvgPoolBackward,
  globalMaxPool,
  globalMaxPoolBackward,
  l2Loss,
  l2LossBackward,
  logSoftmax,
  logSoftmaxBackward,
  dlr,
  dlrBackward,
  maxpool,
  maxpoolBackward,
  networkLogits,
  networkLossAndGradients,
  pad,
  padBackward,
  relu,
  reluBackward,
  sizeOf,
  tensor,
  weightShapes,
  windowGeometry,
  type ActivationKind,
  type Architecture,
  type Padding,
  type Tensor,
} from './reference.js';
import { random } from '../src/core/random.js';
import { TUTORIAL_ARCHITECTURE } from '../src/formats/importtf.js';

// ---------------------------------------------------------------------------------------------
// Helpers: seeded PRNG, random tensors, finite differences
// ---------------------------------------------------------------------------------------------

const mulberry32 = random;

type Rng = () => number;

/** Uniform values in [−scale, scale) (continuous: ties have probability ~0). */
function randomTensor(rng: Rng, shape: number[], scale = 1): Tensor {
  const t = tensor(shape);
  for (let i = 0; i < t.data.length; i++) t.data[i] = (2 * rng() - 1) * scale;
  return t;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

/** All indices 0..n−1 when n ≤ count, else `count` distinct ones including the first and the last. */
function pick(rng: Rng, n: number, count: number): number[] {
  if (n <= count) return Array.from({ length: n }, (_, i) => i);
  const chosen = new Set<number>([0, n - 1]);
  while (chosen.size < count) chosen.add(Math.floor(rng() * n));
  return [...chosen];
}

const H = 1e-6; // finite-difference step
const TOL = 1e-6; // allowed relative error

/**
 * Relative error between `analytic` (the gradient of f with respect to `param`) and the central
 * finite differences (f(p + h) − f(p − h)) / 2h, over the entries `indices` of `param`:
 *   max |analytic − fd| / max(max |fd|, max |analytic|, 1e-3 · max |analytic over all entries|).
 * `param` is perturbed in place and restored.
 */
function fdError(f: () => number, param: Float64Array, analytic: Float64Array, indices: number[]): number {
  expect(analytic.length).toBe(param.length);
  let maxDiff = 0;
  let maxRef = 0;
  for (const i of indices) {
    const saved = param[i]!;
    param[i] = saved + H;
    const fPlus = f();
    param[i] = saved - H;
    const fMinus = f();
    param[i] = saved;
    const fd = (fPlus - fMinus) / (2 * H);
    maxDiff = Math.max(maxDiff, Math.abs(analytic[i]! - fd));
    maxRef = Math.max(maxRef, Math.abs(fd), Math.abs(analytic[i]!));
  }
  const denominator = Math.max(maxRef, 1e-3 * maxAbs(analytic));
  return denominator === 0 ? maxDiff : maxDiff / denominator;
}

/** Worst relative error seen per check, printed at the end. */
const worst = new Map<string, number>();
function checkFd(label: string, category: string, err: number): void {
  worst.set(category, Math.max(worst.get(category) ?? 0, err));
  expect(err, `${category}: ${label}`).toBeLessThanOrEqual(TOL);
}
afterAll(() => {
  const lines = [...worst].map(([k, v]) => `  ${k.padEnd(34)} ${v.toExponential(2)}`);
  console.log(`reference.test: worst relative errors vs central finite differences (h = ${H})\n${lines.join('\n')}`);
});

const paddings: Padding[] = ['same', 'valid'];

// ---------------------------------------------------------------------------------------------
// Window geometry
// ---------------------------------------------------------------------------------------------

describe('windowGeometry (TensorFlow SAME / VALID)', () => {
  it('matches hand-computed SAME cases', () => {
    expect(windowGeometry(5, 2, 2, 'same')).toEqual({ out: 3, padBefore: 0, padAfter: 1 });
    expect(windowGeometry(4, 5, 1, 'same')).toEqual({ out: 4, padBefore: 2, padAfter: 2 });
    expect(windowGeometry(7, 4, 3, 'same')).toEqual({ out: 3, padBefore: 1, padAfter: 2 });
    expect(windowGeometry(48, 2, 2, 'same')).toEqual({ out: 24, padBefore: 0, padAfter: 0 });
    expect(windowGeometry(3, 2, 2, 'same')).toEqual({ out: 2, padBefore: 0, padAfter: 1 });
    expect(windowGeometry(7, 1, 3, 'same')).toEqual({ out: 3, padBefore: 0, padAfter: 0 });
    expect(windowGeometry(7, 5, 1, 'same')).toEqual({ out: 7, padBefore: 2, padAfter: 2 });
    // stride larger than the window: (out − 1)·s + k − n < 0 → no padding
    expect(windowGeometry(9, 2, 3, 'same')).toEqual({ out: 3, padBefore: 0, padAfter: 0 });
  });

  it('matches hand-computed VALID cases and refuses an empty output', () => {
    expect(windowGeometry(7, 4, 3, 'valid')).toEqual({ out: 2, padBefore: 0, padAfter: 0 });
    expect(windowGeometry(5, 2, 2, 'valid')).toEqual({ out: 2, padBefore: 0, padAfter: 0 });
    expect(windowGeometry(13, 5, 3, 'valid')).toEqual({ out: 3, padBefore: 0, padAfter: 0 });
    expect(windowGeometry(4, 4, 1, 'valid')).toEqual({ out: 1, padBefore: 0, padAfter: 0 });
    expect(() => windowGeometry(4, 5, 1, 'valid')).toThrow(/larger than input/);
  });
});

// ---------------------------------------------------------------------------------------------
// conv2d
// ---------------------------------------------------------------------------------------------

describe('conv2d', () => {
  it('hand-computed SAME with an even kernel puts the extra padding after (n=3, k=2, s=1)', () => {
    const x = tensor([1, 3, 3, 1], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const w = tensor([2, 2, 1, 1], [1, 1, 1, 1]);
    const y = conv2d(x, w, tensor([1], [0]), 1, 'same');
    expect(y.shape).toEqual([1, 3, 3, 1]);
    expect([...y.data]).toEqual([12, 16, 9, 24, 28, 15, 15, 17, 9]);
  });

  it('hand-computed SAME n=4,k=5,s=1 (2 before, 2 after) and n=7,k=4,s=3 (1 before, 2 after)', () => {
    // A column image (W = 1) so that only the row padding matters for the values.
    const a = conv2d(tensor([1, 4, 1, 1], [1, 2, 3, 4]), tensor([5, 5, 1, 1], new Array(25).fill(1)), tensor([1]), 1, 'same');
    expect(a.shape).toEqual([1, 4, 1, 1]);
    expect([...a.data]).toEqual([6, 10, 10, 9]);
    const x7 = tensor([1, 7, 1, 1], [1, 2, 3, 4, 5, 6, 7]);
    const b = conv2d(x7, tensor([4, 4, 1, 1], new Array(16).fill(1)), tensor([1]), 3, 'same');
    expect(b.shape).toEqual([1, 3, 1, 1]);
    expect([...b.data]).toEqual([1 + 2 + 3, 3 + 4 + 5 + 6, 6 + 7]);
    // VALID n=7,k=4,s=3 → 2 rows (0..3, 3..6); width 4 → 1 column. Row r holds the value r + 1.
    const rows = tensor([1, 7, 4, 1], Array.from({ length: 28 }, (_, i) => Math.floor(i / 4) + 1));
    const c = conv2d(rows, tensor([4, 4, 1, 1], new Array(16).fill(1)), tensor([1]), 3, 'valid');
    expect(c.shape).toEqual([1, 2, 1, 1]);
    expect([...c.data]).toEqual([4 * (1 + 2 + 3 + 4), 4 * (4 + 5 + 6 + 7)]);
  });

  it('hand-computed HWIO channel order and bias', () => {
    // x[0,0,0,:] = [1, 2]; w[0,0,ci,co] = [[1,2,3],[4,5,6]]; y[co] = Σ_ci x[ci]·w[ci,co] + b[co]
    const y = conv2d(tensor([1, 1, 1, 2], [1, 2]), tensor([1, 1, 2, 3], [1, 2, 3, 4, 5, 6]), tensor([3], [10, 20, 30]), 1, 'valid');
    expect([...y.data]).toEqual([19, 32, 45]);
    // 2×2 kernel, VALID, stride 2, one channel: w[ky,kx] weights each position separately.
    const x = tensor([1, 2, 4, 1], [1, 2, 3, 4, 5, 6, 7, 8]);
    const z = conv2d(x, tensor([2, 2, 1, 1], [1, 10, 100, 1000]), tensor([1], [0.5]), 2, 'valid');
    expect([...z.data]).toEqual([1 + 20 + 500 + 6000 + 0.5, 3 + 40 + 700 + 8000 + 0.5]);
  });

  it('backward matches central FD: k = 1..5, strides 1..3, both paddings, odd sizes, batch 1/3, channels 1/3/5', () => {
    const rng = mulberry32(101);
    let config = 0;
    for (const k of [1, 2, 3, 4, 5]) {
      for (const s of [1, 2, 3]) {
        for (const padding of paddings) {
          const [Hh, Ww] = config % 2 === 0 ? [7, 9] : [13, 11];
          const N = [1, 3][Math.floor(config / 2) % 2]!;
          const Ci = [1, 3, 5][config % 3]!;
          const Co = [3, 5, 1][Math.floor(config / 3) % 3]!;
          config++;
          const label = `x=[${N},${Hh},${Ww},${Ci}] k=${k} s=${s} ${padding} Co=${Co}`;
          const x = randomTensor(rng, [N, Hh, Ww, Ci]);
          const w = randomTensor(rng, [k, k, Ci, Co]);
          const b = randomTensor(rng, [Co]);
          const y = conv2d(x, w, b, s, padding);
          const out = (n: number) => (padding === 'same' ? Math.ceil(n / s) : Math.ceil((n - k + 1) / s));
          expect(y.shape, label).toEqual([N, out(Hh), out(Ww), Co]);
          const g = randomTensor(rng, y.shape);
          const S = () => dot(g.data, conv2d(x, w, b, s, padding).data);
          const grads = conv2dBackward(x, w, s, padding, g);
          expect(grads.dx.shape).toEqual(x.shape);
          expect(grads.dw.shape).toEqual(w.shape);
          expect(grads.db.shape).toEqual(b.shape);
          checkFd(label, 'conv2d dx', fdError(S, x.data, grads.dx.data, pick(rng, x.data.length, 80)));
          checkFd(label, 'conv2d dw', fdError(S, w.data, grads.dw.data, pick(rng, w.data.length, 60)));
          checkFd(label, 'conv2d db', fdError(S, b.data, grads.db.data, pick(rng, b.data.length, 5)));
        }
      }
    }
  });

  it('backward matches central FD on every entry for small cases (all borders covered)', () => {
    const rng = mulberry32(102);
    for (const [k, s, padding] of [[2, 2, 'same'], [4, 3, 'same'], [3, 2, 'valid'], [5, 1, 'same']] as const) {
      const x = randomTensor(rng, [2, 7, 5, 3]);
      const w = randomTensor(rng, [k, k, 3, 2]);
      const b = randomTensor(rng, [2]);
      const g = randomTensor(rng, conv2d(x, w, b, s, padding).shape);
      const S = () => dot(g.data, conv2d(x, w, b, s, padding).data);
      const grads = conv2dBackward(x, w, s, padding, g);
      const label = `k=${k} s=${s} ${padding} (all entries)`;
      checkFd(label, 'conv2d dx', fdError(S, x.data, grads.dx.data, pick(rng, x.data.length, Infinity)));
      checkFd(label, 'conv2d dw', fdError(S, w.data, grads.dw.data, pick(rng, w.data.length, Infinity)));
      checkFd(label, 'conv2d db', fdError(S, b.data, grads.db.data, pick(rng, b.data.length, Infinity)));
    }
  });

  it('hand-computed dilation 2 (k=3): taps two cells apart, SAME padding for the 5-cell span', () => {
    // 7 rows × 5 columns, row r holding r + 1 in its middle column only.
    const x = tensor([1, 7, 5, 1], Array.from({ length: 35 }, (_, i) => (i % 5 === 2 ? Math.floor(i / 5) + 1 : 0)));
    const ones = tensor([3, 3, 1, 1], new Array(9).fill(1));
    const valid = conv2d(x, ones, tensor([1]), 1, 'valid', 2);
    expect(valid.shape).toEqual([1, 3, 1, 1]);
    expect([...valid.data]).toEqual([1 + 3 + 5, 2 + 4 + 6, 3 + 5 + 7]);
    const same = conv2d(x, ones, tensor([1]), 1, 'same', 2); // 2 cells before, 2 after
    expect(same.shape).toEqual([1, 7, 5, 1]);
    const column = [1 + 3, 2 + 4, 1 + 3 + 5, 2 + 4 + 6, 3 + 5 + 7, 4 + 6, 5 + 7]; // columns 0, 2, 4 see the middle one
    expect([...same.data]).toEqual(column.flatMap((v) => [v, 0, v, 0, v]));
    expect(() => conv2d(x, ones, tensor([1]), 1, 'valid', 0)).toThrow(/dilation/);
  });

  it('dilated backward matches central FD: dilations 1..3, k = 1..5, strides 1..2, both paddings', () => {
    const rng = mulberry32(103);
    let config = 0;
    for (const d of [1, 2, 3]) for (const k of [1, 2, 3, 4, 5]) for (const s of [1, 2]) for (const padding of paddings) {
      const [Hh, Ww] = config % 2 === 0 ? [13, 11] : [14, 15];
      const N = [1, 2][Math.floor(config / 2) % 2]!;
      const Ci = [1, 3, 2][config % 3]!;
      const Co = [2, 1, 3][Math.floor(config / 3) % 3]!;
      config++;
      if ((k - 1) * d + 1 > Math.min(Hh, Ww)) continue; // VALID would leave no output
      const label = `x=[${N},${Hh},${Ww},${Ci}] k=${k} d=${d} s=${s} ${padding} Co=${Co}`;
      const x = randomTensor(rng, [N, Hh, Ww, Ci]);
      const w = randomTensor(rng, [k, k, Ci, Co]);
      const b = randomTensor(rng, [Co]);
      const span = (k - 1) * d + 1;
      const out = (n: number) => (padding === 'same' ? Math.ceil(n / s) : Math.ceil((n - span + 1) / s));
      const g = randomTensor(rng, [N, out(Hh), out(Ww), Co]);
      const S = () => dot(g.data, conv2d(x, w, b, s, padding, d).data);
      const grads = conv2dBackward(x, w, s, padding, g, d);
      checkFd(label, 'conv2d dilated dx', fdError(S, x.data, grads.dx.data, pick(rng, x.data.length, 60)));
      checkFd(label, 'conv2d dilated dw', fdError(S, w.data, grads.dw.data, pick(rng, w.data.length, 60)));
      checkFd(label, 'conv2d dilated db', fdError(S, b.data, grads.db.data, pick(rng, b.data.length, 3)));
    }
  });

  it('dilated backward matches central FD on every entry for small cases', () => {
    const rng = mulberry32(104);
    for (const [k, d, s, padding] of [[3, 2, 1, 'same'], [2, 3, 1, 'valid'], [3, 3, 1, 'same'], [2, 2, 2, 'same'], [3, 2, 1, 'valid']] as const) {
      const x = randomTensor(rng, [2, 8, 7, 2]);
      const w = randomTensor(rng, [k, k, 2, 3]);
      const b = randomTensor(rng, [3]);
      const g = randomTensor(rng, conv2d(x, w, b, s, padding, d).shape);
      const S = () => dot(g.data, conv2d(x, w, b, s, padding, d).data);
      const grads = conv2dBackward(x, w, s, padding, g, d);
      const label = `k=${k} d=${d} s=${s} ${padding} (all entries)`;
      checkFd(label, 'conv2d dilated dx', fdError(S, x.data, grads.dx.data, pick(rng, x.data.length, Infinity)));
      checkFd(label, 'conv2d dilated dw', fdError(S, w.data, grads.dw.data, pick(rng, w.data.length, Infinity)));
      checkFd(label, 'conv2d dilated db', fdError(S, b.data, grads.db.data, pick(rng, b.data.length, Infinity)));
    }
  });
});

// ---------------------------------------------------------------------------------------------
// depthwiseConv2d
// ---------------------------------------------------------------------------------------------

describe('depthwiseConv2d', () => {
  it('hand-computed: output channel ci·M + m, bias', () => {
    // x[0,0,0,:] = [1, 2]; w[0,0,ci,m] = [[1,2],[3,4]]; y[ci·2 + m] = x[ci]·w[ci,m] + b[ci·2 + m]
    const y = depthwiseConv2d(tensor([1, 1, 1, 2], [1, 2]), tensor([1, 1, 2, 2], [1, 2, 3, 4]), tensor([4], [10, 20, 30, 40]), 1, 'valid', 1);
    expect([...y.data]).toEqual([11, 22, 36, 48]);
  });

  it('hand-computed dilation 2 under SAME: the window spans 5 cells, padded 2 before', () => {
    // A column image (W = 1): of the columns only kx = 1 reads the image (kx = 0, 2 read ±2).
    // Rows: y[oy] = w[0,1]·x[oy − 2] + w[1,1]·x[oy] + w[2,1]·x[oy + 2].
    const w = tensor([3, 3, 1, 1], [1000, 1, 1000, 1000, 10, 1000, 1000, 100, 1000]);
    const y = depthwiseConv2d(tensor([1, 5, 1, 1], [1, 2, 3, 4, 5]), w, tensor([1]), 1, 'same', 2);
    expect(y.shape).toEqual([1, 5, 1, 1]);
    expect([...y.data]).toEqual([10 + 300, 20 + 400, 1 + 30 + 500, 2 + 40, 3 + 50]);
    // VALID, stride 2 on 7 × 5 cells holding r + 1 in column 2 and 0 elsewhere: windows at rows
    // 0, 2, 4 and 2, 4, 6, one window of columns 0, 2, 4 (only kx = 1 reads column 2).
    const x = tensor([1, 7, 5, 1], Array.from({ length: 35 }, (_, i) => (i % 5 === 2 ? Math.floor(i / 5) + 1 : 0)));
    const v = depthwiseConv2d(x, w, tensor([1]), 2, 'valid', 2);
    expect(v.shape).toEqual([1, 2, 1, 1]);
    expect([...v.data]).toEqual([1 + 30 + 500, 3 + 50 + 700]);
  });

  it('backward matches central FD on every entry: k 1–5, strides 1–3, dilations 1–3, both paddings, multipliers 1–3, batch 1/3, channels 1–9', () => {
    const rng = mulberry32(151);
    let config = 0;
    for (const k of [1, 2, 3, 4, 5]) for (const s of [1, 2, 3]) for (const d of [1, 2, 3]) for (const padding of paddings) {
      const span = (k - 1) * d + 1;
      const Ci = 1 + ((config * 2) % 9);
      const N = Ci <= 4 && config % 2 ? 3 : 1;
      const M = 1 + (config % 3);
      // Odd sizes; a VALID window wider than that gets an input just large enough.
      const [Hh, Ww] = config % 2 ? [5, 7] : [7, 5];
      const [h, w_] = padding === 'valid' ? [Math.max(Hh, span), Math.max(Ww, span + 1)] : [Hh, Ww];
      config++;
      const label = `x=[${N},${h},${w_},${Ci}] k=${k} s=${s} d=${d} ${padding} M=${M}`;
      const x = randomTensor(rng, [N, h, w_, Ci]);
      const w = randomTensor(rng, [k, k, Ci, M]);
      const b = randomTensor(rng, [Ci * M]);
      const y = depthwiseConv2d(x, w, b, s, padding, d);
      const out = (n: number) => (padding === 'same' ? Math.ceil(n / s) : Math.ceil((n - span + 1) / s));
      expect(y.shape, label).toEqual([N, out(h), out(w_), Ci * M]);
      const g = randomTensor(rng, y.shape);
      const S = () => dot(g.data, depthwiseConv2d(x, w, b, s, padding, d).data);
      const grads = depthwiseConv2dBackward(x, w, s, padding, d, g);
      expect(grads.dx.shape).toEqual(x.shape);
      expect(grads.dw.shape).toEqual(w.shape);
      expect(grads.db.shape).toEqual(b.shape);
      checkFd(label, 'depthwiseConv2d dx', fdError(S, x.data, grads.dx.data, pick(rng, x.data.length, Infinity)));
      checkFd(label, 'depthwiseConv2d dw', fdError(S, w.data, grads.dw.data, pick(rng, w.data.length, Infinity)));
      checkFd(label, 'depthwiseConv2d db', fdError(S, b.data, grads.db.data, pick(rng, b.data.length, Infinity)));
    }
  });
});

// ---------------------------------------------------------------------------------------------
// maxpool
// ---------------------------------------------------------------------------------------------

type Pool = (x: Tensor, size: number, stride: number, padding: Padding) => Tensor;

/** A pool's backward pass against central FD over window sizes 1–5, strides 1–3, both paddings,
 *  odd sizes, batch 1 and 3, channels 1, 3, 5; `also` checks more of each case. */
function poolSweep(seed: number, name: string, pool: Pool, backward: (x: Tensor, size: number, stride: number, padding: Padding, dy: Tensor) => Tensor, also?: (dx: Tensor, g: Tensor) => void): void {
  const rng = mulberry32(seed);
  let config = 0;
  for (const size of [1, 2, 3, 4, 5]) for (const s of [1, 2, 3]) for (const padding of paddings) {
    const [Hh, Ww] = config % 2 === 0 ? [7, 9] : [13, 11];
    const N = [1, 3][Math.floor(config / 2) % 2]!;
    const C = [1, 3, 5][config % 3]!;
    config++;
    const label = `x=[${N},${Hh},${Ww},${C}] size=${size} s=${s} ${padding}`;
    const x = randomTensor(rng, [N, Hh, Ww, C]);
    const y = pool(x, size, s, padding);
    const out = (n: number) => (padding === 'same' ? Math.ceil(n / s) : Math.ceil((n - size + 1) / s));
    expect(y.shape, label).toEqual([N, out(Hh), out(Ww), C]);
    const g = randomTensor(rng, y.shape);
    const dx = backward(x, size, s, padding, g);
    const S = () => dot(g.data, pool(x, size, s, padding).data);
    checkFd(label, `${name} dx`, fdError(S, x.data, dx.data, pick(rng, x.data.length, 300)));
    also?.(dx, g);
  }
}

describe('maxpool', () => {
  it('backward matches central FD (data without ties): sizes 1..5, strides 1..3, both paddings', () => {
    poolSweep(201, 'maxpool', maxpool, maxpoolBackward, (dx, g) => {
      // The gradient is only redistributed: its total is conserved.
      expect(dx.data.reduce((a, v) => a + v, 0)).toBeCloseTo(g.data.reduce((a, v) => a + v, 0), 10);
    });
  });

  it('a window of equal values sends its gradient to its first cell in row-major order', () => {
    const x = tensor([1, 2, 2, 1], [3, 3, 3, 3]);
    expect([...maxpool(x, 2, 2, 'valid').data]).toEqual([3]);
    expect([...maxpoolBackward(x, 2, 2, 'valid', tensor([1, 1, 1, 1], [5])).data]).toEqual([5, 0, 0, 0]);
    // Ties between two non-first cells: [[1, 5], [5, 2]] → the cell (0, 1).
    const x2 = tensor([1, 2, 2, 1], [1, 5, 5, 2]);
    expect([...maxpoolBackward(x2, 2, 2, 'valid', tensor([1, 1, 1, 1], [7])).data]).toEqual([0, 7, 0, 0]);
  });

  it('all-zero input (as after ReLU), overlapping windows: each window picks its own first cell', () => {
    const x = tensor([1, 3, 3, 1]); // zeros
    const dx = maxpoolBackward(x, 2, 1, 'valid', tensor([1, 2, 2, 1], [1, 2, 3, 4]));
    expect([...dx.data]).toEqual([1, 2, 0, 3, 4, 0, 0, 0, 0]);
  });

  it('overlapping windows add up their contributions on a shared maximum, ties included', () => {
    const x = tensor([1, 3, 3, 1], [0, 0, 0, 0, 2, 2, 0, 2, 1]);
    // Windows (size 2, stride 1): every one holds the cell (1, 1) = 2 as its first maximum.
    expect([...maxpool(x, 2, 1, 'valid').data]).toEqual([2, 2, 2, 2]);
    const dx = maxpoolBackward(x, 2, 1, 'valid', tensor([1, 2, 2, 1], [1, 2, 3, 4]));
    expect([...dx.data]).toEqual([0, 0, 0, 0, 10, 0, 0, 0, 0]);
  });

  it('ties under SAME padding with a partial window: the first REAL cell wins', () => {
    // n=3, size 2, stride 2, SAME: out 2, pad 0 before 1 after.
    const x = tensor([1, 3, 3, 1], new Array(9).fill(7));
    const dx = maxpoolBackward(x, 2, 2, 'same', tensor([1, 2, 2, 1], [1, 2, 3, 4]));
    expect([...dx.data]).toEqual([1, 0, 2, 0, 0, 0, 3, 0, 4]);
  });

  it('padded cells never win: an all-negative input under SAME still returns real values', () => {
    const x = tensor([1, 3, 3, 1], [-5, -4, -3, -2, -1, -6, -7, -8, -9]);
    // size 2, stride 2: windows {(0..1)×(0..1)}, {(0..1)×2}, {2×(0..1)}, {(2,2)} (the rest is padding)
    expect([...maxpool(x, 2, 2, 'same').data]).toEqual([-1, -3, -7, -9]);
    expect([...maxpoolBackward(x, 2, 2, 'same', tensor([1, 2, 2, 1], [1, 2, 3, 4])).data]).toEqual([
      0, 0, 2, 0, 1, 0, 3, 0, 4,
    ]);
    // size 3, stride 1: pad 1 before and after; the corner window sees only 4 real cells.
    expect([...maxpool(x, 3, 1, 'same').data]).toEqual([-1, -1, -1, -1, -1, -1, -1, -1, -1]);
    // A single cell under a 3×3 SAME window: pad 1 and 1, the only candidate is the cell itself.
    const one = tensor([1, 1, 1, 1], [-5]);
    expect([...maxpool(one, 3, 1, 'same').data]).toEqual([-5]);
    expect([...maxpoolBackward(one, 3, 1, 'same', tensor([1, 1, 1, 1], [2])).data]).toEqual([2]);
    // Channels are pooled separately.
    const two = tensor([1, 1, 2, 2], [-1, -4, -2, -3]);
    expect([...maxpool(two, 2, 2, 'same').data]).toEqual([-1, -3]);
    expect([...maxpoolBackward(two, 2, 2, 'same', tensor([1, 1, 1, 2], [1, 1])).data]).toEqual([1, 0, 0, 1]);
  });
});

// ---------------------------------------------------------------------------------------------
// relu, flatten, dense, logSoftmax, l2Loss
// ---------------------------------------------------------------------------------------------

describe('relu', () => {
  it('backward matches central FD away from the kink', () => {
    const rng = mulberry32(301);
    const x = randomTensor(rng, [3, 7, 9, 5]);
    for (let i = 0; i < x.data.length; i++) if (Math.abs(x.data[i]!) < 1e-2) x.data[i] = 0.5; // keep away from 0
    const g = randomTensor(rng, x.shape);
    const S = () => dot(g.data, relu(x).data);
    checkFd('[3,7,9,5]', 'relu dx', fdError(S, x.data, reluBackward(x, g).data, pick(rng, x.data.length, Infinity)));
  });

  it("relu(0) = 0 and relu'(0) = 0", () => {
    const x = tensor([5], [-1, 0, 2, -0, 1e-300]);
    expect([...relu(x).data]).toEqual([0, 0, 2, 0, 1e-300]);
    expect([...reluBackward(x, tensor([5], [1, 1, 1, 1, 1])).data]).toEqual([0, 0, 1, 0, 1]);
    expect([...reluBackward(x, tensor([5], [3, 4, 5, 6, 7])).data]).toEqual([0, 0, 5, 0, 7]);
  });
});

describe('flatten', () => {
  it('keeps NHWC order and its backward is the inverse reshape', () => {
    const x = tensor([2, 2, 2, 3], Array.from({ length: 24 }, (_, i) => i));
    const y = flatten(x);
    expect(y.shape).toEqual([2, 12]);
    expect([...y.data]).toEqual([...x.data]);
    const back = flattenBackward(y, x.shape);
    expect(back.shape).toEqual(x.shape);
    expect([...back.data]).toEqual([...x.data]);
  });
});

describe('dense', () => {
  it('hand-computed [in, out] layout', () => {
    const y = dense(tensor([1, 2], [1, 2]), tensor([2, 3], [1, 2, 3, 4, 5, 6]), tensor([3], [0.5, 0.25, 0]));
    expect([...y.data]).toEqual([9.5, 12.25, 15]);
  });

  it('backward matches central FD (every entry), batch 1/3, sizes 7/13, outputs 1/3/5', () => {
    const rng = mulberry32(401);
    for (const N of [1, 3]) {
      for (const I of [7, 13]) {
        for (const O of [1, 3, 5]) {
          const x = randomTensor(rng, [N, I]);
          const w = randomTensor(rng, [I, O]);
          const b = randomTensor(rng, [O]);
          const g = randomTensor(rng, [N, O]);
          const S = () => dot(g.data, dense(x, w, b).data);
          const grads = denseBackward(x, w, g);
          const label = `N=${N} I=${I} O=${O}`;
          const all = (n: number) => pick(rng, n, Infinity);
          checkFd(label, 'dense dx', fdError(S, x.data, grads.dx.data, all(x.data.length)));
          checkFd(label, 'dense dw', fdError(S, w.data, grads.dw.data, all(w.data.length)));
          checkFd(label, 'dense db', fdError(S, b.data, grads.db.data, all(b.data.length)));
        }
      }
    }
  });
});

describe('logSoftmax', () => {
  it('hand-computed values, also with large logits', () => {
    const y = logSoftmax(tensor([1, 2], [0, Math.log(3)]));
    expect(y.data[0]).toBeCloseTo(Math.log(0.25), 14);
    expect(y.data[1]).toBeCloseTo(Math.log(0.75), 14);
    const big = logSoftmax(tensor([2, 2], [1000, 1000, -1000, 0]));
    expect(big.data[0]).toBeCloseTo(-Math.LN2, 14);
    expect(big.data[1]).toBeCloseTo(-Math.LN2, 14);
    expect(big.data[2]).toBe(-1000);
    expect(big.data[3]).toBe(0);
  });

  it('backward matches central FD (every entry) over the last dim', () => {
    const rng = mulberry32(501);
    for (const shape of [[1, 7], [3, 5], [2, 3, 4], [3, 1]]) {
      const z = randomTensor(rng, shape, 3);
      const g = randomTensor(rng, shape);
      const S = () => dot(g.data, logSoftmax(z).data);
      const dz = logSoftmaxBackward(z, g);
      checkFd(`[${shape.join(',')}]`, 'logSoftmax dz', fdError(S, z.data, dz.data, pick(rng, z.data.length, Infinity)));
    }
  });
  it('cross-entropy stays exact when one class holds nearly all the probability', () => {
    // Two classes at margin d: p_other = 1/(1 + e^d), and the cross-entropy toward the confident
    // class has gradient (−p_other, +p_other), far below 1 − p_own's rounding at large d.
    for (const d of [5, 10, 20, 40, 80, 300, 700]) {
      const z = tensor([1, 2], [d / 2 + 3, 3 - d / 2]);
      const pOther = 1 / (1 + Math.exp(d));
      const loss = -logSoftmax(z).data[0]!;
      expect(Math.abs(loss - Math.log1p(Math.exp(-d))) / Math.log1p(Math.exp(-d))).toBeLessThan(1e-14);
      const dz = logSoftmaxBackward(z, tensor([1, 2], [-1, 0]));
      expect(Math.abs(dz.data[0]! + pOther) / pOther, `margin ${d}`).toBeLessThan(1e-14);
      expect(Math.abs(dz.data[1]! - pOther) / pOther, `margin ${d}`).toBeLessThan(1e-14);
    }
    // Several classes, the label on the confident class or on another one: against central FD.
    const rng = mulberry32(502);
    for (const d of [5, 10, 20, 40, 80]) {
      for (const label of [0, 2]) {
        const z = randomTensor(rng, [1, 4], 1);
        z.data[0] += d;
        const y = tensor([1, 4]);
        y.data[label] = 1;
        const minusY = tensor([1, 4], Array.from(y.data, (v) => -v));
        const S = () => -dot(y.data, logSoftmax(z).data);
        checkFd(`margin ${d}, label ${label}`, 'cross-entropy dz', fdError(S, z.data, logSoftmaxBackward(z, minusY).data, [0, 1, 2, 3]));
      }
    }
  });
});

describe('dlr', () => {
  it('hand-computed values: untargeted and targeted, the label on top or not', () => {
    // z = [4, 1, 3, 0]: π = 0, 2, 1, 3.
    const z = tensor([1, 4], [4, 1, 3, 0]);
    expect(dlr(z, [0], null)[0]).toBeCloseTo(-(4 - 3) / (4 - 1), 12);
    expect(dlr(z, [1], null)[0]).toBeCloseTo(-(1 - 4) / (4 - 1), 12);
    expect(dlr(z, [0], [3])[0]).toBeCloseTo(-(4 - 0) / (4 - (1 + 0) / 2), 12);
    expect(dlr(z, [2], [1])[0]).toBeCloseTo(-(3 - 1) / (4 - (1 + 0) / 2), 12);
  });

  it('backward matches central FD (every entry): 3 to 10 classes, untargeted and targeted, label and target anywhere', () => {
    const rng = mulberry32(503);
    for (const C of [3, 4, 5, 10]) {
      for (const targeted of [false, true]) {
        if (targeted && C < 4) continue;
        const rows = 4;
        const z = randomTensor(rng, [rows, C], 3);
        const labels = Array.from({ length: rows }, () => Math.floor(rng() * C));
        // Each label in turn on the row's top class, so both branches of the numerator are seen.
        labels[0] = Array.from(z.data.subarray(0, C)).indexOf(Math.max(...z.data.subarray(0, C)));
        const targets = targeted ? labels.map((y) => (y + 1 + Math.floor(rng() * (C - 1))) % C) : null;
        const g = Array.from({ length: rows }, () => 2 * rng() - 1);
        const S = () => dlr(z, labels, targets).reduce((s, v, r) => s + v * g[r]!, 0);
        const dz = dlrBackward(z, labels, targets, g);
        checkFd(`${C} classes`, targeted ? 'targeted dlr dz' : 'dlr dz', fdError(S, z.data, dz.data, pick(rng, z.data.length, Infinity)));
      }
    }
  });
});

describe('l2Loss', () => {
  it('is Σ v²/2 and its backward matches central FD', () => {
    expect(l2Loss(tensor([3], [1, -2, 3]))).toBe(7);
    const rng = mulberry32(601);
    const v = randomTensor(rng, [3, 13, 11, 1]);
    const S = () => l2Loss(v);
    checkFd('[3,13,11,1]', 'l2Loss dv', fdError(S, v.data, l2LossBackward(v).data, pick(rng, v.data.length, Infinity)));
  });
});

// ---------------------------------------------------------------------------------------------
// Layers of larger networks: activations, average and global pooling, concat, pad, affine, add
// ---------------------------------------------------------------------------------------------

describe('activations', () => {
  const kinds: [ActivationKind, number][] = [
    ['relu', 0], ['relu6', 0], ['leaky_relu', 0.3], ['leaky_relu', -0.2], ['elu', 1], ['elu', 0.7], ['sigmoid', 0], ['tanh', 0],
  ];
  it('backward matches central FD on every entry, away from the kinks (0 and 6)', () => {
    const rng = mulberry32(611);
    for (const [kind, alpha] of kinds) {
      const x = randomTensor(rng, [3, 5, 7, 2], 9);
      for (let i = 0; i < x.data.length; i++) if (Math.abs(x.data[i]!) < 1e-2 || Math.abs(x.data[i]! - 6) < 1e-2) x.data[i] = 0.5;
      const g = randomTensor(rng, x.shape);
      const S = () => dot(g.data, activation(x, kind, alpha).data);
      const label = `${kind} alpha ${alpha}`;
      checkFd(label, `${kind} dx`, fdError(S, x.data, activationBackward(x, kind, alpha, g).data, pick(rng, x.data.length, Infinity)));
    }
  });

  it('hand-computed values and the derivatives at the kinks, as TensorFlow', () => {
    const x = tensor([7], [-2, 0, 0.5, 6, 7, -1e4, 1e4]);
    const ones = tensor([7], [1, 1, 1, 1, 1, 1, 1]);
    const values = (kind: ActivationKind, alpha = 0) => [...activation(x, kind, alpha).data];
    const slopes = (kind: ActivationKind, alpha = 0) => [...activationBackward(x, kind, alpha, ones).data];
    expect(values('relu6')).toEqual([0, 0, 0.5, 6, 6, 0, 6]);
    expect(slopes('relu6')).toEqual([0, 0, 1, 0, 0, 0, 0]);
    expect(slopes('relu')).toEqual([0, 0, 1, 1, 1, 0, 1]);
    expect(values('leaky_relu', 0.3)).toEqual([-0.6, 0, 0.5, 6, 7, -3000, 1e4]);
    expect(slopes('leaky_relu', 0.3)).toEqual([0.3, 0.3, 1, 1, 1, 0.3, 1]);
    expect(values('elu', 2)[0]).toBeCloseTo(2 * (Math.exp(-2) - 1), 15);
    expect(values('elu', 2)[5]).toBe(-2);
    expect(slopes('elu', 2)[1]).toBe(2); // alpha·e⁰ at 0
    // The sigmoid neither overflows nor loses its tails.
    const s = values('sigmoid');
    expect(s[5]).toBe(0);
    expect(s[6]).toBe(1);
    expect(s[0]).toBeCloseTo(1 / (1 + Math.exp(2)), 15);
    expect(activation(tensor([1], [-700]), 'sigmoid').data[0]! / Math.exp(-700)).toBeCloseTo(1, 12);
    expect(values('tanh')[0]).toBe(Math.tanh(-2));
  });
});

describe('avgpool', () => {
  it('backward matches central FD: sizes 1..5, strides 1..3, both paddings', () => {
    poolSweep(621, 'avgpool', avgpool, avgpoolBackward);
  });

  it('SAME windows average only their real cells', () => {
    // n = 3, size 2, stride 2, SAME: pad 0 before, 1 after; windows of 4, 2, 2 and 1 real cells.
    const x = tensor([1, 3, 3, 1], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect([...avgpool(x, 2, 2, 'same').data]).toEqual([3, 4.5, 7.5, 9]);
    const dx = avgpoolBackward(x, 2, 2, 'same', tensor([1, 2, 2, 1], [1, 2, 3, 4]));
    expect([...dx.data]).toEqual([0.25, 0.25, 1, 0.25, 0.25, 1, 1.5, 1.5, 4]);
    // size 3, stride 1, SAME: the corner window holds 4 real cells, the centre 9.
    const y = avgpool(x, 3, 1, 'same');
    expect(y.data[0]).toBe((1 + 2 + 4 + 5) / 4);
    expect(y.data[4]).toBe(5);
  });
});

describe('global pooling', () => {
  it('backward matches central FD on every entry (max: data without ties)', () => {
    const rng = mulberry32(631);
    for (const shape of [[1, 1, 1, 3], [3, 5, 7, 2], [2, 4, 3, 9]]) {
      const x = randomTensor(rng, shape);
      const g = randomTensor(rng, [shape[0]!, shape[3]!]);
      const label = `[${shape.join(',')}]`;
      const all = pick(rng, x.data.length, Infinity);
      checkFd(label, 'globalAvgPool dx', fdError(() => dot(g.data, globalAvgPool(x).data), x.data, globalAvgPoolBackward(x, g).data, all));
      checkFd(label, 'globalMaxPool dx', fdError(() => dot(g.data, globalMaxPool(x).data), x.data, globalMaxPoolBackward(x, g).data, all));
    }
  });

  it('hand-computed means and maxima; ties send the gradient to the first maximum', () => {
    const x = tensor([1, 2, 2, 2], [1, -1, 3, -2, 3, -3, 0, -1]); // channel 0: 1 3 3 0; channel 1: −1 −2 −3 −1
    expect([...globalAvgPool(x).data]).toEqual([7 / 4, -7 / 4]);
    expect([...globalMaxPool(x).data]).toEqual([3, -1]);
    expect([...globalMaxPoolBackward(x, tensor([1, 2], [5, 6])).data]).toEqual([0, 6, 5, 0, 0, 0, 0, 0]);
    expect([...globalAvgPoolBackward(x, tensor([1, 2], [4, 8])).data]).toEqual([1, 2, 1, 2, 1, 2, 1, 2]);
  });
});

describe('concat, pad, affine and add', () => {
  it('concat puts the inputs side by side along the last dim; its backward splits dy', () => {
    const a = tensor([2, 1], [1, 2]), b = tensor([2, 3], [3, 4, 5, 6, 7, 8]);
    const y = concat([a, b]);
    expect(y.shape).toEqual([2, 4]);
    expect([...y.data]).toEqual([1, 3, 4, 5, 2, 6, 7, 8]);
    const rng = mulberry32(641);
    const xs = [randomTensor(rng, [2, 3, 5, 1]), randomTensor(rng, [2, 3, 5, 3]), randomTensor(rng, [2, 3, 5, 2])];
    const g = randomTensor(rng, [2, 3, 5, 6]);
    const grads = concatBackward(xs, g);
    xs.forEach((x, i) => {
      const S = () => dot(g.data, concat(xs).data);
      checkFd(`input ${i}`, 'concat dx', fdError(S, x.data, grads[i]!.data, pick(rng, x.data.length, Infinity)));
    });
  });

  it('pad surrounds each image with zeros; its backward crops dy', () => {
    const y = pad(tensor([1, 1, 2, 1], [1, 2]), 1, 0, 0, 2);
    expect(y.shape).toEqual([1, 2, 4, 1]);
    expect([...y.data]).toEqual([0, 0, 0, 0, 1, 2, 0, 0]);
    const rng = mulberry32(642);
    const x = randomTensor(rng, [3, 4, 5, 2]);
    const g = randomTensor(rng, [3, 4 + 2 + 3, 5 + 1 + 0, 2]);
    const S = () => dot(g.data, pad(x, 2, 3, 1, 0).data);
    checkFd('[3,4,5,2] pad 2 3 1 0', 'pad dx', fdError(S, x.data, padBackward(x, 2, 1, g).data, pick(rng, x.data.length, Infinity)));
  });

  it('affine scales and shifts each channel; backward matches central FD for x, scale and shift', () => {
    expect([...affine(tensor([2, 2], [1, 2, 3, 4]), tensor([2], [10, -1]), tensor([2], [0.5, 1])).data]).toEqual([10.5, -1, 30.5, -3]);
    const rng = mulberry32(643);
    for (const shape of [[3, 5, 7, 4], [2, 9], [1, 1, 1, 1]]) {
      const C = shape[shape.length - 1]!;
      const x = randomTensor(rng, shape), scale = randomTensor(rng, [C]), shift = randomTensor(rng, [C]);
      const g = randomTensor(rng, shape);
      const S = () => dot(g.data, affine(x, scale, shift).data);
      const grads = affineBackward(x, scale, g);
      const label = `[${shape.join(',')}]`;
      const all = (n: number) => pick(rng, n, Infinity);
      checkFd(label, 'affine dx', fdError(S, x.data, grads.dx.data, all(x.data.length)));
      checkFd(label, 'affine dscale', fdError(S, scale.data, grads.dscale.data, all(C)));
      checkFd(label, 'affine dshift', fdError(S, shift.data, grads.dshift.data, all(C)));
    }
  });

  it('add is elementwise', () => {
    expect([...add(tensor([3], [1, 2, 3]), tensor([3], [0.5, -2, 4])).data]).toEqual([1.5, 0, 7]);
  });
});

// ---------------------------------------------------------------------------------------------
// Network
// ---------------------------------------------------------------------------------------------

/** Random weights for `arch`, uniform in ±sqrt(6 / fan-in) (keeps activations of order 1). */
function randomWeights(rng: Rng, arch: Architecture): Map<string, Float64Array> {
  const weights = new Map<string, Float64Array>();
  for (const [key, shape] of weightShapes(arch)) {
    const fanIn = shape.length === 1 ? 1 : sizeOf(shape) / shape[shape.length - 1]!;
    const scale = key.endsWith('.b') ? 0.1 : Math.sqrt(6 / fanIn);
    weights.set(key, randomTensor(rng, shape, scale).data);
  }
  return weights;
}

/** The documented loss −Σ y·logSoftmax(logits(x + dx)) + β·l2Loss(dx), composed from forward ops only. */
function forwardLoss(
  arch: Architecture,
  weights: Map<string, Float64Array>,
  x: Tensor,
  dx: Tensor,
  y: Tensor,
  beta: number,
): number {
  const input = tensor(x.shape);
  for (let i = 0; i < input.data.length; i++) input.data[i] = x.data[i]! + dx.data[i]!;
  const logProbs = logSoftmax(networkLogits(arch, weights, input));
  return -dot(y.data, logProbs.data) + beta * l2Loss(dx);
}

/**
 * Checks loss, dDx and every weight gradient of networkLossAndGradients against central FD on
 * `samples` entries of each tensor (Infinity = every entry).
 */
function checkNetwork(
  name: string,
  rng: Rng,
  arch: Architecture,
  N: number,
  y: Tensor,
  beta: number,
  dxSamples: number,
  weightSamples: number,
  weights = randomWeights(rng, arch),
): void {
  const x = randomTensor(rng, [N, ...arch.input], 0.5);
  const dx = randomTensor(rng, x.shape, 0.1);
  const result = networkLossAndGradients(arch, weights, x, dx, y, beta);

  expect(result.loss).toBeCloseTo(forwardLoss(arch, weights, x, dx, y, beta), 12);

  expect([...result.dWeights.keys()].sort()).toEqual([...weights.keys()].sort());
  const L = () => forwardLoss(arch, weights, x, dx, y, beta);
  checkFd(name, 'network dL/d(dx)', fdError(L, dx.data, result.dDx.data, pick(rng, dx.data.length, dxSamples)));
  for (const [key, w] of weights) {
    const analytic = result.dWeights.get(key)!;
    checkFd(`${name} ${key}`, 'network dL/d(weights)', fdError(L, w, analytic, pick(rng, w.length, weightSamples)));
  }
}

describe('network', () => {
  const small: Architecture = {
    input: [7, 9, 3],
    layers: [
      { type: 'conv2d', name: 'c1', filters: 4, kernel: 3, stride: 1, padding: 'same', activation: 'relu' },
      { type: 'maxpool', size: 2, stride: 2, padding: 'same' }, // → [4, 5, 4]
      { type: 'conv2d', name: 'c2', filters: 5, kernel: 2, stride: 2, padding: 'valid', activation: 'relu' }, // → [2, 2, 5]
      { type: 'flatten' }, // → 20
      { type: 'dense', name: 'd1', units: 6, activation: 'relu' },
      { type: 'dense', name: 'out', units: 3 }, // activation omitted = 'none'
    ],
  };

  /** The tutorial's network (shared/SPEC.md, shared/tutorial/README.md). */
  const tutorial: Architecture = TUTORIAL_ARCHITECTURE;

  it('weightShapes gives HWIO conv and [in, out] dense shapes', () => {
    expect(Object.fromEntries(weightShapes(small))).toEqual({
      'c1.w': [3, 3, 3, 4], 'c1.b': [4], 'c2.w': [2, 2, 4, 5], 'c2.b': [5],
      'd1.w': [20, 6], 'd1.b': [6], 'out.w': [6, 3], 'out.b': [3],
    });
    expect(Object.fromEntries(weightShapes(tutorial))).toEqual({
      'cv1.w': [5, 5, 1, 3], 'cv1.b': [3], 'cv2.w': [5, 5, 3, 6], 'cv2.b': [6],
      'cv3.w': [5, 5, 6, 12], 'cv3.b': [12], 'fc.w': [432, 2], 'fc.b': [2],
    });
  });

  it('networkLogits is the composition of the ops', () => {
    const rng = mulberry32(701);
    const w = randomWeights(rng, small);
    const x = randomTensor(rng, [2, 7, 9, 3]);
    const t = (key: string) => tensor(weightShapes(small).get(key)!, w.get(key)!);
    let a = relu(conv2d(x, t('c1.w'), t('c1.b'), 1, 'same'));
    a = maxpool(a, 2, 2, 'same');
    a = flatten(relu(conv2d(a, t('c2.w'), t('c2.b'), 2, 'valid')));
    a = dense(relu(dense(a, t('d1.w'), t('d1.b'))), t('out.w'), t('out.b'));
    const logits = networkLogits(small, w, x);
    expect(logits.shape).toEqual([2, 3]);
    expect([...logits.data]).toEqual([...a.data]);
  });

  it('small conv → maxpool → conv → flatten → dense → dense: loss gradients match central FD on every entry', () => {
    const rng = mulberry32(702);
    const y1 = tensor([1, 3], [0, 1, 0]);
    checkNetwork('small N=1 one-hot', rng, small, 1, y1, 0, Infinity, Infinity);
    const y3 = tensor([3, 3], [0, 1, 0, 1, 0, 0, 0.2, 0.5, 0.3]); // one-hot rows and a soft row
    checkNetwork('small N=3 mixed labels β=0.7', rng, small, 3, y3, 0.7, Infinity, Infinity);
  });

  it("the tutorial's layer list on 48×48×1 with random weights: sampled gradients match central FD", () => {
    const rng = mulberry32(703);
    checkNetwork('tutorial N=1 β=0', rng, tutorial, 1, tensor([1, 2], [1, 0]), 0, 30, 6);
    checkNetwork('tutorial N=3 β=0.5', rng, tutorial, 3, tensor([3, 2], [1, 0, 0, 1, 0.3, 0.7]), 0.5, 20, 4);
  }, 30_000);
});

// ---------------------------------------------------------------------------------------------
// The tutorial's trained model (only when ../shared/tutorial is present)
// ---------------------------------------------------------------------------------------------

const shared = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../shared/tutorial');
const haveTutorial = fs.existsSync(path.join(shared, 'saved_model-1.index')) && fs.existsSync(path.join(shared, 'input.png'));
if (!haveTutorial) console.log(`reference.test: ${shared} is absent, skipping the check against the tutorial's logits`);

describe.skipIf(!haveTutorial)("the tutorial's trained model", () => {
  it("reproduces the published logits of input.png and the first loss of the attack, and its gradient matches FD", async () => {
    // The checkpoint reader is project code; it only supplies the weights here (the reference stays independent).
    const { loadTfCheckpoint } = await import('../src/formats/tfcheckpoint.js');
    const checkpoint = loadTfCheckpoint(path.join(shared, 'saved_model-1'));
    const weights = new Map<string, Float64Array>();
    for (const layer of ['cv1', 'cv2', 'cv3', 'fc']) {
      for (const part of ['w', 'b']) {
        weights.set(`${layer}.${part}`, Float64Array.from(checkpoint.readFloat32(`net/${layer}/${part}/.ATTRIBUTES/VARIABLE_VALUE`)));
      }
    }
    const png = PNG.sync.read(fs.readFileSync(path.join(shared, 'input.png')));
    expect([png.width, png.height]).toEqual([48, 48]);
    const x = tensor([1, 48, 48, 1]);
    for (let i = 0; i < 48 * 48; i++) {
      const [r, g, b] = [png.data[4 * i]!, png.data[4 * i + 1]!, png.data[4 * i + 2]!];
      expect(r === g && g === b).toBe(true); // grayscale image
      x.data[i] = (r - 128) / 256;
    }
    const arch: Architecture = TUTORIAL_ARCHITECTURE;
    const logits = networkLogits(arch, weights, x);
    // TensorFlow (float32) gave −0.786289, 1.691635.
    expect(Math.abs(logits.data[0]! - -0.786289)).toBeLessThan(3e-6);
    expect(Math.abs(logits.data[1]! - 1.691635)).toBeLessThan(3e-6);

    const y = tensor([1, 2], [1, 0]);
    const dx = tensor(x.shape);
    const result = networkLossAndGradients(arch, weights, x, dx, y, 0);
    expect(Math.abs(result.loss - 2.558506)).toBeLessThan(3e-6); // the attack's first loss
    // Gradient check at a small random DX (which also breaks the exact ties that flat image regions create).
    const rng = mulberry32(801);
    const dx2 = randomTensor(rng, x.shape, 0.01);
    const grads = networkLossAndGradients(arch, weights, x, dx2, y, 0.5);
    const L = () => forwardLoss(arch, weights, x, dx2, y, 0.5);
    checkFd('trained, input.png', 'trained model dL/d(dx)', fdError(L, dx2.data, grads.dDx.data, pick(rng, dx2.data.length, 40)));
    for (const [key, w] of weights) {
      const analytic = grads.dWeights.get(key)!;
      checkFd(`trained ${key}`, 'trained model dL/d(weights)', fdError(L, w, analytic, pick(rng, w.length, 4)));
    }
  }, 30_000);
});
