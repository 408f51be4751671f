// face-api.js's age and gender network, imported from the weights @vladmandic/face-api ships, against
// face-api itself: its own AgeGenderNet, loaded from the same folder and run by its Node build
// without tfjs-node (face-api.node-wasm.js, on TensorFlow.js 4.22 as its bundle is, CPU backend).
// Gender probabilities from its predictAgeAndGender, and input gradients of its own forward pass
// (NetInput → TinyXception → fc/gender: all tf ops, differentiable) under tf.grad. The pictures
// are 112×112, square: face-api neither pads nor resizes them.
import type * as tfjs from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../src/core/engine.js';
import { Net, softmax } from '../src/core/net.js';
import { dot } from '../src/core/ops.js';
import { random } from '../src/core/random.js';
import { Tape } from '../src/core/tape.js';
import { FACEAPI_MANIFEST, importFaceApi } from '../src/formats/faceapi.js';
import { decodeImage, resize, toRgb } from '../src/formats/image.js';
import { inputUnits, readModel, writeModel, type Model } from '../src/formats/model.js';
import { loadEngine } from '../src/node/engine.js';
import { relativeError } from './helpers.js';
import { ageGenderNet as net, loadFaceApi, manProbability, MODEL_DIR, NetInput, tf } from './support/faceapi.js';
import { picture } from './support/tfjs-model.js';

const SIDE = 112;
const SAMPLES = resolve(import.meta.dirname, '../weights/samples');

let engine: Engine;
let imported: Model;
const measured: string[] = [];
beforeAll(async () => {
  await loadFaceApi();
  engine = await loadEngine();
  imported = importFaceApi(JSON.parse(readFileSync(join(MODEL_DIR, FACEAPI_MANIFEST), 'utf8')), (path) => new Uint8Array(readFileSync(join(MODEL_DIR, path))), FACEAPI_MANIFEST);
});
afterAll(() => console.log(`face-api's age and gender network, imported, against face-api (TF.js CPU):\n${measured.join('\n')}`));

/** 112×112 RGB pictures, 0..255: uniform noise, colour ramps with a disc, flat grey, the extremes,
 *  and the project's sample faces (48×48 grey) resized. */
function pictures(): { name: string; pixels: Float32Array }[] {
  const rand = random(7);
  const noise = (i: number) => ({ name: `noise ${i}`, pixels: Float32Array.from({ length: SIDE * SIDE * 3 }, () => Math.round(rand() * 255)) });
  const flat = (v: number) => ({ name: `flat ${v}`, pixels: new Float32Array(SIDE * SIDE * 3).fill(v) });
  const sample = (file: string) => ({ name: file, pixels: Float32Array.from(resize(toRgb(decodeImage(readFileSync(join(SAMPLES, file)), file)), SIDE, SIDE).data) });
  return [
    noise(0), noise(1),
    ...[11, 12].map((seed) => ({ name: `ramps ${seed}`, pixels: Float32Array.from(picture(seed, SIDE, SIDE).data) })),
    flat(0), flat(128), flat(255),
    sample('man.png'), sample('woman.png'), sample('man-2.png'), sample('woman-2.png'),
  ];
}

/** Logits [n, 2] and, for weights g [n, 2], the gradient of Σ g·logits to the pixels. */
function ours(pixels: Float32Array[], g?: Float32Array): { logits: Float32Array; grad?: Float32Array } {
  const n = pixels.length;
  const network = new Net(engine, imported);
  const tape = new Tape(engine);
  const { offset, scale } = inputUnits(imported.architecture);
  const flat = new Float32Array(n * SIDE * SIDE * 3);
  pixels.forEach((p, i) => flat.set(p.map((v) => (v - offset) / scale), i * p.length));
  const x = engine.tensor([n, SIDE, SIDE, 3], flat);
  if (g) x.requireGrad();
  const logits = network.forward(tape, x);
  if (g) tape.backward(dot(tape, logits, engine.tensor(logits.shape, g)));
  const result = { logits: logits.toArray(), grad: g ? x.grad!.toArray().map((v) => v / scale) : undefined };
  tape.dispose();
  return result;
}

/** face-api's gender logits of a batch [n, 112, 112, 3] of pixels, by its own code. */
function theirLogits(batch: tfjs.Tensor4D): tfjs.Tensor2D {
  const faces = tf.unstack(batch) as tfjs.Tensor3D[];
  return net.runNet(new NetInput(faces)).gender;
}

describe("face-api's age and gender network", () => {
  it('is imported as its gender head: man, woman from 112×112 RGB, face-api\'s normalisation', () => {
    const { architecture } = imported;
    expect(architecture.labels).toEqual(['man', 'woman']);
    expect(architecture.input).toEqual([SIDE, SIDE, 3]);
    expect(architecture.preprocess).toEqual({ offset: [122.782, 117.001, 104.298], scale: 255, resize: 'face-api' });
    expect(readModel(writeModel(imported), 'gender.safetensors').weights.size).toBe(imported.weights.size);
  });

  it("gives face-api's gender probabilities (predictAgeAndGender) to 1e-4", { timeout: 240_000 }, async () => {
    const all = pictures();
    const got = ours(all.map((p) => p.pixels)).logits;
    const faces = all.map((p) => tf.tensor3d(p.pixels, [SIDE, SIDE, 3]));
    const predicted = await net.predictAgeAndGender(faces);
    faces.forEach((t) => t.dispose());
    let worst = 0;
    all.forEach(({ name }, i) => {
      const [man, woman] = softmax(got.subarray(i * 2, i * 2 + 2));
      const theirs = manProbability(predicted[i]);
      const error = Math.abs(man - theirs);
      worst = Math.max(worst, error);
      expect(error, `${name}: P(man) ${man} against face-api's ${theirs}`).toBeLessThanOrEqual(1e-4);
      expect(man > woman ? 'male' : 'female', name).toBe(predicted[i].gender);
    });
    // The faces are told apart, and the pictures do not all give one answer.
    expect(new Set(predicted.map((p) => p.gender)).size).toBe(2);
    measured.push(`  P(man) on ${all.length} pictures: worst absolute difference ${worst.toExponential(1)}`);
  });

  // TF.js's CPU backend takes seconds for each: one test per pair of pictures, so that the runner
  // hears from the worker between them. man.png is left out here: on it, one input of main block
  // 1's first ReLU lies within float32 rounding of 0 (−7e-7 here, +2e-7 in TF.js, among values up
  // to 20), so one path of the gradient is taken by one side only, 0.5 % of the input gradient's
  // scale, as between any two float32 implementations.
  const pairs = [['noise 0', 'ramps 11'], ['flat 128', 'man-2.png'], ['ramps 12', 'woman-2.png'], ['noise 1', 'woman.png']];
  it.each(pairs)("gives face-api's logits on %s and %s, and their input gradients under tf.grad, to 1e-4 and 1e-3", (...names) => {
    const chosen = names.map((name) => pictures().find((p) => p.name === name)!);
    const n = chosen.length;
    const rand = random(names.join().length);
    const g = Float32Array.from({ length: n * 2 }, () => rand() * 2 - 1);
    const got = ours(chosen.map((p) => p.pixels), g);
    const flat = new Float32Array(n * SIDE * SIDE * 3);
    chosen.forEach((p, i) => flat.set(p.pixels, i * p.pixels.length));
    const x = tf.tensor4d(flat, [n, SIDE, SIDE, 3]);
    const weights = tf.tensor2d(g, [n, 2]);
    const logits = theirLogits(x);
    const grad = tf.grad((input) => tf.sum(tf.mul(theirLogits(input as tfjs.Tensor4D), weights)))(x);
    const errors = { logits: relativeError(got.logits, logits.dataSync()), grad: relativeError(got.grad!, grad.dataSync()) };
    tf.dispose([x, weights, logits, grad]);
    measured.push(`  ${names.join(', ')}: logits ${errors.logits.toExponential(1)}, input gradient ${errors.grad.toExponential(1)}`);
    expect(errors.logits).toBeLessThanOrEqual(1e-4);
    expect(errors.grad).toBeLessThanOrEqual(1e-3);
  }, 240_000);
});

/** The built command line, as a user runs it. */
function mislead(args: string[], cwd?: string) {
  const r = spawnSync(process.execPath, [resolve(import.meta.dirname, '../dist/cli/main.js'), ...args], { encoding: 'utf8', cwd });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('mislead import-faceapi', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mislead-faceapi-'));
  const refused = (args: string[], message: RegExp) => {
    const r = mislead(['import-faceapi', ...args]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
  };

  it('converts the installed model folder (the default) into a model file that loads and predict reads', () => {
    const out = join(dir, 'gender.safetensors');
    const done = mislead(['import-faceapi', '--out', out]);
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toMatch(/input 112×112×3, labels man, woman; its final softmax is left out/);
    expect(writeModel(readModel(readFileSync(out), out))).toEqual(writeModel(imported));
    expect(mislead(['import-faceapi', MODEL_DIR, '--out', out]).stderr).toMatch(/^mislead: .*gender\.safetensors: already exists; pass --force/);
    expect(mislead(['import-faceapi', MODEL_DIR, '--out', out, '--force']).code).toBe(0);

    const predicted = mislead(['predict', join(SAMPLES, 'man-2.png'), join(SAMPLES, 'woman-2.png'), '--model', out, '--json']);
    expect(predicted.code, predicted.stderr).toBe(0);
    expect((JSON.parse(predicted.stdout) as { label: string }[]).map((p) => p.label)).toEqual(['man', 'woman']);
  });

  it('refuses a bad folder, a missing manifest and a corrupt weight file in one line, exit 2', () => {
    const out = join(dir, 'refused.safetensors');
    refused([join(dir, 'nowhere'), '--out', out], /^mislead: .*nowhere: no such folder/);
    writeFileSync(join(dir, 'file'), 'x');
    refused([join(dir, 'file'), '--out', out], /^mislead: .*file: not a folder/);
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    refused([empty, '--out', out], new RegExp(`^mislead: .*empty: no ${FACEAPI_MANIFEST}`));
    refused([MODEL_DIR], /^mislead: import-faceapi needs --out FILE\n$/);

    const copy = (name: string, edit: (bin: Uint8Array, manifest: string) => [Uint8Array, string]) => {
      const folder = join(dir, name);
      mkdirSync(folder);
      const [bin, manifest] = edit(new Uint8Array(readFileSync(join(MODEL_DIR, 'age_gender_model.bin'))), readFileSync(join(MODEL_DIR, FACEAPI_MANIFEST), 'utf8'));
      writeFileSync(join(folder, 'age_gender_model.bin'), bin);
      writeFileSync(join(folder, FACEAPI_MANIFEST), manifest);
      return folder;
    };
    refused([copy('short', (bin, m) => [bin.subarray(0, 1000), m]), '--out', out], /^mislead: .*: the weight files hold 1000 bytes, too few for weight "/);
    refused([copy('long', (bin, m) => [new Uint8Array([...bin, 0]), m]), '--out', out], /^mislead: .*age_gender_model\.bin: 429709 bytes is too large for a weight file of /);
    refused([copy('not-json', (bin, m) => [bin, m.slice(0, 100)]), '--out', out], /^mislead: .*: not a JSON file/);
    refused([copy('renamed', (bin, m) => [bin, m.replace('fc/gender/weights', 'fc/sex/weights')]), '--out', out], /^mislead: .*: not face-api's age and gender model: no weight "fc\/gender\/weights"/);
    refused([copy('reshaped', (bin, m) => [bin, m.replace('[1,1,32,64]', '[1,1,64,32]')]), '--out', out], /^mislead: .*separable_conv0.* has shape/);
    copyFileSync(join(MODEL_DIR, FACEAPI_MANIFEST), join(empty, FACEAPI_MANIFEST));
    refused([empty, '--out', out], /^mislead: .*age_gender_model\.bin: cannot read a weight file/);
  });
});
