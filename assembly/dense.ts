// Fully connected layer y = x·w + b with x [n, in], w [in, out] (TensorFlow's layout), y [n, out].
import { storeLanes, addLanes, madd, f } from './common';

/** y = x·w + b, then max(y, 0) when `relu` is set. */
export function dense_forward(x: usize, w: usize, b: usize, y: usize, n: i32, inputs: i32, outputs: i32, relu: bool): void {
  const zero = f32x4.splat(0);
  for (let r = 0; r < n; r++) {
    const xr = x + f(r * inputs);
    const yr = y + f(r * outputs);
    for (let ob = 0; ob < outputs; ob += 4) {
      let acc = v128.load(b + f(ob));
      for (let i = 0; i < inputs; i++) {
        acc = madd(acc, f32x4.splat(load<f32>(xr + f(i))), v128.load(w + f(i * outputs + ob)));
      }
      if (relu) acc = f32x4.pmax(acc, zero);
      storeLanes(yr + f(ob), acc, outputs - ob);
    }
  }
}

/** dx += dy·wᵀ, with `wt` = wᵀ [out, in] (see `transpose`) so that inputs run along the lanes. */
export function dense_backward_input(dy: usize, wt: usize, dx: usize, n: i32, inputs: i32, outputs: i32): void {
  for (let r = 0; r < n; r++) {
    const gr = dy + f(r * outputs);
    const dxr = dx + f(r * inputs);
    for (let ib = 0; ib < inputs; ib += 4) {
      let acc = f32x4.splat(0);
      for (let o = 0; o < outputs; o++) {
        acc = madd(acc, f32x4.splat(load<f32>(gr + f(o))), v128.load(wt + f(o * inputs + ib)));
      }
      addLanes(dxr + f(ib), acc, inputs - ib);
    }
  }
}

/** dw += xᵀ·dy. */
export function dense_backward_weights(x: usize, dy: usize, dw: usize, n: i32, inputs: i32, outputs: i32): void {
  for (let i = 0; i < inputs; i++) {
    for (let ob = 0; ob < outputs; ob += 4) {
      let acc = f32x4.splat(0);
      for (let r = 0; r < n; r++) {
        acc = madd(acc, f32x4.splat(load<f32>(x + f(r * inputs + i))), v128.load(dy + f(r * outputs + ob)));
      }
      addLanes(dw + f(i * outputs + ob), acc, outputs - ob);
    }
  }
}
