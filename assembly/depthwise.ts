// Depthwise 2-D convolution, NHWC activations with c channels, filters [k, k, c] (TensorFlow's
// [k, k, cin, multiplier] with multiplier 1: a multiplier m runs on the input with each channel
// repeated m times, see `expand_channels`), square kernel, equal strides and dilations.
// Padding is given as the number of cells before the input (top, left); cells outside the input
// contribute 0. The SIMD lanes run over channels, which are contiguous in NHWC (and in the
// packed filter): a tap is one vector load of the input and one of the filter, nothing to shuffle.
// The geometry arguments come last in every kernel, in the same order.
//
// Each output cell of a depthwise convolution is a sum over its taps, and so is each cell of its
// input gradient (the taps of input cell i being the output cells whose windows hold it). Both
// run through one gather loop (`gather`). With little reuse (a weight serves one channel, an
// input vector at most k² cells), what bounds the speed is the loads per mul-add and how V8
// compiles a loop: it loads every vector of an iteration before its arithmetic, so a register
// tile is as large as its sums plus one iteration's loads fit in 16 registers. Hence tiles walk
// whole rows of the window (`rowTile`), each input vector of a row loaded once for every cell
// that reads it, and the 3 × 3 stride-2 input gradient has a tile of its own (`stride2Row`).
// A tile's shape (P, Q, A, lanes) becomes constant only when Binaryen folds it into the inlined
// code, which it does in the kernels as they stand; a few more lines in an exported kernel that
// inlines `gather` (a pass that reads rows ahead) left branches in the tile loops, 3–4× slower at
// batch 1. After such a change, look for `(if (result v128)` in the tile loops of
// build/mislead.wat.
import { storeLanes, addLanes, madd, fusedRelu, f, imin, imax } from './common';
import { fill } from './elementwise';

/** wb[g, ky, kx, lane] = w[ky, kx, 4·g + lane] (0 past the last channel): each group of 4
 *  channels' taps together, 16 bytes apart, rather than c·4 bytes apart (with c a power of two,
 *  taps that far apart fall into the same few sets of the first-level cache). */
export function depthwise_pack_filter(w: usize, wb: usize, k: i32, c: i32): void {
  const taps = k * k;
  for (let t = 0; t < taps; t++) {
    for (let ch = 0; ch < ((c + 3) & ~3); ch++) {
      store<f32>(wb + f(((ch >> 2) * taps + t) * 4 + (ch & 3)), ch < c ? load<f32>(w + f(t * c + ch)) : 0);
    }
  }
}

/** y = depthwise(x, w) + b, then the fused ReLU `relu` (its ceiling, 0: none; see fusedRelu); `wb` is the packed filter. */
export function depthwise_forward(
  x: usize, wb: usize, b: usize, y: usize, relu: f32,
  n: i32, h: i32, wd: i32, c: i32,
  k: i32, stride: i32, dilation: i32, padTop: i32, padLeft: i32,
  oh: i32, ow: i32,
): void {
  gather(false, false, x, wb, b, y, relu, n, h, wd, c, k, stride, dilation, padTop, padLeft, oh, ow);
}

/** dx += the gradient of the input, gathered per input cell from the output cells it reaches;
 *  dx = … when not `accumulate`. */
export function depthwise_backward_input(
  dy: usize, wb: usize, dx: usize, accumulate: bool,
  n: i32, h: i32, wd: i32, c: i32,
  k: i32, stride: i32, dilation: i32, padTop: i32, padLeft: i32,
  oh: i32, ow: i32,
): void {
  gather(true, accumulate, dy, wb, 0, dx, false, n, oh, ow, c, k, stride, dilation, padTop, padLeft, h, wd);
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

/** out (outH × outW cells) = (or += when `accumulate`) the sum over each cell's taps of input ×
 *  weight. Forward: the input is x, bias and ReLU apply. Input gradient (`backward`): the input is dy, the taps
 *  of a cell are every (s/g)-th (g = gcd(s, d)), its inputs d/g apart from last to first, and
 *  the cells of one pattern of taps (one phase) are s columns apart, their inputs 1 apart.
 *  Without dilation, at strides 1 and 2, with up to 3 taps per row of the window (the 3 × 3
 *  windows of MobileNets), rows of taps go through `rowTile`; anything else, tap by tap. */
@inline function gather(
  backward: bool, accumulate: bool, x: usize, wb: usize, b: usize, y: usize, relu: f32,
  n: i32, inH: i32, inW: i32, c: i32,
  k: i32, s: i32, d: i32, top: i32, left: i32,
  outH: i32, outW: i32,
): void {
  const g = gcd(s, d);
  const step = backward ? s / g : 1; // taps from one used tap to the next
  const move = backward ? -(d / g) : d; // input cells from one used tap to the next
  const phases = backward ? s : 1; // output columns between cells of the same pattern of taps
  const A = backward ? 1 : s; // input cells between neighbouring cells of one pattern
  const byRows = d == 1 && A <= 2 && (k + step - 1) / step <= 3; // at most 3 taps in a row of any window
  const P = A == 1 ? 4 : 3; // cells of a row tile: the most whose inputs and sums fit the registers
  const block = f(4 * k * k); // bytes of one group of 4 channels in the packed filter
  for (let img = 0; img < n; img++) {
    for (let oy = 0; oy < outH; oy++) {
      axisTaps(backward, oy, top, inH, k, s, d, step);
      const rows = tapCount;
      const out = y + f((img * outH + oy) * outW * c);
      if (rows == 0 && backward) { // no output cell reads this input row: nothing to add
        if (!accumulate) fill(out, 0, outW * c);
        continue;
      }
      const xRows = x + f((img * inH + tapInput) * inW * c), wRows = wb + f(tapFirst * k * 4);
      if (backward && s == 2 && k == 3 && d == 1) {
        // The pairs of columns 2i − left, 2i − left + 1 that read dy columns i − 1 and i, both
        // there, go through stride2Row; the columns before and after them one by one.
        const lo = imax(1, (left + 1) >> 1), hi = imax(lo, imin(inW, ((outW - 2 + left) >> 1) + 1));
        for (let cb = 0; cb < c; cb += 4) {
          const a = xRows + f((lo - 1) * c + cb), w = wRows + <usize>(cb >> 2) * block, o = out + f((2 * lo - left) * c + cb);
          if (rows == 2) stride2RowOf(2, c - cb, a, f(-inW * c), f(c), w, o, f(c), hi - lo, accumulate);
          else stride2RowOf(1, c - cb, a, 0, f(c), w, o, f(c), hi - lo, accumulate);
        }
        for (let ox = 0; ox < imin(outW, 2 * lo - left); ox++) cell(backward, accumulate, xRows, wRows, b, out, relu, inW, c, k, s, d, left, ox, rows, step, move, byRows, block);
        for (let ox = 2 * hi - left; ox < outW; ox++) cell(backward, accumulate, xRows, wRows, b, out, relu, inW, c, k, s, d, left, ox, rows, step, move, byRows, block);
        continue;
      }
      for (let phase = 0; phase < phases; phase++) {
        for (let ox = phase; ox < outW; ) {
          if (byRows && ox + (P - 1) * phases < outW && inside(backward, ox, left, inW, k, s, d) && inside(backward, ox + (P - 1) * phases, left, inW, k, s, d)) {
            axisTaps(backward, ox, left, inW, k, s, d, step);
            const cols = tapCount;
            if (cols == 0) { // cells of a phase that no output column reads (k < s): nothing to add
              if (!accumulate) for (let q = 0; q < P; q++) fill(out + f((ox + q * phases) * c), 0, c);
              ox += P * phases;
              continue;
            }
            // Taps from the one reading the leftmost input cell (the last, for the input gradient).
            const xl = xRows + f((tapInput + (backward ? (cols - 1) * move : 0)) * c);
            const wl = wRows + f((tapFirst + (backward ? (cols - 1) * step : 0)) * 4), wq = f((backward ? -step : 1) * 4);
            const xRow = f(move * inW * c), wRow = f(step * k * 4), op = out + f(ox * c);
            if (A == 1) rowTiles(4, 1, cols, xl, f(c), wl, wq, block, rows, xRow, wRow, op, f(phases * c), b, accumulate, relu, c);
            else rowTiles(3, 2, cols, xl, f(c), wl, wq, block, rows, xRow, wRow, op, f(phases * c), b, accumulate, relu, c);
            ox += P * phases;
            continue;
          }
          if (!byRows && ox + phases < outW && inside(backward, ox, left, inW, k, s, d) && inside(backward, ox + phases, left, inW, k, s, d)) {
            axisTaps(backward, ox, left, inW, k, s, d, step);
            const cols = tapCount;
            const xp = xRows + f(tapInput * c), wp = wRows + f(tapFirst * 4), op = out + f(ox * c);
            const xCol = f(move * c), wCol = f(step * 4), xRow = f((inW - cols) * move * c), wRow = f((k - cols) * step * 4);
            for (let cb = 0; cb < c; cb += 4) {
              tapTile(2, c - cb, xp + f(cb), f(A * c), wp + <usize>(cb >> 2) * block, rows, cols, xCol, xRow, wCol, wRow, op + f(cb), f(phases * c), b != 0 ? b + f(cb) : 0, accumulate, relu);
            }
            ox += 2 * phases;
            continue;
          }
          cell(backward, accumulate, xRows, wRows, b, out, relu, inW, c, k, s, d, left, ox, rows, step, move, byRows, block);
          ox += phases;
        }
      }
    }
  }
}

/** One cell of a row (whose row of taps starts at xRows, wRows): by rows of taps when there are
 *  1 to 3 of them per row (`byRows`: no dilation), else tap by tap. */
@inline function cell(
  backward: bool, accumulate: bool, xRows: usize, wRows: usize, b: usize, out: usize, relu: f32,
  inW: i32, c: i32, k: i32, s: i32, d: i32, left: i32, ox: i32, rows: i32, step: i32, move: i32, byRows: bool, block: usize,
): void {
  axisTaps(backward, ox, left, inW, k, s, d, step);
  const cols = tapCount;
  const op = out + f(ox * c);
  if (byRows && cols > 0 && cols <= 3) {
    const xl = xRows + f((tapInput + (backward ? (cols - 1) * move : 0)) * c);
    const wl = wRows + f((tapFirst + (backward ? (cols - 1) * step : 0)) * 4), wq = f((backward ? -step : 1) * 4);
    const xRow = f(move * inW * c), wRow = f(step * k * 4);
    rowTiles(1, 1, cols, xl, f(c), wl, wq, block, rows, xRow, wRow, op, 0, b, accumulate, relu, c);
  } else {
    const xp = xRows + f(tapInput * c), wp = wRows + f(tapFirst * 4);
    const xCol = f(move * c), wCol = f(step * 4), xRow = f((inW - cols) * move * c), wRow = f((k - cols) * step * 4);
    for (let cb = 0; cb < c; cb += 4) {
      tapTile(1, c - cb, xp + f(cb), 0, wp + <usize>(cb >> 2) * block, rows, cols, xCol, xRow, wCol, wRow, op + f(cb), 0, b != 0 ? b + f(cb) : 0, accumulate, relu);
    }
  }
}

/** stride2Row with a constant lane count and accumulate flag where it can (4 lanes, the common
 *  case), so that its stores compile without branches. */
@inline function stride2RowOf(R: i32, lanes: i32, x: usize, xRow: usize, px: usize, w: usize, out: usize, outPixel: usize, count: i32, accumulate: bool): void {
  if (lanes < 4) stride2Row(R, lanes, x, xRow, px, w, out, outPixel, count, accumulate);
  else if (accumulate) stride2Row(R, 4, x, xRow, px, w, out, outPixel, count, true);
  else stride2Row(R, 4, x, xRow, px, w, out, outPixel, count, false);
}

/** dx += (or = when not `accumulate`) `count` pairs of columns × 4 channels (`lanes` stored) of
 *  one row of the input gradient of a 3 × 3, stride-2 window, which R (1 or 2) rows of taps
 *  reach: dy rows `xRow` bytes apart, whose weights are 2 rows of the window apart. The even
 *  column of a pair receives dy column i through tap 0 and i − 1 through tap 2, the odd column
 *  i through tap 1: each dy vector is loaded once, kept for the next pair, and the weights stay
 *  in registers. */
@inline function stride2Row(R: i32, lanes: i32, x: usize, xRow: usize, px: usize, w: usize, out: usize, outPixel: usize, count: i32, accumulate: bool): void {
  const zero = f32x4.splat(0);
  const a0 = v128.load(w), a1 = v128.load(w, 16), a2 = v128.load(w, 32);
  const b0 = R > 1 ? v128.load(w, 96) : zero, b1 = R > 1 ? v128.load(w, 112) : zero, b2 = R > 1 ? v128.load(w, 128) : zero;
  let p0 = v128.load(x), q0 = R > 1 ? v128.load(x + xRow) : zero; // dy column i − 1 …
  for (let q = 0; q < count; q++, out += 2 * outPixel) {
    x += px;
    const p1 = v128.load(x), q1 = R > 1 ? v128.load(x + xRow) : zero; // … and i
    let even = madd(f32x4.mul(p1, a0), p0, a2), odd = f32x4.mul(p1, a1);
    if (R > 1) {
      even = madd(madd(even, q1, b0), q0, b2);
      odd = madd(odd, q1, b1);
    }
    finish(out, even, lanes, accumulate, 0);
    finish(out + outPixel, odd, lanes, accumulate, 0);
    p0 = p1;
    q0 = q1;
  }
}

/** rowTile over every group of 4 channels, for Q taps per row of the window (1 to 3, made a
 *  constant here, outside the loop over groups): the whole groups in a loop of their own, with a
 *  constant lane count (a branch in the loop, or in the stores, makes V8's code 10–15 % slower),
 *  then the partial group. */
@inline function rowTiles(
  P: i32, A: i32, Q: i32, x: usize, px: usize, w: usize, wq: usize, block: usize, rows: i32, xRow: usize, wRow: usize,
  out: usize, outPixel: usize, b: usize, accumulate: bool, relu: f32, c: i32,
): void {
  if (Q == 3) rowTilesOf(P, 3, A, x, px, w, wq, block, rows, xRow, wRow, out, outPixel, b, accumulate, relu, c);
  else if (Q == 2) rowTilesOf(P, 2, A, x, px, w, wq, block, rows, xRow, wRow, out, outPixel, b, accumulate, relu, c);
  else rowTilesOf(P, 1, A, x, px, w, wq, block, rows, xRow, wRow, out, outPixel, b, accumulate, relu, c);
}

@inline function rowTilesOf(
  P: i32, Q: i32, A: i32, x: usize, px: usize, w: usize, wq: usize, block: usize, rows: i32, xRow: usize, wRow: usize,
  out: usize, outPixel: usize, b: usize, accumulate: bool, relu: f32, c: i32,
): void {
  let cb = 0;
  for (; cb + 4 <= c; cb += 4, w += block) {
    rowTile(P, Q, A, 4, x + f(cb), px, w, wq, rows, xRow, wRow, out + f(cb), outPixel, b != 0 ? b + f(cb) : 0, accumulate, relu);
  }
  for (; cb < c; cb += 4, w += block) {
    rowTile(P, Q, A, c - cb, x + f(cb), px, w, wq, rows, xRow, wRow, out + f(cb), outPixel, b != 0 ? b + f(cb) : 0, accumulate, relu);
  }
}

/** P cells × 4 channels (`lanes` of them stored) whose taps along a row of the window are Q
 *  adjacent input cells (`px` bytes apart), the cells' windows A input cells apart: each input
 *  vector of a row is loaded once for all the cells that read it. P, Q and A are constants once
 *  inlined. V8 loads every vector of an iteration before its arithmetic, so an iteration is one
 *  row: its sums, weights and inputs (4 + 3 + 6, or 3 + 3 + 7) fit the 16 vector registers. */
@inline function rowTile(
  P: i32, Q: i32, A: i32, lanes: i32, x: usize, px: usize, w: usize, wq: usize, rows: i32, xRow: usize, wRow: usize,
  out: usize, outPixel: usize, b: usize, accumulate: bool, relu: f32,
): void {
  const zero = f32x4.splat(0);
  const N = (P - 1) * A + Q; // input cells a row of the tile reads
  let a0 = b != 0 ? v128.load(b) : zero, a1 = a0, a2 = a0, a3 = a0;
  for (let r = 0; r < rows; r++, x += xRow, w += wRow) {
    const w0 = v128.load(w), w1 = Q > 1 ? v128.load(w + wq) : zero, w2 = Q > 2 ? v128.load(w + 2 * wq) : zero;
    let p = x;
    const x0 = v128.load(p);
    const x1 = N > 1 ? v128.load((p += px)) : zero;
    const x2 = N > 2 ? v128.load((p += px)) : zero;
    const x3 = N > 3 ? v128.load((p += px)) : zero;
    const x4 = N > 4 ? v128.load((p += px)) : zero;
    const x5 = N > 5 ? v128.load((p += px)) : zero;
    const x6 = N > 6 ? v128.load((p += px)) : zero;
    a0 = f32x4.add(a0, rowSum(Q, x0, x1, x2, w0, w1, w2));
    if (P > 1) a1 = f32x4.add(a1, rowSum(Q, pick(A, x0, x1, x2, x3, x4, x5, x6), pick(A + 1, x0, x1, x2, x3, x4, x5, x6), pick(A + 2, x0, x1, x2, x3, x4, x5, x6), w0, w1, w2));
    if (P > 2) a2 = f32x4.add(a2, rowSum(Q, pick(2 * A, x0, x1, x2, x3, x4, x5, x6), pick(2 * A + 1, x0, x1, x2, x3, x4, x5, x6), pick(2 * A + 2, x0, x1, x2, x3, x4, x5, x6), w0, w1, w2));
    if (P > 3) a3 = f32x4.add(a3, rowSum(Q, pick(3 * A, x0, x1, x2, x3, x4, x5, x6), pick(3 * A + 1, x0, x1, x2, x3, x4, x5, x6), pick(3 * A + 2, x0, x1, x2, x3, x4, x5, x6), w0, w1, w2));
  }
  finish(out, a0, lanes, accumulate, relu);
  if (P > 1) finish(out + outPixel, a1, lanes, accumulate, relu);
  if (P > 2) finish(out + 2 * outPixel, a2, lanes, accumulate, relu);
  if (P > 3) finish(out + 3 * outPixel, a3, lanes, accumulate, relu);
}

/** x0·w0 + x1·w1 + x2·w2 over the first Q terms, summed apart from the accumulator so that
 *  its chain of dependent additions grows by one a row. */
@inline function rowSum(Q: i32, x0: v128, x1: v128, x2: v128, w0: v128, w1: v128, w2: v128): v128 {
  let s = f32x4.mul(x0, w0);
  if (Q > 1) s = madd(s, x1, w1);
  if (Q > 2) s = madd(s, x2, w2);
  return s;
}

/** The j-th of the values (j a constant once inlined). */
@inline function pick(j: i32, x0: v128, x1: v128, x2: v128, x3: v128, x4: v128, x5: v128, x6: v128): v128 {
  return j == 0 ? x0 : j == 1 ? x1 : j == 2 ? x2 : j == 3 ? x3 : j == 4 ? x4 : j == 5 ? x5 : x6;
}

/** P cells (1 or 2, a constant once inlined) × 4 channels (`lanes` of them stored), tap by tap:
 *  rows × cols taps walked by pointer steps (xCol, wCol along a row, xRow, wRow from the end of
 *  one row to the start of the next). The second cell's input is `pixel` bytes after the
 *  first's and its output `outPixel` bytes after. */
@inline function tapTile(
  P: i32, lanes: i32, x: usize, pixel: usize, w: usize,
  rows: i32, cols: i32, xCol: usize, xRow: usize, wCol: usize, wRow: usize,
  out: usize, outPixel: usize, b: usize, accumulate: bool, relu: f32,
): void {
  let a0 = b != 0 ? v128.load(b) : f32x4.splat(0), a1 = a0;
  let x2 = x + pixel;
  for (let r = 0; r < rows; r++, x += xRow, x2 += xRow, w += wRow) {
    for (let q = 0; q < cols; q++, x += xCol, x2 += xCol, w += wCol) {
      const v = v128.load(w);
      a0 = madd(a0, v128.load(x), v);
      if (P == 2) a1 = madd(a1, v128.load(x2), v);
    }
  }
  finish(out, a0, lanes, accumulate, relu);
  if (P == 2) finish(out + outPixel, a1, lanes, accumulate, relu);
}

@inline function finish(out: usize, v: v128, lanes: i32, accumulate: bool, relu: f32): void {
  if (accumulate) addLanes(out, v, imin(lanes, 4));
  else storeLanes(out, fusedRelu(v, relu), imin(lanes, 4));
}

/** dw += Σ over batch and output cells of x(the tap's input cell) · dy(output cell), per tap and
 *  channel. Images go through in bands of output rows whose input, for 16 channels, stays in
 *  the core's first-level cache while every tap sweeps it (the three taps of a row of a 3 × 3
 *  window in one sweep, see slideRow); large batches touch each band first. */
export function depthwise_backward_filter(
  x: usize, dy: usize, dw: usize,
  n: i32, h: i32, wd: i32, c: i32,
  k: i32, stride: i32, dilation: i32, padTop: i32, padLeft: i32,
  oh: i32, ow: i32,
): void {
  const band = imax(1, BAND_BYTES / (64 * (stride * wd + ow)));
  const stream = f(n * (h * wd + oh * ow) * c) > SECOND_LEVEL_CACHE;
  for (let img = 0; img < n; img++) {
    for (let first = 0; first < oh; first += band) {
      const end = imin(oh, first + band);
      if (stream) {
        const top = imax(0, first * stride - padTop), bottom = imin(h, (end - 1) * stride - padTop + (k - 1) * dilation + 1);
        touch(x + f((img * h + top) * wd * c), f((bottom - top) * wd * c));
        touch(dy + f((img * oh + first) * ow * c), f((end - first) * ow * c));
      }
      let cb = 0;
      for (; cb + 16 <= c; cb += 16) filterBlocks(4, 4, x, dy, dw, img, first, end, cb, h, wd, c, k, stride, dilation, padTop, padLeft, oh, ow);
      for (; cb < c; cb += 4) filterBlocks(1, c - cb, x, dy, dw, img, first, end, cb, h, wd, c, k, stride, dilation, padTop, padLeft, oh, ow);
    }
  }
}

const BAND_BYTES: i32 = 16 * 1024;

/** Above this many bytes of input and output gradient (a core's second-level cache, 512 KB on
 *  current x86 cores), the data comes from the shared cache or memory, and each band is touched
 *  in address order before its sweeps (see touch). */
const SECOND_LEVEL_CACHE: usize = 512 * 1024;

/** Loads one word of every 64-byte line of `bytes` at `p`, in address order. WebAssembly has no
 *  prefetch: a band's sweeps read its lines 256 bytes apart (one vector of 16 channels per cell),
 *  which leaves the memory system little to run ahead of; one pass in address order streams them
 *  into the caches first, 1.2–1.9× as fast at batch 32. */
function touch(p: usize, bytes: usize): void {
  let sum: i32 = 0;
  for (const end = p + bytes; p < end; p += 64) sum += load<i32>(p);
  touched += sum;
}

/** What touch read, kept so that its loads are not dead code. */
let touched: i32 = 0;

/** The gradients of B vectors of channels from cb on, every tap, over output rows first … end−1. */
@inline function filterBlocks(
  B: i32, lanes: i32, x: usize, dy: usize, dw: usize, img: i32, first: i32, end: i32, cb: i32,
  h: i32, wd: i32, c: i32, k: i32, s: i32, d: i32, top: i32, left: i32, oh: i32, ow: i32,
): void {
  for (let ky = 0; ky < k; ky++) {
    // Output rows and columns whose tap (ky, kx) falls inside the input.
    const oyLo = imax(first, ceilDiv(top - ky * d, s)), oyHi = imin(end, floorDiv(h - 1 + top - ky * d, s) + 1);
    // The columns inLo … inHi−1, where a 3-tap row of the window is all inside (kx = 0 inside
    // on the left, kx = 2 on the right), go through slideRow, the others tap by tap.
    const slides = k == 3 && d == 1 && s <= 2;
    const inLo = slides ? imax(0, ceilDiv(left, s)) : ow, inHi = slides ? imax(inLo, imin(ow, floorDiv(wd - 3 + left, s) + 1)) : ow;
    if (inHi > inLo) {
      const xRow = x + f(((img * h - top + ky) * wd + inLo * s - left) * c + cb), gRow = dy + f((img * oh * ow + inLo) * c + cb);
      const target = dw + f(ky * 3 * c + cb);
      const count = inHi - inLo;
      // B = 4 (16 channels) in two halves of 2 vectors; S, B and lanes literals, which Binaryen
      // folds (passed on through another inlined function, they were not always folded).
      if (B == 4) {
        if (s == 1) {
          slideRow(1, 2, 4, xRow, gRow, target, oyLo, oyHi, count, wd, ow, c);
          slideRow(1, 2, 4, xRow + 32, gRow + 32, target + 32, oyLo, oyHi, count, wd, ow, c);
        } else {
          slideRow(2, 2, 4, xRow, gRow, target, oyLo, oyHi, count, wd, ow, c);
          slideRow(2, 2, 4, xRow + 32, gRow + 32, target + 32, oyLo, oyHi, count, wd, ow, c);
        }
      } else if (s == 1) slideRow(1, 1, lanes, xRow, gRow, target, oyLo, oyHi, count, wd, ow, c);
      else slideRow(2, 1, lanes, xRow, gRow, target, oyLo, oyHi, count, wd, ow, c);
    }
    for (let kx = 0; kx < k; kx++) {
      const oxLo = imax(0, ceilDiv(left - kx * d, s)), oxHi = imin(ow, floorDiv(wd - 1 + left - kx * d, s) + 1);
      filterTap(B, lanes, x, dy, dw, img, oyLo, oyHi, oxLo, imin(oxHi, inLo), cb, h, wd, c, k, s, d, top, left, oh, ow, ky, kx);
      filterTap(B, lanes, x, dy, dw, img, oyLo, oyHi, imax(oxLo, inHi), oxHi, cb, h, wd, c, k, s, d, top, left, oh, ow, ky, kx);
    }
  }
}

/** dw(ky, kx) += Σ x · dy over output rows oyLo … oyHi−1 and columns oxLo … oxHi−1, whose tap
 *  (ky, kx) is inside the input, for B vectors of channels from cb. */
@inline function filterTap(
  B: i32, lanes: i32, x: usize, dy: usize, dw: usize, img: i32, oyLo: i32, oyHi: i32, oxLo: i32, oxHi: i32, cb: i32,
  h: i32, wd: i32, c: i32, k: i32, s: i32, d: i32, top: i32, left: i32, oh: i32, ow: i32, ky: i32, kx: i32,
): void {
  if (oxHi <= oxLo) return;
  const zero = f32x4.splat(0);
  const xStep = f(s * c), gStep = f(c);
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

/** The gradients of one row of a 3 × 3 window's taps (stride S, 1 or 2) for B (1 or 2) vectors
 *  of channels, over output rows oyLo … oyHi−1 and `count` columns whose taps are all inside,
 *  from x at the row's first input cell and dy at its first output cell. Along a row, tap kx of
 *  column ox reads the input cell S·ox + kx: the cells shared with the next column (the last,
 *  at stride 2; the last two at stride 1) stay in registers, so a column loads 1 + S vectors
 *  of each channel vector (with dy's) for 3 mul-adds. */
@inline function slideRow(S: i32, B: i32, lanes: i32, x: usize, g: usize, target: usize, oyLo: i32, oyHi: i32, count: i32, wd: i32, ow: i32, c: i32): void {
  const zero = f32x4.splat(0);
  const px = f(c);
  let a0 = zero, a1 = zero, a2 = zero, b0 = zero, b1 = zero, b2 = zero;
  for (let oy = oyLo; oy < oyHi; oy++) {
    let xp = x + f(oy * S * wd * c), gp = g + f(oy * ow * c);
    let u0 = v128.load(xp), v0 = B > 1 ? v128.load(xp, 16) : zero;
    let u1 = S == 1 ? v128.load(xp + px) : zero, v1 = S == 1 && B > 1 ? v128.load(xp + px, 16) : zero;
    for (let q = 0; q < count; q++, xp += <usize>S * px, gp += px) {
      const gu = v128.load(gp), gv = B > 1 ? v128.load(gp, 16) : zero;
      if (S == 2) {
        u1 = v128.load(xp + px);
        if (B > 1) v1 = v128.load(xp + px, 16);
      }
      const u2 = v128.load(xp + 2 * px), v2 = B > 1 ? v128.load(xp + 2 * px, 16) : zero;
      a0 = madd(a0, u0, gu);
      a1 = madd(a1, u1, gu);
      a2 = madd(a2, u2, gu);
      if (B > 1) {
        b0 = madd(b0, v0, gv);
        b1 = madd(b1, v1, gv);
        b2 = madd(b2, v2, gv);
      }
      if (S == 1) {
        u0 = u1;
        u1 = u2;
        if (B > 1) {
          v0 = v1;
          v1 = v2;
        }
      } else {
        u0 = u2;
        if (B > 1) v0 = v2;
      }
    }
  }
  addLanes(target, a0, lanes);
  addLanes(target + px, a1, lanes);
  addLanes(target + 2 * px, a2, lanes);
  if (B > 1) {
    addLanes(target + 16, b0, 4);
    addLanes(target + px + 16, b1, 4);
    addLanes(target + 2 * px + 16, b2, 4);
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
