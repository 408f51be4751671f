// Every command on models imported from TensorFlow.js: an RGB graph network (strided conv with
// batch norm and ReLU6, a depthwise + pointwise branch added back, an unfoldable batch norm,
// global average pool, dense with softmax) built from seeded random weights, imported once with
// importTfjs (offset and scale 127.5) and once with `mislead import-tfjs` and ImageNet's
// per-channel preprocessing. The numbers are checked against TensorFlow.js's CPU backend on the
// same decoded pixels, and the files every command writes are read back.
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METHODS, runAttack } from '../src/attacks/index.js';
import type { Engine } from '../src/core/engine.js';
import { Net, softmax } from '../src/core/net.js';
import { decodeImage, decodeResized, encodePng, toGray } from '../src/formats/image.js';
import { imageToInput } from '../src/formats/preprocess.js';
import { inputUnits, readModel, writeModel, type Preprocess } from '../src/formats/model.js';
import { readNpy } from '../src/formats/npy.js';
import { importTfjs } from '../src/formats/tfjs.js';
import { loadEngine } from '../src/node/engine.js';
import { readModelInput } from '../src/node/files.js';
import { BatchGradients } from '../src/train/train.js';
import { relativeError, withoutTimes } from './helpers.js';
import { buildNetwork, IMAGENET, LABELS, picture, saveNetwork, SIDE } from './support/tfjs-model.js';

const ROOT = resolve(import.meta.dirname, '..');
/** Everything this file writes, removed at the end. */
const dir = mkdtempSync(join(tmpdir(), 'mislead-imported-'));
const tmp = () => mkdtempSync(join(dir, 'run-'));

function mislead(...args: string[]) {
  const r = spawnSync(process.execPath, [join(ROOT, 'dist/cli/main.js'), ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the command line and returns its stdout, failing with its stderr. */
function ok(...args: string[]): string {
  const r = mislead(...args);
  expect(r.code, `mislead ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

/** The colour type of a PNG (2: RGB, 0: gray) and its size, from its header. */
function pngHeader(bytes: Uint8Array): { width: number; height: number; colourType: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  return { width: view.getUint32(16), height: view.getUint32(20), colourType: bytes[25] };
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const perChannel = (v: number | number[], c: number) => (typeof v === 'number' ? v : v[c]);
/** Pixels shown as colour, not grey: the largest channel at least 32 above the smallest. */
const colourful = (rgb: Uint8Array) => Array.from({ length: rgb.length / 3 }, (_, i) => rgb.subarray(3 * i, 3 * i + 3)).filter((p) => Math.max(...p) - Math.min(...p) >= 32).length;

/** Worst errors against TensorFlow.js, printed at the end for the record. */
const measured: Record<string, number> = {};
const record = (key: string, value: number) => (measured[key] = Math.max(measured[key] ?? 0, value));

let network: tf.LayersModel;
let body: tf.LayersModel;
let engine: Engine;
const data = join(dir, 'data');
/** The two imported files, and their preprocessing. */
const MODELS = {
  uniform: { file: join(dir, 'uniform.safetensors'), preprocess: { offset: 127.5, scale: 127.5 } as Preprocess },
  imagenet: { file: join(dir, 'imagenet.safetensors'), preprocess: IMAGENET as Preprocess },
};
/** The folder's labels: some right, some wrong for the network (checked in the eval test). */
const TRUTH = ['cat', 'dog', 'bird', 'cat', 'bird', 'dog'];

/** TensorFlow.js on 0..255 RGB pixels [n·h·w·3] preprocessed as `preprocess`: probabilities
 *  (its model.predict) and the logits before the final softmax. */
function reference(pixels: Uint8Array, preprocess: Preprocess): { probabilities: Float32Array; logits: Float32Array } {
  const n = pixels.length / (SIDE * SIDE * 3);
  const x = tf.tensor4d(Float32Array.from(pixels, (p, i) => (p - perChannel(preprocess.offset, i % 3)) / perChannel(preprocess.scale, i % 3)), [n, SIDE, SIDE, 3]);
  const dense = network.layers[network.layers.length - 1];
  const [w, b] = dense.getWeights();
  return {
    probabilities: (network.predict(x) as tf.Tensor).dataSync() as Float32Array,
    logits: tf.add(tf.matMul(body.predict(x) as tf.Tensor, w), b).dataSync() as Float32Array,
  };
}

/** The engine's input units of the per-channel model: the channels' mean offset and scale. */
const units = () => inputUnits(readModel(readFileSync(MODELS.imagenet.file), 'imagenet.safetensors').architecture);

/** A picture file as the command line reads it for the model: RGB at the model's size. */
const modelPixels = (path: string) => decodeResized(readFileSync(path), path, { width: SIDE, height: SIDE, channels: 3 }).data;

beforeAll(async () => {
  await tf.setBackend('cpu');
  engine = await loadEngine();
  network = buildNetwork(1);
  const last = network.layers[network.layers.length - 1];
  body = tf.model({ inputs: network.inputs, outputs: last.input as tf.SymbolicTensor });
  const saved = await saveNetwork(network);
  // One through the library, one through the command line with per-channel preprocessing.
  const uniform = importTfjs(saved.json, () => saved.weights, 'model.json', { labels: LABELS, preprocess: MODELS.uniform.preprocess });
  writeFileSync(MODELS.uniform.file, writeModel(uniform));
  mkdirSync(join(dir, 'tfjs'));
  writeFileSync(join(dir, 'tfjs/model.json'), JSON.stringify(saved.json));
  writeFileSync(join(dir, 'tfjs/weights.bin'), saved.weights);
  ok('import-tfjs', join(dir, 'tfjs/model.json'), '--out', MODELS.imagenet.file, '--labels', LABELS.join(), '--offset', '123.7,116.3,103.5', '--scale', '58.4,57.1,57.4');
  // Six pictures at the model's size with labels.csv, and one of another size and shape.
  mkdirSync(data);
  TRUTH.forEach((_, i) => writeFileSync(join(data, `${i}.png`), encodePng(picture(100 + i))));
  writeFileSync(join(data, 'labels.csv'), ['file,label', ...TRUTH.map((l, i) => `${i}.png,${l}`)].join('\n') + '\n');
  writeFileSync(join(dir, 'wide.png'), encodePng(picture(200, 45, 27)));
}, 120_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  console.log(`imported models against TensorFlow.js (CPU): ${Object.entries(measured).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')}`);
});

describe('import and predict', () => {
  it('imports as a graph: strided conv, depthwise, pointwise, add, affine, global pool, dense with softmax', () => {
    const model = readModel(readFileSync(MODELS.imagenet.file), 'imagenet.safetensors');
    expect(model.architecture.input).toEqual([SIDE, SIDE, 3]);
    expect(model.architecture.labels).toEqual(LABELS);
    expect(model.architecture.preprocess).toEqual(IMAGENET);
    expect(model.architecture.layers.map((l) => l.type)).toEqual(['conv2d', 'depthwise_conv2d', 'conv2d', 'add', 'affine', 'global_avgpool', 'dense']);
    expect(model.architecture.layers.map((l) => ('activation' in l ? l.activation : '-'))).toEqual(['relu6', 'relu6', 'none', '-', '-', '-', 'softmax']);
  });

  it("predict: TensorFlow.js's probabilities and logits on the same decoded pixels, a picture of another size included", () => {
    const images = [...TRUTH.map((_, i) => join(data, `${i}.png`)), join(dir, 'wide.png')];
    for (const { file, preprocess } of Object.values(MODELS)) {
      const results = JSON.parse(ok('predict', ...images, '--model', file, '--json')) as { image: string; label: string; index: number; logits: number[]; probabilities: number[] }[];
      expect(results.map((r) => r.image)).toEqual(images);
      const pixels = new Uint8Array(images.length * SIDE * SIDE * 3);
      images.forEach((path, i) => pixels.set(modelPixels(path), i * SIDE * SIDE * 3));
      const tfjs = reference(pixels, preprocess);
      results.forEach((r, i) => {
        const expected = { probabilities: tfjs.probabilities.subarray(3 * i, 3 * i + 3), logits: tfjs.logits.subarray(3 * i, 3 * i + 3) };
        // The probabilities are the softmax of the logits, and both TensorFlow.js's.
        expect(maxAbsDiff(r.probabilities, softmax(r.logits))).toBe(0);
        record('logits', relativeError(r.logits, expected.logits));
        record('probabilities', maxAbsDiff(r.probabilities, expected.probabilities));
        expect(relativeError(r.logits, expected.logits), r.image).toBeLessThan(1e-4);
        expect(maxAbsDiff(r.probabilities, expected.probabilities), r.image).toBeLessThan(1e-5);
        expect(r.label).toBe(LABELS[r.index]);
        expect(r.index).toBe(tf.argMax(tf.tensor1d(expected.probabilities)).dataSync()[0]);
      });
      // The classes differ between pictures: the network is not a constant.
      expect(new Set(results.map((r) => r.label)).size).toBeGreaterThan(1);
      const table = ok('predict', ...images, '--model', file).trim().split('\n');
      expect(table).toHaveLength(images.length + 1);
      results.forEach((r, i) => expect(table[i + 1]).toMatch(new RegExp(`^${r.image}\\s+${r.label}\\s+${r.probabilities[r.index].toFixed(4)}\\s`)));
    }
  });
});

describe('attack on the per-channel model', () => {
  const { file, preprocess } = MODELS.imagenet;
  const image = join(data, '1.png');
  const original = () => modelPixels(image);
  /** Each method's run: small budgets and few iterations, eps in grey levels. */
  const runs: Record<string, string[]> = {
    filter: ['--iters', '100'], fgsm: ['--eps', '4'], bim: ['--eps', '4'], pgd: ['--eps', '4'], mifgsm: ['--eps', '4'],
    cw: ['--iters', '50', '--binary-steps', '3'], deepfool: [],
    'apgd-ce': ['--eps', '4', '--iters', '20'], 'apgd-dlr': ['--eps', '4', '--iters', '20'], square: ['--eps', '4', '--queries', '200'],
    autoattack: ['--eps', '4', '--version', 'custom', '--parts', 'fgsm,apgd-ce'],
  };
  /** Methods this 3-class model is too small for. */
  const refused = ['apgd-t'];

  it('lists every method of the registry here', () => {
    expect([...Object.keys(runs), ...refused].sort()).toEqual(METHODS.map((m) => m.id).sort());
  });

  it('apgd-t refuses a model of 3 classes in one line (its targeted DLR loss needs 4)', () => {
    const result = mislead('attack', image, '--model', file, '--method', 'apgd-t', '--out', join(tmp(), 'out'));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^mislead: apgd-t: .*4 classes.*the model has 3\n$/);
  });

  for (const method of Object.keys(runs)) {
    it(`${method}: colour files at the model's size, a report whose logits are TensorFlow.js's, eps in grey levels`, () => {
      const out = join(tmp(), 'out');
      const stdout = ok('attack', image, '--model', file, '--method', method, ...runs[method], '--out', out, '--json');
      // --json's stdout is one JSON document, the report; the softmax note is in it.
      const report = JSON.parse(stdout);
      expect(report).toEqual(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')));
      expect(report.note).toBe('the model ends in a softmax: attacks work on the logits before it');
      expect(report.method).toBe(method);

      const png = new Uint8Array(readFileSync(join(out, 'adversarial.png')));
      expect(pngHeader(png)).toEqual({ width: SIDE, height: SIDE, colourType: 2 });
      const saved = decodeImage(png, 'adversarial.png').data;
      const npy = readNpy(readFileSync(join(out, 'perturbation.npy')), 'perturbation.npy');
      expect(npy.shape).toEqual([SIDE, SIDE, 3]);
      // adversarial.png is the original plus the perturbation, in the input units (mean offset and scale).
      const { offset, scale } = units();
      expect([offset, scale]).toEqual([(123.7 + 116.3 + 103.5) / 3, (58.4 + 57.1 + 57.4) / 3]);
      const rebuilt = Uint8Array.from(original(), (p, i) => Math.min(255, Math.max(0, Math.round(((p - offset) / scale + npy.data[i]) * scale + offset))));
      expect(maxAbsDiff(saved, rebuilt)).toBe(0);
      const figure = decodeImage(new Uint8Array(readFileSync(join(out, 'figure.png'))), 'figure.png');
      expect(colourful(figure.data)).toBeGreaterThan(10_000);
      expect(colourful(decodeImage(new Uint8Array(readFileSync(join(out, 'filter.png'))), 'filter.png').data)).toBeGreaterThan(0);

      // The logits before, and of the saved file read back, are TensorFlow.js's on those pixels.
      const before = reference(original(), preprocess), after = reference(saved, preprocess);
      record('attack logits', Math.max(relativeError(report.before.logits, before.logits), relativeError(report.saved.logits, after.logits)));
      expect(relativeError(report.before.logits, before.logits)).toBeLessThan(1e-4);
      expect(relativeError(report.saved.logits, after.logits)).toBeLessThan(1e-4);
      expect(maxAbsDiff(report.saved.probabilities, after.probabilities)).toBeLessThan(1e-5);
      const linf = maxAbsDiff(saved, original());
      if (method !== 'filter') {
        // Judged as saved: the result is the 8-bit file.
        expect(report.success_saved).toBe(report.success);
        expect(report.saved.index).toBe(report.after.index);
        expect(report.norms.linf_pixels).toBe(linf);
      }
      if (['fgsm', 'bim', 'pgd', 'mifgsm', 'apgd-ce', 'apgd-dlr', 'square', 'autoattack'].includes(method)) {
        expect(linf).toBeLessThanOrEqual(4);
        expect(linf).toBeGreaterThan(0);
      }
      console.log(`${method}: ${report.before.label} → ${report.saved.label} (success as saved: ${report.success_saved}), L∞ ${linf}, L2 ${report.norms.l2_pixels.toFixed(1)} grey levels`);
    });
  }

  it('a targeted PGD with enough budget succeeds on the saved 8-bit image, within its eps', () => {
    const out = join(tmp(), 'out');
    const target = join(data, '0.png');
    const report = JSON.parse(ok('attack', target, '--model', file, '--method', 'pgd', '--target', 'dog', '--eps', '32', '--out', out, '--json'));
    expect(report.before.label).toBe('cat');
    expect(report.success_saved).toBe(true);
    expect(report.saved.label).toBe('dog');
    const saved = decodeImage(new Uint8Array(readFileSync(join(out, 'adversarial.png'))), 'adversarial.png').data;
    expect(maxAbsDiff(saved, modelPixels(target))).toBeLessThanOrEqual(32);
    const tfjs = reference(saved, preprocess);
    expect(tf.argMax(tf.tensor1d(tfjs.probabilities)).dataSync()[0]).toBe(1);
  });

  it('says once that attacks work on the logits before the softmax, for one image and for a batch', () => {
    const note = 'note: the model ends in a softmax: attacks work on the logits before it\n';
    const count = (s: string) => s.split(note).length - 1;
    expect(count(ok('attack', image, '--model', file, '--method', 'fgsm', '--out', join(tmp(), 'out'), '--quiet'))).toBe(1);
    const out = join(tmp(), 'out');
    expect(count(ok('attack', data, '--model', file, '--method', 'fgsm', '--eps', '4', '--out', out, '--workers', '1'))).toBe(1);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary.note).toBe(note.slice('note: '.length, -1));
    const contact = decodeImage(new Uint8Array(readFileSync(join(out, 'contact.png'))), 'contact.png');
    expect(colourful(contact.data)).toBeGreaterThan(10_000);
    // A model that ends in logits says nothing of the kind.
    const logitsModel = readModel(readFileSync(file), 'imagenet.safetensors');
    const last = logitsModel.architecture.layers[logitsModel.architecture.layers.length - 1];
    if (last.type === 'dense') last.activation = 'none';
    const plain = join(dir, 'logits.safetensors');
    writeFileSync(plain, writeModel(logitsModel));
    const quiet = ok('attack', image, '--model', plain, '--method', 'fgsm', '--out', join(tmp(), 'out'), '--json');
    expect(JSON.parse(quiet).note).toBeUndefined();
  });

  it("the tutorial's two steps run on it, and say it too", () => {
    const out = join(tmp(), 'out');
    const stdout = ok('tutorial', image, '--model', file, '--out', out);
    expect(stdout.split('note: the model ends in a softmax').length - 1).toBe(1);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.note).toMatch(/softmax/);
    expect(report.iterations).toBe(2000);
    // Step 1 reaches the target (the first label other than the class), as the tutorial's does.
    expect(report.before.label).toBe('dog');
    expect(report.target).toBe('cat');
    expect(report.steps[0].after.label).toBe('cat');
    expect(pngHeader(new Uint8Array(readFileSync(join(out, 'adversarial.png'))))).toEqual({ width: SIDE, height: SIDE, colourType: 2 });
    const before = reference(original(), preprocess);
    expect(relativeError(report.before.logits, before.logits)).toBeLessThan(1e-4);
  });
});

describe('eval on a folder of RGB pictures', () => {
  it("accuracy and confusion as TensorFlow.js's classes give them, under attack, and the same on two workers", () => {
    const { file, preprocess } = MODELS.imagenet;
    const pixels = new Uint8Array(TRUTH.length * SIDE * SIDE * 3);
    TRUTH.forEach((_, i) => pixels.set(modelPixels(join(data, `${i}.png`)), i * SIDE * SIDE * 3));
    const probabilities = reference(pixels, preprocess).probabilities;
    const predicted = TRUTH.map((_, i) => tf.argMax(tf.tensor1d(probabilities.subarray(3 * i, 3 * i + 3))).dataSync()[0]);
    const right = predicted.filter((p, i) => LABELS[p] === TRUTH[i]).length;
    expect(right).toBeGreaterThan(0);
    expect(right).toBeLessThan(TRUTH.length);
    const report = JSON.parse(ok('eval', data, '--model', file, '--json'));
    expect(report.images).toBe(TRUTH.length);
    expect(report.accuracy).toBe(right / TRUTH.length);
    expect(report.confusion).toEqual(LABELS.map((_, t) => LABELS.map((_, p) => predicted.filter((q, i) => TRUTH[i] === LABELS[t] && q === p).length)));

    const robustness = (workers: string) => {
      const out = join(tmp(), 'out');
      const r = withoutTimes(ok('eval', data, '--model', file, '--attack', 'pgd', '--eps', '0,2,8,32', '--out', out, '--workers', workers, '--json'));
      expect(pngHeader(new Uint8Array(readFileSync(join(out, 'robustness.png')))).width).toBeGreaterThan(0);
      expect(withoutTimes(readFileSync(join(out, 'robustness.json'), 'utf8'))).toEqual(r);
      return r;
    };
    const one = robustness('1');
    expect(one.note).toBe('the model ends in a softmax: attacks work on the logits before it');
    const accuracies = one.points.map((p: { accuracy: number }) => p.accuracy);
    console.log(`eval: clean accuracy ${right} of ${TRUTH.length}; under PGD at eps 0, 2, 8, 32: ${accuracies.join(', ')}`);
    expect(accuracies[0]).toBe(right / TRUTH.length);
    // Right under attack: right before, and not moved by the library's PGD on the same inputs.
    const model = readModel(readFileSync(file), 'imagenet.safetensors');
    const mark = engine.mark();
    const net = new Net(engine, model);
    const inputs = TRUTH.map((_, i) => readModelInput(join(data, `${i}.png`), model.architecture));
    [2, 8, 32].forEach((eps, k) => {
      const results = runAttack(net, inputs, { method: 'pgd', eps });
      expect(accuracies[k + 1], `eps ${eps}`).toBe(results.filter((r, i) => LABELS[r.before.index] === TRUTH[i] && !r.success).length / TRUTH.length);
    });
    engine.release(mark);
    accuracies.slice(1).forEach((a: number, i: number) => expect(a).toBeLessThanOrEqual(accuracies[i]));
    expect(accuracies[accuracies.length - 1]).toBe(0);
    expect(robustness('2')).toEqual(one);
  });

  it('a gray picture takes all three channels of an RGB model, as the same picture read from a file', () => {
    const architecture = readModel(readFileSync(MODELS.imagenet.file), 'imagenet.safetensors').architecture;
    const gray = toGray(picture(7, 40, 36));
    expect(imageToInput(gray, architecture)).toEqual(imageToInput(decodeImage(encodePng(gray), 'gray.png'), architecture));
  });

  it('a batch attack on two workers gives what one thread gives', () => {
    const run = (workers: string) => {
      const out = join(tmp(), 'out');
      ok('attack', data, '--model', MODELS.imagenet.file, '--method', 'pgd', '--eps', '4', '--out', out, '--workers', workers, '--quiet');
      const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
      return { ...summary, ms: undefined, summary: { ...summary.summary, ms: undefined }, results: summary.results.map((r: object) => ({ ...r, ms: undefined })) };
    };
    const one = run('1');
    expect(one.summary.success).toBeGreaterThan(0);
    expect(run('2')).toEqual(one);
  });
});

describe('fine-tuning an imported model', () => {
  it('train --model --data: a few steps lower the loss, change every weight, and keep the architecture; two workers agree', () => {
    const { file } = MODELS.imagenet;
    const train = (workers: string) => {
      const out = join(tmp(), 'tuned.safetensors');
      const log = JSON.parse(ok('train', '--model', file, '--data', data, '--epochs', '6', '--batch', '6', '--lr', '0.01', '--workers', workers, '--out', out, '--json'));
      return { log, tuned: readModel(readFileSync(out), 'tuned.safetensors') };
    };
    const { log, tuned } = train('1');
    const losses = log.history.map((h: { loss: number }) => h.loss);
    console.log(`train: loss per epoch ${losses.map((l: number) => l.toFixed(4)).join(', ')}`);
    expect(log.train).toBe(TRUTH.length);
    expect(losses[losses.length - 1]).toBeLessThan(0.8 * losses[0]);
    const start = readModel(readFileSync(file), 'imagenet.safetensors');
    expect(tuned.architecture).toEqual(start.architecture);
    for (const [key, w] of start.weights) expect(maxAbsDiff(tuned.weights.get(key)!, w), key).toBeGreaterThan(1e-4);
    const split = train('2').tuned;
    for (const [key, w] of tuned.weights) expect(relativeError(split.weights.get(key)!, w), key).toBeLessThan(1e-4);
  });

  it('the gradient of every weight, affine and depthwise included, matches the loss by central differences', () => {
    const model = readModel(readFileSync(MODELS.imagenet.file), 'imagenet.safetensors');
    const set = { inputs: new Float32Array(TRUTH.length * SIDE * SIDE * 3), labels: Uint8Array.from(TRUTH, (l) => LABELS.indexOf(l)) };
    const { offset, scale } = units();
    TRUTH.forEach((_, i) => set.inputs.set(Array.from(modelPixels(join(data, `${i}.png`)), (p) => (p - offset) / scale), i * SIDE * SIDE * 3));
    const mark = engine.mark();
    const gradients = new BatchGradients(engine, model, TRUTH.length);
    const order = Uint32Array.from(TRUTH, (_, i) => i);
    const loss = () => gradients.compute(set, order, 0).loss;
    loss();
    const names = [...gradients.net.params.keys()];
    const grads = gradients.params.map((p) => p.grad!.toArray());
    names.forEach((name, k) => {
      // Along the gradient g: (L(w + h·g) − L(w − h·g)) / 2h ≈ |g|².
      const p = gradients.params[k], w = p.toArray(), g = grads[k];
      const norm2 = g.reduce((s, v) => s + v * v, 0);
      expect(norm2, name).toBeGreaterThan(0);
      const h = 1e-2 / Math.sqrt(norm2);
      p.write(w.map((v, i) => v + h * g[i]));
      const up = loss();
      p.write(w.map((v, i) => v - h * g[i]));
      const down = loss();
      p.write(w);
      const slope = (up - down) / (2 * h);
      record('gradient (central differences)', Math.abs(slope - norm2) / norm2);
      expect(Math.abs(slope - norm2) / norm2, name).toBeLessThan(2e-2);
    });
    const layers = model.architecture.layers.filter((l) => l.type === 'affine' || l.type === 'depthwise_conv2d');
    expect(layers).toHaveLength(2);
    expect(names).toEqual(expect.arrayContaining(layers.flatMap((l) => [`${l.name}.w`, `${l.name}.b`])));
    expect(names).toHaveLength(model.weights.size);
    engine.release(mark);
  });

  it('refuses generated faces for a model whose labels are not theirs', () => {
    const r = mislead('train', '--model', MODELS.imagenet.file, '--out', join(tmp(), 'x.safetensors'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/generated faces are labelled man and woman, the model's labels are cat, dog, bird: give --data DIR\n$/);
  });
});
