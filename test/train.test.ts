// Training with the engine: a small model learns to tell generated men from women, and a run
// is reproducible from its seed.
import { beforeAll, describe, expect, it } from 'vitest';
import { generateFaces } from '../src/train/dataset.js';
import type { Engine } from '../src/core/engine.js';
import { TUTORIAL_ARCHITECTURE } from '../src/formats/importtf.js';
import { loadEngine } from '../src/node/engine.js';
import { facesToSet, initialModel, train } from '../src/train/train.js';
import { Pool } from '../src/node/parallel.js';

let engine: Engine;
beforeAll(async () => {
  engine = await loadEngine();
});

describe('training', () => {
  it("learns the tutorial's network from scratch on 2,000 generated faces: ≥ 88 % on 500 unseen ones", async () => {
    const data = facesToSet(generateFaces(2000, 11), TUTORIAL_ARCHITECTURE);
    const test = facesToSet(generateFaces(500, 12), TUTORIAL_ARCHITECTURE);
    const { history } = await train(engine, initialModel(TUTORIAL_ARCHITECTURE, 1), data, test, { epochs: 8, batch: 32, lr: 3e-3, seed: 1 });
    console.log(history.map((h) => `epoch ${h.epoch}: loss ${h.loss.toFixed(3)}, test ${(100 * h.testAccuracy!).toFixed(1)} %`).join('\n'));
    expect(history[history.length - 1].loss).toBeLessThan(history[0].loss / 2);
    expect(history[history.length - 1].testAccuracy).toBeGreaterThanOrEqual(0.88);
  });

  it('is deterministic for a seed', async () => {
    const data = facesToSet(generateFaces(96, 5), TUTORIAL_ARCHITECTURE);
    const run = async (seed: number) => (await train(engine, initialModel(TUTORIAL_ARCHITECTURE, seed), data, undefined, { epochs: 2, batch: 16, lr: 1e-3, seed })).model.weights.get('fc.w')!;
    expect(await run(3)).toEqual(await run(3));
    expect(await run(3)).not.toEqual(await run(4));
  });

  it('on two workers: the same faces, and the same training up to float32 summation order', async () => {
    const pool = new Pool(2);
    try {
      const faces = await pool.faces(10, 5);
      expect(faces.map((f) => Array.from(f.image.data))).toEqual(generateFaces(10, 5).map((f) => Array.from(f.image.data)));
      const data = facesToSet(generateFaces(96, 5), TUTORIAL_ARCHITECTURE);
      const options = { epochs: 2, batch: 16, lr: 1e-3, seed: 3 };
      const initial = initialModel(TUTORIAL_ARCHITECTURE, 3);
      const alone = (await train(engine, initial, data, undefined, options)).model;
      const split = (await train(engine, initial, data, undefined, options, await pool.gradients(initial, data, 16))).model;
      for (const [key, w] of alone.weights) {
        const other = split.weights.get(key)!;
        const scale = Math.max(...w.map(Math.abs));
        expect(Math.max(...w.map((v, i) => Math.abs(v - other[i]))) / scale, key).toBeLessThan(1e-4);
      }
    } finally {
      await pool.close();
    }
  });

  it('initialises as the tutorial: truncated normal σ 0.1 weights, zero biases', () => {
    const { weights } = initialModel(TUTORIAL_ARCHITECTURE, 7);
    const w = weights.get('cv3.w')!;
    const mean = w.reduce((a, b) => a + b, 0) / w.length;
    const sd = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length);
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(sd).toBeGreaterThan(0.08); // a normal truncated at 2σ has σ ≈ 0.088
    expect(sd).toBeLessThan(0.095);
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(0.2);
    expect(weights.get('cv3.b')!.every((b) => b === 0)).toBe(true);
  });
});
