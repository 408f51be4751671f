/**
 * Independent float64 reference implementation of the CNN forward and backward passes.
 *
 * This file is the source of truth the WebAssembly kernels are checked against. It imports
 * nothing from the rest of the project on purpose, and every function is written as the most
 * direct loop over the mathematical definition: no tiling, no precomputed strides, no reuse.
 * It is itself verified against central finite differences in `reference.test.ts`.
 *
 * Conventions (identical to TensorFlow's CPU kernels)
 * ---------------------------------------------------
 * - A tensor is `{ shape, data }`: `data` is a flat row-major `Float64Array` of length
 *   `product(shape)`. Activations are NHWC, conv weights `[k, k, cin, cout]` (HWIO), dense
 *   weights `[in, out]`, biases `[out]`. `flatten` keeps NHWC order (it only changes the shape).
 * - Padding, per spatial dim of size n, window k, stride s (see `windowGeometry`):
 *     'valid': out = ceil((n - k + 1) / s), no padding;
 *     'same' : out = ceil(n / s), total = max((out - 1)·s + k - n, 0),
 *              floor(total / 2) cells before, the rest after.
 *   Output cell o reads input cells o·s − before + j for j = 0..k−1. Padded cells contribute 0
 *   to a convolution and are never candidates of a max-pool.
 * - A convolution with dilation d (TensorFlow's dilation_rate) reads cells o·s − before + j·d:
 *   its window spans (k − 1)·d + 1 cells, which is the window the padding is computed for.
 * - maxpool backward: the gradient of a window goes entirely to the FIRST maximum of the window in
 *   row-major order (strict `>` scan); overlapping windows add up.
 * - relu backward: gradient passes only where the input is > 0 (relu'(0) = 0).
 * - avgpool: a window's mean over its REAL cells only (padding is not counted); its backward
 *   shares dy equally among those cells. Global max-pool sends dy to the first maximum, as maxpool.
 * - Activation derivatives at their kinks: relu6' is 1 only for 0 < x < 6; leaky ReLU and ELU
 *   take their lower branch at x = 0 (slope alpha).
 *
 * Exported API (every tensor argument/result is a `Tensor`; nothing is modified in place)
 * ---------------------------------------------------------------------------------------
 *   type Padding = 'same' | 'valid'
 *   interface Tensor { shape: number[]; data: Float64Array }
 *   tensor(shape: number[], data?: ArrayLike<number>): Tensor     // zeros if data omitted; copies data
 *   sizeOf(shape: readonly number[]): number                       // product of the dims
 *
 *   windowGeometry(n, k, s, padding): { out: number; padBefore: number; padAfter: number }
 *
 *   conv2d(x: Tensor [N,H,W,Ci], w: Tensor [k,k,Ci,Co], b: Tensor [Co], stride, padding, dilation = 1): Tensor [N,OH,OW,Co]
 *   conv2dBackward(x, w, stride, padding, dy: Tensor [N,OH,OW,Co], dilation = 1): { dx: Tensor; dw: Tensor; db: Tensor }
 *
 *   depthwiseConv2d(x: Tensor [N,H,W,Ci], w: Tensor [k,k,Ci,M], b: Tensor [Ci·M], stride, padding, dilation)
 *     : Tensor [N,OH,OW,Ci·M]                                // output channel ci·M + m
 *   depthwiseConv2dBackward(x, w, stride, padding, dilation, dy: Tensor [N,OH,OW,Ci·M])
 *     : { dx: Tensor; dw: Tensor; db: Tensor }
 *
 *   maxpool(x: Tensor [N,H,W,C], size, stride, padding): Tensor [N,OH,OW,C]
 *   maxpoolBackward(x, size, stride, padding, dy: Tensor [N,OH,OW,C]): Tensor   // dx
 *
 *   relu(x: Tensor): Tensor
 *   reluBackward(x: Tensor, dy: Tensor): Tensor                                 // dx (x = relu's INPUT)
 *
 *   flatten(x: Tensor [N,...]): Tensor [N, rest]
 *   flattenBackward(dy: Tensor [N, rest], xShape: number[]): Tensor [xShape]
 *
 *   dense(x: Tensor [N,I], w: Tensor [I,O], b: Tensor [O]): Tensor [N,O]
 *   denseBackward(x, w, dy: Tensor [N,O]): { dx: Tensor; dw: Tensor; db: Tensor }
 *
 *   logSoftmax(z: Tensor [..., C]): Tensor                  // over the last dim
 *   logSoftmaxBackward(z: Tensor, dy: Tensor): Tensor       // dz (z = logSoftmax's INPUT)
 *
 *   l2Loss(v: Tensor): number                               // Σ v² / 2
 *   l2LossBackward(v: Tensor): Tensor                       // = v (gradient of l2Loss, factor 1)
 *
 *   type ActivationKind = 'relu' | 'relu6' | 'leaky_relu' | 'elu' | 'sigmoid' | 'tanh'
 *   activation(x: Tensor, kind, alpha = 0): Tensor          // alpha: leaky ReLU's slope, ELU's scale
 *   activationBackward(x, kind, alpha, dy): Tensor          // dx (x = the activation's INPUT)
 *   avgpool(x: Tensor [N,H,W,C], size, stride, padding): Tensor [N,OH,OW,C]   // mean of REAL cells
 *   avgpoolBackward(x, size, stride, padding, dy: Tensor [N,OH,OW,C]): Tensor // dx
 *   globalAvgPool(x: Tensor [N,H,W,C]): Tensor [N,C];  globalAvgPoolBackward(x, dy: [N,C]): Tensor
 *   globalMaxPool(x: Tensor [N,H,W,C]): Tensor [N,C];  globalMaxPoolBackward(x, dy: [N,C]): Tensor
 *                                                           // (gradient to the first maximum)
 *   concat(xs: Tensor[]): Tensor                            // along the last dim
 *   concatBackward(xs: Tensor[], dy): Tensor[]              // one dx per input
 *   pad(x: Tensor [N,H,W,C], top, bottom, left, right): Tensor   // zeros around each image
 *   padBackward(x, top, left, dy): Tensor                   // dx: dy cropped
 *   affine(x: Tensor [..., C], scale: Tensor [C], shift: Tensor [C]): Tensor
 *   affineBackward(x, scale, dy): { dx: Tensor; dscale: Tensor; dshift: Tensor }
 *   add(a: Tensor, b: Tensor): Tensor                       // equal shapes
 *
 *   Network (weights: Map<string, Float64Array> keyed `<name>.w` and `<name>.b`), a graph as in the
 *   model file: each layer reads the one before it, or the layers named in `inputs` ("input" is the
 *   network's input); types conv2d, depthwise_conv2d, dense, maxpool, avgpool, global_maxpool,
 *   global_avgpool, flatten, add, concat, affine, pad, activation, each with its activation after
 *   it (a final softmax is left out, as the engine leaves it out):
 *   interface Layer { type; name?; inputs?; filters?; kernel?; multiplier?; units?; size?; stride?;
 *                     dilation?; padding?; activation?; alpha?; pad? }   // model-file defaults
 *   interface Architecture { input: [H, W, C]; preprocess?: per-channel {offset, scale}; layers: Layer[] }
 *
 *   weightShapes(arch): Map<string, number[]>               // expected shape of every `<name>.w/.b`
 *   networkLogits(arch, weights, x: Tensor [N,H,W,C]): Tensor [N, classes]
 *   networkLossAndGradients(arch, weights, x: Tensor [N,H,W,C], dx: Tensor [N,H,W,C],
 *                           y: Tensor [N, classes], beta: number)
 *     : { loss: number; dDx: Tensor; dWeights: Map<string, Float64Array> }
 *       loss = −Σ_n Σ_c y[n,c]·logSoftmax(networkLogits(x + dx))[n,c] + beta·l2Loss(dx)
 *       dDx = ∂loss/∂dx (shape of x); dWeights has the same keys as `weights`.
 */

// ---------------------------------------------------------------------------------------------
// Tensors
// ---------------------------------------------------------------------------------------------

export type Padding = 'same' | 'valid';

/** A dense row-major float64 tensor. */
export interface Tensor {
  shape: number[];
  data: Float64Array;
}

/** Product of the dims of `shape` (1 for a scalar shape `[]`). */
export function sizeOf(shape: readonly number[]): number {
  let size = 1;
  for (const d of shape) size *= d;
  return size;
}

/** A new tensor of the given shape: zeros, or a copy of `data` (whose length must match). */
export function tensor(shape: number[], data?: ArrayLike<number>): Tensor {
  const size = sizeOf(shape);
  const out = new Float64Array(size);
  if (data !== undefined) {
    if (data.length !== size) {
      throw new Error(`tensor: data has ${data.length} values, shape [${shape.join(', ')}] needs ${size}`);
    }
    for (let i = 0; i < size; i++) out[i] = data[i]!;
  }
  return { shape: [...shape], data: out };
}

function expectRank(t: Tensor, rank: number, what: string): void {
  if (t.shape.length !== rank) throw new Error(`${what}: expected rank ${rank}, got shape [${t.shape.join(', ')}]`);
  if (t.data.length !== sizeOf(t.shape)) throw new Error(`${what}: data length does not match shape`);
}

function expectSameShape(a: Tensor, b: Tensor, what: string): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new Error(`${what}: shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] differ`);
  }
}

/** Flat offset of [i0, i1, i2, i3] in a 4-D row-major tensor of shape [d0, d1, d2, d3]. */
function at4(shape: readonly number[], i0: number, i1: number, i2: number, i3: number): number {
  return ((i0 * shape[1]! + i1) * shape[2]! + i2) * shape[3]! + i3;
}

/** Flat offset of [i0, i1] in a 2-D row-major tensor of shape [d0, d1]. */
function at2(shape: readonly number[], i0: number, i1: number): number {
  return i0 * shape[1]! + i1;
}

// ---------------------------------------------------------------------------------------------
// Window geometry (TensorFlow's GetWindowedOutputSize)
// ---------------------------------------------------------------------------------------------

/**
 * Output size and padding of one spatial dim of size `n` under a window `k` with stride `s`.
 * VALID: out = ceil((n − k + 1)/s), no padding. SAME: out = ceil(n/s), total padding
 * max((out − 1)·s + k − n, 0), floor(total/2) before, the rest after.
 * Throws if the output would be empty (VALID with k > n).
 */
export function windowGeometry(
  n: number,
  k: number,
  s: number,
  padding: Padding,
): { out: number; padBefore: number; padAfter: number } {
  if (!(n >= 1 && k >= 1 && s >= 1)) throw new Error(`windowGeometry: bad n=${n} k=${k} s=${s}`);
  if (padding === 'valid') {
    const out = Math.ceil((n - k + 1) / s);
    if (out < 1) throw new Error(`windowGeometry: VALID window ${k} larger than input ${n}`);
    return { out, padBefore: 0, padAfter: 0 };
  }
  const out = Math.ceil(n / s);
  const total = Math.max((out - 1) * s + k - n, 0);
  const padBefore = Math.floor(total / 2);
  return { out, padBefore, padAfter: total - padBefore };
}

// ---------------------------------------------------------------------------------------------
// conv2d
// ---------------------------------------------------------------------------------------------

/**
 * y[n, oy, ox, co] = b[co] + Σ_{ky, kx, ci} x[n, oy·s − padTop + ky·d, ox·s − padLeft + kx·d, ci] · w[ky, kx, ci, co]
 * where out-of-range input cells (padding) are 0 and d is the dilation.
 */
export function conv2d(x: Tensor, w: Tensor, b: Tensor, stride: number, padding: Padding, dilation = 1): Tensor {
  expectRank(x, 4, 'conv2d x');
  expectRank(w, 4, 'conv2d w');
  expectRank(b, 1, 'conv2d b');
  const [N, H, W, Ci] = x.shape as [number, number, number, number];
  const [K, K2, wCi, Co] = w.shape as [number, number, number, number];
  if (K !== K2) throw new Error('conv2d: kernel must be square');
  if (wCi !== Ci) throw new Error(`conv2d: input has ${Ci} channels, kernel expects ${wCi}`);
  if (b.shape[0] !== Co) throw new Error('conv2d: bias size differs from filter count');
  const span = dilatedSpan(K, dilation);
  const gy = windowGeometry(H, span, stride, padding);
  const gx = windowGeometry(W, span, stride, padding);
  const y = tensor([N, gy.out, gx.out, Co]);

  for (let n = 0; n < N; n++) {
    for (let oy = 0; oy < gy.out; oy++) {
      for (let ox = 0; ox < gx.out; ox++) {
        for (let co = 0; co < Co; co++) {
          let sum = b.data[co]!;
          for (let ky = 0; ky < K; ky++) {
            for (let kx = 0; kx < K; kx++) {
              const iy = oy * stride - gy.padBefore + ky * dilation;
              const ix = ox * stride - gx.padBefore + kx * dilation;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue; // padded cell: contributes 0
              for (let ci = 0; ci < Ci; ci++) {
                sum += x.data[at4(x.shape, n, iy, ix, ci)]! * w.data[at4(w.shape, ky, kx, ci, co)]!;
              }
            }
          }
          y.data[at4(y.shape, n, oy, ox, co)] = sum;
        }
      }
    }
  }
  return y;
}

/** Cells spanned by a window of k taps `dilation` cells apart. */
function dilatedSpan(k: number, dilation: number): number {
  if (!(Number.isInteger(dilation) && dilation >= 1)) throw new Error(`conv2d: bad dilation ${dilation}`);
  return (k - 1) * dilation + 1;
}

/**
 * Gradients of conv2d given dy = ∂L/∂y. Each term of the forward sum
 * x[n, iy, ix, ci]·w[ky, kx, ci, co] sends dy[n, oy, ox, co]·w to dx and dy·x to dw; db sums dy.
 */
export function conv2dBackward(
  x: Tensor,
  w: Tensor,
  stride: number,
  padding: Padding,
  dy: Tensor,
  dilation = 1,
): { dx: Tensor; dw: Tensor; db: Tensor } {
  expectRank(x, 4, 'conv2dBackward x');
  expectRank(w, 4, 'conv2dBackward w');
  expectRank(dy, 4, 'conv2dBackward dy');
  const [N, H, W, Ci] = x.shape as [number, number, number, number];
  const [K, , , Co] = w.shape as [number, number, number, number];
  const span = dilatedSpan(K, dilation);
  const gy = windowGeometry(H, span, stride, padding);
  const gx = windowGeometry(W, span, stride, padding);
  if (dy.shape[0] !== N || dy.shape[1] !== gy.out || dy.shape[2] !== gx.out || dy.shape[3] !== Co) {
    throw new Error('conv2dBackward: dy has the wrong shape');
  }
  const dx = tensor(x.shape);
  const dw = tensor(w.shape);
  const db = tensor([Co]);

  for (let n = 0; n < N; n++) {
    for (let oy = 0; oy < gy.out; oy++) {
      for (let ox = 0; ox < gx.out; ox++) {
        for (let co = 0; co < Co; co++) {
          const g = dy.data[at4(dy.shape, n, oy, ox, co)]!;
          db.data[co] += g;
          for (let ky = 0; ky < K; ky++) {
            for (let kx = 0; kx < K; kx++) {
              const iy = oy * stride - gy.padBefore + ky * dilation;
              const ix = ox * stride - gx.padBefore + kx * dilation;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
              for (let ci = 0; ci < Ci; ci++) {
                dx.data[at4(dx.shape, n, iy, ix, ci)] += g * w.data[at4(w.shape, ky, kx, ci, co)]!;
                dw.data[at4(dw.shape, ky, kx, ci, co)] += g * x.data[at4(x.shape, n, iy, ix, ci)]!;
              }
            }
          }
        }
      }
    }
  }
  return { dx, dw, db };
}

// ---------------------------------------------------------------------------------------------
// depthwiseConv2d
// ---------------------------------------------------------------------------------------------

/** Geometry of a window of k taps `dilation` cells apart, padded as a window of its span. */
function dilatedGeometry(n: number, k: number, s: number, dilation: number, padding: Padding) {
  return windowGeometry(n, dilatedSpan(k, dilation), s, padding);
}

/**
 * y[n, oy, ox, ci·M + m] = b[ci·M + m]
 *   + Σ_{ky, kx} x[n, oy·s − padTop + ky·d, ox·s − padLeft + kx·d, ci] · w[ky, kx, ci, m]
 * with d the dilation; out-of-range input cells (padding) are 0.
 */
export function depthwiseConv2d(x: Tensor, w: Tensor, b: Tensor, stride: number, padding: Padding, dilation: number): Tensor {
  expectRank(x, 4, 'depthwiseConv2d x');
  expectRank(w, 4, 'depthwiseConv2d w');
  expectRank(b, 1, 'depthwiseConv2d b');
  const [N, H, W, Ci] = x.shape as [number, number, number, number];
  const [K, K2, wCi, M] = w.shape as [number, number, number, number];
  if (K !== K2) throw new Error('depthwiseConv2d: kernel must be square');
  if (wCi !== Ci) throw new Error(`depthwiseConv2d: input has ${Ci} channels, kernel expects ${wCi}`);
  if (b.shape[0] !== Ci * M) throw new Error('depthwiseConv2d: bias size differs from channels × multiplier');
  const gy = dilatedGeometry(H, K, stride, dilation, padding);
  const gx = dilatedGeometry(W, K, stride, dilation, padding);
  const y = tensor([N, gy.out, gx.out, Ci * M]);

  for (let n = 0; n < N; n++) {
    for (let oy = 0; oy < gy.out; oy++) {
      for (let ox = 0; ox < gx.out; ox++) {
        for (let ci = 0; ci < Ci; ci++) {
          for (let m = 0; m < M; m++) {
            let sum = b.data[ci * M + m]!;
            for (let ky = 0; ky < K; ky++) {
              for (let kx = 0; kx < K; kx++) {
                const iy = oy * stride - gy.padBefore + ky * dilation;
                const ix = ox * stride - gx.padBefore + kx * dilation;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue; // padded cell: contributes 0
                sum += x.data[at4(x.shape, n, iy, ix, ci)]! * w.data[at4(w.shape, ky, kx, ci, m)]!;
              }
            }
            y.data[at4(y.shape, n, oy, ox, ci * M + m)] = sum;
          }
        }
      }
    }
  }
  return y;
}

/**
 * Gradients of depthwiseConv2d given dy = ∂L/∂y. Each term of the forward sum
 * x[n, iy, ix, ci]·w[ky, kx, ci, m] sends dy[n, oy, ox, ci·M + m]·w to dx and dy·x to dw; db sums dy.
 */
export function depthwiseConv2dBackward(
  x: Tensor,
  w: Tensor,
  stride: number,
  padding: Padding,
  dilation: number,
  dy: Tensor,
): { dx: Tensor; dw: Tensor; db: Tensor } {
  expectRank(x, 4, 'depthwiseConv2dBackward x');
  expectRank(w, 4, 'depthwiseConv2dBackward w');
  expectRank(dy, 4, 'depthwiseConv2dBackward dy');
  const [N, H, W, Ci] = x.shape as [number, number, number, number];
  const [K, , , M] = w.shape as [number, number, number, number];
  const gy = dilatedGeometry(H, K, stride, dilation, padding);
  const gx = dilatedGeometry(W, K, stride, dilation, padding);
  if (dy.shape[0] !== N || dy.shape[1] !== gy.out || dy.shape[2] !== gx.out || dy.shape[3] !== Ci * M) {
    throw new Error('depthwiseConv2dBackward: dy has the wrong shape');
  }
  const dx = tensor(x.shape);
  const dw = tensor(w.shape);
  const db = tensor([Ci * M]);

  for (let n = 0; n < N; n++) {
    for (let oy = 0; oy < gy.out; oy++) {
      for (let ox = 0; ox < gx.out; ox++) {
        for (let ci = 0; ci < Ci; ci++) {
          for (let m = 0; m < M; m++) {
            const g = dy.data[at4(dy.shape, n, oy, ox, ci * M + m)]!;
            db.data[ci * M + m] += g;
            for (let ky = 0; ky < K; ky++) {
              for (let kx = 0; kx < K; kx++) {
                const iy = oy * stride - gy.padBefore + ky * dilation;
                const ix = ox * stride - gx.padBefore + kx * dilation;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                dx.data[at4(dx.shape, n, iy, ix, ci)] += g * w.data[at4(w.shape, ky, kx, ci, m)]!;
                dw.data[at4(dw.shape, ky, kx, ci, m)] += g * x.data[at4(x.shape, n, iy, ix, ci)]!;
              }
            }
          }
        }
      }
    }
  }
  return { dx, dw, db };
}

// ---------------------------------------------------------------------------------------------
// maxpool
// ---------------------------------------------------------------------------------------------

/**
 * Row-major position (iy, ix) of the first maximum of channel c in the window of output cell
 * (oy, ox), looking only at real (non-padded) cells. A window always holds at least one real cell.
 */
function firstMaxInWindow(
  x: Tensor,
  n: number,
  oy: number,
  ox: number,
  c: number,
  size: number,
  stride: number,
  top: number,
  left: number,
): { iy: number; ix: number; value: number } {
  const [, H, W] = x.shape as [number, number, number, number];
  let best = { iy: -1, ix: -1, value: -Infinity };
  for (let ky = 0; ky < size; ky++) {
    for (let kx = 0; kx < size; kx++) {
      const iy = oy * stride - top + ky;
      const ix = ox * stride - left + kx;
      if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue; // padded cell: never a candidate
      const v = x.data[at4(x.shape, n, iy, ix, c)]!;
      if (best.iy < 0 || v > best.value) best = { iy, ix, value: v }; // strict '>': first max wins
    }
  }
  if (best.iy < 0) throw new Error('maxpool: window without any real cell');
  return best;
}

/** y[n, oy, ox, c] = max over the real cells of the window of x[n, ·, ·, c]. */
export function maxpool(x: Tensor, size: number, stride: number, padding: Padding): Tensor {
  expectRank(x, 4, 'maxpool x');
  const [N, H, W, C] = x.shape as [number, number, number, number];
  const gy = windowGeometry(H, size, stride, padding);
  const gx = windowGeometry(W, size, stride, padding);
  const y = tensor([N, gy.out, gx.out, C]);
  for (let n = 0; n < N; n++) {
    for (let oy = 0; oy < gy.out; oy++) {
      for (let ox = 0; ox < gx.out; ox++) {
        for (let c = 0; c < C; c++) {
          const m = firstMaxInWindow(x, n, oy, ox, c, size, stride, gy.padBefore, gx.padBefore);
          y.data[at4(y.shape, n, oy, ox, c)] = m.value;
        }
      }
    }
  }
  return y;
}

/** dx: each dy[n, oy, ox, c] is added to the first maximum (row-major) of its window. */
export function maxpoolBackward(x: Tensor, size: number, stride: number, padding: Padding, dy: Tensor): Tensor {
  expectRank(x, 4, 'maxpoolBackward x');
  expectRank(dy, 4, 'maxpoolBackward dy');
  const [N, H, W, C] = x.shape as [number, number, number, number];
  const gy = windowGeometry(H, size, stride, padding);
  const gx = windowGeometry(W, size, stride, padding);
  if (dy.shape[0] !== N || dy.shape[1] !== gy.out || dy.shape[2] !== gx.out || dy.shape[3] !== C) {
    throw new Error('maxpoolBackward: dy has the wrong shape');
  }
  const dx = tensor(x.shape);
  for (let n = 0; n < N; n++) {
    for (let oy = 0; oy < gy.out; oy++) {
      for (let ox = 0; ox < gx.out; ox++) {
        for (let c = 0; c < C; c++) {
          const m = firstMaxInWindow(x, n, oy, ox, c, size, stride, gy.padBefore, gx.padBefore);
          dx.data[at4(dx.shape, n, m.iy, m.ix, c)] += dy.data[at4(dy.shape, n, oy, ox, c)]!;
        }
      }
    }
  }
  return dx;
}

// ---------------------------------------------------------------------------------------------
// relu
// ---------------------------------------------------------------------------------------------

/** y = min(max(x, 0), ceiling), elementwise (ReLU; ReLU6 with a ceiling of 6). */
export function relu(x: Tensor, ceiling = Infinity): Tensor {
  const y = tensor(x.shape);
  for (let i = 0; i < x.data.length; i++) y.data[i] = x.data[i]! <= 0 ? 0 : x.data[i]! >= ceiling ? ceiling : x.data[i]!;
  return y;
}

/** dx = dy where 0 < x < ceiling, else 0 (so relu'(0) = 0). `x` is relu's input. */
export function reluBackward(x: Tensor, dy: Tensor, ceiling = Infinity): Tensor {
  expectSameShape(x, dy, 'reluBackward');
  const dx = tensor(x.shape);
  for (let i = 0; i < x.data.length; i++) dx.data[i] = x.data[i]! > 0 && x.data[i]! < ceiling ? dy.data[i]! : 0;
  return dx;
}

// ---------------------------------------------------------------------------------------------
// flatten
// ---------------------------------------------------------------------------------------------

/** [N, d1, d2, ...] → [N, d1·d2·...], same data (NHWC order is kept). */
export function flatten(x: Tensor): Tensor {
  const N = x.shape[0]!;
  return tensor([N, sizeOf(x.shape) / N], x.data);
}

/** Reshape the gradient back to the input shape. */
export function flattenBackward(dy: Tensor, xShape: number[]): Tensor {
  return tensor(xShape, dy.data);
}

// ---------------------------------------------------------------------------------------------
// dense
// ---------------------------------------------------------------------------------------------

/** y[n, o] = b[o] + Σ_i x[n, i] · w[i, o]. */
export function dense(x: Tensor, w: Tensor, b: Tensor): Tensor {
  expectRank(x, 2, 'dense x');
  expectRank(w, 2, 'dense w');
  expectRank(b, 1, 'dense b');
  const [N, I] = x.shape as [number, number];
  const [wI, O] = w.shape as [number, number];
  if (wI !== I) throw new Error(`dense: input has ${I} features, weights expect ${wI}`);
  if (b.shape[0] !== O) throw new Error('dense: bias size differs from unit count');
  const y = tensor([N, O]);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      let sum = b.data[o]!;
      for (let i = 0; i < I; i++) sum += x.data[at2(x.shape, n, i)]! * w.data[at2(w.shape, i, o)]!;
      y.data[at2(y.shape, n, o)] = sum;
    }
  }
  return y;
}

/** dx[n,i] = Σ_o dy[n,o]·w[i,o];  dw[i,o] = Σ_n x[n,i]·dy[n,o];  db[o] = Σ_n dy[n,o]. */
export function denseBackward(x: Tensor, w: Tensor, dy: Tensor): { dx: Tensor; dw: Tensor; db: Tensor } {
  expectRank(x, 2, 'denseBackward x');
  expectRank(w, 2, 'denseBackward w');
  expectRank(dy, 2, 'denseBackward dy');
  const [N, I] = x.shape as [number, number];
  const [, O] = w.shape as [number, number];
  if (dy.shape[0] !== N || dy.shape[1] !== O) throw new Error('denseBackward: dy has the wrong shape');
  const dx = tensor([N, I]);
  const dw = tensor([I, O]);
  const db = tensor([O]);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const g = dy.data[at2(dy.shape, n, o)]!;
      db.data[o] += g;
      for (let i = 0; i < I; i++) {
        dx.data[at2(dx.shape, n, i)] += g * w.data[at2(w.shape, i, o)]!;
        dw.data[at2(dw.shape, i, o)] += g * x.data[at2(x.shape, n, i)]!;
      }
    }
  }
  return { dx, dw, db };
}

// ---------------------------------------------------------------------------------------------
// logSoftmax and l2Loss
// ---------------------------------------------------------------------------------------------

/**
 * y[..., c] = z[..., c] − log Σ_j exp(z[..., j]) over the last dim, computed as
 * (z[..., c] − m) − log1p(Σ_{j≠a} exp(z[..., j] − m)) with a the row's largest entry and m its
 * value: stable for any z, and with log1p the log-probability of a class holding nearly all the
 * probability (−Σ of the others, far below float64's epsilon) is not rounded to 0.
 */
export function logSoftmax(z: Tensor): Tensor {
  const C = z.shape[z.shape.length - 1]!;
  const rows = z.data.length / C;
  const y = tensor(z.shape);
  for (let r = 0; r < rows; r++) {
    let a = 0;
    for (let c = 1; c < C; c++) if (z.data[r * C + c]! > z.data[r * C + a]!) a = c;
    const max = z.data[r * C + a]!;
    let others = 0;
    for (let c = 0; c < C; c++) if (c !== a) others += Math.exp(z.data[r * C + c]! - max);
    for (let c = 0; c < C; c++) y.data[r * C + c] = z.data[r * C + c]! - max - Math.log1p(others);
  }
  return y;
}

/**
 * dz[..., c] = Σ_j dy[..., j]·(δ_jc − p_c) with p = softmax(z), written with Σ_j p_j = 1 as
 * dy_c·Σ_{j≠c} p_j − p_c·Σ_{j≠c} dy_j: no 1 − p_c is ever formed, so the result stays exact
 * relative to its size when one p_c is within epsilon of 1. `z` is logSoftmax's input.
 */
export function logSoftmaxBackward(z: Tensor, dy: Tensor): Tensor {
  expectSameShape(z, dy, 'logSoftmaxBackward');
  const C = z.shape[z.shape.length - 1]!;
  const rows = z.data.length / C;
  const p = logSoftmax(z).data.map(Math.exp);
  const dz = tensor(z.shape);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < C; c++) {
      let otherP = 0;
      let otherDy = 0;
      for (let j = 0; j < C; j++) {
        if (j === c) continue;
        otherP += p[r * C + j]!;
        otherDy += dy.data[r * C + j]!;
      }
      dz.data[r * C + c] = dy.data[r * C + c]! * otherP - p[r * C + c]! * otherDy;
    }
  }
  return dz;
}

/** Σ v² / 2 (TensorFlow's tf.nn.l2_loss). */
export function l2Loss(v: Tensor): number {
  let sum = 0;
  for (let i = 0; i < v.data.length; i++) sum += (v.data[i]! * v.data[i]!) / 2;
  return sum;
}

/** ∂l2Loss/∂v = v. */
export function l2LossBackward(v: Tensor): Tensor {
  return tensor(v.shape, v.data);
}

/**
 * The difference-of-logits-ratio loss of each row of z [n, C] (Croce & Hein 2020, §4), with π the
 * classes sorted by decreasing logit (stable: the lower index first on ties):
 *   untargeted (targets null)  −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3 + 1e-12)
 *   targeted                   −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2 + 1e-12)
 */
export function dlr(z: Tensor, labels: readonly number[], targets: readonly number[] | null): Float64Array {
  const C = z.shape[1]!;
  const out = new Float64Array(z.shape[0]!);
  for (let r = 0; r < out.length; r++) {
    const row = Array.from(z.data.subarray(r * C, (r + 1) * C));
    const pi = row.map((_, c) => c).sort((a, b) => row[b]! - row[a]! || a - b);
    const y = labels[r]!;
    if (targets) {
      out[r] = -(row[y]! - row[targets[r]!]!) / (row[pi[0]!]! - (row[pi[2]!]! + row[pi[3]!]!) / 2 + 1e-12);
    } else {
      let other = -Infinity;
      for (let c = 0; c < C; c++) if (c !== y) other = Math.max(other, row[c]!);
      out[r] = -(row[y]! - other) / (row[pi[0]!]! - row[pi[2]!]! + 1e-12);
    }
  }
  return out;
}

/** dz = dy[r]·∂dlr_r/∂z by the quotient rule on −num/den, each logit's part of num and den
 *  (the largest other class of the untargeted numerator: the lower index on ties). */
export function dlrBackward(z: Tensor, labels: readonly number[], targets: readonly number[] | null, dy: ArrayLike<number>): Tensor {
  const C = z.shape[1]!;
  const dz = tensor(z.shape);
  for (let r = 0; r < z.shape[0]!; r++) {
    const row = Array.from(z.data.subarray(r * C, (r + 1) * C));
    const pi = row.map((_, c) => c).sort((a, b) => row[b]! - row[a]! || a - b);
    const y = labels[r]!;
    let other = -1;
    for (let c = 0; c < C; c++) if (c !== y && (other < 0 || row[c]! > row[other]!)) other = c;
    const dNum = new Float64Array(C), dDen = new Float64Array(C);
    dNum[y] += 1;
    if (targets) {
      dNum[targets[r]!] -= 1;
      dDen[pi[0]!] += 1;
      dDen[pi[2]!] -= 0.5;
      dDen[pi[3]!] -= 0.5;
    } else {
      dNum[other] -= 1;
      dDen[pi[0]!] += 1;
      dDen[pi[2]!] -= 1;
    }
    const num = row[y]! - row[targets ? targets[r]! : other]!;
    const den = targets ? row[pi[0]!]! - (row[pi[2]!]! + row[pi[3]!]!) / 2 + 1e-12 : row[pi[0]!]! - row[pi[2]!]! + 1e-12;
    for (let c = 0; c < C; c++) dz.data[r * C + c] = dy[r]! * (-dNum[c]! / den + (num * dDen[c]!) / (den * den));
  }
  return dz;
}

// ---------------------------------------------------------------------------------------------
// Layers of larger networks: activations, average and global pooling, concat, pad, affine, add
// ---------------------------------------------------------------------------------------------

export type ActivationKind = 'relu' | 'relu6' | 'leaky_relu' | 'elu' | 'sigmoid' | 'tanh';

/** One value through activation `kind`; `alpha` is leaky ReLU's slope below 0 and ELU's scale. */
function activate(v: number, kind: ActivationKind, alpha: number): number {
  switch (kind) {
    case 'relu':
      return v > 0 ? v : 0;
    case 'relu6':
      return Math.min(Math.max(v, 0), 6);
    case 'leaky_relu':
      return v > 0 ? v : alpha * v;
    case 'elu':
      return v > 0 ? v : alpha * Math.expm1(v);
    case 'sigmoid':
      return v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v));
    case 'tanh':
      return Math.tanh(v);
  }
}

/** The derivative of activation `kind` at v, with TensorFlow's values at the kinks: relu′(0) = 0,
 *  relu6′ is 1 only on 0 < v < 6, leaky ReLU's and ELU's take the lower branch at 0. */
function activateDerivative(v: number, kind: ActivationKind, alpha: number): number {
  switch (kind) {
    case 'relu':
      return v > 0 ? 1 : 0;
    case 'relu6':
      return v > 0 && v < 6 ? 1 : 0;
    case 'leaky_relu':
      return v > 0 ? 1 : alpha;
    case 'elu':
      return v > 0 ? 1 : alpha * Math.exp(v);
    case 'sigmoid': // σ(v)·(1 − σ(v)), without the cancellation of 1 − σ(v) in the tails
      return activate(v, 'sigmoid', 0) * activate(-v, 'sigmoid', 0);
    case 'tanh': // 1 − tanh²(v), likewise
      return 1 / Math.cosh(v) ** 2;
  }
}

/** y = activation(x), elementwise. */
export function activation(x: Tensor, kind: ActivationKind, alpha = 0): Tensor {
  return tensor(x.shape, Array.from(x.data, (v) => activate(v, kind, alpha)));
}

/** dx = dy · activation′(x), elementwise (x = the activation's input). */
export function activationBackward(x: Tensor, kind: ActivationKind, alpha: number, dy: Tensor): Tensor {
  expectSameShape(x, dy, 'activationBackward');
  return tensor(x.shape, Array.from(x.data, (v, i) => dy.data[i]! * activateDerivative(v, kind, alpha)));
}

/** y[n, oy, ox, c] = the mean of x[n, ·, ·, c] over the REAL cells of the window (padded cells
 *  are not counted, as in TensorFlow's avg_pool). */
export function avgpool(x: Tensor, size: number, stride: number, padding: Padding): Tensor {
  expectRank(x, 4, 'avgpool x');
  const [N, H, W, C] = x.shape as [number, number, number, number];
  const gy = windowGeometry(H, size, stride, padding);
  const gx = windowGeometry(W, size, stride, padding);
  const y = tensor([N, gy.out, gx.out, C]);
  for (let n = 0; n < N; n++) {
    for (let oy = 0; oy < gy.out; oy++) {
      for (let ox = 0; ox < gx.out; ox++) {
        for (let c = 0; c < C; c++) {
          let sum = 0;
          let count = 0;
          for (let ky = 0; ky < size; ky++) {
            for (let kx = 0; kx < size; kx++) {
              const iy = oy * stride - gy.padBefore + ky;
              const ix = ox * stride - gx.padBefore + kx;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue; // padded cell: not counted
              sum += x.data[at4(x.shape, n, iy, ix, c)]!;
              count++;
            }
          }
          y.data[at4(y.shape, n, oy, ox, c)] = sum / count;
        }
      }
    }
  }
  return y;
}

/** dx: each dy[n, oy, ox, c] is shared equally by the real cells of its window; windows add up. */
export function avgpoolBackward(x: Tensor, size: number, stride: number, padding: Padding, dy: Tensor): Tensor {
  expectRank(x, 4, 'avgpoolBackward x');
  expectRank(dy, 4, 'avgpoolBackward dy');
  const [N, H, W, C] = x.shape as [number, number, number, number];
  const gy = windowGeometry(H, size, stride, padding);
  const gx = windowGeometry(W, size, stride, padding);
  if (dy.shape[0] !== N || dy.shape[1] !== gy.out || dy.shape[2] !== gx.out || dy.shape[3] !== C) {
    throw new Error('avgpoolBackward: dy has the wrong shape');
  }
  const dx = tensor(x.shape);
  for (let n = 0; n < N; n++) {
    for (let oy = 0; oy < gy.out; oy++) {
      for (let ox = 0; ox < gx.out; ox++) {
        const cells: [number, number][] = [];
        for (let ky = 0; ky < size; ky++) {
          for (let kx = 0; kx < size; kx++) {
            const iy = oy * stride - gy.padBefore + ky;
            const ix = ox * stride - gx.padBefore + kx;
            if (iy >= 0 && iy < H && ix >= 0 && ix < W) cells.push([iy, ix]);
          }
        }
        for (let c = 0; c < C; c++) {
          const share = dy.data[at4(dy.shape, n, oy, ox, c)]! / cells.length;
          for (const [iy, ix] of cells) dx.data[at4(dx.shape, n, iy, ix, c)] += share;
        }
      }
    }
  }
  return dx;
}

/** y[n, c] = the mean of x[n, ·, ·, c] over the whole image. */
export function globalAvgPool(x: Tensor): Tensor {
  expectRank(x, 4, 'globalAvgPool x');
  const [N, H, W, C] = x.shape as [number, number, number, number];
  const y = tensor([N, C]);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      let sum = 0;
      for (let iy = 0; iy < H; iy++) for (let ix = 0; ix < W; ix++) sum += x.data[at4(x.shape, n, iy, ix, c)]!;
      y.data[at2(y.shape, n, c)] = sum / (H * W);
    }
  }
  return y;
}

/** dx[n, iy, ix, c] = dy[n, c] / (H·W). */
export function globalAvgPoolBackward(x: Tensor, dy: Tensor): Tensor {
  expectRank(x, 4, 'globalAvgPoolBackward x');
  const [N, H, W, C] = x.shape as [number, number, number, number];
  if (dy.shape.length !== 2 || dy.shape[0] !== N || dy.shape[1] !== C) throw new Error('globalAvgPoolBackward: dy has the wrong shape');
  const dx = tensor(x.shape);
  for (let n = 0; n < N; n++) {
    for (let iy = 0; iy < H; iy++) {
      for (let ix = 0; ix < W; ix++) {
        for (let c = 0; c < C; c++) dx.data[at4(dx.shape, n, iy, ix, c)] = dy.data[at2(dy.shape, n, c)]! / (H * W);
      }
    }
  }
  return dx;
}

/** Row-major position of the first maximum of channel c of image n (strict '>' scan). */
function firstMaxInImage(x: Tensor, n: number, c: number): { iy: number; ix: number; value: number } {
  const [, H, W] = x.shape as [number, number, number, number];
  let best = { iy: 0, ix: 0, value: x.data[at4(x.shape, n, 0, 0, c)]! };
  for (let iy = 0; iy < H; iy++) {
    for (let ix = 0; ix < W; ix++) {
      const v = x.data[at4(x.shape, n, iy, ix, c)]!;
      if (v > best.value) best = { iy, ix, value: v };
    }
  }
  return best;
}

/** y[n, c] = the maximum of x[n, ·, ·, c] over the whole image. */
export function globalMaxPool(x: Tensor): Tensor {
  expectRank(x, 4, 'globalMaxPool x');
  const [N, , , C] = x.shape as [number, number, number, number];
  const y = tensor([N, C]);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) y.data[at2(y.shape, n, c)] = firstMaxInImage(x, n, c).value;
  return y;
}

/** dx: each dy[n, c] goes to the first maximum (row-major) of channel c of image n. */
export function globalMaxPoolBackward(x: Tensor, dy: Tensor): Tensor {
  expectRank(x, 4, 'globalMaxPoolBackward x');
  const [N, , , C] = x.shape as [number, number, number, number];
  if (dy.shape.length !== 2 || dy.shape[0] !== N || dy.shape[1] !== C) throw new Error('globalMaxPoolBackward: dy has the wrong shape');
  const dx = tensor(x.shape);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const m = firstMaxInImage(x, n, c);
      dx.data[at4(dx.shape, n, m.iy, m.ix, c)] += dy.data[at2(dy.shape, n, c)]!;
    }
  }
  return dx;
}

/** The tensors side by side along the last dim; all other dims must be equal. */
export function concat(xs: Tensor[]): Tensor {
  const lead = xs[0]!.shape.slice(0, -1);
  for (const x of xs) {
    if (x.shape.length !== lead.length + 1 || lead.some((d, i) => x.shape[i] !== d)) throw new Error('concat: leading dims differ');
  }
  const rows = sizeOf(lead);
  const total = xs.reduce((s, x) => s + x.shape[lead.length]!, 0);
  const y = tensor([...lead, total]);
  for (let r = 0; r < rows; r++) {
    let column = 0;
    for (const x of xs) {
      const width = x.shape[lead.length]!;
      for (let j = 0; j < width; j++) y.data[r * total + column + j] = x.data[r * width + j]!;
      column += width;
    }
  }
  return y;
}

/** The gradient of each input of concat: its columns of dy. */
export function concatBackward(xs: Tensor[], dy: Tensor): Tensor[] {
  const last = dy.shape.length - 1;
  const total = dy.shape[last]!;
  const rows = sizeOf(dy.shape) / total;
  let column = 0;
  return xs.map((x) => {
    const width = x.shape[last]!;
    const dx = tensor(x.shape);
    for (let r = 0; r < rows; r++) for (let j = 0; j < width; j++) dx.data[r * width + j] = dy.data[r * total + column + j]!;
    column += width;
    return dx;
  });
}

/** x [N, H, W, C] with `top` rows of zeros above each image, `bottom` below, `left` and `right`
 *  columns of zeros beside it. */
export function pad(x: Tensor, top: number, bottom: number, left: number, right: number): Tensor {
  expectRank(x, 4, 'pad x');
  const [N, H, W, C] = x.shape as [number, number, number, number];
  const y = tensor([N, H + top + bottom, W + left + right, C]);
  for (let n = 0; n < N; n++) {
    for (let iy = 0; iy < H; iy++) {
      for (let ix = 0; ix < W; ix++) {
        for (let c = 0; c < C; c++) y.data[at4(y.shape, n, iy + top, ix + left, c)] = x.data[at4(x.shape, n, iy, ix, c)]!;
      }
    }
  }
  return y;
}

/** dx: dy with the padding cropped off. */
export function padBackward(x: Tensor, top: number, left: number, dy: Tensor): Tensor {
  expectRank(x, 4, 'padBackward x');
  expectRank(dy, 4, 'padBackward dy');
  const [N, H, W, C] = x.shape as [number, number, number, number];
  const dx = tensor(x.shape);
  for (let n = 0; n < N; n++) {
    for (let iy = 0; iy < H; iy++) {
      for (let ix = 0; ix < W; ix++) {
        for (let c = 0; c < C; c++) dx.data[at4(dx.shape, n, iy, ix, c)] = dy.data[at4(dy.shape, n, iy + top, ix + left, c)]!;
      }
    }
  }
  return dx;
}

/** y[..., c] = x[..., c]·scale[c] + shift[c] over the last dim. */
export function affine(x: Tensor, scale: Tensor, shift: Tensor): Tensor {
  const C = x.shape[x.shape.length - 1]!;
  if (scale.data.length !== C || shift.data.length !== C) throw new Error('affine: scale and shift need one value per channel');
  return tensor(x.shape, Array.from(x.data, (v, i) => v * scale.data[i % C]! + shift.data[i % C]!));
}

/** dx = dy·scale[c];  dscale[c] = Σ dy·x;  dshift[c] = Σ dy (sums over every dim but the last). */
export function affineBackward(x: Tensor, scale: Tensor, dy: Tensor): { dx: Tensor; dscale: Tensor; dshift: Tensor } {
  expectSameShape(x, dy, 'affineBackward');
  const C = x.shape[x.shape.length - 1]!;
  const dx = tensor(x.shape);
  const dscale = tensor([C]);
  const dshift = tensor([C]);
  for (let i = 0; i < x.data.length; i++) {
    const c = i % C;
    dx.data[i] = dy.data[i]! * scale.data[c]!;
    dscale.data[c] += dy.data[i]! * x.data[i]!;
    dshift.data[c] += dy.data[i]!;
  }
  return { dx, dscale, dshift };
}

/** a + b, elementwise, equal shapes (its gradient is dy to each). */
export function add(a: Tensor, b: Tensor): Tensor {
  expectSameShape(a, b, 'add');
  return tensor(a.shape, Array.from(a.data, (v, i) => v + b.data[i]!));
}

// ---------------------------------------------------------------------------------------------
// Network
// ---------------------------------------------------------------------------------------------

/** A layer's activation; `softmax` (which may end a network) is left out, as by the engine. */
export type Activation = 'none' | ActivationKind | 'softmax';

/**
 * A layer of a network graph, as in the model file: it reads the previous layer, or the layers
 * named in `inputs` ("input" is the network's input). Fields a type does not use are ignored;
 * omitted ones take the model file's defaults (stride 1, dilation 1, padding 'valid',
 * activation 'none', multiplier 1, pool stride = size).
 */
export interface Layer {
  type: string;
  name?: string;
  inputs?: string[];
  filters?: number;
  kernel?: number;
  multiplier?: number;
  units?: number;
  size?: number;
  stride?: number;
  dilation?: number;
  padding?: Padding;
  activation?: Activation;
  alpha?: number;
  pad?: [number, number, number, number];
}

export interface Architecture {
  /** [H, W, C] of one input image. */
  input: [number, number, number];
  /** Per-channel preprocessing: the network's input x is in the channels' mean units (as the
   *  engine's is), so channel c first becomes ((x·S + O) − offset_c) / scale_c. */
  preprocess?: { offset: number | number[]; scale: number | number[] };
  layers: Layer[];
}

/** What one layer did in the forward pass: its inputs, its output before the activation, and after. */
interface NodeRecord {
  layer: Layer;
  inputs: number[]; // indices of earlier nodes, -1 for the network input
  xs: Tensor[];
  pre: Tensor;
  out: Tensor;
}

const stride = (l: Layer) => l.stride ?? (l.type === 'maxpool' || l.type === 'avgpool' ? l.size! : 1);
const activationOf = (l: Layer): ActivationKind | null => {
  const a = l.activation ?? 'none';
  return a === 'none' || a === 'softmax' ? null : a;
};

/** The per-channel correction of the input (see Architecture.preprocess), or null. */
function correction(arch: Architecture): { scale: Tensor; shift: Tensor } | null {
  const p = arch.preprocess;
  if (!p || (typeof p.offset === 'number' && typeof p.scale === 'number')) return null;
  const c = arch.input[2];
  const at = (v: number | number[], i: number) => (typeof v === 'number' ? v : v[i]!);
  const mean = (v: number | number[]) => (typeof v === 'number' ? v : v.reduce((a, b) => a + b, 0) / v.length);
  const S = mean(p.scale), O = mean(p.offset);
  const scale = tensor([c]), shift = tensor([c]);
  for (let i = 0; i < c; i++) {
    scale.data[i] = S / at(p.scale, i);
    shift.data[i] = (O - at(p.offset, i)) / at(p.scale, i);
  }
  return { scale, shift };
}

/** A weight by key, of the shape the layer needs. */
type WeightSource = (key: string, shape: number[]) => Tensor;

function weightsOf(weights: Map<string, Float64Array>): WeightSource {
  return (key, shape) => {
    const data = weights.get(key);
    if (data === undefined) throw new Error(`missing weight ${key}`);
    if (data.length !== sizeOf(shape)) throw new Error(`weight ${key} has ${data.length} values, expected [${shape.join(', ')}]`);
    return { shape, data };
  };
}

function forwardRecorded(arch: Architecture, weight: WeightSource, x: Tensor): { logits: Tensor; input: Tensor; records: NodeRecord[] } {
  expectRank(x, 4, 'network input');
  const [, H, W, C] = x.shape as [number, number, number, number];
  if (H !== arch.input[0] || W !== arch.input[1] || C !== arch.input[2]) {
    throw new Error(`network input is [${x.shape.join(', ')}], architecture expects [N, ${arch.input.join(', ')}]`);
  }
  const corr = correction(arch);
  const input = corr ? affine(x, corr.scale, corr.shift) : x;
  const index = new Map<string, number>([['input', -1]]);
  const records: NodeRecord[] = [];
  arch.layers.forEach((layer, i) => {
    const inputs = (layer.inputs ?? [i === 0 ? 'input' : null]).map((n) => {
      if (n === null) return i - 1;
      const at = index.get(n);
      if (at === undefined) throw new Error(`layer ${i} reads unknown ${n}`);
      return at;
    });
    const xs = inputs.map((j) => (j < 0 ? input : records[j]!.out));
    const a = xs[0]!;
    const w = (shape: number[]) => weight(`${layer.name}.w`, shape);
    const b = (count: number) => weight(`${layer.name}.b`, [count]);
    const channels = a.shape[a.shape.length - 1]!;
    let pre: Tensor;
    switch (layer.type) {
      case 'conv2d':
        pre = conv2d(a, w([layer.kernel!, layer.kernel!, channels, layer.filters!]), b(layer.filters!), stride(layer), layer.padding ?? 'valid', layer.dilation ?? 1);
        break;
      case 'depthwise_conv2d': {
        const m = layer.multiplier ?? 1;
        pre = depthwiseConv2d(a, w([layer.kernel!, layer.kernel!, channels, m]), b(channels * m), stride(layer), layer.padding ?? 'valid', layer.dilation ?? 1);
        break;
      }
      case 'dense':
        pre = dense(a, w([channels, layer.units!]), b(layer.units!));
        break;
      case 'maxpool':
        pre = maxpool(a, layer.size!, stride(layer), layer.padding ?? 'valid');
        break;
      case 'avgpool':
        pre = avgpool(a, layer.size!, stride(layer), layer.padding ?? 'valid');
        break;
      case 'global_maxpool':
        pre = globalMaxPool(a);
        break;
      case 'global_avgpool':
        pre = globalAvgPool(a);
        break;
      case 'flatten':
        pre = flatten(a);
        break;
      case 'add':
        pre = xs.slice(1).reduce((sum, t) => add(sum, t), a);
        break;
      case 'concat':
        pre = concat(xs);
        break;
      case 'affine':
        pre = affine(a, w([channels]), b(channels));
        break;
      case 'pad': {
        const [top, bottom, left, right] = layer.pad!;
        pre = pad(a, top, bottom, left, right);
        break;
      }
      case 'activation':
        pre = a;
        break;
      default:
        throw new Error(`reference: unknown layer type ${layer.type}`);
    }
    const kind = activationOf(layer);
    records.push({ layer, inputs, xs, pre, out: kind ? activation(pre, kind, layer.alpha ?? 0) : pre });
    if (layer.name !== undefined) index.set(layer.name, i);
  });
  const logits = records[records.length - 1]!.out;
  if (logits.shape.length !== 2) throw new Error('network: the last layer must produce [N, classes]');
  return { logits, input, records };
}

/** Shape of every weight tensor of `arch`: those its layers ask for on a batch of zeros. */
export function weightShapes(arch: Architecture): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  forwardRecorded(arch, (key, shape) => (shapes.set(key, shape), tensor(shape)), tensor([1, ...arch.input]));
  return shapes;
}

/** Logits [N, classes] of the network for the batch x [N, H, W, C]. */
export function networkLogits(arch: Architecture, weights: Map<string, Float64Array>, x: Tensor): Tensor {
  return forwardRecorded(arch, weightsOf(weights), x).logits;
}

/**
 * loss = −Σ_n Σ_c y[n,c]·logSoftmax(logits(x + dx))[n,c] + beta·l2Loss(dx), with its gradient
 * with respect to dx and to every weight tensor (same keys as `weights`).
 */
export function networkLossAndGradients(
  arch: Architecture,
  weights: Map<string, Float64Array>,
  x: Tensor,
  dx: Tensor,
  y: Tensor,
  beta: number,
): { loss: number; dDx: Tensor; dWeights: Map<string, Float64Array> } {
  expectSameShape(x, dx, 'networkLossAndGradients x/dx');
  const moved = tensor(x.shape);
  for (let i = 0; i < moved.data.length; i++) moved.data[i] = x.data[i]! + dx.data[i]!;
  const weight = weightsOf(weights);

  // Forward.
  const { logits, input, records } = forwardRecorded(arch, weight, moved);
  expectSameShape(logits, y, 'networkLossAndGradients logits/y');
  const logProbs = logSoftmax(logits);
  let loss = 0;
  for (let i = 0; i < logProbs.data.length; i++) loss -= y.data[i]! * logProbs.data[i]!;
  loss += beta * l2Loss(dx);

  // Backward through the graph: each node's output gradient is complete once every later node
  // has added its share (nodes are listed after their inputs).
  const dLogProbs = tensor(y.shape);
  for (let i = 0; i < y.data.length; i++) dLogProbs.data[i] = -y.data[i]!;
  const grads: (Tensor | null)[] = records.map(() => null);
  grads[records.length - 1] = logSoftmaxBackward(logits, dLogProbs);
  let dInput = tensor(input.shape);
  const accumulate = (j: number, g: Tensor) => {
    const into = j < 0 ? dInput : (grads[j] ??= tensor(g.shape));
    for (let i = 0; i < g.data.length; i++) into.data[i]! += g.data[i]!;
  };
  const dWeights = new Map<string, Float64Array>();
  for (let l = records.length - 1; l >= 0; l--) {
    const { layer, inputs, xs, pre } = records[l]!;
    const g = grads[l];
    if (!g) continue; // nothing reads this node
    const kind = activationOf(layer);
    const gz = kind ? activationBackward(pre, kind, layer.alpha ?? 0, g) : g;
    const a = xs[0]!;
    const channels = a.shape[a.shape.length - 1]!;
    const setWeights = (dw: Tensor, db: Tensor) => {
      dWeights.set(`${layer.name}.w`, dw.data);
      dWeights.set(`${layer.name}.b`, db.data);
    };
    switch (layer.type) {
      case 'conv2d': {
        const r = conv2dBackward(a, weight(`${layer.name}.w`, [layer.kernel!, layer.kernel!, channels, layer.filters!]), stride(layer), layer.padding ?? 'valid', gz, layer.dilation ?? 1);
        setWeights(r.dw, r.db);
        accumulate(inputs[0]!, r.dx);
        break;
      }
      case 'depthwise_conv2d': {
        const r = depthwiseConv2dBackward(a, weight(`${layer.name}.w`, [layer.kernel!, layer.kernel!, channels, layer.multiplier ?? 1]), stride(layer), layer.padding ?? 'valid', layer.dilation ?? 1, gz);
        setWeights(r.dw, r.db);
        accumulate(inputs[0]!, r.dx);
        break;
      }
      case 'dense': {
        const r = denseBackward(a, weight(`${layer.name}.w`, [channels, layer.units!]), gz);
        setWeights(r.dw, r.db);
        accumulate(inputs[0]!, r.dx);
        break;
      }
      case 'maxpool':
        accumulate(inputs[0]!, maxpoolBackward(a, layer.size!, stride(layer), layer.padding ?? 'valid', gz));
        break;
      case 'avgpool':
        accumulate(inputs[0]!, avgpoolBackward(a, layer.size!, stride(layer), layer.padding ?? 'valid', gz));
        break;
      case 'global_maxpool':
        accumulate(inputs[0]!, globalMaxPoolBackward(a, gz));
        break;
      case 'global_avgpool':
        accumulate(inputs[0]!, globalAvgPoolBackward(a, gz));
        break;
      case 'flatten':
        accumulate(inputs[0]!, flattenBackward(gz, a.shape));
        break;
      case 'add':
        inputs.forEach((j) => accumulate(j, gz));
        break;
      case 'concat':
        concatBackward(xs, gz).forEach((d, k) => accumulate(inputs[k]!, d));
        break;
      case 'affine': {
        const r = affineBackward(a, weight(`${layer.name}.w`, [channels]), gz);
        setWeights(r.dscale, r.dshift);
        accumulate(inputs[0]!, r.dx);
        break;
      }
      case 'pad':
        accumulate(inputs[0]!, padBackward(a, layer.pad![0], layer.pad![2], gz));
        break;
      case 'activation':
        accumulate(inputs[0]!, gz);
        break;
    }
  }
  const corr = correction(arch);
  if (corr) dInput = affineBackward(moved, corr.scale, dInput).dx;

  // ∂loss/∂dx = ∂loss/∂(x + dx) + beta·dx.
  const dDx = tensor(x.shape);
  const dl2 = l2LossBackward(dx);
  for (let i = 0; i < dDx.data.length; i++) dDx.data[i] = dInput.data[i]! + beta * dl2.data[i]!;
  return { loss, dDx, dWeights };
}
