// The depthwise convolution, forward and backward, through the op and the tape: against the
// independent float64 reference (itself checked against finite differences in
// reference.test.ts), and against TensorFlow.js's CPU backend.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../src/core/engine.js';
import * as ops from '../src/core/ops.js';
import { random } from '../src/core/random.js';
import { Tape } from '../src/core/tape.js';
import { loadEngine } from '../src/node/engine.js';
import * as ref from './reference.js';
import { errorRecord, randomTensor } from './support/against-reference.js';

let engine: Engine;
const { check } = errorRecord('worst relative errors of the depthwise convolution');

beforeAll(async () => {
  engine = await loadEngine();
});

interface Case {
  x: ref.Tensor;
  w: ref.Tensor;
  b: ref.Tensor;
  options: Required<ops.DepthwiseConv2dOptions>;
}

/** The op on a fresh tape, every input with a gradient, Σ y·g backpropagated for a random g;
 *  checked against the reference. */
function checkCase({ x, w, b, options }: Case, rand: () => number): void {
  const { stride, padding, dilation, relu, ceiling } = options;
  const context = `(x [${x.shape}], filter [${w.shape}], stride ${stride}, dilation ${dilation}, ${padding}, relu ${relu}, ceiling ${ceiling})`;
  const tape = new Tape(engine);
  const [xx, ww, bb] = [x, w, b].map((t) => engine.tensor(t.shape, t.data).requireGrad());
  const y = ops.depthwiseConv2d(tape, xx, ww, bb, options);
  const g = randomTensor([...y.shape], rand);
  tape.backward(ops.dot(tape, y, engine.tensor(g.shape, g.data)));
  const pre = ref.depthwiseConv2d(x, w, b, stride, padding, dilation);
  check('forward', y.toArray(), (relu ? ref.relu(pre, ceiling) : pre).data, context);
  const grads = ref.depthwiseConv2dBackward(x, w, stride, padding, dilation, relu ? ref.reluBackward(pre, g, ceiling) : g);
  check('∂input', xx.grad!.toArray(), grads.dx.data, context);
  check('∂filter', ww.grad!.toArray(), grads.dw.data, context);
  check('∂bias', bb.grad!.toArray(), grads.db.data, context);
  tape.dispose();
}

describe('depthwiseConv2d against the reference', () => {
  const sizes = [[7, 9], [13, 11], [6, 5]];
  // 1 to 9 channels for the partial vectors, more for the tiles of 16 channels and what remains.
  const channels = [1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 21, 35];
  let seed = 0;
  for (const stride of [1, 2, 3]) for (const padding of ['same', 'valid'] as const) for (const dilation of [1, 2, 3]) {
    it(`stride ${stride}, dilation ${dilation}, ${padding}: kernels 1–5, multipliers 1–3, batch 1 and 3, channels 1–35, relu or not`, () => {
      for (const k of [1, 2, 3, 4, 5]) for (const [h, wd] of sizes) for (const m of [1, 2, 3]) for (const relu of [false, true]) {
        const span = (k - 1) * dilation + 1;
        if (padding === 'valid' && span > Math.min(h, wd)) continue;
        const rand = random(++seed);
        const n = seed % 2 ? 1 : 3, cin = channels[seed % channels.length];
        const c: Case = {
          x: randomTensor([n, h, wd, cin], rand),
          w: randomTensor([k, k, cin, m], rand),
          b: randomTensor([cin * m], rand),
          // A ceiling low enough for random data to reach it, as ReLU6's does in a network.
          options: { stride, padding, dilation, relu, ceiling: seed % 3 ? Infinity : 0.4 },
        };
        checkCase(c, rand);
      }
    });
  }

  it('strides and dilations both above 1, which Keras does not make', () => {
    let seed = 1000;
    for (const [stride, dilation] of [[2, 2], [2, 3], [3, 2]]) for (const padding of ['same', 'valid'] as const) for (const k of [2, 3]) {
      const rand = random(++seed);
      checkCase({ x: randomTensor([2, 11, 12, 19], rand), w: randomTensor([k, k, 19, 1], rand), b: randomTensor([19], rand), options: { stride, padding, dilation, relu: true, ceiling: Infinity } }, rand);
    }
  });

  it('MobileNet-like layers: 32 and 64 channels, 3×3, stride 1 and 2', () => {
    let seed = 2000;
    for (const [h, c, stride] of [[24, 32, 1], [25, 64, 2], [7, 48, 1]]) {
      const rand = random(++seed);
      checkCase({ x: randomTensor([2, h, h, c], rand), w: randomTensor([3, 3, c, 1], rand), b: randomTensor([c], rand), options: { stride, padding: 'same', dilation: 1, relu: true, ceiling: 0.5 } }, rand);
    }
  });

  it('past a core\'s second-level cache (512 KB), at stride 2: 3 images of 33×35×36, 3×3 and 5×5, same and valid, dilation 1 and 2', () => {
    let seed = 2100;
    for (const k of [3, 5]) for (const padding of ['same', 'valid'] as const) for (const dilation of [1, 2]) {
      const rand = random(++seed);
      checkCase({ x: randomTensor([3, 33, 35, 36], rand), w: randomTensor([k, k, 36, 1], rand), b: randomTensor([36], rand), options: { stride: 2, padding, dilation, relu: false, ceiling: 0 } }, rand);
    }
  });

  it('refuses a filter that does not fit, a stride or dilation below 1 and an empty output', () => {
    const tape = new Tape(engine);
    const x = engine.tensor([1, 5, 5, 3]), w = engine.tensor([3, 3, 3, 2]), b = engine.tensor([6]);
    const options = { stride: 1, padding: 'valid', dilation: 1, relu: false } as const;
    expect(() => ops.depthwiseConv2d(tape, x, engine.tensor([3, 3, 4, 1]), engine.tensor([4]), options)).toThrow(/do not fit an input of 3 channels/);
    expect(() => ops.depthwiseConv2d(tape, x, w, engine.tensor([3]), options)).toThrow(/do not fit/);
    expect(() => ops.depthwiseConv2d(tape, x, w, b, { ...options, stride: 0 })).toThrow(/whole numbers ≥ 1/);
    expect(() => ops.depthwiseConv2d(tape, x, w, b, { ...options, dilation: 3 })).toThrow(/does not fit an input of 5×5/);
    tape.dispose();
  });
});

describe('depthwiseConv2d adding to a gradient another op has written', () => {
  it('two convolutions of one input: the second adds its input gradient to the first\'s (strides 1 and 2, 3×3 and 5×5, 4 and 6 channels)', () => {
    const rand = random(2500);
    for (const stride of [1, 2]) for (const k of [3, 5]) for (const c of [4, 6]) for (const padding of ['same', 'valid'] as const) {
      const x = randomTensor([2, 12, 13, c], rand), w1 = randomTensor([k, k, c, 1], rand), w2 = randomTensor([k, k, c, 1], rand), b = randomTensor([c], rand);
      const tape = new Tape(engine);
      const xx = engine.tensor(x.shape, x.data).requireGrad(), bb = engine.tensor(b.shape, b.data);
      const options = { stride, padding, relu: false } as const;
      const y1 = ops.depthwiseConv2d(tape, xx, engine.tensor(w1.shape, w1.data), bb, options);
      const y2 = ops.depthwiseConv2d(tape, xx, engine.tensor(w2.shape, w2.data), bb, options);
      const g1 = randomTensor([...y1.shape], rand), g2 = randomTensor([...y2.shape], rand);
      tape.backward(ops.add(tape, ops.dot(tape, y1, engine.tensor(g1.shape, g1.data)), ops.dot(tape, y2, engine.tensor(g2.shape, g2.data))));
      const dx1 = ref.depthwiseConv2dBackward(x, w1, stride, padding, 1, g1).dx.data, dx2 = ref.depthwiseConv2dBackward(x, w2, stride, padding, 1, g2).dx.data;
      check('∂input, summed', xx.grad!.toArray(), dx1.map((v, i) => v + dx2[i]), `(stride ${stride}, ${k}×${k}, ${c} channels, ${padding})`);
      tape.dispose();
    }
  });
});

describe('depthwiseConv2d between replays', () => {
  it('sees weights without a gradient written, and a new input, at every replay (multipliers 1 and 2)', () => {
    const rand = random(3000);
    for (const m of [1, 2]) for (const stride of [1, 2]) {
      const x = randomTensor([2, 9, 11, 19], rand), otherX = randomTensor([2, 9, 11, 19], rand), b = randomTensor([19 * m], rand);
      const first = randomTensor([3, 3, 19, m], rand), second = randomTensor([3, 3, 19, m], rand);
      const tape = new Tape(engine);
      const xx = engine.tensor(x.shape, x.data).requireGrad(), w = engine.tensor(first.shape, first.data);
      const y = ops.depthwiseConv2d(tape, xx, w, engine.tensor(b.shape, b.data), { stride, padding: 'same', relu: true });
      const g = randomTensor([...y.shape], rand);
      const loss = ops.dot(tape, y, engine.tensor(g.shape, g.data));
      let written = [x, first];
      for (const [input, filter] of [[x, first], [x, first], [x, second], [otherX, second]]) {
        if (filter !== written[1]) w.write(filter.data);
        if (input !== written[0]) xx.write(input.data);
        written = [input, filter];
        tape.forward();
        tape.backward(loss);
        const context = `(multiplier ${m}, stride ${stride}, after a write)`;
        const pre = ref.depthwiseConv2d(input, filter, b, stride, 'same', 1);
        check('forward', y.toArray(), ref.relu(pre).data, context);
        check('∂input', xx.grad!.toArray(), ref.depthwiseConv2dBackward(input, filter, stride, 'same', 1, ref.reluBackward(pre, g)).dx.data, context);
      }
      tape.dispose();
    }
  });
});

describe('depthwiseConv2d against TensorFlow.js (CPU backend)', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  // [n, h, w, cin], k, multiplier, stride, dilation, padding
  const shapes = [
    [[1, 112, 112, 32], 3, 1, 2, 1, 'same'],
    [[2, 15, 17, 24], 3, 1, 1, 1, 'same'],
    [[3, 14, 14, 40], 5, 1, 2, 1, 'valid'],
    [[2, 10, 9, 5], 3, 3, 1, 1, 'same'],
    [[1, 12, 13, 7], 3, 2, 1, 2, 'same'],
  ] as const;
  for (const [[n, h, wd, cin], k, m, stride, dilation, padding] of shapes) {
    it(`[${n}, ${h}, ${wd}, ${cin}], ${k}×${k}, multiplier ${m}, stride ${stride}, dilation ${dilation}, ${padding}`, () => {
      const rand = random(4000 + h);
      const x = randomTensor([n, h, wd, cin], rand), w = randomTensor([k, k, cin, m], rand), b = randomTensor([cin * m], rand);
      const tape = new Tape(engine);
      const [xx, ww, bb] = [x, w, b].map((t) => engine.tensor(t.shape, t.data).requireGrad());
      const y = ops.depthwiseConv2d(tape, xx, ww, bb, { stride, padding, dilation, relu: true });
      const g = randomTensor([...y.shape], rand);
      tape.backward(ops.dot(tape, y, engine.tensor(g.shape, g.data)));

      const context = `([${x.shape}], k ${k}, multiplier ${m}, stride ${stride}, dilation ${dilation})`;
      const [tx, tw, tb, tg] = [x, w, b, g].map((t) => tf.tensor(Float32Array.from(t.data), t.shape, 'float32'));
      const layer = (input: tf.Tensor, filter: tf.Tensor) => tf.relu(tf.add(tf.depthwiseConv2d(input as tf.Tensor4D, filter as tf.Tensor4D, stride, padding, 'NHWC', dilation), tb));
      check('TF.js forward', y.toArray(), layer(tx, tw).dataSync(), context);
      // TensorFlow.js has no gradient of a dilated depthwise convolution.
      if (dilation === 1) {
        const [dx, dw] = tf.grads((input: tf.Tensor, filter: tf.Tensor) => tf.sum(tf.mul(layer(input, filter), tg)))([tx, tw]);
        check('TF.js ∂input', xx.grad!.toArray(), dx.dataSync(), context);
        check('TF.js ∂filter', ww.grad!.toArray(), dw.dataSync(), context);
        tf.dispose([dx, dw]);
      }
      tf.dispose([tx, tw, tb, tg]);
      tape.dispose();
    });
  }
});
