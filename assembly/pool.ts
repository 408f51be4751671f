// Max-pooling, NHWC, square windows. Only real cells are candidates (padding never wins), and
// the gradient of a window goes to its first maximum in row-major order, as TensorFlow does.
import { storeLanes, f, imin, imax } from './common';

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
        for (let cb = 0; cb < c; cb += 4) {
          let m = v128.load(x + f(((img * h + yLo) * wd + xLo) * c + cb));
          for (let iy = yLo; iy < yHi; iy++) {
            const row = x + f((img * h + iy) * wd * c + cb);
            for (let ix = xLo; ix < xHi; ix++) {
              m = f32x4.max(m, v128.load(row + f(ix * c)));
            }
          }
          storeLanes(out + f(cb), m, c - cb);
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
          let taken = i32x4.splat(0); // lanes whose maximum has been found already
          for (let iy = yLo; iy < yHi; iy++) {
            for (let ix = xLo; ix < xHi; ix++) {
              const at = f(((img * h + iy) * wd + ix) * c + cb);
              const hit = v128.andnot(f32x4.eq(v128.load(x + at), best), taken);
              taken = v128.or(taken, hit);
              storeLanes(dx + at, f32x4.add(v128.load(dx + at), v128.and(g, hit)), lanes);
            }
          }
        }
        o += c;
      }
    }
  }
}
