// The attack suite (src/attacks.ts): each method's defining property, on small random networks
// (He-scaled weights, so that perturbations of a few grey levels matter), in batches. The last
// test compares the methods on generated faces with the shipped default model (or another:
// MISLEAD_FACE_MODEL=path/to/model.safetensors).
import { existsSync, readFileSync } from 'node:fs';
import { GCProfiler } from 'node:v8';
import { beforeAll, describe, expect, it } from 'vitest';
import { argmax, predictLogits, Net } from '../src/core/net.js';
import { DEFAULT_MODEL } from '../src/node/files.js';
import { FilterAttack, METHODS, nothingToDo, readOptions, resolveOptions, runAttack, startAttack, summarize, type AttackOptions, type AttackResult, type ProgressInfo } from '../src/attacks/index.js';
import type { Engine } from '../src/core/engine.js';
import { InputError } from '../src/errors.js';
import { decodeImage, encodePng } from '../src/formats/image.js';
import { checkArchitecture, inputUnits, readModel, type Architecture, type Model } from '../src/formats/model.js';
import { loadEngine } from '../src/node/engine.js';
import { crossEntropy } from '../src/core/ops.js';
import { imageToInput, inputToImage } from '../src/formats/preprocess.js';
import { generateFaces } from '../src/train/dataset.js';
import { facesToSet } from '../src/train/train.js';
import { Tape } from '../src/core/tape.js';
import { heRange, randomImages, randomModel } from './helpers.js';

let engine: Engine;
beforeAll(async () => {
  engine = await loadEngine();
});

const MODELS: Record<string, Architecture> = {
  gray: checkArchitecture({
    input: [8, 8, 1], labels: ['a', 'b'], preprocess: { offset: 128, scale: 256 },
    layers: [
      { type: 'conv2d', name: 'c1', filters: 8, kernel: 3, padding: 'same', activation: 'relu' },
      { type: 'conv2d', name: 'c2', filters: 8, kernel: 3, padding: 'same', activation: 'relu' },
      { type: 'flatten' },
      { type: 'dense', name: 'd1', units: 16, activation: 'relu' },
      { type: 'dense', name: 'd2', units: 2 },
    ],
  }),
  // Four classes, three channels, a stride, and the box [0, 1].
  rgb: checkArchitecture({
    input: [9, 7, 3], labels: ['a', 'b', 'c', 'd'], preprocess: { offset: 0, scale: 255 },
    layers: [
      { type: 'conv2d', name: 'c1', filters: 6, kernel: 4, stride: 2, padding: 'same', activation: 'relu' },
      { type: 'maxpool', size: 2, stride: 1, padding: 'valid' },
      { type: 'flatten' },
      { type: 'dense', name: 'd1', units: 12, activation: 'relu' },
      { type: 'dense', name: 'd2', units: 4 },
    ],
  }),
  // A negative scale: pixel 0 is model input +1, pixel 255 is −1.
  negative: checkArchitecture({
    input: [6, 6, 1], labels: ['a', 'b', 'c'], preprocess: { offset: 127.5, scale: -127.5 },
    layers: [
      { type: 'conv2d', name: 'c1', filters: 4, kernel: 3, padding: 'valid', activation: 'relu' },
      { type: 'flatten' },
      { type: 'dense', name: 'd1', units: 3 },
    ],
  }),
};

/** He-like weights (amp 2 is He's scale; 4 by default, so that a few grey levels matter). */
const heModel = (architecture: Architecture, seed: number, amp = 4): Model => randomModel(architecture, seed, heRange(amp));

const images = randomImages;

/** 0..255 values of model inputs (exact integers for images on the 8-bit grid). */
function pixels(x: Float32Array, arch: Architecture): number[] {
  const { offset, scale: s } = inputUnits(arch);
  return Array.from(x, (v) => v * s + offset);
}

const onGrid = (p: number[]) => p.every((v) => Math.abs(v - Math.round(v)) < 1e-3);
const box = (arch: Architecture) => {
  const { offset, scale: s } = inputUnits(arch);
  const a = (0 - offset) / s, b = (255 - offset) / s;
  return { lo: Math.min(a, b), hi: Math.max(a, b), unit: 1 / Math.abs(s) };
};

/** ∇ₓ of −log softmax(f(x))[label], for one image on a tape of its own. */
function crossEntropyGradient(net: Net, x: Float32Array, label: number): Float32Array {
  const tape = new Tape(engine);
  const xt = engine.tensor([1, ...net.architecture.input], x).requireGrad();
  const logits = net.forward(tape, xt);
  const y = engine.tensor([1, net.architecture.labels.length]);
  y.write(net.architecture.labels.map((_, k) => (k === label ? 1 : 0)));
  tape.backward(crossEntropy(tape, logits, y));
  const g = xt.grad!.toArray();
  tape.dispose();
  return g;
}

function success(results: AttackResult[]): number {
  return results.filter((r) => r.success).length / results.length;
}

describe('FGSM', () => {
  for (const [name, arch] of Object.entries(MODELS)) {
    for (const target of [undefined, 1]) {
      it(`${name} model, ${target === undefined ? 'untargeted' : 'targeted'}: every pixel moves by exactly eps·sign(∇) grey levels, then is clipped to 0..255`, () => {
        const net = new Net(engine, heModel(arch, 3));
        const xs = images(arch, 6, 7);
        const eps = 8;
        const results = runAttack(net, xs, { method: 'fgsm', eps, target });
        const { lo, hi } = box(arch);
        let clipped = 0, wrong = 0;
        results.forEach((r, i) => {
          if (r.before.index === target) {
            // Already of the target class: nothing to do, unchanged, not a success.
            expect(r.adversarial).toEqual(xs[i]);
            expect([r.iterations, r.gradients, r.success, r.skipped]).toEqual([0, 0, false, true]);
            return;
          }
          expect(r.skipped).toBe(false);
          // Untargeted raises the original class's cross-entropy, targeted lowers the target's;
          // a pixel's direction in grey levels is the model-unit direction times sign(scale).
          const g = crossEntropyGradient(net, xs[i], target ?? r.before.index);
          const direction = (target === undefined ? 1 : -1) * Math.sign(inputUnits(arch).scale);
          const p0 = pixels(xs[i], arch), p = pixels(r.adversarial, arch);
          for (let j = 0; j < p.length; j++) {
            const step = p0[j] + direction * Math.sign(g[j]) * eps;
            const want = Math.min(255, Math.max(0, step));
            if (want !== step) clipped++;
            if (Math.abs(p[j] - want) > 1e-3) wrong++;
            if (r.adversarial[j] < lo || r.adversarial[j] > hi) wrong++;
          }
          expect(r.iterations).toBe(1);
          expect(r.gradients).toBe(1);
          expect(r.norms.linf_pixels).toBe(eps);
        });
        expect(wrong).toBe(0);
        expect(clipped).toBeGreaterThan(0);
      });
    }
  }

  it('L2: the step is eps·∇/‖∇‖₂ (in float, away from the box)', () => {
    const arch = MODELS.rgb;
    const net = new Net(engine, heModel(arch, 4));
    const xs = images(arch, 4, 8).map((x) => x.map((v) => 0.25 + v / 2)); // grey levels 64..191
    const eps = 20;
    const results = runAttack(net, xs, { method: 'fgsm', norm: 'l2', eps, quantize: false });
    results.forEach((r, i) => {
      const g = crossEntropyGradient(net, xs[i], r.before.index);
      const norm = Math.sqrt(g.reduce((s, v) => s + v * v, 0));
      const unit = box(arch).unit;
      let worst = 0;
      for (let j = 0; j < g.length; j++) worst = Math.max(worst, Math.abs(r.perturbation[j] - ((eps * unit) * g[j]) / norm));
      expect(worst).toBeLessThan(1e-6);
      expect(r.norms.l2_pixels).toBeCloseTo(eps, 3);
    });
  });
});

describe('BIM, PGD and MI-FGSM', () => {
  for (const norm of ['linf', 'l2'] as const) {
    for (const method of ['bim', 'pgd', 'mifgsm'] as const) {
      it(`${method} ${norm}: every iterate of every image stays in the ball and the box, over several models and seeds`, () => {
        // Non-integer budgets, and steps of half the budget, so that the projection binds.
        const eps = norm === 'linf' ? 2.5 : 20.5;
        let reached = 0;
        for (const [seed, arch] of Object.values(MODELS).entries()) {
          const net = new Net(engine, heModel(arch, 10 + seed));
          const { lo, hi, unit } = box(arch);
          let calls = 0;
          const check = (_done: number, _total: number, info: ProgressInfo) => {
            calls++;
            const size = info.x.length / info.images;
            for (let i = 0; i < info.images; i++) {
              let sq = 0, max = 0;
              for (let j = i * size; j < (i + 1) * size; j++) {
                const d = Math.abs(info.x[j] - info.original[j]);
                sq += d * d;
                max = Math.max(max, d);
                if (!(info.x[j] >= lo && info.x[j] <= hi)) expect.fail(`left the box: ${info.x[j]}`);
              }
              const distance = norm === 'linf' ? max : Math.sqrt(sq);
              if (distance > eps * unit * (1 + 1e-5)) expect.fail(`left the ball: ${distance / unit} > ${eps} grey levels`);
              reached = Math.max(reached, distance / unit / eps);
            }
          };
          const options: AttackOptions = { method, norm, eps, step: eps / 2, iterations: 6, earlyStop: false, ...(method === 'pgd' ? { restarts: 2, seed } : {}) };
          const xs = images(arch, 5, seed);
          const results = runAttack(net, xs, options, { onProgress: check });
          expect(calls).toBeGreaterThanOrEqual(7);
          // The 8-bit results, in integer grey levels.
          for (const [i, r] of results.entries()) {
            const p0 = pixels(xs[i], arch), p = pixels(r.adversarial, arch);
            expect(onGrid(p)).toBe(true);
            const d = p.map((v, j) => Math.round(v) - Math.round(p0[j]));
            if (norm === 'linf') expect(Math.max(...d.map(Math.abs))).toBeLessThanOrEqual(Math.floor(eps));
            else expect(d.reduce((s, v) => s + v * v, 0)).toBeLessThanOrEqual(eps * eps);
            expect(Math.min(...p)).toBeGreaterThanOrEqual(0);
            expect(Math.max(...p)).toBeLessThanOrEqual(255);
          }
        }
        expect(reached).toBeGreaterThan(0.99); // the ball was reached, so the check meant something
      });
    }
  }

  it('iterating finds at least the loss of one step: BIM ends with a cross-entropy ≥ FGSM’s on every image', () => {
    const arch = MODELS.gray;
    const net = new Net(engine, heModel(arch, 2));
    const xs = images(arch, 16, 3);
    const ce = (l: number[], y: number) => {
      const m = Math.max(...l);
      return m + Math.log(l.reduce((s, v) => s + Math.exp(v - m), 0)) - l[y];
    };
    const fgsm = runAttack(net, xs, { method: 'fgsm', eps: 4, quantize: false });
    const bim = runAttack(net, xs, { method: 'bim', eps: 4, earlyStop: false, quantize: false });
    fgsm.forEach((f, i) => expect(ce(bim[i].after.logits, f.before.index)).toBeGreaterThanOrEqual(ce(f.after.logits, f.before.index) - 1e-4));
  });

  it('PGD starts from a random point of the ball, different for each seed, and a restart goes on only for images not yet fooled', () => {
    const arch = MODELS.gray;
    const net = new Net(engine, heModel(arch, 2));
    const xs = images(arch, 8, 4);
    const first = (seed: number) => {
      let x: Float32Array | undefined;
      runAttack(net, xs, { method: 'pgd', eps: 4, seed, iterations: 3 }, { onProgress: (_d, _t, info) => void (x ??= info.x.slice()) });
      return x!;
    };
    expect(first(1)).not.toEqual(first(2));
    expect(first(1)).toEqual(first(1));
    const results = runAttack(net, xs, { method: 'pgd', eps: 3, iterations: 5, restarts: 3 });
    for (const r of results) {
      if (r.success) expect(r.iterations).toBeLessThanOrEqual(15);
      else expect(r.iterations).toBe(15);
    }
    expect(results.some((r) => !r.success)).toBe(true);
  });
});

describe('Carlini–Wagner L2', () => {
  it('lowers its loss in every binary-search step, stays in the box through tanh, and fools every image', () => {
    const arch = MODELS.gray;
    const net = new Net(engine, heModel(arch, 2));
    const { lo, hi } = box(arch);
    const xs = images(arch, 8, 102);
    const rounds: Float32Array[][] = [];
    let outside = 0;
    const results = runAttack(net, xs, { method: 'cw', steps: 50, binarySteps: 4, abortEarly: false }, {
      onProgress: (_d, _t, info) => {
        (rounds[info.round] ??= []).push(info.loss.slice());
        outside += info.x.filter((v) => !(v >= lo && v <= hi)).length;
      },
    });
    expect(outside).toBe(0);
    expect(rounds.length).toBe(4);
    for (const losses of rounds) {
      const first = losses[0], last = losses[losses.length - 1];
      for (let i = 0; i < xs.length; i++) expect(last[i]).toBeLessThan(first[i]);
    }
    expect(success(results)).toBe(1);
    for (const r of results) expect(r.iterations).toBe(200);
  });
});

describe('DeepFool', () => {
  it('stops just past the boundary: along the perturbation, the class changes in its last few per cent', () => {
    for (const [seed, arch] of Object.values(MODELS).entries()) {
      const net = new Net(engine, heModel(arch, 20 + seed));
      const xs = images(arch, 6, seed);
      const results = runAttack(net, xs, { method: 'deepfool', quantize: false });
      for (const [i, r] of results.entries()) {
        expect(r.success).toBe(true);
        // Bisection for the first fraction s of the perturbation that changes the class.
        let a = 0, b = 1;
        for (let k = 0; k < 24; k++) {
          const s = (a + b) / 2;
          const z = predictLogits(net, [xs[i].map((v, j) => v + s * r.perturbation[j])])[0];
          if (z.indexOf(Math.max(...z)) !== r.before.index) b = s;
          else a = s;
        }
        expect(b).toBeGreaterThan(0.9);
      }
    }
  });
});

describe('targeted attacks', () => {
  const arch = MODELS.rgb;
  const cases: AttackOptions[] = [
    { method: 'bim', eps: 48, step: 4 },
    { method: 'pgd', eps: 48, step: 4 },
    { method: 'mifgsm', eps: 48, iterations: 20 },
    { method: 'pgd', norm: 'l2', eps: 400, step: 40 },
    { method: 'cw', steps: 60 },
    { method: 'deepfool' },
  ];
  for (const options of cases) {
    it(`${options.method}${'norm' in options ? ` ${options.norm}` : ''} reaches the target`, () => {
      const net = new Net(engine, heModel(arch, 31));
      const xs = images(arch, 8, 32);
      const results = runAttack(net, xs, { ...options, target: 2 });
      for (const r of results) {
        expect(r.target).toBe(2);
        expect(r.after.index).toBe(2);
        // One already of class 2 is left alone: skipped, not a success.
        expect(r.success).toBe(r.before.index !== 2);
        expect(r.skipped).toBe(r.before.index === 2);
      }
      expect(results.some((r) => r.before.index !== 2)).toBe(true);
    });
  }

  // Every method that takes a target on this model (AutoAttack takes none: test/autoattack.test.ts).
  for (const method of METHODS.filter((m) => !m.refuses?.(arch.labels.length, true)).map((m) => m.id)) {
    it(`${method}: an image the model already gives the target is not attacked (skipped, unchanged, left out of the rates)`, () => {
      const net = new Net(engine, heModel(arch, 31));
      const xs = images(arch, 8, 32);
      const classes = predictLogits(net, xs).map((l) => argmax(l));
      const target = classes[0];
      const others = classes.filter((c) => c !== target).length;
      expect(others).toBeGreaterThan(0);
      const options = { method, target, iterations: 3, steps: 3 } as unknown as AttackOptions;
      for (const inputs of [xs, [xs[0]]]) {
        const results = runAttack(net, inputs, options);
        results.forEach((r, i) => {
          if (classes[i] !== target) return expect(r.skipped).toBe(false);
          expect(r.adversarial).toEqual(inputs[i]);
          expect(Array.from(r.perturbation).every((v) => v === 0)).toBe(true);
          expect(r.after).toEqual(r.before);
          expect([r.success, r.skipped, r.iterations, r.gradients, r.norms.linf_pixels, r.psnr, r.ssim]).toEqual([false, true, 0, 0, 0, Infinity, 1]);
        });
        const summary = summarize(results);
        expect(summary.skipped).toBe(results.filter((r) => r.skipped).length);
        if (inputs.length > 1) expect(summary.success).toBe(results.filter((r) => r.success).length / others);
      }
      expect(nothingToDo('cat')).toBe('already cat: nothing to do');
    });
  }
});

describe('success as saved: 8-bit images', () => {
  const cases: AttackOptions[] = [
    { method: 'fgsm', eps: 2.5 },
    { method: 'bim', eps: 2.5 },
    { method: 'pgd', eps: 2.5, restarts: 2 },
    { method: 'mifgsm', eps: 2.5 },
    { method: 'pgd', norm: 'l2', eps: 30.5 },
    { method: 'cw', steps: 40, binarySteps: 3 },
    { method: 'deepfool' },
  ];
  for (const options of cases) {
    it(`${options.method}${'norm' in options ? ` ${options.norm}` : ''}: the PNG written and read back classifies as reported, within the budget in integer grey levels`, () => {
      const arch = MODELS.gray;
      const net = new Net(engine, heModel(arch, 2));
      const xs = images(arch, 12, 5);
      const results = runAttack(net, xs, options);
      expect(results.some((r) => r.success)).toBe(true);
      for (const [i, r] of results.entries()) {
        const png = encodePng(inputToImage(r.adversarial, arch));
        const back = imageToInput(decodeImage(png, 'adversarial.png'), arch);
        expect(back).toEqual(r.adversarial);
        const logits = predictLogits(net, [back])[0];
        expect(Array.from(logits)).toEqual(r.after.logits);
        expect(r.success).toBe(options.target === undefined ? r.after.index !== r.before.index : r.after.index === options.target);
        const saved = inputToImage(r.adversarial, arch).data, original = inputToImage(xs[i], arch).data;
        const d = Array.from(saved, (v, j) => v - original[j]);
        const linf = Math.max(...d.map(Math.abs)), l2sq = d.reduce((s, v) => s + v * v, 0);
        if ('eps' in options && options.norm !== 'l2') expect(linf).toBeLessThanOrEqual(Math.floor(options.eps!));
        if ('eps' in options && options.norm === 'l2') expect(l2sq).toBeLessThanOrEqual(options.eps! ** 2);
        expect(r.norms.linf_pixels).toBe(linf);
        expect(r.norms.l2_pixels).toBeCloseTo(Math.sqrt(l2sq), 9);
        expect(r.norms.linf).toBeCloseTo(linf / 256, 12);
      }
    });
  }
});

describe('the filter method', () => {
  it('on one image is the tutorial\'s FilterAttack, bit for bit; in a batch, each image learns its own filter toward its own target', () => {
    const arch = MODELS.rgb;
    const net = new Net(engine, heModel(arch, 5));
    const xs = images(arch, 4, 9);
    const options = { method: 'filter', iterations: 30, lr: 0.05, beta: 0.5, quantize: false } as const;
    const alone = xs.map((x) => runAttack(net, [x], options)[0]);
    alone.forEach((r, i) => {
      const attack = new FilterAttack(net, xs[i], r.target!);
      attack.run({ iterations: 30, lr: 0.05, beta: 0.5 });
      const dx = attack.dx.toArray();
      expect(r.adversarial).toEqual(xs[i].map((v, j) => v + dx[j]));
      expect(r.after.logits).toEqual(Array.from(attack.logits.toArray()));
      attack.dispose();
      // Without --target, the first label that is not the image's class.
      expect(r.target).toBe(r.before.index === 0 ? 1 : 0);
      expect(r.iterations).toBe(30);
    });
    const together = runAttack(net, xs, options);
    together.forEach((r, i) => {
      let worst = 0;
      for (let j = 0; j < r.adversarial.length; j++) worst = Math.max(worst, Math.abs(r.adversarial[j] - alone[i].adversarial[j]));
      expect(worst).toBeLessThan(1e-6);
      expect(r.target).toBe(alone[i].target);
    });
  });

  it('judged as saved by default: the 8-bit image, clipped to the box; --clip keeps every step in the box', () => {
    const arch = MODELS.gray;
    const net = new Net(engine, heModel(arch, 6));
    const xs = images(arch, 3, 10);
    const { lo, hi } = box(arch);
    for (const r of runAttack(net, xs, { method: 'filter', iterations: 40, lr: 1 })) {
      expect(onGrid(pixels(r.adversarial, arch))).toBe(true);
      expect(Array.from(predictLogits(net, [r.adversarial])[0])).toEqual(r.after.logits);
      expect(r.success).toBe(r.after.index === r.target);
    }
    for (const r of runAttack(net, xs, { method: 'filter', iterations: 40, lr: 1, clip: true, quantize: false })) {
      expect(r.adversarial.every((v) => v >= lo - 1e-6 && v <= hi + 1e-6)).toBe(true);
    }
  });
});

describe('stepping', () => {
  it('step(k) in chunks gives the results of runAttack, counts iterations up to the total, and dispose() frees a run stopped halfway', () => {
    const arch = MODELS.rgb;
    const net = new Net(engine, heModel(arch, 12));
    const xs = images(arch, 5, 13);
    const used = engine.used;
    for (const options of [
      { method: 'pgd', eps: 3, restarts: 2, batchSize: 2 }, { method: 'cw', steps: 15, binarySteps: 3 }, { method: 'deepfool', batchSize: 3 },
      { method: 'filter', iterations: 25, batchSize: 2 }, { method: 'fgsm' },
    ] as AttackOptions[]) {
      const whole = runAttack(net, xs, options);
      const run = startAttack(net, xs, options);
      let done = 0;
      while (run.step(7)) {
        expect(run.done).toBeGreaterThanOrEqual(done);
        expect(run.done).toBeLessThanOrEqual(run.total);
        done = run.done;
      }
      expect(run.done).toBe(run.total);
      expect(run.results.map((r) => r.adversarial)).toEqual(whole.map((r) => r.adversarial));
      expect(run.results.map((r) => r.success)).toEqual(whole.map((r) => r.success));
      expect(engine.used).toBe(used);
      const stopped = startAttack(net, xs, options);
      expect(stopped.step(1)).toBe(true);
      expect(engine.used).toBeGreaterThan(used);
      stopped.dispose();
      expect(engine.used).toBe(used);
      expect(stopped.step()).toBe(false);
    }
  });
});

describe('the method registry', () => {
  it('describes every method fully: id, name, summary, paper, parameters with defaults or how they are derived, and in-range defaults', () => {
    expect(METHODS.map((m) => m.id)).toEqual(['filter', 'fgsm', 'bim', 'pgd', 'mifgsm', 'cw', 'deepfool', 'apgd-ce', 'apgd-dlr', 'apgd-t', 'square', 'autoattack']);
    for (const m of METHODS) {
      expect(m.name && m.summary && m.paper).toBeTruthy();
      const flags = new Set<string>();
      for (const p of m.parameters) {
        expect(p.default !== undefined || p.derived !== undefined, `${m.id}.${p.key}`).toBe(true);
        expect(p.flag, `${m.id}.${p.key} has a flag`).toMatch(/^[a-z][a-z0-9-]*$/);
        expect(flags.has(p.flag!), `${m.id}: flag --${p.flag} twice`).toBe(false);
        flags.add(p.flag!);
      }
      // The defaults pass the validator, and every planned count is a positive integer.
      const values = readOptions(m.id, m.parameters, {});
      const o = { ...m.resolve(values as never, {}) };
      expect(Number.isSafeInteger(m.planned(o as never)) && m.planned(o as never) > 0).toBe(true);
    }
  });
});

describe('batches', () => {
  it('give the same results as the images one at a time, and run as one batch through the engine', () => {
    const arch = MODELS.rgb;
    const net = new Net(engine, heModel(arch, 41));
    const xs = images(arch, 5, 42);
    for (const options of [{ method: 'bim', eps: 6 }, { method: 'pgd', eps: 3, restarts: 2 }, { method: 'deepfool' }, { method: 'cw', steps: 20, binarySteps: 2 }] as AttackOptions[]) {
      let batch = 0;
      const together = runAttack(net, xs, options, { onProgress: (_d, _t, info) => void (batch = Math.max(batch, info.images)) });
      expect(batch).toBe(5);
      const alone = runAttack(net, xs, { ...options, batchSize: 1 });
      together.forEach((r, i) => {
        expect(r.adversarial).toEqual(alone[i].adversarial);
        expect(r.after).toEqual(alone[i].after);
        expect(r.iterations).toBe(alone[i].iterations);
      });
    }
  });

  it('allocate nothing in the engine while iterating, free everything after, and report progress up to the total', () => {
    const arch = MODELS.gray;
    const net = new Net(engine, heModel(arch, 2));
    const xs = images(arch, 7, 6);
    const used = engine.used;
    for (const options of [{ method: 'pgd', eps: 3, restarts: 2 }, { method: 'cw', steps: 10, binarySteps: 2 }, { method: 'deepfool' }] as AttackOptions[]) {
      const seen = new Map<number, { used: number; bytes: number }>();
      let last = 0, total = 0;
      runAttack(net, xs, { ...options, batchSize: 3 }, {
        onProgress: (done, all, info) => {
          const now = { used: engine.used, bytes: engine.kernels.memory.buffer.byteLength };
          expect(now).toEqual(seen.get(info.batch) ?? now);
          seen.set(info.batch, now);
          expect(done).toBeGreaterThanOrEqual(last);
          last = done;
          total = all;
        },
      });
      expect(seen.size).toBe(3);
      expect(last).toBe(total);
      expect(engine.used).toBe(used);
    }
  });

  it('iterate without allocating: 10,000 iterations of PGD, MI-FGSM and C&W run without a young-generation collection', () => {
    const arch = MODELS.gray;
    const net = new Net(engine, heModel(arch, 1, 0.5));
    // Flat images the weak model keeps in their class: every iteration runs in full.
    const xs = [new Float32Array(64).fill(0.1), new Float32Array(64).fill(-0.1)];
    for (const options of [
      { method: 'pgd', eps: 0.5, iterations: 10_000, earlyStop: false },
      { method: 'mifgsm', eps: 0.5, iterations: 10_000 },
      { method: 'cw', steps: 10_000, binarySteps: 1, abortEarly: false },
    ] as AttackOptions[]) {
      runAttack(net, xs, options); // warm up: JIT
      const heap = process.memoryUsage().heapUsed;
      const profiler = new GCProfiler();
      profiler.start();
      const results = runAttack(net, xs, options);
      const gcs = profiler.stop().statistics;
      for (const r of results) expect(r.iterations).toBe(10_000);
      // A run allocates its results once (about 0.3 MB here); the iterations nothing.
      expect(process.memoryUsage().heapUsed - heap).toBeLessThan(1024 * 1024);
      expect(gcs.filter((g) => g.gcType === 'Scavenge').length).toBeLessThanOrEqual(1);
    }
  });

  it('stop when aborted, freeing the engine memory', () => {
    const arch = MODELS.gray;
    const net = new Net(engine, heModel(arch, 2));
    const used = engine.used;
    const controller = new AbortController();
    let calls = 0;
    const run = () => runAttack(net, images(arch, 4, 1), { method: 'cw' }, { signal: controller.signal, onProgress: () => void (++calls === 5 && controller.abort()) });
    expect(run).toThrow(/abort/i);
    expect(calls).toBe(5);
    expect(engine.used).toBe(used);
  });
});

describe('options', () => {
  it('are checked, with clear messages', () => {
    const net = new Net(engine, heModel(MODELS.gray, 2));
    const xs = images(MODELS.gray, 1, 1);
    const bad: [AttackOptions, RegExp][] = [
      [{ method: 'fgsm', eps: -1 }, /^fgsm: eps must be a number ≥ 0 and at most 1000000, got -1$/],
      [{ method: 'fgsm', eps: NaN }, /^fgsm: eps must be a number ≥ 0 and at most 1000000, got NaN$/],
      [{ method: 'pgd', target: 2 }, /^pgd: target must be a label index from 0 to 1, got 2$/],
      [{ method: 'bim', iterations: 2.5 }, /^bim: iterations must be an integer from 1 to 10000000, got 2.5$/],
      [{ method: 'pgd', norm: 'l1' as 'l2' }, /^pgd: norm must be "linf" or "l2", got "l1"$/],
      [{ method: 'cw', lr: 0 }, /^cw: lr must be a number > 0 and at most 1000000, got 0$/],
      [{ method: 'deepfool', candidates: 1 }, /^deepfool: candidates must be an integer from 2 to 100000, got 1$/],
      [{ method: 'filter', beta: Infinity }, /^filter: beta must be a number ≥ 0 and at most 1000000, got Infinity$/],
      [{ method: 'pgd', batchSize: 0 }, /^pgd: batchSize must be an integer from 1 to 65536, got 0$/],
      [{ method: 'jsma' } as unknown as AttackOptions, /unknown attack method "jsma" \(methods: filter, fgsm, bim, pgd, mifgsm, cw, deepfool, apgd-ce, apgd-dlr, apgd-t, square, autoattack\)/],
    ];
    for (const [options, message] of bad) {
      expect(() => runAttack(net, xs, options)).toThrow(InputError);
      expect(() => runAttack(net, xs, options)).toThrow(message);
    }
    expect(() => runAttack(net, [new Float32Array(3)], { method: 'fgsm' })).toThrow(/image 0 has 3 values, the model takes 8×8×1 = 64/);
    // The batch size by default: 32 images of 48×48, fewer of larger inputs, down to one.
    const batch = (size: number) => resolveOptions({ method: 'pgd' }, 2, undefined, size).batchSize;
    expect([batch(8 * 8), batch(48 * 48), batch(64 * 64 * 3), batch(112 * 112 * 3)]).toEqual([32, 32, 6, 1]);
    expect(resolveOptions({ method: 'pgd', batchSize: 5 }, 2, undefined, 112 * 112 * 3).batchSize).toBe(5);
  });
});

describe('the attacks compared', () => {
  it('succeed in the expected order at an L∞ budget FGSM only partly meets: PGD ≥ BIM > FGSM; C&W finds smaller L2 perturbations than PGD-L2', () => {
    const arch = MODELS.gray;
    const net = new Net(engine, heModel(arch, 2));
    const xs = images(arch, 48, 102);
    // This small network is nearly linear over the ball, so one exact gradient step goes far:
    // at eps 8 FGSM already fools as many images as BIM; at 6 the iterations still add some.
    const fgsm = runAttack(net, xs, { method: 'fgsm', eps: 6 });
    const bim = runAttack(net, xs, { method: 'bim', eps: 6 });
    const pgd = runAttack(net, xs, { method: 'pgd', eps: 6, restarts: 3 });
    expect(success(fgsm)).toBeGreaterThan(0.2);
    expect(success(fgsm)).toBeLessThan(0.9);
    expect(success(bim)).toBeGreaterThan(success(fgsm));
    expect(success(pgd)).toBeGreaterThanOrEqual(success(bim));

    const pgdL2 = runAttack(net, xs, { method: 'pgd', norm: 'l2', eps: 128 });
    const cw = runAttack(net, xs, { method: 'cw' });
    expect(success(pgdL2)).toBeGreaterThan(0.9);
    expect(success(cw)).toBe(1);
    const both = xs.map((_, i) => i).filter((i) => pgdL2[i].success && cw[i].success);
    const median = (r: AttackResult[]) => summarize(both.map((i) => r[i])).l2_pixels.median;
    expect(median(cw)).toBeLessThan(median(pgdL2) / 2);
  });
});

const FACE_MODEL = process.env.MISLEAD_FACE_MODEL ?? DEFAULT_MODEL;

describe.skipIf(!existsSync(FACE_MODEL))('on generated faces with a trained gender classifier', () => {
  it('at L∞ 2 grey levels, PGD ≥ BIM ≥ FGSM, FGSM well short of 100 %; C&W’s median L2 is below PGD-L2’s where both succeed', () => {
    const net = new Net(engine, readModel(readFileSync(FACE_MODEL!), FACE_MODEL!));
    const count = 48, size = net.architecture.input.reduce((a, b) => a * b, 1);
    const set = facesToSet(generateFaces(count, 777), net.architecture);
    const xs = Array.from({ length: count }, (_, i) => set.inputs.slice(i * size, (i + 1) * size));
    const rate = (options: AttackOptions) => summarize(runAttack(net, xs, options), set.labels);
    const fgsm = rate({ method: 'fgsm', eps: 2 }), bim = rate({ method: 'bim', eps: 2 }), pgd = rate({ method: 'pgd', eps: 2 });
    console.log(`success at L∞ 2 (all / correctly classified): FGSM ${fgsm.success} / ${fgsm.success_correct}, BIM ${bim.success} / ${bim.success_correct}, PGD ${pgd.success} / ${pgd.success_correct}`);
    expect(fgsm.success).toBeLessThan(0.9);
    expect(bim.success).toBeGreaterThanOrEqual(fgsm.success);
    expect(pgd.success).toBeGreaterThanOrEqual(bim.success);
    const few = xs.slice(0, 16);
    const cw = runAttack(net, few, { method: 'cw' }), pgdL2 = runAttack(net, few, { method: 'pgd', norm: 'l2', eps: 384 });
    const both = few.map((_, i) => i).filter((i) => cw[i].success && pgdL2[i].success);
    const median = (r: AttackResult[]) => summarize(both.map((i) => r[i])).l2_pixels.median;
    console.log(`median L2 over ${both.length} faces: C&W ${median(cw)}, PGD-L2 (eps 384) ${median(pgdL2)}`);
    expect(both.length).toBeGreaterThanOrEqual(14);
    expect(median(cw)).toBeLessThan(median(pgdL2));
  });
});
