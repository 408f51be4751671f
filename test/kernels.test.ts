// Every kernel, forward and backward, through the ops and the tape, against the independent
// float64 reference (itself checked against finite differences in reference.test.ts).
import { beforeAll, describe, expect, it } from 'vitest';
import type { Engine, Tensor } from '../src/core/engine.js';
import { loadEngine } from '../src/node/engine.js';
import * as ops from '../src/core/ops.js';
import { Tape } from '../src/core/tape.js';
import * as ref from './reference.js';
import { errorRecord, randomTensor, runOnTape } from './support/against-reference.js';
import { random } from '../src/core/random.js';

let engine: Engine;
const { check } = errorRecord('worst relative errors against the float64 reference');
const run = (inputs: ref.Tensor[], build: (tape: Tape, xs: Tensor[]) => Tensor, rand: () => number) => runOnTape(engine, inputs, build, rand);

beforeAll(async () => {
  engine = await loadEngine();
});

describe('conv2d against the reference', () => {
  const sizes = [[7, 9], [13, 11], [5, 6]];
  const couts = [1, 3, 4, 6, 7, 12];
  let case_ = 0;
  for (const [h, w] of sizes) for (const stride of [1, 2, 3]) for (const padding of ['same', 'valid'] as const) {
    it(`${h}×${w}, stride ${stride}, ${padding}: kernels 1–5, batch 1 and 3, channels 1, 3, 5, relu or not`, () => {
      for (const k of [1, 2, 3, 4, 5]) for (const n of [1, 3]) for (const cin of [1, 3, 5]) for (const relu of [false, true]) {
        const cout = couts[case_++ % couts.length];
        const rand = random(case_);
        const x = randomTensor([n, h, w, cin], rand), wt = randomTensor([k, k, cin, cout], rand), b = randomTensor([cout], rand);
        const context = `(n ${n}, ${h}×${w}×${cin} → ${cout}, k ${k}, s ${stride}, ${padding}, relu ${relu})`;
        const out = run([x, wt, b], (tape, [xx, ww, bb]) => ops.conv2d(tape, xx, ww, bb, { stride, padding, relu }), rand);
        const pre = ref.conv2d(x, wt, b, stride, padding);
        check('conv2d forward', out.y, (relu ? ref.relu(pre) : pre).data, context);
        const dy = relu ? ref.reluBackward(pre, out.g) : out.g;
        const grads = ref.conv2dBackward(x, wt, stride, padding, dy);
        check('conv2d ∂input', out.grads[0]!, grads.dx.data, context);
        check('conv2d ∂filter', out.grads[1]!, grads.dw.data, context);
        check('conv2d ∂bias', out.grads[2]!, grads.db.data, context);
      }
    });
  }
  it('a batch of images too large for one cache-sized chunk of the filter gradient (64×64×3 → 4, k 5)', () => {
    const rand = random(99);
    const x = randomTensor([3, 64, 64, 3], rand), wt = randomTensor([5, 5, 3, 4], rand), b = randomTensor([4], rand);
    const out = run([x, wt, b], (tape, [xx, ww, bb]) => ops.conv2d(tape, xx, ww, bb, { stride: 1, padding: 'same', relu: true }), rand);
    const pre = ref.conv2d(x, wt, b, 1, 'same');
    const grads = ref.conv2dBackward(x, wt, 1, 'same', ref.reluBackward(pre, out.g));
    check('conv2d ∂filter', out.grads[1]!, grads.dw.data, '(n 3, 64×64×3 → 4, k 5)');
    check('conv2d ∂input', out.grads[0]!, grads.dx.data, '(n 3, 64×64×3 → 4, k 5)');
  });

  /** One conv2d through the tape against the reference, forward and every gradient. */
  /** `ceiling`: the ReLU's upper bound, low enough for random data to reach it as ReLU6's 6 is reached in a network. */
  function checkConv(n: number, h: number, w: number, cin: number, cout: number, k: number, stride: number, dilation: number, padding: ref.Padding, relu: boolean, seed: number, ceiling = seed % 4 ? Infinity : 0.6): void {
    const rand = random(seed);
    const x = randomTensor([n, h, w, cin], rand), wt = randomTensor([k, k, cin, cout], rand), b = randomTensor([cout], rand);
    const context = `(n ${n}, ${h}×${w}×${cin} → ${cout}, k ${k}, s ${stride}, d ${dilation}, ${padding}, relu ${relu}, ceiling ${ceiling})`;
    const out = run([x, wt, b], (tape, [xx, ww, bb]) => ops.conv2d(tape, xx, ww, bb, { stride, padding, relu, ceiling, dilation }), rand);
    const pre = ref.conv2d(x, wt, b, stride, padding, dilation);
    check('conv2d forward', out.y, (relu ? ref.relu(pre, ceiling) : pre).data, context);
    const grads = ref.conv2dBackward(x, wt, stride, padding, relu ? ref.reluBackward(pre, out.g, ceiling) : out.g, dilation);
    check('conv2d ∂input', out.grads[0]!, grads.dx.data, context);
    check('conv2d ∂filter', out.grads[1]!, grads.dw.data, context);
    check('conv2d ∂bias', out.grads[2]!, grads.db.data, context);
  }

  it('pointwise (1×1, stride 1, a matrix product): channels 1 to 70 in and out, batch 1 and 3, relu or not', () => {
    let seed = 400;
    const channels = [1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 24, 31, 40, 63, 64, 70];
    for (const cin of channels) for (const cout of channels) {
      const n = seed % 2 ? 3 : 1, relu = seed % 3 === 0;
      checkConv(n, 5 + (seed % 4), 3 + (seed % 5), cin, cout, 1, 1, 1, seed % 5 === 0 ? 'valid' : 'same', relu, seed++);
    }
  });

  it('pointwise products deeper than a depth block and taller than a block of rows (300 → 20 and 37 → 300 channels)', () => {
    checkConv(2, 17, 23, 300, 20, 1, 1, 1, 'same', true, 501);
    checkConv(1, 40, 31, 37, 300, 1, 1, 1, 'valid', false, 502);
    checkConv(2, 48, 40, 12, 13, 1, 1, 1, 'same', true, 503);
  });

  for (const dilation of [2, 3]) {
    it(`dilation ${dilation}: kernels 1–5, strides 1 and 2, both paddings, batch 1 and 3, channels 1 to 9`, () => {
      let seed = 600 + 100 * dilation;
      for (const k of [1, 2, 3, 4, 5]) for (const stride of [1, 2]) for (const padding of ['same', 'valid'] as const) for (const n of [1, 3]) {
        const [h, w] = seed % 2 ? [14, 13] : [17, 19];
        if ((k - 1) * dilation + 1 > Math.min(h, w)) continue;
        checkConv(n, h, w, [1, 3, 4, 9][seed % 4], [1, 5, 8, 6, 2][seed % 5], k, stride, dilation, padding, seed % 3 === 0, seed++);
      }
    });
  }

  it('a dilation that is not a whole number ≥ 1 is refused', () => {
    const tape = new Tape(engine);
    const x = engine.tensor([1, 5, 5, 2]), w = engine.tensor([3, 3, 2, 1]), b = engine.tensor([1]);
    for (const dilation of [0, -1, 1.5, NaN]) {
      expect(() => ops.conv2d(tape, x, w, b, { stride: 1, padding: 'same', relu: false, dilation })).toThrow(/dilation must be a whole number/);
    }
    tape.dispose();
  });

  it('strides 2 to 4: kernels 1–5, both paddings, batch 1 and 3, channels 1 to 70', () => {
    let seed = 900;
    for (const stride of [2, 3, 4]) for (const k of [1, 2, 3, 4, 5]) for (const padding of ['same', 'valid'] as const) for (const n of [1, 3]) {
      const [h, w] = [[9, 16], [15, 12], [23, 21]][seed % 3];
      checkConv(n, h, w, [1, 3, 8, 13, 32][seed % 5], [1, 4, 7, 16, 70][seed % 5 === 4 ? 3 : (seed * 7) % 5], k, stride, 1, padding, seed % 2 === 0, seed++);
    }
  });

  it('stride 1 from 32 channels in and out (a product over windows, not planar copies): kernels 2–5, both paddings', () => {
    checkConv(2, 9, 11, 32, 33, 3, 1, 1, 'same', true, 940);
    checkConv(1, 7, 8, 40, 32, 5, 1, 1, 'valid', false, 941);
    checkConv(2, 6, 6, 64, 70, 2, 1, 1, 'same', false, 942);
    checkConv(1, 10, 9, 35, 48, 4, 1, 1, 'same', true, 943);
  });

  it('strided windows in several chunks, deeper than a depth block (stride 2, k 3, 31 → 40 channels; k 5, 3 → 9 on 64×64)', () => {
    checkConv(2, 30, 28, 31, 40, 3, 2, 1, 'same', true, 950);
    checkConv(3, 64, 64, 3, 9, 5, 2, 1, 'same', false, 951);
  });

  it('a ReLU with a ceiling (ReLU6) fused into each path: planar, over windows, pointwise', () => {
    checkConv(2, 9, 11, 3, 6, 5, 1, 1, 'same', true, 960, 0.5);
    checkConv(1, 12, 12, 6, 12, 5, 1, 1, 'same', true, 961, 0.5);
    checkConv(2, 30, 28, 31, 40, 3, 2, 1, 'same', true, 962, 0.5);
    checkConv(2, 9, 11, 32, 33, 3, 1, 1, 'same', true, 963, 0.5);
    checkConv(2, 17, 23, 300, 20, 1, 1, 1, 'same', true, 964, 0.5);
  });
});

describe('weights without a gradient', () => {
  // Ops keep copies of such weights in their kernels' layouts: made once, and again after write().
  it('conv2d (planar, pointwise, strided, dilated) and dense see the weights written between replays', () => {
    const rand = random(99);
    for (const [k, stride, dilation] of [[5, 1, 1], [5, 2, 1], [1, 1, 1], [3, 1, 2]]) {
      const x = randomTensor([2, 9, 11, 3], rand), b = randomTensor([6], rand);
      const first = randomTensor([k, k, 3, 6], rand), second = randomTensor([k, k, 3, 6], rand);
      const tape = new Tape(engine);
      const xx = engine.tensor(x.shape, x.data).requireGrad(), w = engine.tensor(first.shape, first.data);
      const y = ops.conv2d(tape, xx, w, engine.tensor(b.shape, b.data), { stride, padding: 'same', relu: true, dilation });
      const g = randomTensor([...y.shape], rand);
      const loss = ops.dot(tape, y, engine.tensor(g.shape, g.data));
      for (const filter of [first, first, second, second]) {
        if (filter !== first) w.write(filter.data);
        tape.forward();
        tape.backward(loss);
        const pre = ref.conv2d(x, filter, b, stride, 'same', dilation);
        const context = `k ${k}, stride ${stride}, dilation ${dilation}, after a write`;
        check('conv2d forward', y.toArray(), ref.relu(pre).data, context);
        check('conv2d ∂input', xx.grad!.toArray(), ref.conv2dBackward(x, filter, stride, 'same', ref.reluBackward(pre, g), dilation).dx.data, context);
      }
      tape.dispose();
    }
    const x = randomTensor([3, 7], rand), b = randomTensor([5], rand);
    const first = randomTensor([7, 5], rand), second = randomTensor([7, 5], rand);
    const tape = new Tape(engine);
    const xx = engine.tensor(x.shape, x.data).requireGrad(), w = engine.tensor(first.shape, first.data);
    const y = ops.dense(tape, xx, w, engine.tensor(b.shape, b.data), false);
    const g = randomTensor([...y.shape], rand);
    const loss = ops.dot(tape, y, engine.tensor(g.shape, g.data));
    for (const weights of [first, second]) {
      if (weights !== first) w.write(weights.data);
      tape.forward();
      tape.backward(loss);
      check('dense ∂input', xx.grad!.toArray(), ref.denseBackward(x, weights, g).dx.data, 'after a write');
    }
    tape.dispose();
  });
});

describe('maxpool against the reference', () => {
  for (const [h, w] of [[7, 9], [13, 11], [4, 4]]) for (const padding of ['same', 'valid'] as const) {
    it(`${h}×${w}, ${padding}: windows 1–4, strides 1–3, with ties`, () => {
      let seed = 100;
      for (const size of [1, 2, 3, 4]) for (const stride of [1, 2, 3]) for (const n of [1, 3]) for (const c of [1, 3, 5, 6]) {
        const rand = random(seed++);
        // Values on a coarse grid, many of them 0 as after a ReLU, so that windows hold ties.
        const x = ref.tensor([n, h, w, c], Array.from({ length: n * h * w * c }, () => Math.max(0, Math.round(rand() * 6 - 2) / 4)));
        if (rand() < 0.3) x.data.forEach((v, i) => (x.data[i] = -1 - v)); // all negative: padding must never win
        const context = `(n ${n}, ${h}×${w}×${c}, size ${size}, stride ${stride}, ${padding})`;
        const out = run([x], (tape, [xx]) => ops.maxPool(tape, xx, { size, stride, padding }), rand);
        check('maxpool forward', out.y, ref.maxpool(x, size, stride, padding).data, context);
        check('maxpool ∂input', out.grads[0]!, ref.maxpoolBackward(x, size, stride, padding, out.g).data, context);
      }
    });
  }
});

describe('dense against the reference', () => {
  it('batches 1, 3, 5; widths 1 to 432 (one row: tiles of up to 32 columns; deeper than a depth block); relu or not', () => {
    let seed = 200;
    for (const n of [1, 3, 5]) for (const inputs of [1, 5, 17, 300, 432]) for (const outputs of [1, 2, 3, 4, 7, 10, 33, 70]) for (const relu of [false, true]) {
      const rand = random(seed++);
      const x = randomTensor([n, inputs], rand), w = randomTensor([inputs, outputs], rand), b = randomTensor([outputs], rand);
      const ceiling = seed % 3 ? Infinity : 0.5;
      const context = `(n ${n}, ${inputs} → ${outputs}, relu ${relu}, ceiling ${ceiling})`;
      const out = run([x, w, b], (tape, [xx, ww, bb]) => ops.dense(tape, xx, ww, bb, relu, ceiling), rand);
      const pre = ref.dense(x, w, b);
      check('dense forward', out.y, (relu ? ref.relu(pre, ceiling) : pre).data, context);
      const grads = ref.denseBackward(x, w, relu ? ref.reluBackward(pre, out.g, ceiling) : out.g);
      check('dense ∂input', out.grads[0]!, grads.dx.data, context);
      check('dense ∂weights', out.grads[1]!, grads.dw.data, context);
      check('dense ∂bias', out.grads[2]!, grads.db.data, context);
    }
  });

  it('ReLU passes no gradient at exactly 0', () => {
    // w = 0, b = 0 puts every pre-activation at exactly 0.
    const x = ref.tensor([1, 2], [1, -1]), w = ref.tensor([2, 3]), b = ref.tensor([3]);
    const out = run([x, w, b], (tape, [xx, ww, bb]) => ops.dense(tape, xx, ww, bb, true), random(1));
    expect(Array.from(out.grads[1]!)).toEqual([0, 0, 0, 0, 0, 0]);
  });
});

describe('log-softmax and the loss ops against the reference', () => {
  it('log-softmax over rows of 2 to 7 classes', () => {
    let seed = 300;
    for (const rows of [1, 2, 4]) for (const cols of [2, 3, 5, 7]) {
      const rand = random(seed++);
      const z = ref.tensor([rows, cols], Array.from({ length: rows * cols }, () => rand() * 20 - 10));
      const out = run([z], (tape, [zz]) => ops.logSoftmax(tape, zz), rand);
      check('log-softmax forward', out.y, ref.logSoftmax(z).data, `(${rows}×${cols})`);
      check('log-softmax ∂input', out.grads[0]!, ref.logSoftmaxBackward(z, out.g).data, `(${rows}×${cols})`);
    }
  });

  it('dlr, untargeted and targeted, over rows of 3 to 10 classes, with ties among the logits', () => {
    let seed = 320;
    for (const rows of [1, 3, 8]) for (const cols of [3, 4, 5, 10]) for (const targeted of [false, true]) {
      if (targeted && cols < 4) continue;
      const rand = random(seed++);
      // Logits on a coarse grid in some rows, so that the ranking has ties to break.
      const z = ref.tensor([rows, cols], Array.from({ length: rows * cols }, (_, i) => (Math.floor(i / cols) % 2 ? Math.round(rand() * 4) : Math.fround(rand() * 20 - 10))));
      // Untargeted, a label on the third largest logit makes the loss 1 whatever z nearby (its
      // gradient is 0 but for rounding): such labels move one class on.
      const third = (r: number) => { const row = Array.from(z.data.subarray(r * cols, (r + 1) * cols)); return row.map((_, c) => c).sort((a, b) => row[b] - row[a] || a - b)[2]; };
      const labels = Array.from({ length: rows }, (_, r) => { const y = Math.floor(rand() * cols); return !targeted && y === third(r) ? (y + 1) % cols : y; });
      const targets = targeted ? labels.map((y) => (y + 1 + Math.floor(rand() * (cols - 1))) % cols) : null;
      const hot = (ks: number[]) => ref.tensor([rows, cols], Array.from({ length: rows * cols }, (_, i) => (ks[Math.floor(i / cols)] === i % cols ? 1 : 0)));
      const inputs = targets ? [z, hot(labels), hot(targets)] : [z, hot(labels)];
      const out = runOnTape(engine, inputs, (tape, [zz, yy, tt]) => ops.dlr(tape, zz, yy, tt ?? null), rand, [false, true, true]);
      const context = `(${rows}×${cols}${targeted ? ', targeted' : ''})`;
      check('dlr forward', out.y, ref.dlr(z, labels, targets), context);
      check('dlr ∂logits', out.grads[0]!, ref.dlrBackward(z, labels, targets, out.g.data).data, context);
    }
  });

  it('add, scale, dot and l2 loss, with odd lengths', () => {
    for (const size of [1, 3, 4, 7, 2304]) {
      const rand = random(size);
      const a = randomTensor([size], rand), b = randomTensor([size], rand);
      const factor = new ops.Scalar(-0.37);
      // loss = l2(a + b) − 0.37·(a·b): every op on the path to a scalar.
      const out = run([a, b], (tape, [aa, bb]) => ops.add(tape, ops.l2Loss(tape, ops.add(tape, aa, bb)), ops.scale(tape, ops.dot(tape, aa, bb), factor)), rand);
      const sum = ref.tensor([size], a.data.map((v, i) => v + b.data[i]));
      const dotAB = a.data.reduce((s, v, i) => s + v * b.data[i], 0);
      const g = out.g.data[0];
      check('l2/dot/add/scale', out.y, [ref.l2Loss(sum) - 0.37 * dotAB], `(n ${size})`);
      check('l2/dot/add/scale ∂', out.grads[0]!, ref.l2LossBackward(sum).data.map((v, i) => g * (v - 0.37 * b.data[i])), `(n ${size})`);
      check('l2/dot/add/scale ∂', out.grads[1]!, ref.l2LossBackward(sum).data.map((v, i) => g * (v - 0.37 * a.data[i])), `(n ${size})`);
    }
  });
});

describe("the bench's yardsticks", () => {
  it('peak_madd returns its ten sums of count rounds; peak_stream reads and writes exactly the floats it is given', () => {
    const operands = engine.tensor([13], [1, 2, 3, 4, 5, 6, 7, 8, 0.5, 0.25, 0.125, 1, 2]);
    // Each lane of a round adds (x0 + x1)·(Σ weights): lanes 1+5, 2+6, 3+7, 4+8 = 36 in all, times 3.875.
    expect(engine.kernels.peak_madd(10, operands.ptr)).toBeCloseTo(10 * 36 * 3.875, 3);
    for (const [reads, writes] of [[64, 16], [16, 64], [48, 48], [32, 0]]) {
      const source = engine.tensor([reads], Float32Array.from({ length: reads }, (_, i) => i + 1));
      const target = engine.tensor([writes + 16]);
      expect(engine.kernels.peak_stream(source.ptr, reads, target.ptr, writes)).toBe((reads * (reads + 1)) / 2);
      expect(Array.from(target.toArray())).toEqual([...Array<number>(writes).fill(1), ...Array<number>(16).fill(0)]);
    }
  });
});
