// The real client's verdict: mislead attacks face-api.js's imported gender network (PGD L∞, ε 2 grey
// levels, 40 steps), then face-api itself (its Node build on TF.js's CPU backend, see
// support/faceapi.ts) reads every saved adversarial PNG, decoded here by pngjs rather than by
// mislead's reader. The PNGs are 112×112, so face-api pads and resizes nothing: its gender must be
// the class mislead reports for the saved file, and it must be fooled exactly when mislead says so.
// Faces: the project's four samples resized by the test, always (also under a weaker attack that
// fools only some of them); 24 boxed faces of the real photographs in ../shared/realfaces when that
// folder is there.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage, resize, toRgb } from '../src/formats/image.js';
import { ageGenderNet, loadFaceApi, manProbability, tf } from './support/faceapi.js';

const SIDE = 112;
const SAMPLES = resolve(import.meta.dirname, '../weights/samples');
const REAL_FACES = resolve(import.meta.dirname, '../../shared/realfaces');
const REAL_COUNT = 24;
const dir = mkdtempSync(join(tmpdir(), 'mislead-verdict-'));
const model = join(dir, 'faceapi.safetensors');
const measured: string[] = [];

/** The built command line, as a user runs it, without blocking this thread (the test runner must
 *  hear from it while an attack runs); its stdout. */
async function mislead(args: string[]): Promise<string> {
  return (await promisify(execFile)(process.execPath, [resolve(import.meta.dirname, '../dist/cli/main.js'), ...args], { encoding: 'utf8', maxBuffer: 1 << 26 })).stdout;
}

beforeAll(async () => {
  await loadFaceApi();
  await mislead(['import-faceapi', '--out', model]);
}, 120_000);
afterAll(() => console.log(`face-api.js on mislead's saved adversarial PNGs (PGD L∞):\n${measured.join('\n')}`));

interface Summary {
  success_saved: number;
  summary: { skipped: number };
  results: { image: string; before: string; after: string; success: boolean; skipped: boolean; psnr: number }[];
}
interface Predicted { image: string; label: string; probabilities: number[] }

/** face-api's gender and P(man) of each PNG, decoded by pngjs; a few at a time, with a turn of the
 *  event loop between (TF.js's CPU backend takes about a second for each). */
async function faceApiVerdicts(files: string[]): Promise<{ label: string; man: number }[]> {
  const verdicts = [];
  for (let start = 0; start < files.length; start += 4) {
    const faces = files.slice(start, start + 4).map((file) => {
      const png = PNG.sync.read(readFileSync(file));
      expect([png.width, png.height], file).toEqual([SIDE, SIDE]);
      const rgb = Float32Array.from({ length: SIDE * SIDE * 3 }, (_, i) => png.data[Math.floor(i / 3) * 4 + (i % 3)]);
      return tf.tensor3d(rgb, [SIDE, SIDE, 3]);
    });
    const predicted = await ageGenderNet.predictAgeAndGender(faces);
    tf.dispose(faces);
    verdicts.push(...predicted.map((p) => ({ label: p.gender === 'male' ? 'man' : 'woman', man: manProbability(p) })));
    await new Promise((done) => setImmediate(done));
  }
  return verdicts;
}

/** Attacks the pictures of `folder` (as `attack DIR` reads them, face boxes and all) with PGD,
 *  ε 2 unless `budget` says otherwise, then holds face-api's verdict on each saved PNG against
 *  mislead's; returns how many fooled face-api, of how many attacked. */
async function verdict(name: string, folder: string, budget = ['--eps', '2']): Promise<{ fooled: number; attacked: number }> {
  const out = join(dir, `${name}-pgd`);
  const report = JSON.parse(await mislead(['attack', folder, '--model', model, '--method', 'pgd', ...budget, '--workers', '1', '--out', out, '--json'])) as Summary;
  const saved = join(out, 'adversarial');
  const files = readdirSync(saved).sort().map((f) => join(saved, f));
  expect(files).toHaveLength(report.results.length);
  // mislead's class of each saved file, read back by its own reader.
  const ours = JSON.parse(await mislead(['predict', ...files, '--model', model, '--json'])) as Predicted[];
  const theirs = await faceApiVerdicts(files);
  let fooled = 0, worst = 0;
  report.results.forEach((r, i) => {
    const what = `${r.image} (saved as ${files[i]})`;
    expect(theirs[i].label, what).toBe(ours[i].label);
    // PGD judges success on the 8-bit picture, the one saved: `after` is the saved file's class.
    expect(ours[i].label, what).toBe(r.after);
    const error = Math.abs(theirs[i].man - ours[i].probabilities[0]);
    worst = Math.max(worst, error);
    expect(error, `${what}: P(man) ${ours[i].probabilities[0]} against face-api's ${theirs[i].man}`).toBeLessThanOrEqual(1e-4);
    if (r.skipped) return;
    const faceApiFooled = theirs[i].label !== r.before;
    expect(faceApiFooled, what).toBe(r.success);
    if (faceApiFooled) fooled++;
  });
  const attacked = report.results.length - report.summary.skipped;
  expect(fooled).toBe(Math.round(report.success_saved * attacked));
  const psnr = report.results.filter((r) => r.success).map((r) => r.psnr);
  measured.push(`  ${name} (${budget.join(' ')}): face-api fooled on ${fooled} of ${attacked} (mislead: ${(100 * report.success_saved).toFixed(1)} % as saved), ` +
    `its gender is mislead's on all ${files.length}, P(man) within ${worst.toExponential(1)}` +
    (psnr.length ? `; PSNR of the fooling ones ${Math.min(...psnr).toFixed(1)}–${Math.max(...psnr).toFixed(1)} dB` : ''));
  return { fooled, attacked };
}

describe("face-api.js's verdict on mislead's adversarial faces", () => {
  it('the four sample faces, resized to 112×112 by the test', { timeout: 300_000 }, async () => {
    const folder = join(dir, 'samples');
    mkdirSync(folder);
    for (const file of readdirSync(SAMPLES).filter((f) => f.endsWith('.png'))) {
      const face = resize(toRgb(decodeImage(readFileSync(join(SAMPLES, file)), file)), SIDE, SIDE);
      const png = new PNG({ width: SIDE, height: SIDE, colorType: 2, inputColorType: 2, inputHasAlpha: false });
      png.data = Buffer.from(face.data);
      writeFileSync(join(folder, file), PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false }));
    }
    await verdict('samples', folder);
    // Two steps of ε 1 fool some of them only: face-api must side with mislead both ways.
    const weak = await verdict('samples, weak', folder, ['--eps', '1', '--iters', '2']);
    expect(weak.fooled).toBeGreaterThan(0);
    expect(weak.fooled).toBeLessThan(weak.attacked);
  });

  const real = existsSync(join(REAL_FACES, 'labels.csv'));
  if (!real) console.log(`${REAL_FACES} is absent: the real photographs' part is skipped`);
  it.skipIf(!real)(`${REAL_COUNT} boxed faces of the real photographs (../shared/realfaces)`, { timeout: 600_000 }, async () => {
    // A folder of links to the first boxed faces, with their rows of labels.csv.
    const folder = join(dir, 'realfaces');
    mkdirSync(folder);
    const [header, ...rows] = readFileSync(join(REAL_FACES, 'labels.csv'), 'utf8').trim().split(/\r?\n/);
    const boxed = rows.filter((row) => row.split(',').slice(3).every((cell) => cell !== '')).slice(0, REAL_COUNT);
    expect(boxed).toHaveLength(REAL_COUNT);
    for (const row of boxed) symlinkSync(join(REAL_FACES, row.split(',')[0]), join(folder, row.split(',')[0]));
    writeFileSync(join(folder, 'labels.csv'), [header, ...boxed].join('\n') + '\n');
    await verdict('real photographs', folder);
  });
});
