// The ops of the network and its losses, each forward call next to its backward rule. An op
// takes its inputs, records a step on the tape and returns its output; backward rules add
// (never overwrite) into the gradients of the inputs that have one.
import type { Tensor } from './engine.js';
import type { Tape } from './tape.js';

export type Padding = 'same' | 'valid';

/** Output size and cells of padding before the input, along one axis, exactly as TensorFlow:
 *  SAME pads max((out−1)·s + k − n, 0) cells, the smaller half before. A dilated window
 *  (taps `dilation` cells apart) spans (k−1)·dilation + 1 cells. */
export function window(n: number, k: number, stride: number, padding: Padding, dilation = 1): { out: number; before: number } {
  const span = (k - 1) * dilation + 1;
  if (padding === 'valid') return { out: Math.ceil((n - span + 1) / stride), before: 0 };
  const out = Math.ceil(n / stride);
  return { out, before: Math.floor(Math.max((out - 1) * stride + span - n, 0) / 2) };
}

/** A number read by the tape at every replay, so it can change between runs (β, a loss weight). */
export class Scalar {
  constructor(public value: number) {}
}

export function add(tape: Tape, a: Tensor, b: Tensor): Tensor {
  const k = tape.engine.kernels;
  const y = tape.output(a.shape, [a, b]);
  tape.record(y, {
    forward: () => k.add(a.ptr, b.ptr, y.ptr, y.size),
    backward: () => {
      if (a.grad) k.axpy(1, y.grad!.ptr, a.grad.ptr, y.size);
      if (b.grad) k.axpy(1, y.grad!.ptr, b.grad.ptr, y.size);
    },
  });
  return y;
}

/** factor · a */
export function scale(tape: Tape, a: Tensor, factor: Scalar): Tensor {
  const k = tape.engine.kernels;
  const y = tape.output(a.shape, [a]);
  tape.record(y, {
    forward: () => {
      k.fill(y.ptr, 0, y.size);
      k.axpy(factor.value, a.ptr, y.ptr, y.size);
    },
    backward: () => k.axpy(factor.value, y.grad!.ptr, a.grad!.ptr, y.size),
  });
  return y;
}

/** Σ a·b, a scalar. */
export function dot(tape: Tape, a: Tensor, b: Tensor): Tensor {
  const k = tape.engine.kernels;
  const y = tape.output([], [a, b]);
  tape.record(y, {
    forward: () => k.fill(y.ptr, k.dot(a.ptr, b.ptr, a.size), 1),
    backward: () => {
      const g = tape.engine.read(y.grad!.ptr);
      if (a.grad) k.axpy(g, b.ptr, a.grad.ptr, a.size);
      if (b.grad) k.axpy(g, a.ptr, b.grad.ptr, b.size);
    },
  });
  return y;
}

/** Σ a² / 2, TensorFlow's l2_loss. */
export function l2Loss(tape: Tape, a: Tensor): Tensor {
  const k = tape.engine.kernels;
  const y = tape.output([], [a]);
  tape.record(y, {
    forward: () => k.fill(y.ptr, k.dot(a.ptr, a.ptr, a.size) / 2, 1),
    backward: () => k.axpy(tape.engine.read(y.grad!.ptr), a.ptr, a.grad!.ptr, a.size),
  });
  return y;
}

/** log_softmax over the last axis. */
export function logSoftmax(tape: Tape, x: Tensor): Tensor {
  const k = tape.engine.kernels;
  const cols = x.shape[x.shape.length - 1];
  const rows = x.size / cols;
  const y = tape.output(x.shape, [x]);
  tape.record(y, {
    forward: () => k.log_softmax_forward(x.ptr, y.ptr, rows, cols),
    backward: () => k.log_softmax_backward(y.ptr, y.grad!.ptr, x.grad!.ptr, rows, cols),
  });
  return y;
}

/** weight · −Σ labels·log_softmax(logits): the cross-entropy of each row of `logits` against its
 *  row of `labels` (one-hot, or any distribution), summed and weighted (1/n for a mean). Built
 *  on logSoftmax, whose kernels stay exact when one class holds nearly all the probability. */
export function crossEntropy(tape: Tape, logits: Tensor, labels: Tensor, weight = 1): Tensor {
  return scale(tape, dot(tape, labels, logSoftmax(tape, logits)), new Scalar(-weight));
}

/** The gradient reaching the pre-activation of a layer with a fused ReLU (or none). */
function activationGrad(tape: Tape, y: Tensor, relu: boolean): () => number {
  if (!relu || !y.grad) return () => y.grad!.ptr;
  const pre = tape.scratch(y.size);
  return () => {
    tape.engine.kernels.relu_backward(y.ptr, y.grad!.ptr, pre, y.size);
    return pre;
  };
}

/** A copy of the weights `w` in another layout, made into memory of `count` floats by `make`.
 *  Weights without a gradient are constants of the tape (an attack's network) that change only
 *  through write(): the copy is made at first use and after a write; weights being trained
 *  change every step, so theirs is made at every use. */
function derived(tape: Tape, w: Tensor, count: number, make: (dst: number) => void): () => number {
  const dst = tape.scratch(count);
  let made = -1;
  return () => {
    if (w.grad || made !== w.version) make(dst);
    made = w.version;
    return dst;
  };
}

export interface Conv2dOptions {
  stride: number;
  padding: Padding;
  relu: boolean;
  /** Cells between the taps of the window (TensorFlow's dilation_rate); 1 by default. */
  dilation?: number;
}

/** x [n, h, w, cin] ⊛ w [k, k, cin, cout] + b [cout], optionally followed by ReLU; the window's
 *  taps are `dilation` cells apart. */
export function conv2d(tape: Tape, x: Tensor, w: Tensor, b: Tensor, { stride, padding, relu, dilation = 1 }: Conv2dOptions): Tensor {
  if (!(Number.isInteger(dilation) && dilation >= 1)) throw new Error(`conv2d: the dilation must be a whole number ≥ 1, not ${dilation}`);
  const [n, h, wd, cin] = x.shape;
  const [k, , , cout] = w.shape;
  const rows = window(h, k, stride, padding, dilation), cols = window(wd, k, stride, padding, dilation);
  const y = tape.output([n, rows.out, cols.out, cout], [x, w, b]);
  // A 1×1 window of stride 1 makes every output cell a row of a matrix product.
  if (k === 1 && stride === 1) return matmul(tape, x, w, b, y, relu, n * h * wd, cin, cout);
  const geometry = [n, h, wd, cin, k, stride, dilation, rows.before, cols.before, rows.out, cols.out, cout] as const;
  // Planar copies keep their lanes busy whatever the channels; from 32 of them in and out, the
  // product over windows is faster (1.2–1.45× from 64, measured).
  if (stride === 1 && dilation === 1 && Math.min(cin, cout) < 32) return conv2dStride1(tape, x, w, b, y, relu, geometry);
  return conv2dWindows(tape, x, w, b, y, relu, geometry);
}

type ConvGeometry = readonly [
  n: number, h: number, wd: number, cin: number, k: number, stride: number, dilation: number,
  top: number, left: number, oh: number, ow: number, cout: number,
];

/** Any stride and dilation: the product of the windows, laid out as rows, with the filter (see
 *  assembly/conv.ts). */
function conv2dWindows(tape: Tape, x: Tensor, w: Tensor, b: Tensor, y: Tensor, relu: boolean, geometry: ConvGeometry): Tensor {
  const kn = tape.engine.kernels;
  const [n, , , cin, k, , , , , oh, ow, cout] = geometry;
  const preGrad = activationGrad(tape, y, relu);
  const width = k * k * cin;
  const packed = derived(tape, w, kn.panels_size(width, cout), (wp) => kn.pack_panels(w.ptr, cout, 1, width, cout, wp));
  const transposed = x.grad ? derived(tape, w, kn.panels_size(cout, width), (wp) => kn.pack_panels(w.ptr, 1, cout, cout, width, wp)) : null;
  const work = tape.scratch(kn.conv2d_windows_work(k, cin, cout, n * oh * ow));
  // The geometry is passed last to every kernel call: a spread at the end of the arguments allocates nothing.
  tape.record(y, {
    forward: () => kn.conv2d_windows_forward(x.ptr, packed(), b.ptr, y.ptr, relu, work, ...geometry),
    backward: () => {
      const g = preGrad();
      if (x.grad) kn.conv2d_windows_backward_input(g, transposed!(), x.grad.ptr, work, ...geometry);
      if (w.grad) kn.conv2d_windows_backward_filter(x.ptr, g, w.grad.ptr, work, ...geometry);
      if (b.grad) kn.sum_rows(g, b.grad.ptr, y.size / cout, cout);
    },
  });
  return y;
}

/** Stride 1, no dilation, few channels: planar, zero-padded copies (see assembly/conv.ts); the
 *  input gradient is a stride-1 convolution of dy with the flipped filter, through the same kernels. */
function conv2dStride1(tape: Tape, x: Tensor, w: Tensor, b: Tensor, y: Tensor, relu: boolean, geometry: ConvGeometry): Tensor {
  const kn = tape.engine.kernels;
  const [n, h, wd, cin, k, , , top, left, oh, ow, cout] = geometry;
  const packed = (inputs: number, outputs: number, flip: boolean) =>
    derived(tape, w, Math.ceil(outputs / 4) * 4 * inputs * k * k, (wq) => kn.pack_filter(w.ptr, wq, k, inputs, outputs, flip));
  // Planes are as wide as the output rounded up to a whole number of the kernel's tiles (24
  // columns; for a single output channel, both its 16- and its 24-column tiles), plus the window.
  const planeWidth = (columns: number, outputs: number) => roundUp(columns, outputs === 1 ? 48 : 24) + k - 1;
  const forward = { hp: oh + k - 1, wp: planeWidth(ow, cout) };
  const xp = tape.scratch(n * cin * forward.hp * forward.wp), packForward = packed(cin, cout, false);
  const back = { hp: h + k - 1, wp: planeWidth(wd, cin) };
  const gp = x.grad ? tape.scratch(n * cout * back.hp * back.wp) : 0, packFlipped = x.grad ? packed(cout, cin, true) : null;
  // The pre-activation gradient as planes, zero past the last column, for the filter and bias gradients.
  const gw = roundUp(ow, 4);
  const gf = w.grad || b.grad ? tape.scratch(n * cout * oh * gw) : 0;
  tape.record(y, {
    forward: () => {
      kn.to_planar(x.ptr, 0, xp, n, h, wd, cin, top, left, forward.hp, forward.wp);
      kn.conv2d_planar(xp, packForward(), b.ptr, y.ptr, false, relu, n, cin, forward.hp, forward.wp, k, oh, ow, cout);
    },
    backward: () => {
      // The ReLU's gradient mask is applied while making the planes.
      const mask = relu ? y.ptr : 0;
      if (x.grad) {
        kn.to_planar(y.grad!.ptr, mask, gp, n, oh, ow, cout, k - 1 - top, k - 1 - left, back.hp, back.wp);
        kn.conv2d_planar(gp, packFlipped!(), 0, x.grad.ptr, true, false, n, cout, back.hp, back.wp, k, h, wd, cin);
      }
      if (!w.grad && !b.grad) return;
      kn.to_planar(y.grad!.ptr, mask, gf, n, oh, ow, cout, 0, 0, oh, gw);
      if (w.grad) kn.conv2d_filter_planar(xp, gf, w.grad.ptr, n, cin, forward.hp, forward.wp, k, oh, gw, cout);
      if (b.grad) kn.sum_planes(gf, b.grad.ptr, n, cout, oh * gw);
    },
  });
  return y;
}

const roundUp = (v: number, m: number) => Math.ceil(v / m) * m;

export interface PoolOptions {
  size: number;
  stride: number;
  padding: Padding;
}

/** Max over size×size windows of x [n, h, w, c]. */
export function maxPool(tape: Tape, x: Tensor, { size, stride, padding }: PoolOptions): Tensor {
  const kn = tape.engine.kernels;
  const [n, h, wd, c] = x.shape;
  const rows = window(h, size, stride, padding), cols = window(wd, size, stride, padding);
  const geometry = [n, h, wd, c, size, stride, rows.before, cols.before, rows.out, cols.out] as const;
  const y = tape.output([n, rows.out, cols.out, c], [x]);
  tape.record(y, {
    forward: () => kn.maxpool_forward(x.ptr, y.ptr, ...geometry),
    backward: () => kn.maxpool_backward(x.ptr, y.ptr, y.grad!.ptr, x.grad!.ptr, ...geometry),
  });
  return y;
}

/** x [n, in] · w [in, out] + b [out], optionally followed by ReLU. */
export function dense(tape: Tape, x: Tensor, w: Tensor, b: Tensor, relu: boolean): Tensor {
  const [n, inputs] = x.shape;
  const outputs = w.shape[1];
  return matmul(tape, x, w, b, tape.output([n, outputs], [x, w, b]), relu, n, inputs, outputs);
}

/** Records y [rows, outputs] = x [rows, inputs] · w [inputs, outputs] + b, optionally followed
 *  by ReLU: a dense layer, or a 1×1 convolution of stride 1 (NHWC x [n, h, w, cin] is the
 *  matrix [n·h·w, cin], HWIO w [1, 1, cin, cout] the matrix [cin, cout]). */
function matmul(tape: Tape, x: Tensor, w: Tensor, b: Tensor, y: Tensor, relu: boolean, rows: number, inputs: number, outputs: number): Tensor {
  const kn = tape.engine.kernels;
  const preGrad = activationGrad(tape, y, relu);
  const packed = derived(tape, w, kn.panels_size(inputs, outputs), (wp) => kn.pack_panels(w.ptr, outputs, 1, inputs, outputs, wp));
  const transposed = x.grad ? derived(tape, w, kn.panels_size(outputs, inputs), (wp) => kn.pack_panels(w.ptr, 1, outputs, outputs, inputs, wp)) : null;
  const work = tape.scratch(kn.matmul_work(Math.max(inputs, outputs)));
  tape.record(y, {
    forward: () => kn.dense_forward(x.ptr, packed(), b.ptr, y.ptr, relu, work, rows, inputs, outputs),
    backward: () => {
      const g = preGrad();
      if (x.grad) kn.dense_backward_input(g, transposed!(), x.grad.ptr, work, rows, inputs, outputs);
      if (w.grad) kn.dense_backward_weights(x.ptr, g, w.grad.ptr, work, rows, inputs, outputs);
      if (b.grad) kn.sum_rows(g, b.grad.ptr, rows, outputs);
    },
  });
  return y;
}

/** [n, ...] → [n, rest] in NHWC order: the same memory, so no step is recorded. */
export function flatten(x: Tensor): Tensor {
  return x.reshape([x.shape[0], x.size / x.shape[0]]);
}
