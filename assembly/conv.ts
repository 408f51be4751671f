// 2-D convolution, NHWC activations, HWIO filters [k, k, cin, cout], square kernel, equal strides.
// Padding is given as the number of cells before the input (top, left); cells outside the input
// contribute 0. The SIMD lanes run over output channels (forward, filter gradient) or input
// channels (input gradient), four at a time, with a partial store for the last block.
// The geometry arguments come last in every kernel, in the same order.
import { storeLanes, addLanes, madd, f, imin, imax } from './common';

/** y = conv(x, w) + b, then max(y, 0) when `relu` is set. */
export function conv2d_forward(
  x: usize, w: usize, b: usize, y: usize, relu: bool,
  n: i32, h: i32, wd: i32, cin: i32,
  k: i32, stride: i32, padTop: i32, padLeft: i32,
  oh: i32, ow: i32, cout: i32,
): void {
  const zero = f32x4.splat(0);
  const wRow = k * cin * cout; // floats per filter row (one ky)
  let out = y;
  for (let img = 0; img < n; img++) {
    for (let oy = 0; oy < oh; oy++) {
      const iy0 = oy * stride - padTop;
      const kyLo = imax(0, -iy0), kyHi = imin(k, h - iy0);
      for (let ox = 0; ox < ow; ox++) {
        const ix0 = ox * stride - padLeft;
        const kxLo = imax(0, -ix0), kxHi = imin(k, wd - ix0);
        for (let cb = 0; cb < cout; cb += 4) {
          let acc = v128.load(b + f(cb));
          for (let ky = kyLo; ky < kyHi; ky++) {
            const xRow = x + f(((img * h + iy0 + ky) * wd + ix0) * cin);
            const wk = w + f(ky * wRow + cb);
            for (let kx = kxLo; kx < kxHi; kx++) {
              const xp = xRow + f(kx * cin);
              const wp = wk + f(kx * cin * cout);
              for (let ci = 0; ci < cin; ci++) {
                acc = madd(acc, f32x4.splat(load<f32>(xp + f(ci))), v128.load(wp + f(ci * cout)));
              }
            }
          }
          if (relu) acc = f32x4.max(acc, zero);
          storeLanes(out + f(cb), acc, cout - cb);
        }
        out += f(cout);
      }
    }
  }
}

/** dx += conv_transpose(dy, w), gathered per input cell. `wt` is the filter as [k, k, cout, cin]
 *  (see `transpose`), so that input channels are contiguous for the SIMD lanes. */
export function conv2d_backward_input(
  dy: usize, wt: usize, dx: usize,
  n: i32, h: i32, wd: i32, cin: i32,
  k: i32, stride: i32, padTop: i32, padLeft: i32,
  oh: i32, ow: i32, cout: i32,
): void {
  let out = dx;
  for (let img = 0; img < n; img++) {
    for (let iy = 0; iy < h; iy++) {
      // Window rows ky that see iy from some output row oy = (iy + padTop - ky) / stride.
      const ty = iy + padTop;
      for (let ix = 0; ix < wd; ix++) {
        const tx = ix + padLeft;
        for (let cb = 0; cb < cin; cb += 4) {
          let acc = f32x4.splat(0);
          for (let ky = ty % stride; ky < k && ky <= ty; ky += stride) {
            const oy = (ty - ky) / stride;
            if (oy >= oh) continue;
            for (let kx = tx % stride; kx < k && kx <= tx; kx += stride) {
              const ox = (tx - kx) / stride;
              if (ox >= ow) continue;
              const g = dy + f(((img * oh + oy) * ow + ox) * cout);
              const wp = wt + f((ky * k + kx) * cout * cin + cb);
              for (let co = 0; co < cout; co++) {
                acc = madd(acc, f32x4.splat(load<f32>(g + f(co))), v128.load(wp + f(co * cin)));
              }
            }
          }
          addLanes(out + f(cb), acc, cin - cb);
        }
        out += f(cin);
      }
    }
  }
}

/** dw += Σ over batch and output cells of x(window cell) ⊗ dy(output cell). */
export function conv2d_backward_filter(
  x: usize, dy: usize, dw: usize,
  n: i32, h: i32, wd: i32, cin: i32,
  k: i32, stride: i32, padTop: i32, padLeft: i32,
  oh: i32, ow: i32, cout: i32,
): void {
  for (let ky = 0; ky < k; ky++) {
    // Output rows whose window row ky falls inside the input: 0 <= oy*stride + ky - padTop < h.
    const oyLo = imax(0, (padTop - ky + stride - 1) / stride);
    const oyHi = imin(oh, lastInside(h - 1 + padTop - ky, stride));
    for (let kx = 0; kx < k; kx++) {
      const oxLo = imax(0, (padLeft - kx + stride - 1) / stride);
      const oxHi = imin(ow, lastInside(wd - 1 + padLeft - kx, stride));
      for (let ci = 0; ci < cin; ci++) {
        const target = dw + f(((ky * k + kx) * cin + ci) * cout);
        for (let cb = 0; cb < cout; cb += 4) {
          let acc = f32x4.splat(0);
          for (let img = 0; img < n; img++) {
            for (let oy = oyLo; oy < oyHi; oy++) {
              const iy = oy * stride + ky - padTop;
              const xRow = x + f((img * h + iy) * wd * cin + ci);
              const gRow = dy + f((img * oh + oy) * ow * cout + cb);
              for (let ox = oxLo; ox < oxHi; ox++) {
                const ix = ox * stride + kx - padLeft;
                acc = madd(acc, f32x4.splat(load<f32>(xRow + f(ix * cin))), v128.load(gRow + f(ox * cout)));
              }
            }
          }
          addLanes(target + f(cb), acc, cout - cb);
        }
      }
    }
  }
}

/** One past the last output index o with o * stride <= room (none when room < 0). */
@inline function lastInside(room: i32, stride: i32): i32 {
  return room < 0 ? 0 : room / stride + 1;
}
