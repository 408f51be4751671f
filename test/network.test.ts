// Whole networks on the engine against the float64 reference: logits, the gradient of the
// attack's loss with respect to the perturbation, and with respect to every weight. Also the
// model file's round trip, and that an attack's iterations allocate nothing.
import { GCProfiler } from 'node:v8';
import { beforeAll, describe, expect, it } from 'vitest';
import { FilterAttack, filterLoss } from '../src/attacks/filter.js';
import type { Engine } from '../src/core/engine.js';
import { TUTORIAL_ARCHITECTURE } from '../src/formats/importtf.js';
import { checkArchitecture, readModel, writeModel, type Architecture } from '../src/formats/model.js';
import { Net } from '../src/core/net.js';
import { loadEngine } from '../src/node/engine.js';
import { add, Scalar } from '../src/core/ops.js';
import { Tape } from '../src/core/tape.js';
import * as ref from './reference.js';
import { random } from '../src/core/random.js';
import { randomModel, relativeError } from './helpers.js';

let engine: Engine;
beforeAll(async () => {
  engine = await loadEngine();
});

const architectures: Record<string, Architecture> = {
  'the tutorial network': TUTORIAL_ARCHITECTURE,
  'an RGB network with strides, VALID padding, even kernels and a hidden dense layer': checkArchitecture({
    input: [17, 15, 3], labels: ['a', 'b', 'c'], preprocess: { offset: 0, scale: 255 },
    layers: [
      { type: 'conv2d', name: 'c1', filters: 5, kernel: 4, stride: 2, padding: 'same', activation: 'relu' },
      { type: 'maxpool', size: 3, stride: 1, padding: 'valid' },
      { type: 'conv2d', name: 'c2', filters: 7, kernel: 3, stride: 1, padding: 'valid', activation: 'none' },
      { type: 'maxpool', size: 2, stride: 2, padding: 'same' },
      { type: 'flatten' },
      { type: 'dense', name: 'd1', units: 9, activation: 'relu' },
      { type: 'dense', name: 'd2', units: 3 },
    ],
  }),
  'a residual graph: depthwise (multiplier 2), 1×1, dilated and strided convs, every activation, pools, concat, affine, pad, per-channel preprocessing': checkArchitecture({
    input: [13, 12, 3], labels: ['a', 'b', 'c', 'd'], preprocess: { offset: [120, 110, 100], scale: [60, 50, 70] },
    layers: [
      { type: 'conv2d', name: 'stem', filters: 6, kernel: 3, stride: 2, padding: 'same', activation: 'relu6' },
      { type: 'depthwise_conv2d', name: 'dw', kernel: 3, multiplier: 2, padding: 'same', activation: 'elu', alpha: 0.7 },
      { type: 'conv2d', name: 'pw', filters: 6, kernel: 1, activation: 'leaky_relu', alpha: 0.2 },
      { type: 'add', name: 'sum', inputs: ['stem', 'pw'] },
      { type: 'conv2d', name: 'dil', filters: 5, kernel: 3, dilation: 2, padding: 'same', activation: 'tanh', inputs: ['stem'] },
      { type: 'concat', name: 'cat', inputs: ['sum', 'dil'] },
      { type: 'affine', name: 'bn' },
      { type: 'activation', activation: 'relu' },
      { type: 'pad', pad: [1, 0, 2, 1] },
      { type: 'avgpool', name: 'avg', size: 3, stride: 2, padding: 'same' },
      { type: 'depthwise_conv2d', name: 'dw2', kernel: 2, stride: 2, padding: 'valid', activation: 'sigmoid' },
      { type: 'global_avgpool', name: 'gap' },
      { type: 'global_maxpool', name: 'gmp', inputs: ['avg'] },
      { type: 'concat', inputs: ['gap', 'gmp'] },
      { type: 'dense', name: 'fc', units: 4, activation: 'softmax' },
    ],
  }),
};

describe('whole networks against the reference', () => {
  for (const [title, architecture] of Object.entries(architectures)) {
    for (const n of [1, 3]) {
      it(`${title}, batch ${n}: logits and gradients of the attack loss for the perturbation and every weight`, () => {
        const model = randomModel(architecture, n);
        const [h, w, c] = architecture.input;
        const classes = architecture.labels.length;
        const rand = random(17 + n);
        const x = ref.tensor([n, h, w, c], Array.from({ length: n * h * w * c }, () => rand() - 0.5));
        const dx = ref.tensor([n, h, w, c], Array.from({ length: n * h * w * c }, () => (rand() - 0.5) * 0.1));
        const y = ref.tensor([n, classes], Array.from({ length: n * classes }, (_, i) => (i % classes === n % classes ? 1 : 0)));
        const beta = 0.5;
        const weights64 = new Map([...model.weights].map(([k, v]) => [k, Float64Array.from(v)]));
        const expected = ref.networkLossAndGradients(architecture, weights64, x, dx, y, beta);

        const tape = new Tape(engine);
        const net = new Net(engine, model);
        for (const p of net.params.values()) p.requireGrad();
        const dxT = engine.tensor(dx.shape, dx.data).requireGrad();
        const logits = net.forward(tape, add(tape, engine.tensor(x.shape, x.data), dxT));
        const loss = filterLoss(tape, logits, engine.tensor(y.shape, y.data), dxT, new Scalar(beta));
        tape.backward(loss);

        const x64 = ref.tensor(x.shape, x.data.map((v, i) => v + dx.data[i]));
        const errors = {
          logits: relativeError(logits.toArray(), ref.networkLogits(architecture, weights64, x64).data),
          loss: Math.abs(loss.item() - expected.loss) / Math.abs(expected.loss),
          'd loss / d DX': relativeError(dxT.grad!.toArray(), expected.dDx.data),
          'd loss / d weights (worst)': Math.max(...[...net.params].map(([key, p]) => relativeError(p.grad!.toArray(), expected.dWeights.get(key)!))),
        };
        console.log(`${title}, batch ${n}: ${Object.entries(errors).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')}`);
        expect(errors.logits).toBeLessThan(1e-5);
        expect(errors.loss).toBeLessThan(1e-5);
        expect(errors['d loss / d DX']).toBeLessThan(1e-4);
        for (const [key, p] of net.params) {
          const e = relativeError(p.grad!.toArray(), expected.dWeights.get(key)!);
          if (!(e < 1e-4)) expect.fail(`∂loss/∂${key}: relative error ${e}`);
        }
        tape.dispose();
      });
    }
  }
});

describe('the model file', () => {
  it('round-trips architecture and weights exactly', () => {
    const model = randomModel(architectures['an RGB network with strides, VALID padding, even kernels and a hidden dense layer'], 5);
    const back = readModel(writeModel(model), 'memory');
    expect(back.architecture).toEqual(model.architecture);
    for (const [key, w] of model.weights) expect(back.weights.get(key)).toEqual(w);
  });
});

describe('attack iterations', () => {
  it('one SGD step with lr 1 from zero moves DX by minus the input gradient', () => {
    const model = randomModel(TUTORIAL_ARCHITECTURE, 9);
    const rand = random(3);
    const x = Float32Array.from({ length: 48 * 48 }, () => rand() - 0.5);
    const attack = new FilterAttack(new Net(engine, model), x, 0);
    attack.run({ iterations: 1, lr: 1, beta: 0 });
    const weights64 = new Map([...model.weights].map(([k, v]) => [k, Float64Array.from(v)]));
    const expected = ref.networkLossAndGradients(TUTORIAL_ARCHITECTURE, weights64, ref.tensor([1, 48, 48, 1], x), ref.tensor([1, 48, 48, 1]), ref.tensor([1, 2], [1, 0]), 0);
    expect(relativeError(attack.dx.toArray(), expected.dDx.data.map((v) => -v))).toBeLessThan(1e-4);
    attack.dispose();
  });

  const small: Record<string, Architecture> = {
    'a chain': checkArchitecture({
      input: [8, 8, 1], labels: ['a', 'b'],
      layers: [
        { type: 'conv2d', name: 'c', filters: 3, kernel: 3, padding: 'same', activation: 'relu' },
        { type: 'maxpool', size: 2, padding: 'same' },
        { type: 'flatten' },
        { type: 'dense', name: 'd', units: 2 },
      ],
    }),
    'a graph of every layer type': checkArchitecture({
      input: [8, 8, 3], labels: ['a', 'b'], preprocess: { offset: [120, 110, 100], scale: [60, 50, 70] },
      layers: [
        { type: 'pad', pad: [1, 1, 1, 1] },
        { type: 'conv2d', name: 'stem', filters: 4, kernel: 3, stride: 2, activation: 'relu6' },
        { type: 'depthwise_conv2d', name: 'dw', kernel: 3, padding: 'same', activation: 'elu', alpha: 1 },
        { type: 'conv2d', name: 'pw', filters: 4, kernel: 1, activation: 'leaky_relu', alpha: 0.2 },
        { type: 'add', name: 'sum', inputs: ['stem', 'pw'] },
        { type: 'conv2d', name: 'dil', filters: 2, kernel: 2, dilation: 2, padding: 'same', activation: 'tanh', inputs: ['stem'] },
        { type: 'concat', inputs: ['sum', 'dil'] },
        { type: 'affine', name: 'bn' },
        { type: 'avgpool', name: 'avg', size: 2, padding: 'same' },
        { type: 'activation', activation: 'sigmoid' },
        { type: 'global_avgpool', name: 'gap' },
        { type: 'global_maxpool', name: 'gmp', inputs: ['avg'] },
        { type: 'concat', inputs: ['gap', 'gmp'] },
        { type: 'dense', name: 'd', units: 2, activation: 'softmax' },
      ],
    }),
  };
  for (const [title, architecture] of Object.entries(small)) it(`100,000 iterations on ${title} keep memory flat and allocate nothing per iteration`, () => {
    const size = architecture.input.reduce((a, b) => a * b, 1);
    const attack = new FilterAttack(new Net(engine, randomModel(architecture, 1)), new Float32Array(size).fill(0.1), 0);
    attack.run({ iterations: 1000, lr: 0.01, beta: 0.5 }); // warm up: JIT, lazy initialisation
    const memory = engine.kernels.memory.buffer.byteLength, used = engine.used;
    const heap = process.memoryUsage().heapUsed;
    const profiler = new GCProfiler();
    profiler.start();
    attack.run({ iterations: 100_000, lr: 0.01, beta: 0.5 });
    const gcs = profiler.stop().statistics;
    expect(engine.kernels.memory.buffer.byteLength).toBe(memory);
    expect(engine.used).toBe(used);
    // The run allocates its loss record (100,000 floats) once; the loop itself nothing, so no
    // young-generation collection should run.
    expect(process.memoryUsage().heapUsed - heap).toBeLessThan(2 * 1024 * 1024);
    expect(gcs.filter((g) => g.gcType === 'Scavenge').length).toBeLessThanOrEqual(1);
    attack.dispose();
  });
});
