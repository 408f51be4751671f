// Elementwise maps and reductions over flat float32 buffers of `n` elements: four lanes at a
// time, then a scalar tail or a partial vector.
import { addLanes, storeLanes, madd, f, sumLanes } from './common';

/** out = a + b */
export function add(a: usize, b: usize, out: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(out + f(i), f32x4.add(v128.load(a + f(i)), v128.load(b + f(i))));
  for (; i < n; i++) store<f32>(out + f(i), load<f32>(a + f(i)) + load<f32>(b + f(i)));
}

/** y += alpha * x: gradient accumulation and the SGD step. */
export function axpy(alpha: f32, x: usize, y: usize, n: i32): void {
  const va = f32x4.splat(alpha);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(y + f(i), f32x4.add(v128.load(y + f(i)), f32x4.mul(va, v128.load(x + f(i)))));
  for (; i < n; i++) store<f32>(y + f(i), load<f32>(y + f(i)) + alpha * load<f32>(x + f(i)));
}

/** y[i] = value for all i. */
export function fill(y: usize, value: f32, n: i32): void {
  const v = f32x4.splat(value);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(y + f(i), v);
  for (; i < n; i++) store<f32>(y + f(i), value);
}

/** Σ a[i]·b[i], four partial sums combined at the end. */
export function dot(a: usize, b: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(a + f(i)), v128.load(b + f(i))));
  let s = sumLanes(acc);
  for (; i < n; i++) s += load<f32>(a + f(i)) * load<f32>(b + f(i));
  return s;
}

/** dx = dy where 0 < y < ceiling, else 0, for a ReLU capped at `ceiling` (Infinity: none; 6:
 *  ReLU6) fused into a layer. y, its output, is inside exactly where its input was, so the
 *  derivative is 0 at both ends, as TensorFlow's. */
export function relu_backward(y: usize, dy: usize, dx: usize, n: i32, ceiling: f32): void {
  const zero = f32x4.splat(0), top = f32x4.splat(ceiling);
  for (let i = 0; i < n; i += 4) {
    const v = v128.load(y + f(i));
    storeLanes(dx + f(i), v128.and(v128.load(dy + f(i)), v128.and(f32x4.gt(v, zero), f32x4.lt(v, top))), n - i);
  }
}

// Activations: kinds numbered in the order of ActivationKind in src/core/ops.ts. The kind is
// tested at every vector: a branch always taken the same way, cheap next to the memory traffic.
const RELU = 0, RELU6 = 1, LEAKY_RELU = 2, ELU = 3, SIGMOID = 4, TANH = 5;

// eˣ = 2ⁿ·eʳ with n = round(x/ln 2) and |r| ≤ ln2/2, r taken in two steps (ln 2 = HI + LO, HI
// with few bits, so that n·HI is exact); eʳ − 1 = r + r²·P(r), P the minimax polynomial of the
// Cephes library's expf (relative error near 1e-7). Adding ROUNDER (1.5·2²³) rounds to an
// integer, which is then the low bits of the sum. Below EXP_LOW, eˣ is not a normal float.
const EXP_LOW = 0, LOG2E = 1, ROUNDER = 2, LN2_HI = 3, LN2_LO = 4, P0 = 5, ONE = 11, TWO = 12, FOUR = 13;
const CONSTANTS = memory.data<f32>([
  -87.33, 1.44269504, 12582912, 0.693359375, -2.12194440e-4,
  1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1,
  1, 2, 4,
]);

/** A constant of the table, in every lane. V8 builds a v128.const anew at each use, in several
 *  instructions, and does not hoist it out of loops; a load from the table is one. */
@inline function k(i: i32): v128 {
  return v128.load32_splat(CONSTANTS + (<usize>i << 2));
}

/** eˣ − 1 when `minusOne`, else eˣ, lane by lane, for x ≤ 88 (the activations pass x ≤ 0);
 *  below EXP_LOW, eˣ is 0 and eˣ − 1 is −1. eˣ − 1 is formed as 2ⁿ·(eʳ − 1) + (2ⁿ − 1): exact near
 *  0 (n = 0), and with no worse than a halving cancellation elsewhere. */
@inline function exp(x: v128, minusOne: bool): v128 {
  const xc = f32x4.pmax(x, k(EXP_LOW));
  const t = madd(k(ROUNDER), xc, k(LOG2E));
  const n = f32x4.sub(t, k(ROUNDER));
  const r = f32x4.sub(f32x4.sub(xc, f32x4.mul(n, k(LN2_HI))), f32x4.mul(n, k(LN2_LO)));
  // P by Estrin's scheme: a shorter chain of dependent operations than Horner's.
  const r2 = f32x4.mul(r, r);
  const p01 = madd(k(P0 + 1), k(P0), r), p23 = madd(k(P0 + 3), k(P0 + 2), r), p45 = madd(k(P0 + 5), k(P0 + 4), r);
  const p = madd(p45, madd(p23, p01, r2), r2);
  const em1r = madd(r, r2, p);
  const scale = i32x4.shl(i32x4.add(t, i32x4.splat(127)), 23); // 2ⁿ
  if (minusOne) return madd(f32x4.sub(scale, k(ONE)), scale, em1r);
  return v128.andnot(madd(scale, scale, em1r), f32x4.lt(x, k(EXP_LOW)));
}

/** σ(|x|) = 1/(1 + e), given e = e^−|x|. */
@inline function logistic(e: v128): v128 {
  return f32x4.div(k(ONE), f32x4.add(k(ONE), e));
}

/** The activation `kind` of x. */
@inline function activate(kind: i32, x: v128, alpha: v128): v128 {
  const zero = f32x4.splat(0);
  const positive = f32x4.gt(x, zero);
  if (kind == RELU) return f32x4.pmax(x, zero);
  if (kind == RELU6) return f32x4.pmin(f32x4.pmax(x, zero), f32x4.splat(6));
  if (kind == LEAKY_RELU) return v128.bitselect(x, f32x4.mul(alpha, x), positive);
  if (kind == ELU) return v128.bitselect(x, f32x4.mul(alpha, exp(f32x4.pmin(x, zero), true)), positive);
  const sign = f32x4.splat(-0.0);
  const negAbs = v128.or(x, sign); // −|x|: only decaying exponentials, which cannot overflow
  if (kind == SIGMOID) {
    // σ(x) = σ(|x|) for x ≥ 0, e^−|x|·σ(|x|) below.
    const e = exp(negAbs, false), q = logistic(e);
    return v128.bitselect(f32x4.mul(e, q), q, f32x4.lt(x, zero));
  }
  // tanh|x| = −m/(2 + m) with m = e^−2|x| − 1: no cancellation near 0; then x's sign.
  const m = exp(f32x4.add(negAbs, negAbs), true);
  const t = f32x4.div(f32x4.neg(m), f32x4.add(k(TWO), m));
  return v128.or(t, v128.and(x, sign));
}

/** dy times the derivative of activation `kind` at x, whose output was y: TensorFlow's values,
 *  kinks included. Where TensorFlow forms the slopes from y (α·eˣ = y + α, σ′ = y(1 − y),
 *  tanh′ = 1 − y²) they cancel where the slope is small; here they come from x instead. */
@inline function derivative(kind: i32, x: v128, y: v128, dy: v128, alpha: v128): v128 {
  const zero = f32x4.splat(0);
  if (kind == RELU) return v128.and(dy, f32x4.gt(y, zero)); // y > 0 exactly where x > 0
  if (kind == RELU6) return v128.and(dy, v128.and(f32x4.gt(x, zero), f32x4.lt(x, f32x4.splat(6))));
  if (kind == LEAKY_RELU) return v128.bitselect(dy, f32x4.mul(alpha, dy), f32x4.gt(x, zero));
  if (kind == ELU) return v128.bitselect(dy, f32x4.mul(dy, f32x4.mul(alpha, exp(f32x4.pmin(x, zero), false))), f32x4.gt(x, zero));
  // σ′(x) = σ(|x|)·σ(−|x|) = e·σ(|x|)² with e = e^−|x|, and tanh′(x) = 4σ′(2x).
  const negAbs = v128.or(x, f32x4.splat(-0.0));
  const e = exp(kind == SIGMOID ? negAbs : f32x4.add(negAbs, negAbs), false), q = logistic(e);
  const slope = f32x4.mul(f32x4.mul(e, q), q);
  return f32x4.mul(dy, kind == SIGMOID ? slope : f32x4.mul(k(FOUR), slope));
}

/** dx (+)= dy·activation′: added when `accumulate`, else written. */
@inline function derivativeLoop(kind: i32, x: usize, y: usize, dy: usize, dx: usize, n: i32, alpha: f32, accumulate: bool): void {
  const a = f32x4.splat(alpha);
  for (let i = 0; i < n; i += 4) {
    const g = derivative(kind, v128.load(x + f(i)), v128.load(y + f(i)), v128.load(dy + f(i)), a);
    if (accumulate) addLanes(dx + f(i), g, n - i);
    else storeLanes(dx + f(i), g, n - i);
  }
}

/** y = the activation `kind` of x; `alpha` is leaky ReLU's slope below 0, ELU's scale. */
export function activation_forward(x: usize, y: usize, n: i32, kind: i32, alpha: f32): void {
  const a = f32x4.splat(alpha);
  for (let i = 0; i < n; i += 4) storeLanes(y + f(i), activate(kind, v128.load(x + f(i)), a), n - i);
}

/** dx += dy·activation′(x), y the forward output; dx = … when not `accumulate`. */
export function activation_backward(x: usize, y: usize, dy: usize, dx: usize, accumulate: bool, n: i32, kind: i32, alpha: f32): void {
  derivativeLoop(kind, x, y, dy, dx, n, alpha, accumulate);
}

/** out[c] += Σ_r a[r, c] over a [rows, cols]: the gradient of a bias added to every row. */
export function sum_rows(a: usize, out: usize, rows: i32, cols: i32): void {
  for (let cb = 0; cb < cols; cb += 4) {
    let acc = f32x4.splat(0);
    for (let r = 0; r < rows; r++) acc = f32x4.add(acc, v128.load(a + f(r * cols + cb)));
    addLanes(out + f(cb), acc, cols - cb);
  }
}

/** out[ch] += the sum of plane ch of every image in p ([n, c, count], count a multiple of 4). */
export function sum_planes(p: usize, out: usize, n: i32, c: i32, count: i32): void {
  for (let ch = 0; ch < c; ch++) {
    let acc = f32x4.splat(0);
    for (let img = 0; img < n; img++) {
      for (let q = p + f((img * c + ch) * count), end = q + f(count); q < end; q += 16) acc = f32x4.add(acc, v128.load(q));
    }
    store<f32>(out + f(ch), load<f32>(out + f(ch)) + sumLanes(acc));
  }
}

/** One Adam update of w from its gradient g, with moment buffers m and v. `lrT` is the learning
 *  rate with both bias corrections folded in, as TensorFlow's ApplyAdam computes it. */
export function adam(w: usize, g: usize, m: usize, v: usize, n: i32, lrT: f32, beta1: f32, beta2: f32, epsilon: f32): void {
  const b1 = f32x4.splat(beta1), c1 = f32x4.splat(1 - beta1);
  const b2 = f32x4.splat(beta2), c2 = f32x4.splat(1 - beta2);
  const lr = f32x4.splat(lrT), eps = f32x4.splat(epsilon);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const gi = v128.load(g + f(i));
    const mi = f32x4.add(f32x4.mul(b1, v128.load(m + f(i))), f32x4.mul(c1, gi));
    const vi = f32x4.add(f32x4.mul(b2, v128.load(v + f(i))), f32x4.mul(c2, f32x4.mul(gi, gi)));
    v128.store(m + f(i), mi);
    v128.store(v + f(i), vi);
    v128.store(w + f(i), f32x4.sub(v128.load(w + f(i)), f32x4.div(f32x4.mul(lr, mi), f32x4.add(f32x4.sqrt(vi), eps))));
  }
  for (; i < n; i++) {
    const gi = load<f32>(g + f(i));
    const mi = beta1 * load<f32>(m + f(i)) + (1 - beta1) * gi;
    const vi = beta2 * load<f32>(v + f(i)) + (1 - beta2) * gi * gi;
    store<f32>(m + f(i), mi);
    store<f32>(v + f(i), vi);
    store<f32>(w + f(i), load<f32>(w + f(i)) - (lrT * mi) / (Mathf.sqrt(vi) + epsilon));
  }
}

/** v = min(max(v, lower), upper), elementwise: keeps a perturbation inside the pixel box. */
export function clamp(v: usize, lower: usize, upper: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    v128.store(v + f(i), f32x4.min(f32x4.max(v128.load(v + f(i)), v128.load(lower + f(i))), v128.load(upper + f(i))));
  }
  for (; i < n; i++) store<f32>(v + f(i), min(max(load<f32>(v + f(i)), load<f32>(lower + f(i))), load<f32>(upper + f(i))));
}

/** A [rows, cols] block of rows `srcStride` floats apart copied (or, when `accumulate`, added)
 *  into rows `dstStride` apart: concatenation along channels, zero padding, and their gradients. */
@inline function moveBlock(src: usize, dst: usize, rows: i32, cols: i32, srcStride: i32, dstStride: i32, accumulate: bool): void {
  for (let r = 0; r < rows; r++) {
    const s = src + f(r * srcStride), d = dst + f(r * dstStride);
    for (let i = 0; i < cols; i += 4) {
      if (accumulate) addLanes(d + f(i), v128.load(s + f(i)), cols - i);
      else storeLanes(d + f(i), v128.load(s + f(i)), cols - i);
    }
  }
}

/** dst block = src block (see moveBlock). */
export function copy_block(src: usize, dst: usize, rows: i32, cols: i32, srcStride: i32, dstStride: i32): void {
  moveBlock(src, dst, rows, cols, srcStride, dstStride, false);
}

/** dst block += src block (see moveBlock). */
export function add_block(src: usize, dst: usize, rows: i32, cols: i32, srcStride: i32, dstStride: i32): void {
  moveBlock(src, dst, rows, cols, srcStride, dstStride, true);
}

/** y[r, c] = x[r, c]·scale[c] + shift[c] over x [rows, cols]. */
export function affine_forward(x: usize, scale: usize, shift: usize, y: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const xr = x + f(r * cols), yr = y + f(r * cols);
    for (let cb = 0; cb < cols; cb += 4) {
      storeLanes(yr + f(cb), madd(v128.load(shift + f(cb)), v128.load(xr + f(cb)), v128.load(scale + f(cb))), cols - cb);
    }
  }
}

/** dx += dy·scale[c] and dscale[c] += Σ_r dy·x, each skipped when its pointer is 0 (the shift's
 *  gradient is sum_rows of dy). */
export function affine_backward(x: usize, scale: usize, dy: usize, dx: usize, dscale: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const o = f(r * cols);
    for (let cb = 0; cb < cols; cb += 4) {
      const g = v128.load(dy + o + f(cb)), lanes = cols - cb;
      if (dx) addLanes(dx + o + f(cb), f32x4.mul(g, v128.load(scale + f(cb))), lanes);
      if (dscale) addLanes(dscale + f(cb), f32x4.mul(g, v128.load(x + o + f(cb))), lanes);
    }
  }
}
