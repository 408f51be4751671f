// Pooling, NHWC, square windows. Max-pooling: only real cells are candidates (padding never
// wins), and the gradient of a window goes to its first maximum in row-major order, as
// TensorFlow does.
import { storeLanes, addLanes, f, imin, imax } from './common';

export function maxpool_forward(
  x: usize, y: usize,
  n: i32, h: i32, wd: i32, c: i32,
  size: i32, stride: i32, padTop: i32, padLeft: i32,
  oh: i32, ow: i32,
): void {
  let out = y;
  for (let img = 0; img < n; img++) {
    for (let oy = 0; oy < oh; oy++) {
      const iy0 = oy * stride - padTop;
      const yLo = imax(0, iy0), yHi = imin(h, iy0 + size);
      for (let ox = 0; ox < ow; ox++) {
        const ix0 = ox * stride - padLeft;
        const xLo = imax(0, ix0), xHi = imin(wd, ix0 + size);
        const corner = x + f(((img * h + yLo) * wd + xLo) * c);
        const whole2x2 = yHi - yLo == 2 && xHi - xLo == 2; // the common case, unrolled
        for (let cb = 0; cb < c; cb += 4) {
          // pmax (b > a ? b : a) is one instruction on x86, unlike max; no NaN reaches here.
          let m = v128.load(corner + f(cb));
          if (whole2x2) {
            const below = corner + f(wd * c + cb);
            m = f32x4.pmax(f32x4.pmax(m, v128.load(corner + f(c + cb))), f32x4.pmax(v128.load(below), v128.load(below + f(c))));
          } else {
            for (let iy = yLo; iy < yHi; iy++) {
              const row = x + f((img * h + iy) * wd * c + cb);
              for (let ix = xLo; ix < xHi; ix++) m = f32x4.pmax(m, v128.load(row + f(ix * c)));
            }
          }
          // A whole vector even past the last channel: the extra lanes land on the next pixel,
          // written next, or in the slack after the buffer.
          v128.store(out + f(cb), m);
        }
        out += f(c);
      }
    }
  }
}

/** dx += the gradient dy of each window, routed to the window's first cell equal to its max y. */
export function maxpool_backward(
  x: usize, y: usize, dy: usize, dx: usize,
  n: i32, h: i32, wd: i32, c: i32,
  size: i32, stride: i32, padTop: i32, padLeft: i32,
  oh: i32, ow: i32,
): void {
  let o: i32 = 0; // index of the output cell's first channel
  for (let img = 0; img < n; img++) {
    for (let oy = 0; oy < oh; oy++) {
      const iy0 = oy * stride - padTop;
      const yLo = imax(0, iy0), yHi = imin(h, iy0 + size);
      for (let ox = 0; ox < ow; ox++) {
        const ix0 = ox * stride - padLeft;
        const xLo = imax(0, ix0), xHi = imin(wd, ix0 + size);
        for (let cb = 0; cb < c; cb += 4) {
          const lanes = c - cb;
          const best = v128.load(y + f(o + cb));
          const g = v128.load(dy + f(o + cb));
          const corner = f(((img * h + yLo) * wd + xLo) * c + cb);
          let taken = i32x4.splat(0); // lanes whose maximum has been found already
          if (yHi - yLo == 2 && xHi - xLo == 2) { // the common case, unrolled (row-major order)
            const right = f(c), below = f(wd * c);
            taken = route(x, dx, corner, best, g, taken, lanes);
            taken = route(x, dx, corner + right, best, g, taken, lanes);
            taken = route(x, dx, corner + below, best, g, taken, lanes);
            route(x, dx, corner + below + right, best, g, taken, lanes);
          } else {
            for (let iy = yLo; iy < yHi; iy++) {
              for (let ix = xLo; ix < xHi; ix++) taken = route(x, dx, f(((img * h + iy) * wd + ix) * c + cb), best, g, taken, lanes);
            }
          }
        }
        o += c;
      }
    }
  }
}

/** One cell of a window, in row-major order: it takes the gradient g in the lanes where it
 *  equals the window's maximum and no earlier cell did; returns the lanes taken so far. */
@inline function route(x: usize, dx: usize, at: usize, best: v128, g: v128, taken: v128, lanes: i32): v128 {
  const hit = v128.andnot(f32x4.eq(v128.load(x + at), best), taken);
  storeLanes(dx + at, f32x4.add(v128.load(dx + at), v128.and(g, hit)), lanes);
  return v128.or(taken, hit);
}

// Average pooling: a window's mean over its real cells only (padding is not counted, as in
// TensorFlow's avg_pool), so its backward spreads dy/count over those cells. A global pool is
// one window over an image seen as a single row of h·w cells.

export function avgpool_forward(
  x: usize, y: usize,
  n: i32, h: i32, wd: i32, c: i32,
  size: i32, stride: i32, padTop: i32, padLeft: i32,
  oh: i32, ow: i32,
): void {
  averageWindows(false, x, y, n, h, wd, c, size, stride, padTop, padLeft, oh, ow);
}

/** dx += dy/count on each real cell of the window; overlapping windows add. */
export function avgpool_backward(
  dy: usize, dx: usize,
  n: i32, h: i32, wd: i32, c: i32,
  size: i32, stride: i32, padTop: i32, padLeft: i32,
  oh: i32, ow: i32,
): void {
  averageWindows(true, dx, dy, n, h, wd, c, size, stride, padTop, padLeft, oh, ow);
}

/** Walks the windows over the real cells of `x` (the input, or its gradient when `backward`),
 *  one output cell of `y` (the output, or its gradient) each: forward, y = the window's mean;
 *  backward, each cell of the window gets y/count added. `backward` is a constant once inlined. */
@inline function averageWindows(
  backward: bool, x: usize, y: usize,
  n: i32, h: i32, wd: i32, c: i32,
  size: i32, stride: i32, padTop: i32, padLeft: i32,
  oh: i32, ow: i32,
): void {
  let out = y;
  for (let img = 0; img < n; img++) {
    for (let oy = 0; oy < oh; oy++) {
      const iy0 = oy * stride - padTop;
      const yLo = imax(0, iy0), yHi = imin(h, iy0 + size);
      for (let ox = 0; ox < ow; ox++) {
        const ix0 = ox * stride - padLeft;
        const xLo = imax(0, ix0), xHi = imin(wd, ix0 + size);
        const inverse = f32x4.splat(1 / <f32>((yHi - yLo) * (xHi - xLo)));
        for (let cb = 0; cb < c; cb += 4) {
          if (backward) {
            const share = f32x4.mul(v128.load(out + f(cb)), inverse);
            for (let iy = yLo; iy < yHi; iy++) {
              const row = x + f((img * h + iy) * wd * c + cb);
              for (let ix = xLo; ix < xHi; ix++) addLanes(row + f(ix * c), share, c - cb);
            }
          } else {
            let sum = f32x4.splat(0);
            for (let iy = yLo; iy < yHi; iy++) {
              const row = x + f((img * h + iy) * wd * c + cb);
              for (let ix = xLo; ix < xHi; ix++) sum = f32x4.add(sum, v128.load(row + f(ix * c)));
            }
            // A whole vector past the last channel, as in maxpool_forward.
            v128.store(out + f(cb), f32x4.mul(sum, inverse));
          }
        }
        out += f(c);
      }
    }
  }
}
