// Two gradient kernels tfjs-wasm lacks, built from tfjs-wasm's own ops, so that it can take the
// gradient of networks with depthwise convolutions (face-api's, MobileNet's) and of tfjs-layers'
// Conv2D (its gradient takes the filter's too). Registered around the attack-iteration rows only;
// their own time is counted, so that the report can give tfjs-wasm's iteration with and without them.
import { createRequire } from 'node:module';
import type * as TF from '@tensorflow/tfjs';

const require = createRequire(import.meta.url);
const tf: typeof TF = require('@tensorflow/tfjs');

type Pad = 'same' | 'valid' | number | TF.backend_util.ExplicitPadding;
type Pair = [number, number];
const pair = (v: number | Pair): Pair => (typeof v === 'number' ? [v, v] : v);
/** A convolution's attributes, as tfjs hands them to a kernel (its gradients take dilation 1 only). */
interface ConvAttrs {
  strides: number | Pair;
  pad: Pad;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** `dy` with stride − 1 zeros between its rows and between its columns (NHWC). */
function dilate(dy: TF.Tensor4D, [sh, sw]: Pair): TF.Tensor4D {
  if (sh === 1 && sw === 1) return dy;
  const [n, h, w, c] = dy.shape;
  const spread = tf.pad(tf.reshape(dy, [n, h, 1, w, 1, c]), [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
  return tf.slice(tf.reshape(spread, [n, h * sh, w * sw, c]), 0, [n, (h - 1) * sh + 1, (w - 1) * sw + 1, c]) as TF.Tensor4D;
}

/** Pads (or, for negative sizes, crops) the rows and columns of an NHWC tensor. */
function padOrCrop(x: TF.Tensor4D, top: number, bottom: number, left: number, right: number): TF.Tensor4D {
  const padded = tf.pad(x, [[0, 0], [Math.max(top, 0), Math.max(bottom, 0)], [Math.max(left, 0), Math.max(right, 0)], [0, 0]]);
  const [n, h, w, c] = padded.shape;
  return tf.slice(padded, [0, Math.max(-top, 0), Math.max(-left, 0), 0], [n, h - Math.max(-top, 0) - Math.max(-bottom, 0), w - Math.max(-left, 0) - Math.max(-right, 0), c]);
}

/** The input gradient of a depthwise convolution: the depthwise convolution of the stride-dilated,
 *  padded output gradient with the spatially flipped filter, summed over the channel multiplier. */
function depthwiseBackpropInput(dy: TF.Tensor4D, filter: TF.Tensor4D, attrs: ConvAttrs & { inputShape: number[] }): TF.Tensor4D {
  const inShape = attrs.inputShape as [number, number, number, number];
  const info = tf.backend_util.computeConv2DInfo(inShape, filter.shape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, true);
  const [kh, kw, c, m] = filter.shape;
  const { top, left } = info.padInfo;
  const spread = dilate(dy, pair(attrs.strides));
  // Padded so that a VALID convolution gives the input's size back.
  const full = padOrCrop(spread, kh - 1 - top, inShape[1] + top - spread.shape[1], kw - 1 - left, inShape[2] + left - spread.shape[2]);
  const flipped = tf.reshape(tf.reverse(filter, [0, 1]), [kh, kw, c * m, 1]) as TF.Tensor4D;
  const each = tf.depthwiseConv2d(full, flipped, 1, 'valid');
  return m === 1 ? each : (tf.sum(tf.reshape(each, [...inShape.slice(0, 3), c, m]), 4) as TF.Tensor4D);
}

/** The filter gradient of a convolution: for each filter
 *  tap, the matrix product of the input cells it meets (a strided slice) with the output gradient. */
function conv2dBackpropFilter(x: TF.Tensor4D, dy: TF.Tensor4D, attrs: ConvAttrs & { filterShape: number[] }): TF.Tensor4D {
  const filterShape = attrs.filterShape as [number, number, number, number];
  const info = tf.backend_util.computeConv2DInfo(x.shape, filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  const [kh, kw, ci, co] = filterShape;
  const [n, oh, ow] = dy.shape;
  const { top, bottom, left, right } = info.padInfo;
  const xp = padOrCrop(x, top, bottom, left, right);
  const [sh, sw] = pair(attrs.strides);
  const dy2 = tf.reshape(dy, [n * oh * ow, co]);
  const taps: TF.Tensor[] = [];
  for (let i = 0; i < kh; i++)
    for (let j = 0; j < kw; j++) {
      const cells = tf.stridedSlice(xp, [0, i, j, 0], [n, i + (oh - 1) * sh + 1, j + (ow - 1) * sw + 1, ci], [1, sh, sw, 1]);
      taps.push(tf.matMul(tf.reshape(cells, [n * oh * ow, ci]), dy2, true, false));
    }
  return tf.reshape(tf.stack(taps), filterShape);
}

/** Each stand-in by the kernel's name: how it is built (for the report), and its body. */
const STAND_INS: Record<string, { how: string; run: (inputs: Record<string, TF.Tensor>, attrs: never) => TF.Tensor }> = {
  DepthwiseConv2dNativeBackpropInput: {
    how: 'the depthwise convolution of the stride-dilated gradient with the flipped filter',
    run: (t, a) => depthwiseBackpropInput(t.dy as TF.Tensor4D, t.filter as TF.Tensor4D, a),
  },
  Conv2DBackpropFilter: {
    how: 'a matrix product per filter tap',
    run: (t, a) => conv2dBackpropFilter(t.x as TF.Tensor4D, t.dy as TF.Tensor4D, a),
  },
};

/** How the stand-in for kernel `name` is built. */
export const standInHow = (name: string): string => STAND_INS[name].how;

/** The stand-ins, registered for tfjs-wasm until removed: which of them ran, and their time. */
export class StandIns {
  readonly used = new Set<string>();
  private ms = 0;

  constructor() {
    for (const [name, { run }] of Object.entries(STAND_INS))
      tf.registerKernel({
        kernelName: name,
        backendName: 'wasm',
        kernelFunc: ({ inputs, attrs }) => {
          const start = performance.now();
          // The engine hands a kernel its input tensors themselves, and takes a tensor back as its output.
          const out = tf.tidy(() => run(inputs as Record<string, TF.Tensor>, attrs as never));
          this.ms += performance.now() - start;
          this.used.add(name);
          return out;
        },
      });
  }

  /** The share of `calls` calls of `iteration` spent in the stand-ins. */
  share(iteration: () => void, calls: number): number {
    this.ms = 0;
    const start = performance.now();
    for (let i = 0; i < calls; i++) iteration();
    return this.ms / (performance.now() - start);
  }

  remove(): void {
    for (const name of Object.keys(STAND_INS)) tf.unregisterKernel(name, 'wasm');
  }
}
