// The layers of larger networks (activations, average and global pooling, concat, pad, affine,
// add), forward and backward through the ops and the tape, against the float64 reference and
// against TensorFlow.js's CPU backend.
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as TF from '@tensorflow/tfjs';
import type { Engine, Tensor } from '../src/core/engine.js';
import { loadEngine } from '../src/node/engine.js';
import * as ops from '../src/core/ops.js';
import { Tape } from '../src/core/tape.js';
import * as ref from './reference.js';
import { errorRecord, randomTensor, runOnTape } from './support/against-reference.js';
import { random } from '../src/core/random.js';

// Node's own loader for tfjs's Node bundle (through vite-node its ES sources load far slower).
const tf: typeof TF = createRequire(import.meta.url)('@tensorflow/tfjs');

let engine: Engine;
const { check, note } = errorRecord('worst relative errors (against the float64 reference, or TensorFlow.js)');
const run = (inputs: ref.Tensor[], build: (tape: Tape, xs: Tensor[]) => Tensor, rand: () => number, constant: boolean[] = []) => runOnTape(engine, inputs, build, rand, constant);

beforeAll(async () => {
  engine = await loadEngine();
});

const KINDS: [ops.ActivationKind, number][] = [
  ['relu', 0], ['relu6', 0], ['leaky_relu', 0.3], ['leaky_relu', 0.01], ['elu', 1], ['elu', 0.5], ['sigmoid', 0], ['tanh', 0],
];

describe('activations against the reference', () => {
  it('every kind, batch 1 and 3, channels 1 to 9, odd sizes, values across the kinks', () => {
    let seed = 1000;
    for (const [kind, alpha] of KINDS) for (const n of [1, 3]) for (const [h, w] of [[1, 1], [5, 7], [6, 3]]) for (let c = 1; c <= 9; c++) {
      const rand = random(seed++);
      const x = randomTensor([n, h, w, c], rand, 9);
      // Some cells exactly at the kinks (0, 6) and at −0, where TensorFlow's conventions decide.
      x.data.forEach((_, i) => {
        if (rand() < 0.1) x.data[i] = [0, 6, -0, -6][Math.floor(rand() * 4)]!;
      });
      const context = `(${kind} α ${alpha}, [${x.shape}])`;
      const out = run([x], (tape, [xx]) => ops.activation(tape, xx, kind, alpha), rand);
      check(`${kind} forward`, out.y, ref.activation(x, kind, alpha).data, context);
      check(`${kind} ∂input`, out.grads[0]!, ref.activationBackward(x, kind, alpha, out.g).data, context);
    }
  });

  it('exp, sigmoid and tanh, and their slopes, are accurate to about 1e-6 of each value over their range', () => {
    const sweep = (from: number, to: number, count: number) => Array.from({ length: count }, (_, i) => Math.fround(from + ((to - from) * i) / (count - 1)));
    const tiny = Array.from({ length: 60 }, (_, i) => Math.fround(-(10 ** (-i / 2)))); // −1 … −1e−30
    const exact = (kind: ops.ActivationKind, alpha: number, v: number) => {
      const x = ref.tensor([1], [v]);
      return [ref.activation(x, kind, alpha).data[0]!, ref.activationBackward(x, kind, alpha, ref.tensor([1], [1])).data[0]!];
    };
    const cases: [ops.ActivationKind, number, number[]][] = [
      // ELU with α = 1 is eˣ − 1 below 0, its slope eˣ: the exp of the kernels, exact near 0 too.
      ['elu', 1, [...sweep(-87, 0, 100_001), ...tiny]],
      // Below 0 the sigmoid is about eˣ, down to the smallest normal float.
      ['sigmoid', 0, [...sweep(-87, 87, 100_001), ...tiny, ...tiny.map((v) => -v)]],
      ['tanh', 0, [...sweep(-43, 43, 100_001), ...tiny, ...tiny.map((v) => -v)]],
    ];
    for (const [kind, alpha, xs] of cases) {
      const tape = new Tape(engine);
      const x = engine.tensor([xs.length], xs).requireGrad();
      const y = ops.activation(tape, x, kind, alpha);
      tape.backward(ops.dot(tape, y, engine.tensor([xs.length], xs.map(() => 1))));
      const values = y.toArray(), slopes = x.grad!.toArray();
      tape.dispose();
      for (const [what, actual, part] of [['', values, 0], ['′', slopes, 1]] as const) {
        let err = 0, at = 0;
        xs.forEach((v, i) => {
          const e = exact(kind, alpha, v)[part]!;
          const r = Math.abs(actual[i]! - e) / Math.abs(e || 1);
          if (r > err) [err, at] = [r, v];
        });
        note(`${kind}${what} per value (sweep)`, err);
        expect(err, `${kind}${what}: relative error ${err.toExponential(2)} at x = ${at}`).toBeLessThan(1.5e-6);
      }
    }
  });

  it('the sigmoid stays finite and exact at its ends, up to |x| = 1e4', () => {
    const xs = [-1e4, -1000, -104, -88, -87.3, 20, 88, 89, 1000, 1e4];
    const x = engine.tensor([xs.length], xs).requireGrad();
    const tape = new Tape(engine);
    const y = ops.activation(tape, x, 'sigmoid');
    tape.backward(ops.dot(tape, y, engine.tensor([xs.length], xs.map(() => 1))));
    const values = Array.from(y.toArray()), slopes = Array.from(x.grad!.toArray());
    tape.dispose();
    expect(values.every(Number.isFinite) && slopes.every(Number.isFinite)).toBe(true);
    expect(values.slice(0, 4)).toEqual([0, 0, 0, 0]); // e^−88 is below the smallest normal float
    expect(values[4]! / Math.exp(-87.3)).toBeCloseTo(1, 5);
    expect(values.slice(5)).toEqual([1, 1, 1, 1, 1]);
  });
});

describe('ReLU as a fused activation and as an op', () => {
  it('conv2d with relu and conv2d followed by activation(relu) agree, gradients included', () => {
    const rand = random(1100);
    const x = randomTensor([3, 7, 9, 5], rand), w = randomTensor([3, 3, 5, 6], rand), b = randomTensor([6], rand);
    const fused = run([x, w, b], (tape, [xx, ww, bb]) => ops.conv2d(tape, xx, ww, bb, { stride: 2, padding: 'same', relu: true }), random(1));
    const separate = run([x, w, b], (tape, [xx, ww, bb]) => ops.activation(tape, ops.conv2d(tape, xx, ww, bb, { stride: 2, padding: 'same', relu: false }), 'relu'), random(1));
    expect(Array.from(separate.y)).toEqual(Array.from(fused.y));
    for (let i = 0; i < 3; i++) check('fused vs separate ReLU ∂', separate.grads[i]!, fused.grads[i]!, `input ${i}`);
  });
});

describe('average and global pooling against the reference', () => {
  for (const [h, w] of [[7, 9], [13, 11], [4, 4]]) for (const padding of ['same', 'valid'] as const) {
    it(`avgPool ${h}×${w}, ${padding}: windows 1–4, strides 1–3, batch 1 and 3, channels 1 to 9`, () => {
      let seed = 1200;
      for (const size of [1, 2, 3, 4]) for (const stride of [1, 2, 3]) for (const n of [1, 3]) {
        const c = 1 + (seed % 9);
        const rand = random(seed++);
        const x = randomTensor([n, h, w, c], rand);
        const context = `(n ${n}, ${h}×${w}×${c}, size ${size}, stride ${stride}, ${padding})`;
        const out = run([x], (tape, [xx]) => ops.avgPool(tape, xx, { size, stride, padding }), rand);
        check('avgPool forward', out.y, ref.avgpool(x, size, stride, padding).data, context);
        check('avgPool ∂input', out.grads[0]!, ref.avgpoolBackward(x, size, stride, padding, out.g).data, context);
      }
    });
  }

  it('global average and max pooling, batch 1 and 3, channels 1 to 9, with ties', () => {
    let seed = 1300;
    for (const n of [1, 3]) for (const [h, w] of [[1, 1], [7, 5], [4, 9]]) for (let c = 1; c <= 9; c++) {
      const rand = random(seed++);
      const x = randomTensor([n, h, w, c], rand);
      const context = `(n ${n}, ${h}×${w}×${c})`;
      const avg = run([x], (tape, [xx]) => ops.globalAvgPool(tape, xx), rand);
      expect(avg.shape).toEqual([n, c]);
      check('globalAvgPool forward', avg.y, ref.globalAvgPool(x).data, context);
      check('globalAvgPool ∂input', avg.grads[0]!, ref.globalAvgPoolBackward(x, avg.g).data, context);
      // On a coarse grid, as after a ReLU, so that images hold ties; sometimes all negative.
      const sign = rand() < 0.3 ? -1 : 1;
      const coarse = ref.tensor(x.shape, Array.from(x.data, (v) => sign * Math.max(0, Math.round(v * 3) / 4)));
      const max = run([coarse], (tape, [xx]) => ops.globalMaxPool(tape, xx), rand);
      check('globalMaxPool forward', max.y, ref.globalMaxPool(coarse).data, context);
      check('globalMaxPool ∂input', max.grads[0]!, ref.globalMaxPoolBackward(coarse, max.g).data, context);
    }
  });
});

describe('concat, pad and affine against the reference', () => {
  it('concat along channels: widths 1 to 9, batch 1 and 3, an input without a gradient', () => {
    let seed = 1400;
    for (const n of [1, 3]) for (const widths of [[1], [1, 2], [3, 5, 1], [4, 4], [9, 7, 2], [2, 1, 1, 6]]) for (const lead of [[n, 5, 3], [n]]) {
      const rand = random(seed++);
      const xs = widths.map((c) => randomTensor([...lead, c], rand));
      const constant = widths.map((_, i) => i === 1);
      const context = `([${lead}] × ${widths})`;
      const out = run(xs, (tape, ts) => ops.concat(tape, ts), rand, constant);
      check('concat forward', out.y, ref.concat(xs).data, context);
      const grads = ref.concatBackward(xs, out.g);
      out.grads.forEach((grad, i) => {
        if (constant[i]) expect(grad).toBeNull();
        else check('concat ∂input', grad!, grads[i]!.data, context);
      });
    }
    expect(() => run([ref.tensor([1, 2, 3]), ref.tensor([1, 3, 3])], (tape, ts) => ops.concat(tape, ts), random(1))).toThrow(/differ/);
  });

  it('pad: even and odd margins, batch 1 and 3, channels 1 to 9', () => {
    let seed = 1500;
    for (const n of [1, 3]) for (const [top, bottom, left, right] of [[0, 0, 0, 0], [1, 1, 1, 1], [0, 1, 0, 1], [3, 0, 2, 5]]) for (const c of [1, 3, 4, 6, 9]) {
      const rand = random(seed++);
      const x = randomTensor([n, 5, 7, c], rand);
      const context = `(n ${n}, 5×7×${c}, pad ${top} ${bottom} ${left} ${right})`;
      const out = run([x], (tape, [xx]) => ops.pad(tape, xx, { top, bottom, left, right }), rand);
      expect(out.shape).toEqual([n, 5 + top + bottom, 7 + left + right, c]);
      check('pad forward', out.y, ref.pad(x, top, bottom, left, right).data, context);
      check('pad ∂input', out.grads[0]!, ref.padBackward(x, top, left, out.g).data, context);
    }
  });

  it('affine: gradients to x, scale and shift (or only x, for constants), channels 1 to 9', () => {
    let seed = 1600;
    for (const n of [1, 3]) for (let c = 1; c <= 9; c++) for (const constants of [false, true]) {
      const rand = random(seed++);
      const shape = c % 2 ? [n, 5, 3, c] : [n, c];
      const x = randomTensor(shape, rand), scale = randomTensor([c], rand), shift = randomTensor([c], rand);
      const context = `([${shape}], constants ${constants})`;
      const out = run([x, scale, shift], (tape, [xx, ss, tt]) => ops.affine(tape, xx, ss, tt), rand, [false, constants, constants]);
      check('affine forward', out.y, ref.affine(x, scale, shift).data, context);
      const grads = ref.affineBackward(x, scale, out.g);
      check('affine ∂input', out.grads[0]!, grads.dx.data, context);
      if (constants) expect(out.grads.slice(1)).toEqual([null, null]);
      else {
        check('affine ∂scale', out.grads[1]!, grads.dscale.data, context);
        check('affine ∂shift', out.grads[2]!, grads.dshift.data, context);
      }
    }
  });
});

describe('add and residual connections against the reference', () => {
  it('add of equal shapes, odd lengths', () => {
    let seed = 1700;
    for (const shape of [[1], [7], [3, 5, 3, 9], [1, 4, 4, 8]]) {
      const rand = random(seed++);
      const a = randomTensor(shape, rand), b = randomTensor(shape, rand);
      const out = run([a, b], (tape, [aa, bb]) => ops.add(tape, aa, bb), rand);
      check('add forward', out.y, ref.add(a, b).data, `[${shape}]`);
      check('add ∂input', out.grads[0]!, out.g.data, `[${shape}]`);
      check('add ∂input', out.grads[1]!, out.g.data, `[${shape}]`);
    }
  });

  it('x feeding both branches of a residual block gets both contributions', () => {
    // y = x + elu(conv(relu6(conv(x, w1)), w2)): x reaches y through the skip and through the convolutions.
    let seed = 1800;
    for (const n of [1, 3]) for (const c of [1, 3, 5, 8]) {
      const rand = random(seed++);
      const x = randomTensor([n, 7, 5, c], rand), w1 = randomTensor([3, 3, c, 6], rand, 0.5), b1 = randomTensor([6], rand, 0.5);
      const w2 = randomTensor([1, 1, 6, c], rand, 0.5), b2 = randomTensor([c], rand, 0.5);
      const conv = { stride: 1, padding: 'same', relu: false } as const;
      const out = run([x, w1, b1, w2, b2], (tape, [xx, ww1, bb1, ww2, bb2]) => {
        const hidden = ops.activation(tape, ops.conv2d(tape, xx, ww1, bb1, conv), 'relu6');
        return ops.add(tape, xx, ops.activation(tape, ops.conv2d(tape, hidden, ww2, bb2, conv), 'elu', 1));
      }, rand);
      const pre1 = ref.conv2d(x, w1, b1, 1, 'same'), hidden = ref.activation(pre1, 'relu6');
      const pre2 = ref.conv2d(hidden, w2, b2, 1, 'same');
      const context = `(n ${n}, 7×5×${c})`;
      check('residual forward', out.y, ref.add(x, ref.activation(pre2, 'elu', 1)).data, context);
      const second = ref.conv2dBackward(hidden, w2, 1, 'same', ref.activationBackward(pre2, 'elu', 1, out.g));
      const first = ref.conv2dBackward(x, w1, 1, 'same', ref.activationBackward(pre1, 'relu6', 0, second.dx));
      check('residual ∂input', out.grads[0]!, ref.add(first.dx, out.g).data, context);
      check('residual ∂weights', out.grads[1]!, first.dw.data, context);
      check('residual ∂weights', out.grads[3]!, second.dw.data, context);
      check('residual ∂weights', out.grads[4]!, second.db.data, context);
    }
  });
});

describe('gradients set, not added to, by the first op to write them (Step.overwrites)', () => {
  it('x + x gets twice the gradient', () => {
    const rand = random(1900);
    const a = randomTensor([2, 3, 5], rand);
    const out = run([a], (tape, [aa]) => ops.add(tape, aa, aa), rand);
    check('x + x ∂input', out.grads[0]!, out.g.data.map((v) => 2 * v), '[2, 3, 5]');
  });

  it('replayed with new output gradients, each pass gets its own: nothing of the pass before is left', () => {
    // h = elu(x); p = pw1(h); s = dw1(p) + h; z = pw2(s); y = z + dw2(z). The first to write a
    // gradient, backward, sets it: the activation x's, dw1 p's, pw2 s's, the adds those of dw1's
    // output, h and z; then pw1 adds to h's and dw2 to z's.
    const rand = random(1901);
    const c = 8, pointwise = { stride: 1, padding: 'same', relu: false } as const, depthwise = { ...pointwise, dilation: 1 };
    const x = randomTensor([2, 6, 5, c], rand);
    const weights = [[1, 1, c, c], [c], [3, 3, c, 1], [c], [1, 1, c, c], [c], [3, 3, c, 1], [c]].map((shape) => randomTensor(shape, rand, 0.5));
    const [w1, b1, wd1, bd1, w2, b2, wd2] = weights;
    const tape = new Tape(engine);
    const [xx, ww1, bb1, wwd1, bbd1, ww2, bb2, wwd2, bbd2] = [x, ...weights].map((t) => engine.tensor(t.shape, t.data).requireGrad());
    const h = ops.activation(tape, xx, 'elu', 1);
    const s = ops.add(tape, ops.depthwiseConv2d(tape, ops.conv2d(tape, h, ww1, bb1, pointwise), wwd1, bbd1, depthwise), h);
    const z = ops.conv2d(tape, s, ww2, bb2, pointwise);
    const y = ops.add(tape, z, ops.depthwiseConv2d(tape, z, wwd2, bbd2, depthwise));
    const gT = engine.tensor(y.shape);
    const loss = ops.dot(tape, y, gT);
    const rh = ref.activation(x, 'elu', 1), rp = ref.conv2d(rh, w1, b1, 1, 'same'), rd = ref.depthwiseConv2d(rp, wd1, bd1, 1, 'same', 1);
    const rs = ref.add(rd, rh), rz = ref.conv2d(rs, w2, b2, 1, 'same');
    for (const pass of [1, 2, 3]) {
      const g = randomTensor([...y.shape], rand);
      gT.write(g.data);
      tape.backward(loss);
      const z2 = ref.depthwiseConv2dBackward(rz, wd2, 1, 'same', 1, g);
      const pw2 = ref.conv2dBackward(rs, w2, 1, 'same', ref.add(g, z2.dx));
      const dw1 = ref.depthwiseConv2dBackward(rp, wd1, 1, 'same', 1, pw2.dx);
      const pw1 = ref.conv2dBackward(rh, w1, 1, 'same', dw1.dx);
      const context = `(pass ${pass})`;
      check('set by the first writer: ∂input', xx.grad!.toArray(), ref.activationBackward(x, 'elu', 1, ref.add(pw2.dx, pw1.dx)).data, context);
      check('set by the first writer: ∂weights', ww1.grad!.toArray(), pw1.dw.data, context);
      check('set by the first writer: ∂weights', wwd2.grad!.toArray(), z2.dw.data, context);
    }
    tape.dispose();
  });
});

describe('against TensorFlow.js (CPU backend)', () => {
  const warn = console.warn;
  beforeAll(async () => {
    // Its advice to install tfjs-node (a native TensorFlow, not the backend compared here).
    console.warn = (...args: unknown[]) => {
      if (!String(args[0]).includes('tfjs-node')) warn(...args);
    };
    await tf.setBackend('cpu');
  });
  afterAll(() => {
    console.warn = warn;
  });

  /** Our op and TensorFlow.js's on the same inputs: outputs, and the gradients of Σ y·g. */
  function compare(what: string, inputs: ref.Tensor[], ours: (tape: Tape, xs: Tensor[]) => Tensor, theirs: (...xs: TF.Tensor[]) => TF.Tensor, seed: number) {
    const out = run(inputs, ours, random(seed));
    const g = tf.tensor(Float32Array.from(out.g.data), out.g.shape);
    const xs = inputs.map((t) => tf.tensor(Float32Array.from(t.data), t.shape));
    const y = theirs(...xs);
    const grads = tf.grads((...vs: TF.Tensor[]) => tf.sum(tf.mul(theirs(...vs), g)))(xs);
    const context = `([${inputs.map((t) => `[${t.shape}]`)}])`;
    expect(out.shape).toEqual(y.shape);
    check(`${what} forward (tfjs)`, out.y, y.dataSync(), context);
    grads.forEach((grad, i) => check(`${what} ∂ (tfjs)`, out.grads[i]!, grad.dataSync(), context));
    tf.dispose([g, y, ...xs, ...grads]);
  }

  const shapes = [[1, 5, 7, 3], [3, 4, 3, 9]];

  it('activations (ELU with alpha ≠ 1 as Keras defines it)', () => {
    let seed = 2000;
    const keras: Record<ops.ActivationKind, (x: TF.Tensor, alpha: number) => TF.Tensor> = {
      relu: (x) => tf.relu(x),
      relu6: (x) => tf.relu6(x),
      leaky_relu: (x, alpha) => tf.leakyRelu(x, alpha),
      // Keras's ELU(alpha), x above 0 and alpha·(eˣ − 1) below, from ops tfjs can differentiate.
      elu: (x, alpha) => tf.add(tf.relu(x), tf.mul(alpha, tf.sub(tf.elu(x), tf.relu(x)))),
      sigmoid: (x) => tf.sigmoid(x),
      tanh: (x) => tf.tanh(x),
    };
    for (const [kind, alpha] of KINDS) for (const shape of shapes) {
      const x = randomTensor(shape, random(seed++), 8);
      compare(kind, [x], (tape, [xx]) => ops.activation(tape, xx, kind, alpha), (xx) => keras[kind](xx, alpha), seed);
    }
  });

  it('avgPool (its gradient only where no window is cut by SAME padding: tfjs divides it by size² there)', () => {
    let seed = 2100;
    for (const shape of shapes) for (const [size, stride] of [[2, 2], [3, 1], [3, 2]]) for (const padding of ['same', 'valid'] as const) {
      const x = randomTensor(shape, random(seed++));
      const op = (tape: Tape, [xx]: Tensor[]) => ops.avgPool(tape, xx, { size, stride, padding });
      if (padding === 'valid') {
        compare('avgPool', [x], op, (xx) => tf.avgPool(xx as TF.Tensor4D, size, stride, padding), seed);
      } else {
        const out = run([x], op, random(seed));
        check('avgPool forward (tfjs)', out.y, tf.avgPool(tf.tensor4d(Float32Array.from(x.data), x.shape as [number, number, number, number]), size, stride, padding).dataSync(), `[${shape}] SAME`);
      }
    }
    compare('avgPool', [randomTensor([3, 8, 6, 5], random(seed))], (tape, [xx]) => ops.avgPool(tape, xx, { size: 2, stride: 2, padding: 'same' }), (xx) => tf.avgPool(xx as TF.Tensor4D, 2, 2, 'same'), seed);
  });

  it('global pooling, concat, pad, affine and add', () => {
    let seed = 2200;
    for (const shape of shapes) {
      const rand = random(seed++);
      const x = randomTensor(shape, rand), c = shape[3]!;
      compare('globalAvgPool', [x], (tape, [xx]) => ops.globalAvgPool(tape, xx), (xx) => tf.mean(xx, [1, 2]), seed);
      compare('globalMaxPool', [x], (tape, [xx]) => ops.globalMaxPool(tape, xx), (xx) => tf.max(xx, [1, 2]), seed);
      const others = [randomTensor([...shape.slice(0, 3), 1], rand), randomTensor([...shape.slice(0, 3), 6], rand)];
      compare('concat', [x, ...others], (tape, xs) => ops.concat(tape, xs), (...xs) => tf.concat(xs, -1), seed);
      compare('pad', [x], (tape, [xx]) => ops.pad(tape, xx, { top: 1, bottom: 2, left: 0, right: 3 }), (xx) => tf.pad(xx, [[0, 0], [1, 2], [0, 3], [0, 0]]), seed);
      const scale = randomTensor([c], rand), shift = randomTensor([c], rand);
      compare('affine', [x, scale, shift], (tape, [xx, ss, tt]) => ops.affine(tape, xx, ss, tt), (xx, ss, tt) => tf.add(tf.mul(xx, ss), tt), seed);
      compare('add', [x, randomTensor(shape, rand)], (tape, [a, b]) => ops.add(tape, a, b), (a, b) => tf.add(a, b), seed);
    }
  });
});
