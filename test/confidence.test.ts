// The cross-entropy's gradient where the model is sure of itself. In float32, 1 − p of a class
// holding nearly all the probability rounds away at logit margins above ~17, so a log-softmax
// written the textbook way returns a gradient of the wrong size (or sign) exactly on the images
// an attack finds hardest. Here networks are made confident by scaling their last layer to a
// chosen margin, and the engine's input gradient is held to the float64 reference.
import { beforeAll, describe, expect, it } from 'vitest';
import { filterLoss } from '../src/attacks/filter.js';
import { runAttack } from '../src/attacks/index.js';
import type { Engine } from '../src/core/engine.js';
import { TUTORIAL_ARCHITECTURE } from '../src/formats/importtf.js';
import { checkArchitecture, inputUnits, type Architecture, type Model } from '../src/formats/model.js';
import { Net } from '../src/core/net.js';
import { loadEngine } from '../src/node/engine.js';
import { add, logSoftmax, Scalar } from '../src/core/ops.js';
import { random } from '../src/core/random.js';
import { Tape } from '../src/core/tape.js';
import * as ref from './reference.js';
import { randomModel, relativeError } from './helpers.js';

let engine: Engine;
beforeAll(async () => {
  engine = await loadEngine();
});

const MARGINS = [5, 10, 20, 40, 80];

const architectures: Record<string, Architecture> = {
  'the tutorial network': TUTORIAL_ARCHITECTURE,
  'a three-class RGB network with a hidden dense layer': checkArchitecture({
    input: [12, 10, 3], labels: ['a', 'b', 'c'], preprocess: { offset: 0, scale: 255 },
    layers: [
      { type: 'conv2d', name: 'c1', filters: 4, kernel: 3, stride: 2, padding: 'same', activation: 'relu' },
      { type: 'conv2d', name: 'c2', filters: 6, kernel: 3, stride: 1, padding: 'same', activation: 'relu' },
      { type: 'maxpool', size: 2, stride: 2, padding: 'same' },
      { type: 'flatten' },
      { type: 'dense', name: 'd1', units: 8, activation: 'relu' },
      { type: 'dense', name: 'd2', units: 3 },
    ],
  }),
};

const float64 = (model: Model) => new Map([...model.weights].map(([k, v]) => [k, Float64Array.from(v)]));

/** The largest logit minus the second largest. */
function margin(logits: ArrayLike<number>): number {
  const sorted = Array.from(logits).sort((a, b) => b - a);
  return sorted[0] - sorted[1];
}

/** A random model, and an image on the 8-bit grid (grey levels 16..239, so FGSM never clips)
 *  on which the model's margin is `target`: the last (linear) layer is scaled to get there. */
function confident(architecture: Architecture, target: number, seed: number): { model: Model; x: Float32Array } {
  const rand = random(seed);
  const model = randomModel(architecture, rand, 0.3);
  const weights = model.weights;
  const { offset, scale } = inputUnits(architecture);
  const [h, w, c] = architecture.input;
  const x = Float32Array.from({ length: h * w * c }, () => (16 + Math.floor(rand() * 224) - offset) / scale);
  const last = [...architecture.layers].reverse().find((l) => l.type === 'dense')!;
  const name = (last as { name: string }).name;
  const m0 = margin(ref.networkLogits(architecture, float64(model), ref.tensor([1, h, w, c], x)).data);
  for (const key of [`${name}.w`, `${name}.b`]) weights.set(key, weights.get(key)!.map((v) => (v * target) / m0));
  return { model, x };
}

describe('the cross-entropy at any confidence', () => {
  it('log-softmax of logits far apart: values and gradients exact, never NaN (kernel against float64)', () => {
    for (const d of [5, 20, 80, 1e3, 1e30, 3e38]) {
      for (const label of [0, 1]) {
        const tape = new Tape(engine);
        const z = engine.tensor([1, 3], [d / 2, -d / 2, -d / 2 - 1]).requireGrad();
        const y = logSoftmax(tape, z);
        const dy = engine.tensor([1, 3], [label === 0 ? -1 : 0, label === 1 ? -1 : 0, 0]);
        engine.kernels.log_softmax_backward(y.ptr, dy.ptr, z.grad!.ptr, 1, 3);
        const z64 = ref.tensor([1, 3], z.toArray());
        const expected = ref.logSoftmaxBackward(z64, ref.tensor([1, 3], dy.toArray())).data;
        const got = z.grad!.toArray();
        expect(got.every(Number.isFinite), `margin ${d}`).toBe(true);
        expect(relativeError(got, expected), `margin ${d}, label ${label}`).toBeLessThan(1e-5);
        // The loss toward the confident class is about e^−d, not 0.
        const lossOwn = -y.toArray()[0], lossOwn64 = -ref.logSoftmax(z64).data[0];
        expect(Math.abs(lossOwn - lossOwn64) / Math.max(lossOwn64, 1e-45), `margin ${d}`).toBeLessThan(1e-5);
        tape.dispose();
      }
    }
  });

  for (const [title, architecture] of Object.entries(architectures)) {
    it(`${title}: d loss / d input within 1e-4 of float64 at margins ${MARGINS.join(', ')}`, () => {
      const [h, w, c] = architecture.input;
      const classes = architecture.labels.length;
      const lines: string[] = [];
      for (const d of MARGINS) {
        const { model, x } = confident(architecture, d, d);
        const weights64 = float64(model);
        const x64 = ref.tensor([1, h, w, c], x);
        const logits64 = ref.networkLogits(architecture, weights64, x64).data;
        expect(margin(logits64)).toBeCloseTo(d, 3);
        const predicted = logits64.indexOf(Math.max(...logits64));
        // The untargeted attack's loss (toward the predicted class: the tiny gradient) and a
        // targeted one (toward another class).
        for (const label of [predicted, (predicted + 1) % classes]) {
          const onehot = Array.from({ length: classes }, (_, k) => (k === label ? 1 : 0));
          const expected = ref.networkLossAndGradients(architecture, weights64, x64, ref.tensor([1, h, w, c]), ref.tensor([1, classes], onehot), 0);
          const tape = new Tape(engine);
          const net = new Net(engine, model);
          const dx = engine.tensor([1, h, w, c]).requireGrad();
          const logits = net.forward(tape, add(tape, engine.tensor([1, h, w, c], x), dx));
          const loss = filterLoss(tape, logits, engine.tensor([1, classes], onehot), dx, new Scalar(0));
          tape.backward(loss);
          const gradientError = relativeError(dx.grad!.toArray(), expected.dDx.data);
          const lossError = Math.abs(loss.item() - expected.loss) / expected.loss;
          lines.push(`margin ${d}, label ${label === predicted ? 'predicted' : 'other'}: loss ${expected.loss.toExponential(2)} (error ${lossError.toExponential(1)}), gradient error ${gradientError.toExponential(1)}`);
          expect(gradientError, `margin ${d}, label ${label}`).toBeLessThan(1e-4);
          expect(lossError, `margin ${d}, label ${label}`).toBeLessThan(1e-4);
          tape.dispose();
        }
      }
      console.log(`${title}:\n  ${lines.join('\n  ')}`);
    });
  }

  it('FGSM moves every pixel whose float64 gradient is above 1e-6 of the largest in that gradient\'s direction', () => {
    const architecture = TUTORIAL_ARCHITECTURE;
    const eps = 8;
    let checked = 0;
    for (const d of MARGINS) {
      const { model, x } = confident(architecture, d, 100 + d);
      const net = new Net(engine, model);
      const [result] = runAttack(net, [x], { method: 'fgsm', eps });
      const expected = ref.networkLossAndGradients(architecture, float64(model), ref.tensor([1, 48, 48, 1], x), ref.tensor([1, 48, 48, 1]), ref.tensor([1, 2], result.before.index === 0 ? [1, 0] : [0, 1]), 0).dDx.data;
      const largest = Math.max(...expected.map(Math.abs));
      const { scale } = inputUnits(architecture);
      const wrong: number[] = [];
      for (let i = 0; i < expected.length; i++) {
        if (Math.abs(expected[i]) <= 1e-6 * largest) continue;
        checked++;
        // Untargeted FGSM raises the predicted class's cross-entropy: +sign(∇) in model units.
        const step = Math.round(result.perturbation[i] * scale);
        if (step !== eps * Math.sign(expected[i]) * Math.sign(scale)) wrong.push(i);
      }
      expect(wrong, `margin ${d}: pixels moved the wrong way`).toEqual([]);
    }
    expect(checked).toBeGreaterThan(MARGINS.length * 2000);
  });
});
