// The command line end to end, as a user runs it (the built dist/cli/main.js): the tutorial's table
// reproduced from its own checkpoint, and predict/attack on a model the engine has never seen,
// checked against the float64 reference.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { checkArchitecture, parameterShapes, writeModel, type Model } from '../src/formats/model.js';
import { readNpy } from '../src/formats/npy.js';
import * as ref from './reference.js';
import { random } from '../src/core/random.js';

const root = resolve(import.meta.dirname, '..');
const tutorial = resolve(root, '../shared/tutorial');
const hasTutorial = existsSync(tutorial);
if (!hasTutorial) console.log(`skipping the tutorial's own numbers: ${tutorial} is absent`);

function mislead(...args: string[]) {
  const r = spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), ...args], { encoding: 'utf8', cwd: tmp() });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const tmp = () => mkdtempSync(join(tmpdir(), 'mislead-'));
const numbers = (line: string) => [...line.matchAll(/-?\d+\.\d+/g)].map((m) => Number(m[0]));

describe.skipIf(!hasTutorial)("the tutorial's table, from its own checkpoint", () => {
  const dir = tmp();
  const model = join(dir, 't.safetensors');

  it('import-tf converts the checkpoint, and the tutorial prints its log and table', () => {
    const imported = mislead('import-tf', join(tutorial, 'saved_model-1'), '--out', model);
    expect(imported.stderr).toBe('');
    expect(imported.code).toBe(0);
    const out = join(dir, 'out');
    const run = mislead('tutorial', join(tutorial, 'input.png'), '--model', model, '--out', out);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lines = run.stdout.split('\n');
    // The first loss of step 1 is the tutorial's 2.558506 (its README); logged every 100 iterations and at 999.
    expect(lines).toContain('iter=      0 - loss= 2.558506');
    expect(lines.filter((l) => l.startsWith('iter='))).toHaveLength(22);
    const row = (title: string) => {
      const line = lines.find((l) => l.startsWith(`Image ${title}:`))!;
      expect(line).toBeDefined();
      return { line, logits: numbers(line) };
    };
    const original = row('Original'), adversarial = row('Adversarial'), withL2 = row('Adversarial with L2');
    expect(original.line).toMatch(/^Image Original: Woman \(scores: man: -0\.78628\d, woman: 1\.69163\d\)$/);
    expect(Math.abs(original.logits[0] - -0.786289)).toBeLessThan(1e-5);
    expect(Math.abs(original.logits[1] - 1.691635)).toBeLessThan(1e-5);
    expect(adversarial.line).toContain('Adversarial: Man');
    expect(Math.abs(adversarial.logits[0] - 4.287142)).toBeLessThan(2e-3);
    expect(Math.abs(adversarial.logits[1] - -4.397751)).toBeLessThan(2e-3);
    expect(withL2.line).toContain('Adversarial with L2: Man');
    expect(Math.abs(withL2.logits[0] - 1.878318)).toBeLessThan(0.02);
    expect(Math.abs(withL2.logits[1] - -1.57378)).toBeLessThan(0.02);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.success).toBe(true);
    expect(report.success_saved).toBe(true);
    expect(report.loss).toHaveLength(2000);
    expect(report.loss[1999]).toBeCloseTo(0.1208, 3); // step 2 settles near 0.1208
    expect(readNpy(readFileSync(join(out, 'perturbation.npy')), 'npy').shape).toEqual([48, 48, 1]);
  }, 60_000);

  it("predict on the tutorial's saved adversarial image", () => {
    const run = mislead('predict', join(tutorial, 'misleading_image.png'), '--model', model, '--json');
    expect(run.code).toBe(0);
    const [result] = JSON.parse(run.stdout);
    expect(result.label).toBe('man');
    expect(Math.abs(result.logits[0] - 1.87387)).toBeLessThan(1e-4);
    expect(Math.abs(result.logits[1] - -1.545478)).toBeLessThan(1e-4);
  });
});

describe('predict and attack on a network and an image never seen before', () => {
  const architecture = checkArchitecture({
    input: [21, 19, 3], labels: ['cat', 'dog', 'fox'], preprocess: { offset: 127.5, scale: 127.5 },
    layers: [
      { type: 'conv2d', name: 'a', filters: 4, kernel: 3, stride: 2, padding: 'same', activation: 'relu' },
      { type: 'maxpool', size: 2, stride: 1, padding: 'valid' },
      { type: 'conv2d', name: 'b', filters: 5, kernel: 2, stride: 1, padding: 'valid', activation: 'relu' },
      { type: 'flatten' },
      { type: 'dense', name: 'c', units: 3 },
    ],
  });
  const rand = random(42);
  const model: Model = { architecture, weights: new Map() };
  for (const [key, shape] of parameterShapes(architecture)) {
    model.weights.set(key, Float32Array.from({ length: ref.sizeOf(shape) }, () => (rand() - 0.5) * 0.6));
  }
  const dir = tmp();
  const modelPath = join(dir, 'm.safetensors');
  writeFileSync(modelPath, writeModel(model));
  const png = new PNG({ width: 19, height: 21 });
  for (let i = 0; i < png.data.length; i++) png.data[i] = i % 4 === 3 ? 255 : Math.floor(rand() * 256);
  const imagePath = join(dir, 'img.png');
  writeFileSync(imagePath, PNG.sync.write(png));
  const x = ref.tensor([1, 21, 19, 3], Array.from({ length: 21 * 19 * 3 }, (_, i) => (png.data[Math.floor(i / 3) * 4 + (i % 3)] - 127.5) / 127.5));
  const weights64 = new Map([...model.weights].map(([k, v]) => [k, Float64Array.from(v)]));

  it('predict gives the reference logits to 1e-4', () => {
    const run = mislead('predict', imagePath, '--model', modelPath, '--json');
    expect(run.code).toBe(0);
    const [result] = JSON.parse(run.stdout);
    const expected = ref.networkLogits(architecture, weights64, x).data;
    for (let i = 0; i < 3; i++) expect(Math.abs(result.logits[i] - expected[i])).toBeLessThan(1e-4 * Math.max(1, Math.abs(expected[i])));
  });

  it('one attack step with lr 1 saves minus the input gradient as the perturbation', () => {
    const out = join(dir, 'attack');
    // A target the network does not give the image already (that would be nothing to do).
    const logits = Array.from(ref.networkLogits(architecture, weights64, x).data);
    const target = logits.indexOf(Math.min(...logits));
    const run = mislead('attack', imagePath, '--model', modelPath, '--target', architecture.labels[target], '--iters', '1', '--lr', '1', '--beta', '0', '--out', out, '--json');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.target).toBe(architecture.labels[target]);
    expect(report.loss).toHaveLength(1);
    const y = ref.tensor([1, 3], [0, 1, 2].map((k) => (k === target ? 1 : 0)));
    const expected = ref.networkLossAndGradients(architecture, weights64, x, ref.tensor([1, 21, 19, 3]), y, 0);
    expect(Math.abs(report.loss[0] - expected.loss)).toBeLessThan(1e-4 * expected.loss);
    const { data, shape } = readNpy(readFileSync(join(out, 'perturbation.npy')), 'npy');
    expect(shape).toEqual([21, 19, 3]);
    let diff = 0, scale = 0;
    expected.dDx.data.forEach((g, i) => {
      diff = Math.max(diff, Math.abs(data[i] + g));
      scale = Math.max(scale, Math.abs(g));
    });
    expect(diff / scale).toBeLessThan(1e-4);
  });
});

describe('the shipped default model and sample face', () => {
  it('npm start tells the story: Woman, then Man, then Man with L2, and draws it', () => {
    const cwd = tmp();
    const run = spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), 'tutorial', '--force'], { encoding: 'utf8', cwd });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^Image Original: Woman \(scores: man: -?\d+\.\d{6}, woman: -?\d+\.\d{6}\)$/m);
    expect(run.stdout).toMatch(/^Image Adversarial: Man /m);
    expect(run.stdout).toMatch(/^Image Adversarial with L2: Man /m);
    const figure = PNG.sync.read(readFileSync(join(cwd, 'out/figure.png')));
    expect(figure.width).toBeGreaterThan(1000); // five panels of a 48×48 face upscaled ×5
    const report = JSON.parse(readFileSync(join(cwd, 'out/report.json'), 'utf8'));
    expect(report.success_saved).toBe(true);
  });
});

describe('the attack suite from the command line, on faces never seen', () => {
  const dir = tmp();
  const faces = join(dir, 'faces');
  const run = (...args: string[]) => spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), ...args], { encoding: 'utf8', cwd: dir });

  it('attacks a folder as a batch: L∞ ≤ eps on every saved file, and the saved files fool the model as reported', () => {
    expect(run('dataset', '--out', faces, '--count', '16', '--seed', '31337').status).toBe(0);
    const attack = run('attack', faces, '--method', 'pgd', '--eps', '3', '--out', join(dir, 'pgd'), '--json');
    expect(attack.stderr).toBe('');
    expect(attack.status).toBe(0);
    const report = JSON.parse(attack.stdout);
    expect(report.images).toBe(16);
    expect(report.summary.correct).toBeGreaterThan(12);
    expect(report.success_saved).toBe(report.summary.success);
    // One key style, units in the name: grey levels are *_pixels, as in a result's norms.
    expect(Object.keys(report.summary).sort()).toEqual(['correct', 'images', 'l2_pixels', 'linf_pixels', 'ms', 'psnr', 'skipped', 'ssim', 'success', 'success_correct']);
    expect(JSON.stringify(report.params)).not.toMatch(/"[a-z]+[A-Z]/);
    const names = readdirSync(join(dir, 'pgd/adversarial')).sort();
    expect(names).toHaveLength(16);
    names.forEach((name, i) => {
      const original = PNG.sync.read(readFileSync(join(faces, `${String(i).padStart(5, '0')}.png`)));
      const adversarial = PNG.sync.read(readFileSync(join(dir, 'pgd/adversarial', name)));
      let linf = 0;
      for (let p = 0; p < 48 * 48; p++) linf = Math.max(linf, Math.abs(original.data[p * 4] - adversarial.data[p * 4]));
      expect(linf).toBeLessThanOrEqual(3);
    });
    expect(existsSync(join(dir, 'pgd/contact.png'))).toBe(true);
    expect(readFileSync(join(dir, 'pgd/summary.csv'), 'utf8').split('\n')[0]).toBe('image,before,after,success,skipped,l2_pixels,linf_pixels,psnr,ssim,iterations,gradients,queries,ms');
  });

  it('a target the model already gives: one image is refused (exit 2, one line); in a batch such images are skipped, not successes', () => {
    const one = run('attack', join(faces, '00000.png'), '--method', 'fgsm', '--target', 'man', '--out', join(dir, 'one'));
    const two = run('attack', join(faces, '00000.png'), '--method', 'fgsm', '--target', 'woman', '--out', join(dir, 'two'));
    const [same, other] = one.status === 2 ? [one, two] : [two, one];
    expect(same.status).toBe(2);
    expect(same.stderr).toMatch(/^mislead: .*00000\.png: already (man|woman): nothing to do\n$/);
    expect(existsSync(join(dir, same === one ? 'one' : 'two'))).toBe(false);
    expect(other.status).toBe(0);
    const batch = run('attack', faces, '--method', 'fgsm', '--target', 'man', '--out', join(dir, 'toman'), '--json');
    expect(batch.status).toBe(0);
    const report = JSON.parse(batch.stdout);
    const men = report.results.filter((r: { before: string }) => r.before === 'man');
    expect(men.length).toBeGreaterThan(0);
    expect(report.summary.skipped).toBe(men.length);
    for (const r of men) expect([r.skipped, r.success, r.iterations, r.linf_pixels]).toEqual([true, false, 0, 0]);
    const won = report.results.filter((r: { success: boolean }) => r.success).length;
    expect(report.summary.success).toBeCloseTo(won / (16 - men.length), 12);
  });

  it('eval --attack draws accuracy under attack falling with the budget', () => {
    const ev = run('eval', faces, '--attack', 'bim', '--eps', '0,2,8', '--out', join(dir, 'robust'), '--json');
    expect(ev.stderr).toBe('');
    const { points } = JSON.parse(ev.stdout);
    expect(points.map((p: { eps: number }) => p.eps)).toEqual([0, 2, 8]);
    expect(points[0].accuracy).toBeGreaterThan(0.8);
    expect(points[1].accuracy).toBeLessThanOrEqual(points[0].accuracy);
    expect(points[2].accuracy).toBeLessThan(points[0].accuracy);
    expect(readdirSync(join(dir, 'robust')).sort()).toEqual(['robustness.json', 'robustness.png', 'robustness.svg']);
    // Only the faces the model gets right are attacked; the accuracy is the share of all faces
    // that an attack on the whole folder (BIM: deterministic) leaves right.
    const attack = run('attack', faces, '--method', 'bim', '--eps', '8', '--out', join(dir, 'bim8'), '--json');
    const results: { image: string; before: string; after: string }[] = JSON.parse(attack.stdout).results;
    const truth = new Map(readFileSync(join(faces, 'labels.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(',') as [string, string]));
    const right = results.filter((r) => r.before === truth.get(basename(r.image)));
    expect(points[2].attacked).toBe(right.length);
    expect(points[2].accuracy).toBe(right.filter((r) => r.after === r.before).length / 16);
    expect(points[2].ms_per_image).toBeGreaterThan(0);
    expect(points[0].attacked).toBeUndefined();
  });
});

describe('a person at the command line', () => {
  it('--version prints the package version', () => {
    const run = mislead('--version');
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
  });

  it('a mistyped command or option gets the closest one', () => {
    expect(mislead('atack', 'x.png').stderr).toBe('mislead: unknown command "atack"; did you mean attack? (see mislead --help)\n');
    expect(mislead('xyzzy').stderr).toMatch(/^mislead: unknown command "xyzzy" \(commands: predict, attack, .*; see mislead --help\)\n$/);
    expect(mislead('constructor').code).toBe(2); // not a property of the table of commands
    const option = mislead('attack', 'x.png', '--iter', '3');
    expect(option.code).toBe(2);
    expect(option.stderr).toBe("mislead: Unknown option '--iter'; did you mean --iters? (see mislead attack --help)\n");
  });

  it('a missing file is named with the reason in words', () => {
    const run = mislead('predict', 'nowhere.png');
    expect(run.stderr).toBe('mislead: nowhere.png: cannot read an image (no such file or directory)\n');
  });

  it('an attack on one image prints its distances, PSNR and SSIM, and a suite method draws its loss', () => {
    const out = join(tmp(), 'cw');
    const run = mislead('attack', join(root, 'weights/samples/woman.png'), '--method', 'cw', '--iters', '20', '--binary-steps', '1', '--out', out);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^L2 +\d+\.\d\d grey levels \([\d.e-]+ in model units\)$/m);
    expect(run.stdout).toMatch(/^L∞ +\d+\.\d\d grey levels/m);
    expect(run.stdout).toMatch(/^PSNR +[\d.]+ dB · SSIM 0\.\d{4}$/m);
    expect(existsSync(join(out, 'loss.svg'))).toBe(true);
  });
});

describe('a reader that stops early', () => {
  it('(mislead … | head) is not an error: no stack trace, and the results are all written', () => {
    const dir = tmp();
    const r = spawnSync('bash', ['-c', `"${process.execPath}" "${join(root, 'dist/cli/main.js')}" tutorial --out "${dir}/o" | head -c 10 > /dev/null`], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(readdirSync(join(dir, 'o')).sort()).toEqual(['adversarial.png', 'figure.png', 'filter.png', 'loss.svg', 'perturbation.npy', 'report.json']);
  });
});
