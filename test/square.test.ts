// The Square attack (src/attacks/square.ts): its schedule of p, its saved images and query
// counts, seeds and batches, and its success where gradients are masked: a network behind a
// hard threshold on its input, where every gradient method sees a zero gradient.
import { beforeAll, describe, expect, it } from 'vitest';
import { Net } from '../src/core/net.js';
import type { Engine } from '../src/core/engine.js';
import { runAttack, type AttackResult } from '../src/attacks/index.js';
import { pAt } from '../src/attacks/square.js';
import { checkArchitecture, type Architecture } from '../src/formats/model.js';
import { loadEngine } from '../src/node/engine.js';
import { Pool } from '../src/node/parallel.js';
import { checkSaved, heRange, randomImages, randomModel } from './helpers.js';

let engine: Engine;
beforeAll(async () => {
  engine = await loadEngine();
});

const layers = (classes: number) => [
  { type: 'conv2d', name: 'c2', filters: 6, kernel: 3, padding: 'same', activation: 'relu' },
  { type: 'flatten' },
  { type: 'dense', name: 'd1', units: 16, activation: 'relu' },
  { type: 'dense', name: 'd2', units: classes },
];

const plain: Architecture = checkArchitecture({ input: [8, 8, 3], labels: ['a', 'b', 'c', 'd'], preprocess: { offset: 0, scale: 255 }, layers: layers(4) });

// The masking: a 1×1 convolution of weight 10⁵ and bias −5·10⁴ then tanh turns each pixel into
// ±1 at grey level 127.5. On the 8-bit grid (and almost everywhere off it) the tanh is saturated
// in float32, so its derivative 1 − tanh² is exactly 0 and no gradient reaches the input.
const masked: Architecture = checkArchitecture({
  input: [8, 8, 1], labels: ['a', 'b', 'c'], preprocess: { offset: 0, scale: 255 },
  layers: [{ type: 'conv2d', name: 'step', filters: 1, kernel: 1, padding: 'same', activation: 'tanh' }, ...layers(3)],
});

function maskedNet(seed: number): Net {
  const model = randomModel(masked, seed, heRange(4));
  model.weights.set('step.w', Float32Array.of(1e5));
  model.weights.set('step.b', Float32Array.of(-5e4));
  return new Net(engine, model);
}

/** Images whose pixels lie within 12 grey levels of the threshold: each may flip within the budget. */
function nearThreshold(count: number, seed: number): Float32Array[] {
  return randomImages(masked, count, seed).map((x) => x.map((v) => Math.round(116 + (v * 255) % 24) / 255));
}

const successes = (results: AttackResult[]) => results.filter((r) => r.success).length;

describe('Square', () => {
  it("p halves at the paper's iterations of a 10,000-query scale", () => {
    expect([0, 10, 11, 50, 51, 200, 201, 500, 501, 1000, 1001, 2000, 2001, 4001, 6001, 8001, 9999].map((i) => pAt(0.8, i, 10000) * 512)).toEqual(
      [512, 512, 256, 256, 128, 128, 64, 64, 32, 32, 16, 16, 8, 4, 2, 1, 1].map((v) => v * 0.8),
    );
    // Half of 5,000 queries is 5,000 on the 10,000 scale: past 4,000, seven halvings.
    expect(pAt(0.8, 2500, 5000)).toBe(0.8 / 128);
  });

  it('a network behind a hard threshold: gradient methods see no gradient and fail, Square fools it', () => {
    const net = maskedNet(3);
    const xs = nearThreshold(12, 8);
    const pgd = runAttack(net, xs, { method: 'pgd', eps: 8, restarts: 3 });
    const apgd = runAttack(net, xs, { method: 'apgd-ce', eps: 8 });
    const fgsm = runAttack(net, xs, { method: 'fgsm', eps: 8 });
    const sq = runAttack(net, xs, { method: 'square', eps: 8, queries: 1000 });
    console.log(`masked gradients, L∞ 8: FGSM ${successes(fgsm)}, PGD ×3 ${successes(pgd)}, APGD-CE ${successes(apgd)}, Square ${successes(sq)} of ${xs.length}`);
    // Whatever the gradient methods do, it is from their random starts: their steps are 0.
    for (const r of fgsm) expect(r.success).toBe(false);
    expect(successes(sq)).toBeGreaterThan(Math.max(successes(pgd), successes(apgd)));
    expect(successes(sq)).toBeGreaterThanOrEqual(xs.length / 2);
    checkQueries(net, xs, sq, 'linf', 8, 1000);
  });

  for (const norm of ['linf', 'l2'] as const) {
    it(`${norm}: saved images in the ball that classify as reported, one query per iteration, reproducible whatever the batch (and the workers)`, async () => {
      const net = new Net(engine, randomModel(plain, 4, heRange(4)));
      const xs = randomImages(plain, 9, 6);
      const eps = norm === 'linf' ? 4 : 96, queries = 300;
      const results = runAttack(net, xs, { method: 'square', norm, eps, queries, seed: 2 });
      checkQueries(net, xs, results, norm, eps, queries);
      console.log(`${norm} ${eps}: Square fools ${successes(results)} of ${xs.length}, queries ${results.map((r) => r.queries).join(' ')}`);
      expect(successes(results)).toBeGreaterThan(0);
      const again = runAttack(net, xs, { method: 'square', norm, eps, queries, seed: 2, batchSize: 4 });
      expect(again.map((r) => Array.from(r.adversarial))).toEqual(results.map((r) => Array.from(r.adversarial)));
      expect(again.map((r) => r.queries)).toEqual(results.map((r) => r.queries));
      if (norm === 'linf') {
        // Two worker threads, a share of the images each, draw each image's same random squares.
        const pooled = await new Pool(2).attack(net.toModel(), xs, { method: 'square', norm, eps, queries, seed: 2 });
        expect(pooled.map((r) => Array.from(r.adversarial))).toEqual(results.map((r) => Array.from(r.adversarial)));
      }
    });
  }
});

/** Each result as checkSaved checks it; at most `queries` queries, one per iteration after the
 *  first, and no gradient. */
function checkQueries(net: Net, xs: Float32Array[], results: AttackResult[], norm: 'linf' | 'l2', eps: number, queries: number): void {
  checkSaved(net, xs, results, norm, eps);
  for (const r of results) {
    expect(r.gradients).toBe(0);
    expect(r.queries).toBeLessThanOrEqual(queries);
    expect(r.queries).toBe(r.iterations + 1);
    if (!r.success) expect(r.queries).toBe(queries);
  }
}
