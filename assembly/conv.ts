// 2-D convolution, NHWC activations, HWIO filters [k, k, cin, cout], square kernel, equal strides
// and dilations. Padding is given as the number of cells before the input (top, left); cells
// outside the input contribute 0. Convolutions are matrix products over their windows, or, for
// stride 1 without dilation and few channels, run on planar copies (below); a 1×1 convolution of
// stride 1 is a plain matrix product (ops.ts calls dense.ts's kernels for it). The geometry
// arguments come last in every kernel, in the same order.
import { storeLanes, addLanes, madd, fusedRelu, f, imin, imax } from './common';
import { product, matmul_work } from './dense';

// ---- Matrix products over windows laid out as rows (im2col) ---------------------------------
// A convolution is the product [output cells, k·k·cin] × [k·k·cin, cout] of its windows, one
// row each, with the filter (HWIO is that matrix, row-major). The rows are laid out chunk by
// chunk in `work` (the window cells, zero outside the input), then go through the products of
// dense.ts. The filter gradient is the product of the rows' transpose with dy; the input
// gradient is dy·wᵀ, whose rows are added back into the windows they came from.

/** y = conv(x, w) + b, then the fused ReLU `relu` (its ceiling, 0: none; see fusedRelu). `wp` is w packed by
 *  pack_panels(w, cout, 1, k·k·cin, cout); `work` holds conv2d_windows_work(k, cin, cout) floats. */
export function conv2d_windows_forward(
  x: usize, wp: usize, b: usize, y: usize, relu: f32, work: usize,
  n: i32, h: i32, wd: i32, cin: i32,
  k: i32, stride: i32, dilation: i32, padTop: i32, padLeft: i32,
  oh: i32, ow: i32, cout: i32,
): void {
  if (k == 1 && padTop == 0 && padLeft == 0) {
    pointwiseStrided(false, x, wp, b, y, relu, work, n, h, wd, cin, stride, oh, ow, cout);
    return;
  }
  const width = k * k * cin, cells = n * oh * ow, chunk = chunkRows(width, cells);
  const rows = work, rest = work + f(chunk * width);
  for (let first = 0; first < cells; first += chunk) {
    const count = imin(chunk, cells - first);
    windows(false, x, rows, first, count, h, wd, cin, k, stride, dilation, padTop, padLeft, oh, ow);
    product(rows, width, 1, wp, 0, 0, true, b, y + f(first * cout), cout, false, relu, rest, count, width, cout);
  }
}

/** dx += the input gradient, from dy. `wtp` is wᵀ packed by pack_panels(w, 1, cout, cout, k·k·cin). */
export function conv2d_windows_backward_input(
  dy: usize, wtp: usize, dx: usize, work: usize,
  n: i32, h: i32, wd: i32, cin: i32,
  k: i32, stride: i32, dilation: i32, padTop: i32, padLeft: i32,
  oh: i32, ow: i32, cout: i32,
): void {
  if (k == 1 && padTop == 0 && padLeft == 0) {
    pointwiseStrided(true, dx, wtp, 0, dy, 0, work, n, h, wd, cin, stride, oh, ow, cout);
    return;
  }
  const width = k * k * cin, cells = n * oh * ow, chunk = chunkRows(width, cells);
  const rows = work, rest = work + f(chunk * width);
  for (let first = 0; first < cells; first += chunk) {
    const count = imin(chunk, cells - first);
    product(dy + f(first * cout), cout, 1, wtp, 0, 0, true, 0, rows, width, false, false, rest, count, cout, width);
    windows(true, dx, rows, first, count, h, wd, cin, k, stride, dilation, padTop, padLeft, oh, ow);
  }
}

/** dw += the filter gradient, from x and dy. */
export function conv2d_windows_backward_filter(
  x: usize, dy: usize, dw: usize, work: usize,
  n: i32, h: i32, wd: i32, cin: i32,
  k: i32, stride: i32, dilation: i32, padTop: i32, padLeft: i32,
  oh: i32, ow: i32, cout: i32,
): void {
  const width = k * k * cin, cells = n * oh * ow, chunk = chunkRows(width, cells);
  const rows = work, rest = work + f(chunk * width);
  // A 1×1 window of stride 1 and no padding (as in the other two kernels' shortcut) is its input
  // cell: the rows are x itself.
  const inPlace = k == 1 && stride == 1 && padTop == 0 && padLeft == 0;
  for (let first = 0; first < cells; first += chunk) {
    const count = imin(chunk, cells - first);
    if (!inPlace) windows(false, x, rows, first, count, h, wd, cin, k, stride, dilation, padTop, padLeft, oh, ow);
    product(inPlace ? x + f(first * cin) : rows, 1, width, dy + f(first * cout), cout, 1, false, 0, dw, cout, true, false, rest, width, count, cout);
  }
}

/** A 1×1 window of stride s (which needs no padding) reads every s-th cell of every s-th input
 *  row: output row (img, oy) is the product of those cells, s·cin floats apart and read in
 *  place, with the filter (`w` packed as for the kernel); backward, dy's row times the packed wᵀ
 *  is added to the same cells of x, the input gradient. No rows are laid out. */
@inline function pointwiseStrided(
  backward: bool, x: usize, w: usize, b: usize, y: usize, relu: f32, work: usize,
  n: i32, h: i32, wd: i32, cin: i32, stride: i32, oh: i32, ow: i32, cout: i32,
): void {
  for (let img = 0; img < n; img++) {
    for (let oy = 0; oy < oh; oy++) {
      const cells = x + f((img * h + oy * stride) * wd * cin), out = y + f((img * oh + oy) * ow * cout);
      if (backward) product(out, cout, 1, w, 0, 0, true, 0, cells, stride * cin, true, 0, work, ow, cout, cin);
      else product(cells, stride * cin, 1, w, 0, 0, true, b, out, cout, false, relu, work, ow, cin, cout);
    }
  }
}

/** Floats of `work` the three kernels above need, for `cells` = n·oh·ow output cells. */
export function conv2d_windows_work(k: i32, cin: i32, cout: i32, cells: i32): i32 {
  const width = k * k * cin;
  return chunkRows(width, cells) * width + matmul_work(cout);
}

/** Output cells per chunk of rows: about 256 KiB of them, and at least a block of the product's
 *  depth, or all the cells when they are fewer. */
@inline function chunkRows(width: i32, cells: i32): i32 {
  return imin(cells, imax(256, 65536 / width));
}

/** Between x (NHWC) and the rows of the windows of output cells first … first+count−1,
 *  rows[r, (ky·k + kx)·cin + ci] = x[img, oy·stride − padTop + ky·dilation, ox·stride − padLeft + kx·dilation, ci]:
 *  the rows are made from x (`scatter` false; 0 outside the input), or added into x (`scatter`,
 *  the transpose: cells outside the input are dropped). Made, they are written in whole vectors
 *  in order, each cell's running up to 3 floats into the next one's, which comes after: the last
 *  one's into the memory after the rows, which `work` has (the product's, filled afterwards). */
@inline function windows(
  scatter: bool, x: usize, rows: usize, first: i32, count: i32,
  h: i32, wd: i32, cin: i32, k: i32, stride: i32, dilation: i32, padTop: i32, padLeft: i32, oh: i32, ow: i32,
): void {
  const zero = f32x4.splat(0);
  const span = (k - 1) * dilation, tapStep = f(dilation * cin), rowStep = f(dilation * wd * cin);
  let row = rows;
  let ox = first % ow, oy = first / ow % oh, img = first / (ow * oh);
  for (let r = 0; r < count; r++) {
    const iy0 = oy * stride - padTop, ix0 = ox * stride - padLeft;
    // Most windows lie inside the input: their cells need no test. The others' cells outside
    // are never read (their addresses wrap around, harmlessly).
    const interior = iy0 >= 0 && iy0 + span < h && ix0 >= 0 && ix0 + span < wd;
    let cellRow = x + f(((img * h + iy0) * wd + ix0) * cin);
    for (let ky = 0, iy = iy0; ky < k; ky++, iy += dilation, cellRow += rowStep) {
      const rowInside = iy >= 0 && iy < h;
      let cell = cellRow;
      for (let kx = 0, ix = ix0; kx < k; kx++, ix += dilation, cell += tapStep, row += f(cin)) {
        const inside = interior || (rowInside && ix >= 0 && ix < wd);
        if (scatter) {
          if (inside) for (let c = 0; c < cin; c += 4) addLanes(cell + f(c), v128.load(row + f(c)), cin - c);
        } else if (inside) {
          for (let c = 0; c < cin; c += 4) v128.store(row + f(c), v128.load(cell + f(c)));
        } else {
          for (let c = 0; c < cin; c += 4) v128.store(row + f(c), zero);
        }
      }
    }
    if (++ox == ow) {
      ox = 0;
      if (++oy == oh) {
        oy = 0;
        img++;
      }
    }
  }
}

// ---- Stride 1: direct convolution over planar, zero-padded copies --------------------------
// For stride 1 the work is recast so that the SIMD lanes run along output columns, which keeps
// every lane busy whatever the channel counts (1, 3, 6, 12 in the tutorial's network):
//   1. `to_planar` copies the input into planes [n, c, hp, wp] with the padding made of real
//      zeros, so that the inner loops need no bounds checks;
//   2. `pack_filter` lays the filter out as [groups of G outputs, inputs, ky, kx, G], G = 3 when
//      the output channels are a multiple of 3 but not of 4 (3, 6: no idle lanes), else 4;
//   3. `conv2d_planar` computes tiles of G channels × 8 columns (or, for a single output
//      channel, 2 rows × 16 columns): six or eight accumulators, which stay in registers
//      (twelve do not, measured), and writes them back as NHWC.
// Each inner loop walks its operands with one or two pointers: given more live values than
// registers, V8 spills some to the stack and reloads them at every step (measured: 1.5× slower).
// The input gradient of a stride-1 convolution is the same computation on dy with the filter
// flipped and its channel axes swapped, so it runs through the same three kernels.

/** xp[img, ch, top + r, left + col] = x[img, r, col, ch], zeros elsewhere. When `mask` is not
 *  0, only where mask[img, r, col, ch] > 0 (a ReLU's output: its gradient passes there only).
 *  Four pixels at a time: their c channels are c/4 vectors (or 3, for c = 3), shuffled into one
 *  vector per channel. */
export function to_planar(x: usize, mask: usize, xp: usize, n: i32, h: i32, wd: i32, c: i32, top: i32, left: i32, hp: i32, wp: i32): void {
  const plane = f(hp * wp);
  for (let img = 0; img < n; img++) {
    for (let ch = 0; ch < c; ch++) zeroBorder(xp + (img * c + ch) * <i32>plane, h, wd, top, left, hp, wp);
    for (let r = 0; r < h; r++) {
      const at = x + f((img * h + r) * wd * c), on = mask + f((img * h + r) * wd * c);
      const dst = xp + f(((img * c) * hp + top + r) * wp + left); // channel 0's row; the next channel's is a plane further
      let col = 0;
      if (c == 1) {
        for (; col + 4 <= wd; col += 4) v128.store(dst + f(col), masked(at, on, mask, f(col)));
      } else if (c == 3) {
        for (; col + 4 <= wd; col += 4) {
          const o = f(col * 3);
          const v0 = masked(at, on, mask, o), v1 = masked(at, on, mask, o + 16), v2 = masked(at, on, mask, o + 32);
          v128.store(dst + f(col), v128.shuffle<f32>(v128.shuffle<f32>(v0, v1, 0, 3, 6, 0), v2, 0, 1, 2, 5));
          v128.store(dst + plane + f(col), v128.shuffle<f32>(v128.shuffle<f32>(v0, v1, 1, 4, 7, 0), v2, 0, 1, 2, 6));
          v128.store(dst + 2 * plane + f(col), v128.shuffle<f32>(v128.shuffle<f32>(v0, v1, 2, 5, 0, 0), v2, 0, 1, 4, 7));
        }
      } else if (c >= 4) {
        // Blocks of 4 channels; when c is not a multiple of 4 the last block overlaps the one before.
        for (; col + 4 <= wd; col += 4) {
          for (let cb = 0; cb < c; cb += 4) {
            const ch = imin(cb, c - 4), o = f(col * c + ch);
            const p0 = masked(at, on, mask, o), p1 = masked(at, on, mask, o + f(c));
            const p2 = masked(at, on, mask, o + f(2 * c)), p3 = masked(at, on, mask, o + f(3 * c));
            const t0 = v128.shuffle<f32>(p0, p1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(p0, p1, 2, 6, 3, 7);
            const t2 = v128.shuffle<f32>(p2, p3, 0, 4, 1, 5), t3 = v128.shuffle<f32>(p2, p3, 2, 6, 3, 7);
            const row = dst + ch * <i32>plane + f(col);
            v128.store(row, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
            v128.store(row + plane, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7));
            v128.store(row + 2 * plane, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5));
            v128.store(row + 3 * plane, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7));
          }
        }
      }
      for (; col < wd; col++) {
        for (let ch = 0; ch < c; ch++) {
          const o = f(col * c + ch);
          const v = load<f32>(at + o);
          store<f32>(dst + ch * <i32>plane + f(col), mask == 0 || load<f32>(on + o) > 0 ? v : 0);
        }
      }
    }
  }
}

/** Zeros the cells of one plane outside its h × wd window at (top, left), in whole vectors that
 *  may run up to 3 floats past each stretch: the window's data is written afterwards, and the
 *  buffer's 16-byte slack takes the last plane's overrun. */
@inline function zeroBorder(p: usize, h: i32, wd: i32, top: i32, left: i32, hp: i32, wp: i32): void {
  zeros(p, top * wp + left);
  for (let r = 0; r < h; r++) {
    const end = p + f((top + r) * wp + left + wd); // from the row's end to the next row's window
    zeros(end, r + 1 < h ? wp - wd : (hp - top - h) * wp + wp - left - wd);
  }
}

@inline function zeros(p: usize, count: i32): void {
  for (let i = 0; i < count; i += 4) v128.store(p + f(i), f32x4.splat(0));
}

/** The vector at byte offset o of x, zero where the mask (when not 0) is not > 0. */
@inline function masked(x: usize, on: usize, mask: usize, o: usize): v128 {
  const v = v128.load(x + o);
  return mask == 0 ? v : v128.and(v, f32x4.gt(v128.load(on + o), f32x4.splat(0)));
}

/** Output channels per tile: see above. */
@inline function groupSize(outputs: i32): i32 {
  return outputs % 4 != 0 && outputs % 3 == 0 ? 3 : 4;
}

/** wq[g, i, ky, kx, lane] = filter weight from input i to output G·g + lane (0 past the last output).
 *  Forward (`flip` false): w[ky, kx, i, o]. Input gradient (`flip` true): w[k−1−ky, k−1−kx, o, i],
 *  with `inputs` = the layer's output channels and `outputs` = its input channels. */
export function pack_filter(w: usize, wq: usize, k: i32, inputs: i32, outputs: i32, flip: bool): void {
  const g = groupSize(outputs), taps = k * k;
  const groups = (outputs + g - 1) / g;
  memory.fill(wq, 0, f(groups * g * inputs * taps));
  // Flipping both ky and kx reverses the tap index: k−1−ky, k−1−kx is tap taps−1−t.
  const inputStride = flip ? 1 : outputs, outputStride = flip ? inputs : 1;
  for (let t = 0; t < taps; t++) {
    const src = w + f((flip ? taps - 1 - t : t) * inputs * outputs);
    for (let i = 0; i < inputs; i++) {
      let dst = wq + f((i * taps + t) * g);
      for (let o = 0, lane = 0; o < outputs; o++) {
        store<f32>(dst + f(lane), load<f32>(src + f(i * inputStride + o * outputStride)));
        if (++lane == g) {
          lane = 0;
          dst += f(inputs * taps * g); // the next group
        }
      }
    }
  }
}

/** y (NHWC, [n, oh, ow, outputs]) = or += the stride-1 convolution of the planes xp
 *  ([n, inputs, hp, wp], wp ≥ ⌈ow/W⌉·W + k − 1, W = 24, or 48 for one output channel) with the packed filter, plus the bias when
 *  `b` is not 0, then the fused ReLU `relu` (its ceiling, 0: none). */
export function conv2d_planar(
  xp: usize, wq: usize, b: usize, y: usize, accumulate: bool, relu: f32,
  n: i32, inputs: i32, hp: i32, wp: i32, k: i32, oh: i32, ow: i32, outputs: i32,
): void {
  if (outputs == 1) conv_single_output(xp, wq, b, y, accumulate, relu, n, inputs, hp, wp, k, oh, ow);
  else if (groupSize(outputs) == 3) conv_groups(3, xp, wq, b, y, accumulate, relu, n, inputs, hp, wp, k, oh, ow, outputs);
  else conv_groups(4, xp, wq, b, y, accumulate, relu, n, inputs, hp, wp, k, oh, ow, outputs);
}

/** Tiles of G (3 or 4, a constant once inlined) output channels × 8 columns: each input
 *  vector is loaded once per G channels and each weight once per 8 columns. A row's last 4
 *  columns, when its width is 4 more than a multiple of 8, take a tile of their own. */
@inline function conv_groups(
  G: i32, xp: usize, wq: usize, b: usize, y: usize, accumulate: bool, relu: f32,
  n: i32, inputs: i32, hp: i32, wp: i32, k: i32, oh: i32, ow: i32, outputs: i32,
): void {
  for (let img = 0; img < n; img++) {
    for (let g = 0; g < outputs; g += G) {
      for (let oy = 0; oy < oh; oy++) {
        let ox = 0;
        for (; ox + 4 < ow; ox += 8) groupTile(G, true, xp, wq, b, y, accumulate, relu, img, g, oy, ox, inputs, hp, wp, k, oh, ow, outputs);
        if (ox < ow) groupTile(G, false, xp, wq, b, y, accumulate, relu, img, g, oy, ox, inputs, hp, wp, k, oh, ow, outputs);
      }
    }
  }
}

/** One tile: G channels × 8 columns (`wide`) or × 4; G and `wide` are constants once inlined. */
@inline function groupTile(
  G: i32, wide: bool, xp: usize, wq: usize, b: usize, y: usize, accumulate: bool, relu: f32,
  img: i32, g: i32, oy: i32, ox: i32, inputs: i32, hp: i32, wp: i32, k: i32, oh: i32, ow: i32, outputs: i32,
): void {
  // Lanes past `outputs` (bias read past its end for the last group) are never stored.
  const bias = b != 0 ? v128.load(b + f(g)) : f32x4.splat(0);
  let a0 = f32x4.splat(f32x4.extract_lane(bias, 0)), a1 = f32x4.splat(f32x4.extract_lane(bias, 1)); // columns ox..ox+3, one vector per channel
  let a2 = f32x4.splat(f32x4.extract_lane(bias, 2)), a3 = f32x4.splat(f32x4.extract_lane(bias, 3));
  let c0 = a0, c1 = a1, c2 = a2, c3 = a3; // columns ox+4..ox+7
  // One pointer walks the input's window (kx, then ky, then the input planes) and one the
  // packed weights, so that the inner loop keeps every live value in a register.
  let wt = wq + f((g / G) * inputs * k * k * G);
  let x = xp + f(((img * inputs) * hp + oy) * wp + ox);
  const nextRow = f(wp - k), nextPlane = f((hp - k) * wp);
  for (let i = 0; i < inputs; i++, x += nextPlane) {
    for (let ky = 0; ky < k; ky++, x += nextRow) {
      for (const end = x + f(k); x < end; x += 4, wt += G * 4) {
        const x0 = v128.load(x), x1 = wide ? v128.load(x, 16) : x0;
        let w = v128.load32_splat(wt);
        a0 = madd(a0, x0, w);
        if (wide) c0 = madd(c0, x1, w);
        w = v128.load32_splat(wt, 4);
        a1 = madd(a1, x0, w);
        if (wide) c1 = madd(c1, x1, w);
        w = v128.load32_splat(wt, 8);
        a2 = madd(a2, x0, w);
        if (wide) c2 = madd(c2, x1, w);
        if (G == 4) {
          w = v128.load32_splat(wt, 12);
          a3 = madd(a3, x0, w);
          if (wide) c3 = madd(c3, x1, w);
        }
      }
    }
  }
  const out = y + f(((img * oh + oy) * ow + ox) * outputs + g);
  const step = f(outputs), lanes = imin(G, outputs - g);
  if (G == 3 && outputs == 3 && wide && ox + 8 <= ow) {
    storeTriples(out, a0, a1, a2, accumulate, relu);
    storeTriples(out + 4 * step, c0, c1, c2, accumulate, relu);
  } else {
    storePixels(out, step, imin(4, ow - ox), a0, a1, a2, a3, lanes, accumulate, relu);
    if (wide && ox + 4 < ow) storePixels(out + 4 * step, step, imin(4, ow - ox - 4), c0, c1, c2, c3, lanes, accumulate, relu);
  }
}

/** Writes 4 columns × 4 channels, given as one vector per channel, to NHWC pixels `step` bytes
 *  apart: a 4×4 transpose turns them into one vector per pixel. */
@inline function storePixels(out: usize, step: usize, pixels: i32, r0: v128, r1: v128, r2: v128, r3: v128, lanes: i32, accumulate: bool, relu: f32): void {
  const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7);
  const t2 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5), t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
  storePixel(out, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5), lanes, accumulate, relu);
  if (pixels > 1) storePixel(out + step, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), lanes, accumulate, relu);
  if (pixels > 2) storePixel(out + 2 * step, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), lanes, accumulate, relu);
  if (pixels > 3) storePixel(out + 3 * step, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), lanes, accumulate, relu);
}

/** Writes 4 columns × 3 channels, one vector per channel, to 4 pixels of exactly 3 channels:
 *  12 contiguous floats, so three interleaved vectors. */
@inline function storeTriples(out: usize, r0: v128, r1: v128, r2: v128, accumulate: bool, relu: f32): void {
  const t = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5), u = v128.shuffle<f32>(r1, r2, 1, 5, 2, 6), w = v128.shuffle<f32>(r0, r1, 3, 7, 2, 2);
  storePixel(out, v128.shuffle<f32>(t, r2, 0, 1, 4, 2), 4, accumulate, relu); // p0c0 p0c1 p0c2 p1c0
  storePixel(out + 16, v128.shuffle<f32>(u, r0, 0, 1, 6, 2), 4, accumulate, relu); // p1c1 p1c2 p2c0 p2c1
  storePixel(out + 32, v128.shuffle<f32>(r2, w, 2, 4, 5, 3), 4, accumulate, relu); // p2c2 p3c0 p3c1 p3c2
}

@inline function storePixel(p: usize, v: v128, lanes: i32, accumulate: bool, relu: f32): void {
  v = fusedRelu(v, relu);
  if (accumulate) v = f32x4.add(v, v128.load(p));
  storeLanes(p, v, lanes);
}

/** One output channel: tiles of two rows × 16 columns (contiguous in NHWC), where each input
 *  row loaded serves both output rows (with weight rows ky and ky − 1); an odd last row takes
 *  tiles of one row × 24 columns. */
function conv_single_output(
  xp: usize, wq: usize, b: usize, y: usize, accumulate: bool, relu: f32,
  n: i32, inputs: i32, hp: i32, wp: i32, k: i32, oh: i32, ow: i32,
): void {
  const bias = f32x4.splat(b != 0 ? load<f32>(b) : 0);
  const tapRow = f(k * 4); // packed taps (groupSize(1) = 4 floats each) of one filter row
  const nextRow = f(wp - k);
  for (let img = 0; img < n; img++) {
    let oy = 0;
    for (; oy + 1 < oh; oy += 2) {
      for (let ox = 0; ox < ow; ox += 16) {
        let a0 = bias, a1 = bias, a2 = bias, a3 = bias; // row oy
        let c0 = bias, c1 = bias, c2 = bias, c3 = bias; // row oy + 1
        let wt = wq;
        for (let i = 0; i < inputs; i++) {
          let x = xp + f(((img * inputs + i) * hp + oy) * wp + ox);
          // Input row oy: weight row 0 of the upper output row only.
          for (const end = x + f(k); x < end; x += 4, wt += 16) {
            const w = v128.load32_splat(wt);
            a0 = madd(a0, v128.load(x), w); a1 = madd(a1, v128.load(x, 16), w); a2 = madd(a2, v128.load(x, 32), w); a3 = madd(a3, v128.load(x, 48), w);
          }
          x += nextRow;
          // Rows oy + 1 … oy + k − 1: weight row ky of the upper, ky − 1 of the lower.
          for (let ky = 1; ky < k; ky++, x += nextRow) {
            for (const end = x + f(k); x < end; x += 4, wt += 16) {
              const x0 = v128.load(x), x1 = v128.load(x, 16), x2 = v128.load(x, 32), x3 = v128.load(x, 48);
              let w = v128.load32_splat(wt);
              a0 = madd(a0, x0, w); a1 = madd(a1, x1, w); a2 = madd(a2, x2, w); a3 = madd(a3, x3, w);
              w = v128.load32_splat(wt - tapRow);
              c0 = madd(c0, x0, w); c1 = madd(c1, x1, w); c2 = madd(c2, x2, w); c3 = madd(c3, x3, w);
            }
          }
          // Row oy + k: weight row k − 1 of the lower output row only.
          wt -= tapRow;
          for (const end = x + f(k); x < end; x += 4, wt += 16) {
            const w = v128.load32_splat(wt);
            c0 = madd(c0, v128.load(x), w); c1 = madd(c1, v128.load(x, 16), w); c2 = madd(c2, v128.load(x, 32), w); c3 = madd(c3, v128.load(x, 48), w);
          }
        }
        const out = y + f((img * oh + oy) * ow + ox), left = ow - ox;
        storeColumns(out, left, a0, a1, a2, a3, accumulate, relu);
        storeColumns(out + f(ow), left, c0, c1, c2, c3, accumulate, relu);
      }
    }
    if (oy < oh) singleRow(xp, wq, bias, y, accumulate, relu, img, oy, inputs, hp, wp, k, oh, ow);
  }
}

/** Output row oy of one output channel, in tiles of 24 columns. */
@inline function singleRow(
  xp: usize, wq: usize, bias: v128, y: usize, accumulate: bool, relu: f32,
  img: i32, oy: i32, inputs: i32, hp: i32, wp: i32, k: i32, oh: i32, ow: i32,
): void {
  for (let ox = 0; ox < ow; ox += 24) {
    let a0 = bias, a1 = bias, a2 = bias, a3 = bias, a4 = bias, a5 = bias;
    let wt = wq;
    let x = xp + f(((img * inputs) * hp + oy) * wp + ox);
    const nextRow = f(wp - k), nextPlane = f((hp - k) * wp);
    for (let i = 0; i < inputs; i++, x += nextPlane) {
      for (let ky = 0; ky < k; ky++, x += nextRow) {
        for (const end = x + f(k); x < end; x += 4, wt += 16) {
          const w = v128.load32_splat(wt); // lane 0 of the tap's packed group of 4 (groupSize(1) = 4)
          a0 = madd(a0, v128.load(x), w); a1 = madd(a1, v128.load(x, 16), w); a2 = madd(a2, v128.load(x, 32), w);
          a3 = madd(a3, v128.load(x, 48), w); a4 = madd(a4, v128.load(x, 64), w); a5 = madd(a5, v128.load(x, 80), w);
        }
      }
    }
    const out = y + f((img * oh + oy) * ow + ox), left = ow - ox;
    storeColumns(out, left, a0, a1, a2, a3, accumulate, relu);
    if (left > 16) {
      storePixel(out + 64, a4, imin(4, left - 16), accumulate, relu);
      if (left > 20) storePixel(out + 80, a5, imin(4, left - 20), accumulate, relu);
    }
  }
}

/** Up to 16 consecutive columns of one output channel (`left` of them remain in the row). */
@inline function storeColumns(out: usize, left: i32, r0: v128, r1: v128, r2: v128, r3: v128, accumulate: bool, relu: f32): void {
  storePixel(out, r0, imin(4, left), accumulate, relu);
  if (left > 4) storePixel(out + 16, r1, imin(4, left - 4), accumulate, relu);
  if (left > 8) storePixel(out + 32, r2, imin(4, left - 8), accumulate, relu);
  if (left > 12) storePixel(out + 48, r3, imin(4, left - 12), accumulate, relu);
}

/** dw += the filter gradient of a stride-1 convolution, from the planes of its input xp (as the
 *  forward pass made them) and the planes of dy, gp [n, outputs, oh, gw] (gw a multiple of 4,
 *  zero past ow). Each weight's gradient is a dot product along output columns; a tile of G
 *  output channels (3 or 4, as in the forward pass) × 2 neighbouring kx shares every load.
 *  Every tile reads all the planes of the images it covers, so a large batch goes through in
 *  chunks of images whose planes stay in the core's cache. */
export function conv2d_filter_planar(
  xp: usize, gp: usize, dw: usize,
  n: i32, inputs: i32, hp: i32, wp: i32, k: i32, oh: i32, gw: i32, outputs: i32,
): void {
  const G = groupSize(outputs);
  const chunk = imax(1, CACHE_BYTES / <i32>f(inputs * hp * wp + outputs * oh * gw));
  for (let first = 0; first < n; first += chunk) {
    const end = imin(n, first + chunk);
    for (let ky = 0; ky < k; ky++) {
      for (let i = 0; i < inputs; i++) {
        for (let g = 0; g < outputs; g += G) {
          let kx = 0;
          for (; kx + 1 < k; kx += 2) {
            if (G == 3) filterTile(3, 2, xp, gp, dw, first, end, inputs, hp, wp, k, oh, gw, outputs, ky, kx, i, g);
            else filterTile(4, 2, xp, gp, dw, first, end, inputs, hp, wp, k, oh, gw, outputs, ky, kx, i, g);
          }
          if (kx < k) {
            if (G == 3) filterTile(3, 1, xp, gp, dw, first, end, inputs, hp, wp, k, oh, gw, outputs, ky, kx, i, g);
            else filterTile(4, 1, xp, gp, dw, first, end, inputs, hp, wp, k, oh, gw, outputs, ky, kx, i, g);
          }
        }
      }
    }
  }
}

/** Bytes of planes a chunk of images may take: about a level-1 data cache and a half (32 to
 *  48 KiB on current cores), the best of 32 KiB to 1 GiB measured on the tutorial's layers. */
const CACHE_BYTES: i32 = 64 * 1024;

/** The gradients of the weights (ky, kx … kx+KX−1, input i, outputs g … g+G−1) from images
 *  first … end−1; G and KX are constants once inlined. */
@inline function filterTile(
  G: i32, KX: i32, xp: usize, gp: usize, dw: usize,
  first: i32, end: i32, inputs: i32, hp: i32, wp: i32, k: i32, oh: i32, gw: i32, outputs: i32,
  ky: i32, kx: i32, i: i32, g: i32,
): void {
  const last = outputs - 1; // channels past the last one repeat it, and are not stored
  const zero = f32x4.splat(0);
  let a0 = zero, a1 = zero, a2 = zero, a3 = zero; // at kx
  let b0 = zero, b1 = zero, b2 = zero, b3 = zero; // at kx + 1 (KX = 2)
  // Byte offsets from channel g's plane to the other channels' planes of the tile: kept out of the
  // inner loop, which then moves just two pointers (more live values spill to the stack).
  const plane = f(oh * gw);
  const s1 = <usize>(imin(g + 1, last) - g) * plane, s2 = <usize>(imin(g + 2, last) - g) * plane, s3 = <usize>(imin(g + 3, last) - g) * plane;
  const skip = f(wp - gw); // from the end of one row of x to the start of the next
  for (let img = first; img < end; img++) {
    let x = xp + f(((img * inputs + i) * hp + ky) * wp + kx);
    let d = gp + f((img * outputs + g) * oh * gw);
    for (let oy = 0; oy < oh; oy++) {
      for (const rowEnd = d + f(gw); d < rowEnd; d += 16, x += 16) {
        const x0 = v128.load(x);
        const x1 = KX == 2 ? v128.load(x, 4) : x0;
        let v = v128.load(d);
        a0 = madd(a0, x0, v);
        if (KX == 2) b0 = madd(b0, x1, v);
        v = v128.load(d + s1);
        a1 = madd(a1, x0, v);
        if (KX == 2) b1 = madd(b1, x1, v);
        v = v128.load(d + s2);
        a2 = madd(a2, x0, v);
        if (KX == 2) b2 = madd(b2, x1, v);
        if (G == 4) {
          v = v128.load(d + s3);
          a3 = madd(a3, x0, v);
          if (KX == 2) b3 = madd(b3, x1, v);
        }
      }
      x += skip;
    }
  }
  const lanes = imin(G, outputs - g);
  const target = dw + f(((ky * k + kx) * inputs + i) * outputs + g);
  addLanes(target, horizontalSums(a0, a1, a2, a3), lanes);
  if (KX == 2) addLanes(target + f(inputs * outputs), horizontalSums(b0, b1, b2, b3), lanes);
}

/** [Σ lanes of r0, Σ r1, Σ r2, Σ r3]. */
@inline function horizontalSums(r0: v128, r1: v128, r2: v128, r3: v128): v128 {
  const s01 = f32x4.add(v128.shuffle<f32>(r0, r1, 0, 4, 1, 5), v128.shuffle<f32>(r0, r1, 2, 6, 3, 7));
  const s23 = f32x4.add(v128.shuffle<f32>(r2, r3, 0, 4, 1, 5), v128.shuffle<f32>(r2, r3, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(s01, s23, 0, 1, 4, 5), v128.shuffle<f32>(s01, s23, 2, 3, 6, 7));
}
