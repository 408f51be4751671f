// Depthwise 2-D convolution, NHWC activations with c channels, filters [k, k, c] (TensorFlow's
// [k, k, cin, multiplier] with multiplier 1: a multiplier m runs on the input with each channel
// repeated m times, see `expand_channels`), square kernel, equal strides and dilations.
// Padding is given as the number of cells before the input (top, left); cells outside the input
// contribute 0. The SIMD lanes run over channels, which are contiguous in NHWC and in the
// filter alike: a tap is one vector load of the input and one of the filter, nothing to shuffle.
// The geometry arguments come last in every kernel, in the same order.
//
// Each output cell of a depthwise convolution is a sum over its taps, and so is each cell of its
// input gradient (the taps of input cell i being the output cells whose windows hold it). Both
// run through one gather loop: tiles of 1 or 2 cells × 16 channels (4 or 8 accumulators), an
// inner loop over the cell's taps, one weight vector loaded per tap for both cells.
import { storeLanes, addLanes, madd, f, imin, imax } from './common';

/** y = depthwise(x, w) + b, then max(y, 0) when `relu` is set. */
export function depthwise_forward(
  x: usize, w: usize, b: usize, y: usize, relu: bool,
  n: i32, h: i32, wd: i32, c: i32,
  k: i32, stride: i32, dilation: i32, padTop: i32, padLeft: i32,
  oh: i32, ow: i32,
): void {
  gather(false, x, w, b, y, relu, n, h, wd, c, k, stride, dilation, padTop, padLeft, oh, ow);
}

/** dx += the gradient of the input, gathered per input cell from the output cells it reaches. */
export function depthwise_backward_input(
  dy: usize, w: usize, dx: usize,
  n: i32, h: i32, wd: i32, c: i32,
  k: i32, stride: i32, dilation: i32, padTop: i32, padLeft: i32,
  oh: i32, ow: i32,
): void {
  gather(true, dy, w, 0, dx, false, n, oh, ow, c, k, stride, dilation, padTop, padLeft, h, wd);
}

// The taps along one axis (rows or columns) of one cell, set by `axisTaps` and read right after.
let tapFirst: i32 = 0, tapCount: i32 = 0, tapInput: i32 = 0;

/** The taps t of cell o along one axis that fall inside the `n` cells read there: every `step`-th
 *  from tapFirst, tapCount of them, the first reading cell tapInput.
 *  Forward (`backward` false): output cell o reads input cell o·s − pad + t·d.
 *  Input gradient: input cell o is read by output cell (o + pad − t·d)/s when that is whole. */
@inline function axisTaps(backward: bool, o: i32, pad: i32, n: i32, k: i32, s: i32, d: i32, step: i32): void {
  if (!backward) {
    const base = o * s - pad;
    const first = base >= 0 ? 0 : ceilDiv(-base, d);
    const end = imin(k, floorDiv(n - 1 - base, d) + 1);
    tapFirst = first;
    tapCount = imax(0, end - first);
    tapInput = base + first * d;
  } else {
    const t = o + pad;
    const last = t < 0 ? -1 : imin(k - 1, t / d);
    let first = imax(0, ceilDiv(t - (n - 1) * s, d));
    while (first <= last && (t - first * d) % s != 0) first++;
    tapFirst = first;
    tapCount = first <= last ? (last - first) / step + 1 : 0;
    tapInput = first <= last ? (t - first * d) / s : 0;
  }
}

/** Whether every tap of cell o along one axis (all k of them, or of its phase) is inside. */
@inline function inside(backward: bool, o: i32, pad: i32, n: i32, k: i32, s: i32, d: i32): bool {
  if (!backward) return o * s - pad >= 0 && o * s - pad + (k - 1) * d < n;
  return o + pad - (k - 1) * d >= 0 && o + pad <= (n - 1) * s;
}

@inline function ceilDiv(a: i32, b: i32): i32 {
  return a > 0 ? (a + b - 1) / b : -(-a / b);
}

@inline function floorDiv(a: i32, b: i32): i32 {
  return a >= 0 ? a / b : -((b - 1 - a) / b);
}

function gcd(a: i32, b: i32): i32 {
  while (b != 0) {
    const r = a % b;
    a = b;
    b = r;
  }
  return a;
}

/** out (outH × outW cells) = or += the sum over each cell's taps of input × weight. Forward:
 *  the input is x, bias and ReLU apply. Input gradient (`backward`): the input is dy, and the
 *  cells of one tap pattern (phase) are s columns apart, their inputs 1 apart. */
@inline function gather(
  backward: bool, x: usize, w: usize, b: usize, y: usize, relu: bool,
  n: i32, inH: i32, inW: i32, c: i32,
  k: i32, s: i32, d: i32, top: i32, left: i32,
  outH: i32, outW: i32,
): void {
  const g = gcd(s, d);
  const step = backward ? s / g : 1; // taps from one used tap to the next
  const move = backward ? -(d / g) : d; // input cells from one used tap to the next
  const phases = backward ? s : 1; // output columns between cells of the same tap pattern
  const xCol = f(move * c), wCol = f(step * c);
  const pixel = f((backward ? 1 : s) * c), outPixel = f(phases * c);
  for (let img = 0; img < n; img++) {
    for (let oy = 0; oy < outH; oy++) {
      axisTaps(backward, oy, top, inH, k, s, d, step);
      const rows = tapCount;
      const xRows = x + f((img * inH + tapInput) * inW * c), wRows = w + f(tapFirst * k * c);
      const out = y + f((img * outH + oy) * outW * c);
      for (let phase = 0; phase < phases; phase++) {
        for (let ox = phase; ox < outW; ) {
          axisTaps(backward, ox, left, inW, k, s, d, step);
          const cols = tapCount;
          const xp = xRows + f(tapInput * c), wp = wRows + f(tapFirst * c);
          const xRow = f((inW - cols) * move * c), wRow = f((k - cols) * step * c);
          const op = out + f(ox * c);
          if (ox + phases < outW && inside(backward, ox, left, inW, k, s, d) && inside(backward, ox + phases, left, inW, k, s, d)) {
            channelBlocks(2, xp, pixel, wp, rows, cols, xCol, xRow, wCol, wRow, op, outPixel, b, backward, relu, c);
            ox += 2 * phases;
          } else {
            channelBlocks(1, xp, pixel, wp, rows, cols, xCol, xRow, wCol, wRow, op, outPixel, b, backward, relu, c);
            ox += phases;
          }
        }
      }
    }
  }
}

/** Every channel of P (1 or 2, a constant once inlined) cells: 16 channels at a time, then 4. */
@inline function channelBlocks(
  P: i32, x: usize, pixel: usize, w: usize, rows: i32, cols: i32, xCol: usize, xRow: usize, wCol: usize, wRow: usize,
  out: usize, outPixel: usize, b: usize, accumulate: bool, relu: bool, c: i32,
): void {
  let cb = 0;
  for (; cb + 16 <= c; cb += 16) {
    tile(P, 4, 4, x + f(cb), pixel, w + f(cb), rows, cols, xCol, xRow, wCol, wRow, out + f(cb), outPixel, b != 0 ? b + f(cb) : 0, accumulate, relu);
  }
  for (; cb < c; cb += 4) {
    tile(P, 1, c - cb, x + f(cb), pixel, w + f(cb), rows, cols, xCol, xRow, wCol, wRow, out + f(cb), outPixel, b != 0 ? b + f(cb) : 0, accumulate, relu);
  }
}

/** P cells × B vectors of channels (`lanes` of the last are stored): the sum over the taps,
 *  rows × cols of them, walked by pointer steps (xCol, wCol along a row, xRow, wRow from the
 *  end of one row to the start of the next). The second cell's input is `pixel` bytes after
 *  the first's and its output `outPixel` bytes after. */
@inline function tile(
  P: i32, B: i32, lanes: i32, x: usize, pixel: usize, w: usize,
  rows: i32, cols: i32, xCol: usize, xRow: usize, wCol: usize, wRow: usize,
  out: usize, outPixel: usize, b: usize, accumulate: bool, relu: bool,
): void {
  const zero = f32x4.splat(0);
  let a0 = b != 0 ? v128.load(b) : zero, a1 = B == 4 && b != 0 ? v128.load(b, 16) : zero;
  let a2 = B == 4 && b != 0 ? v128.load(b, 32) : zero, a3 = B == 4 && b != 0 ? v128.load(b, 48) : zero;
  let c0 = a0, c1 = a1, c2 = a2, c3 = a3;
  let x2 = x + pixel;
  for (let r = 0; r < rows; r++, x += xRow, x2 += xRow, w += wRow) {
    for (let q = 0; q < cols; q++, x += xCol, x2 += xCol, w += wCol) {
      let v = v128.load(w);
      a0 = madd(a0, v128.load(x), v);
      if (P == 2) c0 = madd(c0, v128.load(x2), v);
      if (B == 4) {
        v = v128.load(w, 16);
        a1 = madd(a1, v128.load(x, 16), v);
        if (P == 2) c1 = madd(c1, v128.load(x2, 16), v);
        v = v128.load(w, 32);
        a2 = madd(a2, v128.load(x, 32), v);
        if (P == 2) c2 = madd(c2, v128.load(x2, 32), v);
        v = v128.load(w, 48);
        a3 = madd(a3, v128.load(x, 48), v);
        if (P == 2) c3 = madd(c3, v128.load(x2, 48), v);
      }
    }
  }
  finish(out, a0, lanes, accumulate, relu);
  if (B == 4) {
    finish(out + 16, a1, 4, accumulate, relu);
    finish(out + 32, a2, 4, accumulate, relu);
    finish(out + 48, a3, 4, accumulate, relu);
  }
  if (P == 2) {
    const o2 = out + outPixel;
    finish(o2, c0, lanes, accumulate, relu);
    if (B == 4) {
      finish(o2 + 16, c1, 4, accumulate, relu);
      finish(o2 + 32, c2, 4, accumulate, relu);
      finish(o2 + 48, c3, 4, accumulate, relu);
    }
  }
}

@inline function finish(out: usize, v: v128, lanes: i32, accumulate: bool, relu: bool): void {
  if (accumulate) addLanes(out, v, imin(lanes, 4));
  else storeLanes(out, relu ? f32x4.pmax(v, f32x4.splat(0)) : v, imin(lanes, 4));
}

/** dw += Σ over batch and output cells of x(the tap's input cell) · dy(output cell), per tap and
 *  channel. Images go through in bands of output rows whose input, for 16 channels, stays in
 *  the core's first-level cache while every tap sweeps it. */
export function depthwise_backward_filter(
  x: usize, dy: usize, dw: usize,
  n: i32, h: i32, wd: i32, c: i32,
  k: i32, stride: i32, dilation: i32, padTop: i32, padLeft: i32,
  oh: i32, ow: i32,
): void {
  const band = imax(1, BAND_BYTES / (64 * (stride * wd + ow)));
  for (let img = 0; img < n; img++) {
    for (let first = 0; first < oh; first += band) {
      const end = imin(oh, first + band);
      let cb = 0;
      for (; cb + 16 <= c; cb += 16) filterBlocks(4, 4, x, dy, dw, img, first, end, cb, h, wd, c, k, stride, dilation, padTop, padLeft, oh, ow);
      for (; cb < c; cb += 4) filterBlocks(1, c - cb, x, dy, dw, img, first, end, cb, h, wd, c, k, stride, dilation, padTop, padLeft, oh, ow);
    }
  }
}

const BAND_BYTES: i32 = 16 * 1024;

/** The gradients of B vectors of channels from cb on, every tap, over output rows first … end−1. */
@inline function filterBlocks(
  B: i32, lanes: i32, x: usize, dy: usize, dw: usize, img: i32, first: i32, end: i32, cb: i32,
  h: i32, wd: i32, c: i32, k: i32, s: i32, d: i32, top: i32, left: i32, oh: i32, ow: i32,
): void {
  const zero = f32x4.splat(0);
  const xStep = f(s * c), gStep = f(c);
  for (let ky = 0; ky < k; ky++) {
    // Output rows and columns whose tap (ky, kx) falls inside the input.
    const oyLo = imax(first, ceilDiv(top - ky * d, s)), oyHi = imin(end, floorDiv(h - 1 + top - ky * d, s) + 1);
    for (let kx = 0; kx < k; kx++) {
      const oxLo = imax(0, ceilDiv(left - kx * d, s)), oxHi = imin(ow, floorDiv(wd - 1 + left - kx * d, s) + 1);
      let a0 = zero, a1 = zero, a2 = zero, a3 = zero;
      for (let oy = oyLo; oy < oyHi; oy++) {
        let xp = x + f(((img * h + oy * s - top + ky * d) * wd + oxLo * s - left + kx * d) * c + cb);
        let gp = dy + f(((img * oh + oy) * ow + oxLo) * c + cb);
        for (let ox = oxLo; ox < oxHi; ox++, xp += xStep, gp += gStep) {
          a0 = madd(a0, v128.load(xp), v128.load(gp));
          if (B == 4) {
            a1 = madd(a1, v128.load(xp, 16), v128.load(gp, 16));
            a2 = madd(a2, v128.load(xp, 32), v128.load(gp, 32));
            a3 = madd(a3, v128.load(xp, 48), v128.load(gp, 48));
          }
        }
      }
      const target = dw + f((ky * k + kx) * c + cb);
      addLanes(target, a0, imin(lanes, 4));
      if (B == 4) {
        addLanes(target + 16, a1, 4);
        addLanes(target + 32, a2, 4);
        addLanes(target + 48, a3, 4);
      }
    }
  }
}

/** xe[p, ch·m + j] = x[p, ch] for every pixel p and j < m: the input of a depthwise convolution
 *  with channel multiplier m, laid out so that it runs as one with multiplier 1. */
export function expand_channels(x: usize, xe: usize, pixels: i32, c: i32, m: i32): void {
  for (let i = 0; i < pixels * c; i++) {
    const v = load<f32>(x + f(i));
    for (let j = 0; j < m; j++) store<f32>(xe + f(i * m + j), v);
  }
}

/** dx[p, ch] += Σ_j dxe[p, ch·m + j]: the gradient of `expand_channels`. */
export function sum_channel_groups(dxe: usize, dx: usize, pixels: i32, c: i32, m: i32): void {
  for (let i = 0; i < pixels * c; i++) {
    let s: f32 = 0;
    for (let j = 0; j < m; j++) s += load<f32>(dxe + f(i * m + j));
    store<f32>(dx + f(i), load<f32>(dx + f(i)) + s);
  }
}
