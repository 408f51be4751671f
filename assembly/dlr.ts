// The difference-of-logits-ratio loss (Croce & Hein, ICML 2020, §4), per row of logits z
// [rows, cols] with π the classes by decreasing logit (the first on ties):
//   untargeted  −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3 + 1e-12)
//   targeted    −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2 + 1e-12)
// The label y and target t come as one-hot rows (targets 0: untargeted). Rows are a few logits
// each, so the work is scalar, in float64.
import { f } from './common';

/** The parts of a row's loss, set by `decompose`: −num/den, num = z_y − z_o. */
let label = 0, against = 0, first = 0, third = 0, fourth = 0;
let num: f64 = 0, den: f64 = 0;

/** The column holding the row's 1. */
@inline function hot(row: usize, cols: i32): i32 {
  for (let c = 0; c < cols; c++) if (load<f32>(row + f(c)) > 0.5) return c;
  return 0;
}

/** The largest column of the row other than `a`, `b` and `c` (the first on ties). */
function largest(z: usize, cols: i32, a: i32, b: i32, c: i32): i32 {
  let best = -1;
  for (let k = 0; k < cols; k++) {
    if (k == a || k == b || k == c) continue;
    if (best < 0 || load<f32>(z + f(k)) > load<f32>(z + f(best))) best = k;
  }
  return best;
}

function decompose(z: usize, labels: usize, targets: usize, cols: i32): void {
  label = hot(labels, cols);
  first = largest(z, cols, -1, -1, -1);
  const second = largest(z, cols, first, -1, -1);
  third = largest(z, cols, first, second, -1);
  const zf = <f64>load<f32>(z + f(first)), z3 = <f64>load<f32>(z + f(third));
  if (targets) {
    against = hot(targets, cols);
    fourth = largest(z, cols, first, second, third);
    den = zf - (z3 + <f64>load<f32>(z + f(fourth))) / 2 + 1e-12;
  } else {
    against = first == label ? second : first;
    den = zf - z3 + 1e-12;
  }
  num = <f64>load<f32>(z + f(label)) - <f64>load<f32>(z + f(against));
}

/** y[r] = the loss of row r. Untargeted needs cols ≥ 3, targeted cols ≥ 4. */
export function dlr_forward(z: usize, labels: usize, targets: usize, y: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    decompose(z + f(r * cols), labels + f(r * cols), targets ? targets + f(r * cols) : 0, cols);
    store<f32>(y + f(r), <f32>(-num / den));
  }
}

/** dz += dy[r]·∂loss_r/∂z: −1/den on z_y, +1/den on z_o, num/den² on z_π1 and −num/den² on
 *  z_π3 (shared half and half with z_π4 when targeted). */
export function dlr_backward(z: usize, labels: usize, targets: usize, dy: usize, dz: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const row = dz + f(r * cols);
    decompose(z + f(r * cols), labels + f(r * cols), targets ? targets + f(r * cols) : 0, cols);
    const g = <f64>load<f32>(dy + f(r));
    const a = g / den, b = (g * num) / (den * den);
    // Summed in float64 per column, as the classes may coincide (y = π1, say).
    for (let c = 0; c < cols; c++) {
      let v: f64 = 0;
      if (c == label) v -= a;
      if (c == against) v += a;
      if (c == first) v += b;
      if (targets) {
        if (c == third || c == fourth) v -= b / 2;
      } else if (c == third) v -= b;
      if (v != 0) store<f32>(row + f(c), <f32>(<f64>load<f32>(row + f(c)) + v));
    }
  }
}
