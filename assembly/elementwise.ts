// Elementwise maps and reductions over flat float32 buffers of `n` elements: four lanes at a
// time, then a scalar tail.
import { addLanes, f, sumLanes } from './common';

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

/** dx = dy where y > 0, else 0. y is the ReLU's output, which is > 0 exactly where its input
 *  was, so relu'(0) = 0 as in TensorFlow. */
export function relu_backward(y: usize, dy: usize, dx: usize, n: i32): void {
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(dx + f(i), v128.and(v128.load(dy + f(i)), f32x4.gt(v128.load(y + f(i)), zero)));
  for (; i < n; i++) store<f32>(dx + f(i), load<f32>(y + f(i)) > 0 ? load<f32>(dy + f(i)) : 0);
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
