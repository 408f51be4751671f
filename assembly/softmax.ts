// Log-softmax over the last axis of x [rows, cols], written to stay exact when one class takes
// nearly all the probability: there 1 − p of that class is far below float32's epsilon, so it is
// never formed as a difference, only as the sum of the other classes' probabilities.
import { f } from './common';

/** The column of the row's largest value (the first, on ties). */
@inline function argmaxOf(row: usize, cols: i32): i32 {
  let best = 0;
  let m = load<f32>(row);
  for (let c = 1; c < cols; c++) {
    const v = load<f32>(row + f(c));
    if (v > m) {
      m = v;
      best = c;
    }
  }
  return best;
}

/** y = (x − m) − log(1 + Σ_{c≠a} exp(x_c − m)) per row, m = x_a the largest: log1p keeps the
 *  log-probability of a confident class (about −Σ others) instead of rounding it to 0. */
export function log_softmax_forward(x: usize, y: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const xr = x + f(r * cols), yr = y + f(r * cols);
    const a = argmaxOf(xr, cols);
    const m = load<f32>(xr + f(a));
    let others: f32 = 0;
    for (let c = 0; c < cols; c++) if (c != a) others += Mathf.exp(load<f32>(xr + f(c)) - m);
    const logSum = Mathf.log1p(others);
    for (let c = 0; c < cols; c++) store<f32>(yr + f(c), (load<f32>(xr + f(c)) - m) - logSum);
  }
}

/** dx += dy − p·Σdy per row, with p = exp(y), rearranged (Σp = 1) as
 *  dx_c += dy_c·(1 − p_c) − p_c·(Σdy − dy_c), where 1 − p_c of the most probable class is the
 *  sum of the others' p (every other p is at most ½, so its 1 − p loses nothing). For the
 *  cross-entropy (dy = −one-hot) the own class then gets −Σ others' p, not p_own − 1. */
export function log_softmax_backward(y: usize, dy: usize, dx: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const yr = y + f(r * cols), gr = dy + f(r * cols), dxr = dx + f(r * cols);
    const a = argmaxOf(yr, cols);
    let sum: f32 = 0, others: f32 = 0;
    for (let c = 0; c < cols; c++) {
      sum += load<f32>(gr + f(c));
      if (c != a) others += Mathf.exp(load<f32>(yr + f(c)));
    }
    for (let c = 0; c < cols; c++) {
      const g = load<f32>(gr + f(c)), p = Mathf.exp(load<f32>(yr + f(c)));
      const rest = c == a ? others : 1 - p;
      store<f32>(dxr + f(c), load<f32>(dxr + f(c)) + (g * rest - p * (sum - g)));
    }
  }
}
