// Log-softmax over the last axis of x [rows, cols].
import { f } from './common';

/** y = x - max(x) - log Σ exp(x - max(x)), per row. */
export function log_softmax_forward(x: usize, y: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const xr = x + f(r * cols), yr = y + f(r * cols);
    let m = load<f32>(xr);
    for (let c = 1; c < cols; c++) m = max(m, load<f32>(xr + f(c)));
    let s: f32 = 0;
    for (let c = 0; c < cols; c++) s += Mathf.exp(load<f32>(xr + f(c)) - m);
    const shift = m + Mathf.log(s);
    for (let c = 0; c < cols; c++) store<f32>(yr + f(c), load<f32>(xr + f(c)) - shift);
  }
}

/** dx += dy - softmax(x) · Σ dy, per row, with softmax(x) = exp(y). */
export function log_softmax_backward(y: usize, dy: usize, dx: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const yr = y + f(r * cols), gr = dy + f(r * cols), dxr = dx + f(r * cols);
    let s: f32 = 0;
    for (let c = 0; c < cols; c++) s += load<f32>(gr + f(c));
    for (let c = 0; c < cols; c++) {
      store<f32>(dxr + f(c), load<f32>(dxr + f(c)) + load<f32>(gr + f(c)) - Mathf.exp(load<f32>(yr + f(c))) * s);
    }
  }
}
