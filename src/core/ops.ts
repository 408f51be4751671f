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
  // Each input's gradient is dy, copied or added.
  const pass = (x: Tensor) => {
    if (!x.grad) return;
    if (tape.first(x.grad)) k.copy_block(y.grad!.ptr, x.grad.ptr, 1, y.size, y.size, y.size);
    else k.axpy(1, y.grad!.ptr, x.grad.ptr, y.size);
  };
  tape.record(y, {
    forward: () => k.add(a.ptr, b.ptr, y.ptr, y.size),
    backward: () => {
      pass(a);
      pass(b);
    },
    overwrites: [a, b],
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

/** The difference-of-logits-ratio loss of each row of `logits` [n, classes] (Croce & Hein 2020,
 *  §4), [n]: −(z_y − max_{i≠y} z_i)/(z_π1 − z_π3 + 1e-12) with π the classes by decreasing logit,
 *  or, with `targets`, −(z_y − z_t)/(z_π1 − (z_π3 + z_π4)/2 + 1e-12); the label y and the target
 *  t as one-hot rows. Unlike the cross-entropy it does not change when the logits are scaled or
 *  shifted, so a network's saturated softmax cannot hide its gradient. */
export function dlr(tape: Tape, logits: Tensor, labels: Tensor, targets: Tensor | null = null): Tensor {
  const kn = tape.engine.kernels;
  const [n, classes] = logits.shape;
  const needed = targets ? 4 : 3;
  if (classes < needed) throw new Error(`dlr: the ${targets ? 'targeted ' : ''}loss needs at least ${needed} classes, not ${classes}`);
  const t = targets?.ptr ?? 0;
  const y = tape.output([n], [logits]);
  tape.record(y, {
    forward: () => kn.dlr_forward(logits.ptr, labels.ptr, t, y.ptr, n, classes),
    backward: () => kn.dlr_backward(logits.ptr, labels.ptr, t, y.grad!.ptr, logits.grad!.ptr, n, classes),
  });
  return y;
}

/** A ReLU fused into a layer, as its kernels take it: its ceiling (Infinity for ReLU, 6 for
 *  ReLU6), or 0 for none. */
function fusedRelu(relu: boolean, ceiling = Infinity): number {
  return relu ? ceiling : 0;
}

/** The gradient reaching the pre-activation of a layer with a fused ReLU `relu` (see fusedRelu). */
function activationGrad(tape: Tape, y: Tensor, relu: number): () => number {
  if (relu === 0 || !y.grad) return () => y.grad!.ptr;
  const pre = tape.scratch(y.size);
  return () => {
    tape.engine.kernels.relu_backward(y.ptr, y.grad!.ptr, pre, y.size, relu);
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
  /** The ReLU's upper bound (6: ReLU6); none by default. */
  ceiling?: number;
  /** Cells between the taps of the window (TensorFlow's dilation_rate); 1 by default. */
  dilation?: number;
}

/** x [n, h, w, cin] ⊛ w [k, k, cin, cout] + b [cout], optionally followed by ReLU; the window's
 *  taps are `dilation` cells apart. */
export function conv2d(tape: Tape, x: Tensor, w: Tensor, b: Tensor, { stride, padding, relu: withRelu, ceiling, dilation = 1 }: Conv2dOptions): Tensor {
  if (!(Number.isInteger(dilation) && dilation >= 1)) throw new Error(`conv2d: the dilation must be a whole number ≥ 1, not ${dilation}`);
  const [n, h, wd, cin] = x.shape;
  const [k, , , cout] = w.shape;
  const rows = window(h, k, stride, padding, dilation), cols = window(wd, k, stride, padding, dilation);
  const y = tape.output([n, rows.out, cols.out, cout], [x, w, b]);
  const relu = fusedRelu(withRelu, ceiling);
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
function conv2dWindows(tape: Tape, x: Tensor, w: Tensor, b: Tensor, y: Tensor, relu: number, geometry: ConvGeometry): Tensor {
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
function conv2dStride1(tape: Tape, x: Tensor, w: Tensor, b: Tensor, y: Tensor, relu: number, geometry: ConvGeometry): Tensor {
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
  // A plain ReLU's gradient mask (y > 0) is applied while making the planes; a ReLU with a
  // ceiling goes through relu_backward first.
  const mask = relu === Infinity ? y.ptr : 0;
  const preGrad = relu === Infinity ? () => y.grad!.ptr : activationGrad(tape, y, relu);
  tape.record(y, {
    forward: () => {
      kn.to_planar(x.ptr, 0, xp, n, h, wd, cin, top, left, forward.hp, forward.wp);
      kn.conv2d_planar(xp, packForward(), b.ptr, y.ptr, false, relu, n, cin, forward.hp, forward.wp, k, oh, ow, cout);
    },
    backward: () => {
      const g = preGrad();
      if (x.grad) {
        kn.to_planar(g, mask, gp, n, oh, ow, cout, k - 1 - top, k - 1 - left, back.hp, back.wp);
        kn.conv2d_planar(gp, packFlipped!(), 0, x.grad.ptr, true, 0, n, cout, back.hp, back.wp, k, h, wd, cin);
      }
      if (!w.grad && !b.grad) return;
      kn.to_planar(g, mask, gf, n, oh, ow, cout, 0, 0, oh, gw);
      if (w.grad) kn.conv2d_filter_planar(xp, gf, w.grad.ptr, n, cin, forward.hp, forward.wp, k, oh, gw, cout);
      if (b.grad) kn.sum_planes(gf, b.grad.ptr, n, cout, oh * gw);
    },
  });
  return y;
}

const roundUp = (v: number, m: number) => Math.ceil(v / m) * m;

export interface DepthwiseConv2dOptions {
  stride: number;
  padding: Padding;
  /** Cells from one tap of the window to the next (1, the default: adjacent). */
  dilation?: number;
  relu: boolean;
  /** The ReLU's upper bound (6: ReLU6); none by default. */
  ceiling?: number;
}

/** x [n, h, w, cin] ⊛ w [k, k, cin, m] per channel + b [cin·m], optionally followed by ReLU:
 *  output channel ci·m + j is input channel ci convolved with w[:, :, ci, j]. */
export function depthwiseConv2d(tape: Tape, x: Tensor, w: Tensor, b: Tensor, { stride, padding, dilation = 1, relu: withRelu, ceiling }: DepthwiseConv2dOptions): Tensor {
  const relu = fusedRelu(withRelu, ceiling);
  const kn = tape.engine.kernels;
  const [n, h, wd, cin] = x.shape;
  const [k, k2, win, m] = w.shape;
  const c = cin * m;
  const rows = window(h, k, stride, padding, dilation), cols = window(wd, k, stride, padding, dilation);
  if (k !== k2 || win !== cin || b.size !== c) throw new Error(`depthwiseConv2d: filter [${w.shape}] and bias [${b.shape}] do not fit an input of ${cin} channels`);
  if (!(Number.isInteger(stride) && stride >= 1 && Number.isInteger(dilation) && dilation >= 1)) throw new Error(`depthwiseConv2d: stride ${stride} and dilation ${dilation} must be whole numbers ≥ 1`);
  if (rows.out < 1 || cols.out < 1) throw new Error(`depthwiseConv2d: a ${padding} window of ${k} taps ${dilation} apart does not fit an input of ${h}×${wd}`);
  const geometry = [n, h, wd, c, k, stride, dilation, rows.before, cols.before, rows.out, cols.out] as const;
  const y = tape.output([n, rows.out, cols.out, c], [x, w, b]);
  const preGrad = activationGrad(tape, y, relu);
  // The filter [k, k, cin, m] is [k, k, c] for the kernels, which take multiplier 1: a larger
  // multiplier runs on the input with each channel repeated m times.
  const pixels = n * h * wd;
  const xe = m === 1 ? x.ptr : tape.scratch(pixels * c);
  const dxe = m > 1 && x.grad ? tape.scratch(pixels * c) : 0;
  const packed = derived(tape, w, roundUp(c, 4) * k * k, (wb) => kn.depthwise_pack_filter(w.ptr, wb, k, c));
  tape.record(y, {
    forward: () => {
      if (m > 1) kn.expand_channels(x.ptr, xe, pixels, cin, m);
      kn.depthwise_forward(xe, packed(), b.ptr, y.ptr, relu, ...geometry);
    },
    backward: () => {
      const g = preGrad();
      if (x.grad && m === 1) kn.depthwise_backward_input(g, packed(), x.grad.ptr, !tape.first(x.grad), ...geometry);
      if (x.grad && m > 1) {
        kn.depthwise_backward_input(g, packed(), dxe, false, ...geometry);
        kn.sum_channel_groups(dxe, x.grad.ptr, pixels, cin, m);
      }
      if (w.grad) kn.depthwise_backward_filter(xe, g, w.grad.ptr, ...geometry);
      if (b.grad) kn.sum_rows(g, b.grad.ptr, y.size / c, c);
    },
    overwrites: m === 1 ? [x] : undefined,
  });
  return y;
}

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

/** x [n, in] · w [in, out] + b [out], optionally followed by ReLU (capped at `ceiling`: 6 for ReLU6). */
export function dense(tape: Tape, x: Tensor, w: Tensor, b: Tensor, relu: boolean, ceiling = Infinity): Tensor {
  const [n, inputs] = x.shape;
  const outputs = w.shape[1];
  return matmul(tape, x, w, b, tape.output([n, outputs], [x, w, b]), fusedRelu(relu, ceiling), n, inputs, outputs);
}

/** Records y [rows, outputs] = x [rows, inputs] · w [inputs, outputs] + b, optionally followed
 *  by ReLU: a dense layer, or a 1×1 convolution of stride 1 (NHWC x [n, h, w, cin] is the
 *  matrix [n·h·w, cin], HWIO w [1, 1, cin, cout] the matrix [cin, cout]). */
function matmul(tape: Tape, x: Tensor, w: Tensor, b: Tensor, y: Tensor, relu: number, rows: number, inputs: number, outputs: number): Tensor {
  const kn = tape.engine.kernels;
  const preGrad = activationGrad(tape, y, relu);
  const packed = derived(tape, w, kn.panels_size(inputs, outputs), (wp) => kn.pack_panels(w.ptr, outputs, 1, inputs, outputs, wp));
  const transposed = x.grad ? derived(tape, w, kn.panels_size(outputs, inputs), (wp) => kn.pack_panels(w.ptr, 1, outputs, outputs, inputs, wp)) : null;
  const work = tape.scratch(kn.matmul_work(Math.max(inputs, outputs)));
  tape.record(y, {
    forward: () => kn.dense_forward(x.ptr, packed(), b.ptr, y.ptr, relu, work, rows, inputs, outputs),
    backward: () => {
      const g = preGrad();
      if (x.grad) kn.dense_backward_input(g, transposed!(), x.grad.ptr, !tape.first(x.grad), work, rows, inputs, outputs);
      if (w.grad) kn.dense_backward_weights(x.ptr, g, w.grad.ptr, work, rows, inputs, outputs);
      if (b.grad) kn.sum_rows(g, b.grad.ptr, rows, outputs);
    },
    overwrites: [x],
  });
  return y;
}

/** [n, ...] → [n, rest] in NHWC order: the same memory, so no step is recorded. */
export function flatten(x: Tensor): Tensor {
  return x.reshape([x.shape[0], x.size / x.shape[0]]);
}

export type ActivationKind = 'relu' | 'relu6' | 'leaky_relu' | 'elu' | 'sigmoid' | 'tanh';
/** The kernels' numbering of the activations (assembly/elementwise.ts). */
const ACTIVATION_KINDS: readonly ActivationKind[] = ['relu', 'relu6', 'leaky_relu', 'elu', 'sigmoid', 'tanh'];

/** An activation elementwise, with TensorFlow's gradients. `alpha` is leaky ReLU's slope below 0
 *  (Keras's LeakyReLU alpha, 0.3 there by default) and ELU's scale: alpha·(eˣ − 1) below 0, with
 *  gradient dy·(y + alpha) there (Keras's ELU(alpha); tf.nn.elu is alpha 1). */
export function activation(tape: Tape, x: Tensor, kind: ActivationKind, alpha = 0): Tensor {
  const kn = tape.engine.kernels;
  const code = ACTIVATION_KINDS.indexOf(kind);
  if (code < 0) throw new Error(`unknown activation ${kind}`);
  const y = tape.output(x.shape, [x]);
  tape.record(y, {
    forward: () => kn.activation_forward(x.ptr, y.ptr, x.size, code, alpha),
    backward: () => kn.activation_backward(x.ptr, y.ptr, y.grad!.ptr, x.grad!.ptr, !tape.first(x.grad!), x.size, code, alpha),
    overwrites: [x],
  });
  return y;
}

/** Mean over size×size windows of x [n, h, w, c], of their real cells only (TensorFlow's avg_pool). */
export function avgPool(tape: Tape, x: Tensor, { size, stride, padding }: PoolOptions): Tensor {
  const [n, h, wd, c] = x.shape;
  const rows = window(h, size, stride, padding), cols = window(wd, size, stride, padding);
  return averageWindows(tape, x, [n, rows.out, cols.out, c], [n, h, wd, c, size, stride, rows.before, cols.before, rows.out, cols.out]);
}

/** [n, h, w, c] → [n, c], the mean over each image. */
export function globalAvgPool(tape: Tape, x: Tensor): Tensor {
  return averageWindows(tape, x, [x.shape[0], x.shape[3]], wholeImage(x));
}

/** [n, h, w, c] → [n, c], the maximum over each image; its gradient goes to the first maximum
 *  in row-major order. */
export function globalMaxPool(tape: Tape, x: Tensor): Tensor {
  const kn = tape.engine.kernels;
  const geometry = wholeImage(x);
  const y = tape.output([x.shape[0], x.shape[3]], [x]);
  tape.record(y, {
    forward: () => kn.maxpool_forward(x.ptr, y.ptr, ...geometry),
    backward: () => kn.maxpool_backward(x.ptr, y.ptr, y.grad!.ptr, x.grad!.ptr, ...geometry),
  });
  return y;
}

type PoolGeometry = readonly [n: number, h: number, wd: number, c: number, size: number, stride: number, top: number, left: number, oh: number, ow: number];

/** A global pool is one window over each image seen as a single row of h·w cells. */
function wholeImage(x: Tensor): PoolGeometry {
  const [n, h, wd, c] = x.shape;
  return [n, 1, h * wd, c, h * wd, h * wd, 0, 0, 1, 1];
}

function averageWindows(tape: Tape, x: Tensor, shape: readonly number[], geometry: PoolGeometry): Tensor {
  const kn = tape.engine.kernels;
  const y = tape.output(shape, [x]);
  tape.record(y, {
    forward: () => kn.avgpool_forward(x.ptr, y.ptr, ...geometry),
    backward: () => kn.avgpool_backward(y.grad!.ptr, x.grad!.ptr, ...geometry),
  });
  return y;
}

/** The inputs side by side along the last axis (channels); their other dimensions are equal. */
export function concat(tape: Tape, xs: Tensor[]): Tensor {
  const kn = tape.engine.kernels;
  if (xs.length === 0) throw new Error('concat: no inputs');
  const lead = xs[0].shape.slice(0, -1);
  for (const x of xs) {
    if (x.shape.length !== lead.length + 1 || lead.some((d, i) => x.shape[i] !== d)) {
      throw new Error(`concat: shapes [${xs[0].shape}] and [${x.shape}] differ before the last axis`);
    }
  }
  const widths = xs.map((x) => x.shape[lead.length]);
  const offsets = widths.map((_, i) => widths.slice(0, i).reduce((a, b) => a + b, 0));
  const total = widths.reduce((a, b) => a + b, 0);
  const rows = lead.reduce((a, b) => a * b, 1);
  const y = tape.output([...lead, total], xs);
  tape.record(y, {
    forward: () => {
      for (let i = 0; i < xs.length; i++) kn.copy_block(xs[i].ptr, y.ptr + 4 * offsets[i], rows, widths[i], widths[i], total);
    },
    backward: () => {
      for (let i = 0; i < xs.length; i++) {
        const grad = xs[i].grad;
        if (grad) kn.add_block(y.grad!.ptr + 4 * offsets[i], grad.ptr, rows, widths[i], total, widths[i]);
      }
    },
  });
  return y;
}

export interface PadOptions {
  top: number;
  bottom: number;
  left: number;
  right: number;
}

/** x [n, h, w, c] with rows and columns of zeros around each image (Keras's ZeroPadding2D). */
export function pad(tape: Tape, x: Tensor, { top, bottom, left, right }: PadOptions): Tensor {
  const kn = tape.engine.kernels;
  const [n, h, wd, c] = x.shape;
  const ph = h + top + bottom, pw = wd + left + right;
  const y = tape.output([n, ph, pw, c], [x]);
  // Each image's rows of w·c floats go inside its padded rows of pw·c; the border keeps the zeros
  // the engine allocated y with, since nothing else writes there.
  const image = (unpadded: number, img: number) => unpadded + 4 * img * h * wd * c;
  const inside = (padded: number, img: number) => padded + 4 * ((img * ph + top) * pw + left) * c;
  tape.record(y, {
    forward: () => {
      for (let img = 0; img < n; img++) kn.copy_block(image(x.ptr, img), inside(y.ptr, img), h, wd * c, wd * c, pw * c);
    },
    backward: () => {
      for (let img = 0; img < n; img++) kn.add_block(inside(y.grad!.ptr, img), image(x.grad!.ptr, img), h, wd * c, pw * c, wd * c);
    },
  });
  return y;
}

/** x·scale[c] + shift[c] along the last axis: batch normalisation at inference when it is not
 *  folded into a convolution, or a rescaling. */
export function affine(tape: Tape, x: Tensor, scale: Tensor, shift: Tensor): Tensor {
  const kn = tape.engine.kernels;
  const cols = x.shape[x.shape.length - 1], rows = x.size / cols;
  if (scale.size !== cols || shift.size !== cols) throw new Error(`affine: ${cols} channels, but ${scale.size} scales and ${shift.size} shifts`);
  const y = tape.output(x.shape, [x, scale, shift]);
  tape.record(y, {
    forward: () => kn.affine_forward(x.ptr, scale.ptr, shift.ptr, y.ptr, rows, cols),
    backward: () => {
      if (x.grad || scale.grad) kn.affine_backward(x.ptr, scale.ptr, y.grad!.ptr, x.grad?.ptr ?? 0, scale.grad?.ptr ?? 0, rows, cols);
      if (shift.grad) kn.sum_rows(y.grad!.ptr, shift.grad.ptr, rows, cols);
    },
  });
  return y;
}
