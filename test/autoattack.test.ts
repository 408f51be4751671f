// AutoAttack (src/attacks/autoattack.ts) on small random networks: each image meets every part
// as it would alone, so it is broken by the first part that breaks it alone, with that part's
// counts and those of the parts before; parts that refuse the model are skipped with a note;
// the saved images; the command line's eval.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Net } from '../src/core/net.js';
import type { Engine } from '../src/core/engine.js';
import { methodById, resolveOptions, runAttack, startAttack, type AttackOptions, type AttackResult } from '../src/attacks/index.js';
import { checkArchitecture, writeModel, type Architecture, type Model } from '../src/formats/model.js';
import { loadEngine } from '../src/node/engine.js';
import { Pool } from '../src/node/parallel.js';
import { checkSaved, heRange, randomImages, randomModel } from './helpers.js';

let engine: Engine;
beforeAll(async () => {
  engine = await loadEngine();
});

const conv = (labels: string[], input: [number, number, number], preprocess: { offset: number; scale: number }): Architecture =>
  checkArchitecture({
    input, labels, preprocess,
    layers: [
      { type: 'conv2d', name: 'c1', filters: 4, kernel: 3, padding: 'same', activation: 'relu' },
      { type: 'maxpool', size: 2, stride: 2, padding: 'valid' },
      { type: 'flatten' },
      { type: 'dense', name: 'd1', units: 12, activation: 'relu' },
      { type: 'dense', name: 'd2', units: labels.length },
    ],
  });

const FIVE = conv(['a', 'b', 'c', 'd', 'e'], [6, 6, 3], { offset: 0, scale: 255 });
const TWO = conv(['man', 'woman'], [8, 8, 1], { offset: 128, scale: 256 });
const heModel = (architecture: Architecture, seed: number): Model => randomModel(architecture, seed, heRange(4));

describe('AutoAttack', () => {
  it('breaks every image a part breaks alone, by the first such part, with the counts of the parts it went through', () => {
    // Logits ×30 saturate the softmax on most images: the cross-entropy's gradient vanishes
    // there, the DLR loss's does not, so APGD-T has images left to break after APGD-CE.
    const model = heModel(FIVE, 6);
    for (const key of ['d2.w', 'd2.b']) model.weights.set(key, model.weights.get(key)!.map((v) => v * 30));
    const net = new Net(engine, model);
    const xs = randomImages(FIVE, 12, 9);
    const broken: Record<string, number> = {};
    for (const [norm, eps] of [['linf', 4], ['linf', 8], ['l2', 96]] as const) {
      const parts = ['apgd-ce', 'apgd-t', 'square'];
      const alone = parts.map((method) => runAttack(net, xs, { method, norm, eps, seed: 5, batchSize: 4 } as AttackOptions));
      const aa = runAttack(net, xs, { method: 'autoattack', norm, eps, seed: 5, batchSize: 4 });
      aa.forEach((r, i) => {
        const first = parts.findIndex((_, k) => alone[k][i].success);
        const through = first < 0 ? parts.length : first + 1;
        expect(r.brokenBy).toBe(first < 0 ? null : parts[first]);
        expect(r.success).toBe(first >= 0);
        for (const count of ['gradients', 'queries', 'iterations'] as const) {
          expect(r[count]).toBe(alone.slice(0, through).reduce((s, a) => s + a[i][count], 0));
        }
        if (first >= 0) expect(r.adversarial).toEqual(alone[first][i].adversarial);
        if (r.brokenBy) broken[r.brokenBy] = (broken[r.brokenBy] ?? 0) + 1;
      });
      checkSaved(net, xs, aa, norm, eps);
    }
    console.log(`images broken by each part, over three budgets: ${JSON.stringify(broken)}`);
    expect(broken['apgd-ce']).toBeGreaterThan(0);
    expect(broken['apgd-t']).toBeGreaterThan(0);
  });

  it('gives each image the same result whatever the batch size, the images with it and the workers', async () => {
    // Each part runs on the images still standing only, gathered: what an image meets must not
    // depend on which of the others an earlier part broke.
    const model = heModel(FIVE, 6);
    for (const key of ['d2.w', 'd2.b']) model.weights.set(key, model.weights.get(key)!.map((v) => v * 30));
    const net = new Net(engine, model);
    const xs = randomImages(FIVE, 10, 3);
    const options = { method: 'autoattack', eps: 8, seed: 5 } as const;
    const outcome = (results: AttackResult[]) => results.map((r) => [r.brokenBy, r.iterations, r.gradients, r.queries, Array.from(r.adversarial), r.after.logits]);
    const whole = outcome(runAttack(net, xs, options));
    const by = whole.map(([part]) => part);
    expect(by).toContain(null);
    expect(by.filter((part) => part !== null).length).toBeGreaterThan(1);
    expect(outcome(runAttack(net, xs, { ...options, batchSize: 3 }))).toEqual(whole);
    expect(outcome(await new Pool(2).attack(net.toModel(), xs, options))).toEqual(whole);
    // Alone, with the seed shifted by its index (as a worker's share is), an image meets the same.
    for (const i of [by.indexOf(null), by.findIndex((part) => part !== null)]) expect(outcome(runAttack(net, [xs[i]], { ...options, seed: 5 + i }))).toEqual([whole[i]]);
  });

  it('skips the parts that refuse a two-class model, with a note; refuses a target', () => {
    const net = new Net(engine, heModel(TWO, 4));
    const xs = randomImages(TWO, 10, 7);
    const options = resolveOptions({ method: 'autoattack', eps: 8 }, 2);
    expect(methodById('autoattack').notes!(options, 2)).toEqual([expect.stringMatching(/^apgd-t skipped: the targeted DLR loss needs at least 4 classes.*the model has 2$/)]);
    expect(methodById('autoattack').notes!(resolveOptions({ method: 'autoattack', version: 'rand' }, 2), 2)).toEqual([
      expect.stringMatching(/^apgd-dlr skipped: .*at least 3 classes/), expect.stringMatching(/^rand: .*deterministic/),
    ]);
    const aa = runAttack(net, xs, { method: 'autoattack', eps: 8 });
    const custom = runAttack(net, xs, { method: 'autoattack', eps: 8, version: 'custom', parts: 'apgd-ce, square' });
    expect(aa.map((r) => [r.brokenBy, r.queries])).toEqual(custom.map((r) => [r.brokenBy, r.queries]));
    expect(aa.some((r) => r.success)).toBe(true);
    checkSaved(net, xs, aa, 'linf', 8);
    expect(() => runAttack(net, xs, { method: 'autoattack', target: 1 })).toThrow(/autoattack: targeted AutoAttack is not standard/);
    expect(() => runAttack(net, xs, { method: 'autoattack', parts: 'square' })).toThrow(/parts are chosen with version custom/);
    expect(() => runAttack(net, xs, { method: 'autoattack', version: 'custom', parts: 'square,cw' })).toThrow(/parts must be a comma-separated list of apgd-ce/);
  });

  it('stops on its signal inside a part, or when disposed of halfway, freeing the engine memory of the part too', () => {
    const net = new Net(engine, heModel(FIVE, 3));
    const xs = randomImages(FIVE, 4, 7);
    const used = engine.used;
    const halfway = startAttack(net, xs, { method: 'autoattack', eps: 0.5 });
    halfway.step(150);
    expect(halfway.info!.method).toBe('apgd-t');
    expect(engine.used).toBeGreaterThan(used);
    halfway.dispose();
    expect(engine.used).toBe(used);
    const stop = new AbortController();
    const seen = new Set<string>();
    expect(() => runAttack(net, xs, { method: 'autoattack', eps: 0.5 }, {
      signal: stop.signal,
      onProgress: (_, __, info) => {
        seen.add(info.method);
        if (info.method === 'square') stop.abort(new Error('stopped'));
      },
    })).toThrow('stopped');
    expect([...seen]).toEqual(['apgd-ce', 'apgd-t', 'square']);
    expect(engine.used).toBe(used);
  });
});

describe('AutoAttack from the command line', () => {
  const root = resolve(import.meta.dirname, '..');
  const dir = mkdtempSync(join(tmpdir(), 'mislead-'));
  const run = (...args: string[]) => spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), ...args], { encoding: 'utf8', cwd: dir });

  it('eval --attack autoattack: accuracy per budget, the parts that broke the images, the skipped part noted and left out of them', () => {
    const model = join(dir, 'two.safetensors');
    writeFileSync(model, writeModel(heModel(conv(['man', 'woman'], [12, 12, 1], { offset: 0, scale: 255 }), 8)));
    expect(run('dataset', '--out', join(dir, 'faces'), '--count', '6', '--seed', '5').status).toBe(0);
    const ev = run('eval', join(dir, 'faces'), '--model', model, '--attack', 'autoattack', '--eps', '0,2,16', '--out', join(dir, 'robust'), '--json', '--workers', '1');
    expect(ev.stderr).toBe('');
    const report = JSON.parse(ev.stdout);
    expect(report.notes).toEqual([expect.stringMatching(/^apgd-t skipped/)]);
    const [clean, small, large] = report.points;
    expect(small.accuracy).toBeLessThanOrEqual(clean.accuracy);
    expect(large.accuracy).toBeLessThanOrEqual(small.accuracy);
    // The skipped part is left out: it did not run, rather than broke nothing.
    expect(Object.keys(large.broken_by)).toEqual(['apgd-ce', 'square']);
    expect(JSON.parse(readFileSync(join(dir, 'robust/robustness.json'), 'utf8')).points).toEqual(report.points);

    const attack = run('attack', join(dir, 'faces'), '--model', model, '--method', 'autoattack', '--eps', '16', '--out', join(dir, 'aa'), '--workers', '1');
    expect(attack.stderr).toBe('');
    expect(attack.stdout).toMatch(/^note: apgd-t skipped/m);
    expect(attack.stdout).toMatch(/^broken by apgd-ce +\d+$/m);
    expect(attack.stdout).toMatch(/^broken by square +\d+$/m);
    expect(attack.stdout).not.toMatch(/^broken by apgd-t/m);
    const summary = JSON.parse(readFileSync(join(dir, 'aa/summary.json'), 'utf8'));
    for (const r of summary.results) expect(r.broken_by === null).toBe(!r.success);
  });
});
