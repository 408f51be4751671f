// conv2d against TensorFlow.js's CPU backend, a check of the conventions (padding, strides,
// dilation, gradients) from outside the project, next to the float64 reference. TensorFlow.js
// computes no gradient of a dilated convolution: its gradients are those of the same convolution
// with the taps spread out and zeros between them, which is what a dilation is.
import { createRequire } from 'node:module';
import type * as TF from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../src/core/engine.js';
import { loadEngine } from '../src/node/engine.js';
import * as ops from '../src/core/ops.js';
import { random } from '../src/core/random.js';
import { Tape } from '../src/core/tape.js';
import { relativeError } from './helpers.js';

// Node's own loader for tfjs's Node bundle, as bench/tfjs.ts does (much faster than a transform).
const require = createRequire(import.meta.url);
const tf: typeof TF = require('@tensorflow/tfjs');

const TOLERANCE = 1e-4;
let engine: Engine;
/** The worst relative error seen per quantity, printed at the end for the record. */
const worst = new Map<string, number>();

// The CPU backend's advice to install tfjs-node (a native TensorFlow, not what is compared here).
const warn = console.warn;
console.warn = (...args: unknown[]) => {
  if (!String(args[0]).includes('tfjs-node')) warn(...args);
};

beforeAll(async () => {
  engine = await loadEngine();
  await tf.setBackend('cpu');
});

afterAll(() => {
  const rows = [...worst].map(([k, v]) => `  ${k.padEnd(8)} ${v.toExponential(2)}`);
  console.log(`worst relative errors against TensorFlow.js's CPU backend:\n${rows.join('\n')}`);
});

/** w [k, k, cin, cout] spread to [(k−1)·d + 1, …] with zeros between the taps, as a product
 *  with a matrix of ones and zeros, so that tf.grads goes through it. */
function spread(w: TF.Tensor4D, dilation: number): TF.Tensor4D {
  const [k, , cin, cout] = w.shape;
  const span = (k - 1) * dilation + 1;
  const place = new Float32Array(span * span * k * k);
  for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) place[(ky * dilation * span + kx * dilation) * k * k + ky * k + kx] = 1;
  return tf.matMul(tf.tensor2d(place, [span * span, k * k]), w.reshape([k * k, cin * cout])).reshape([span, span, cin, cout]);
}

interface Case {
  n: number; h: number; w: number; cin: number; cout: number;
  k: number; stride: number; dilation: number; padding: ops.Padding; relu: boolean;
}

const cases: Case[] = [
  { n: 2, h: 7, w: 9, cin: 20, cout: 33, k: 1, stride: 1, dilation: 1, padding: 'same', relu: true },
  { n: 1, h: 12, w: 11, cin: 3, cout: 4, k: 5, stride: 1, dilation: 1, padding: 'valid', relu: false },
  { n: 2, h: 15, w: 16, cin: 5, cout: 8, k: 3, stride: 2, dilation: 1, padding: 'same', relu: true },
  { n: 1, h: 14, w: 13, cin: 16, cout: 12, k: 1, stride: 2, dilation: 1, padding: 'same', relu: false },
  { n: 2, h: 17, w: 14, cin: 3, cout: 7, k: 4, stride: 3, dilation: 1, padding: 'valid', relu: false },
  { n: 1, h: 13, w: 12, cin: 4, cout: 6, k: 3, stride: 1, dilation: 2, padding: 'same', relu: true },
  { n: 2, h: 14, w: 11, cin: 3, cout: 5, k: 2, stride: 1, dilation: 3, padding: 'valid', relu: false },
  { n: 1, h: 16, w: 15, cin: 6, cout: 9, k: 3, stride: 1, dilation: 3, padding: 'same', relu: false },
];

describe('conv2d against TensorFlow.js (CPU backend)', () => {
  for (const c of cases) {
    it(`${c.n}×${c.h}×${c.w}×${c.cin} → ${c.cout}, k ${c.k}, stride ${c.stride}, dilation ${c.dilation}, ${c.padding}, relu ${c.relu}`, () => {
      const rand = random(c.h * 100 + c.cout);
      const values = (count: number) => Float32Array.from({ length: count }, () => rand() * 2 - 1);
      const xv = values(c.n * c.h * c.w * c.cin), wv = values(c.k * c.k * c.cin * c.cout), bv = values(c.cout);

      const tape = new Tape(engine);
      const x = engine.tensor([c.n, c.h, c.w, c.cin], xv).requireGrad();
      const w = engine.tensor([c.k, c.k, c.cin, c.cout], wv).requireGrad();
      const b = engine.tensor([c.cout], bv).requireGrad();
      const y = ops.conv2d(tape, x, w, b, { stride: c.stride, padding: c.padding, relu: c.relu, dilation: c.dilation });
      const gv = values(y.size);
      tape.backward(ops.dot(tape, y, engine.tensor(y.shape, gv)));
      const ours = { y: y.toArray(), dx: x.grad!.toArray(), dw: w.grad!.toArray(), db: b.grad!.toArray() };
      tape.dispose();

      const theirs = tf.tidy(() => {
        const tx = tf.tensor4d(xv, [c.n, c.h, c.w, c.cin]), tw = tf.tensor4d(wv, [c.k, c.k, c.cin, c.cout]), tb = tf.tensor1d(bv);
        const activate = (z: TF.Tensor4D) => (c.relu ? tf.relu(z) : z);
        const ty = activate(tf.add(tf.conv2d(tx, tw, c.stride, c.padding, 'NHWC', c.dilation), tb));
        const tg = tf.tensor(gv, ty.shape);
        const loss = (xx: TF.Tensor, ww: TF.Tensor, bb: TF.Tensor) =>
          tf.sum(tf.mul(activate(tf.add(tf.conv2d(xx as TF.Tensor4D, spread(ww as TF.Tensor4D, c.dilation), c.stride, c.padding), bb)), tg));
        const [dx, dw, db] = tf.grads(loss)([tx, tw, tb]);
        return { y: ty.dataSync(), dx: dx.dataSync(), dw: dw.dataSync(), db: db.dataSync() };
      });
      expect(ours.y.length).toBe(theirs.y.length);
      for (const key of ['y', 'dx', 'dw', 'db'] as const) {
        const e = relativeError(ours[key], theirs[key]);
        worst.set(key, Math.max(worst.get(key) ?? 0, e));
        expect(e, `${key}: relative error ${e.toExponential(2)}`).toBeLessThanOrEqual(TOLERANCE);
      }
    });
  }
});
