// The page end to end in Debian's Chromium: built with vite into a temporary folder, served by a
// static server of our own, driven with playwright-core. The page runs the same kernels and engine
// code as Node, so its numbers are checked against the Node engine's for the same inputs.
// Skipped (with the reason) only when Chromium is missing and cannot be installed.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import jpeg from 'jpeg-js';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FilterAttack } from '../../src/attacks/filter.js';
import { predictLogits, argmax, Net } from '../../src/core/net.js';
import { COMMON, METHODS, resolveOptions, runAttack, type AttackOptions, type AttackResult } from '../../src/attacks/index.js';
import type { Engine } from '../../src/core/engine.js';
import { crop, decodeImage, encodePng, type Image } from '../../src/formats/image.js';
import { checkArchitecture, readModel, writeModel, type Model } from '../../src/formats/model.js';
import { loadEngine } from '../../src/node/engine.js';
import { readNpy } from '../../src/formats/npy.js';
import { imageToInput, inputToImage } from '../../src/formats/preprocess.js';
import { importTfjs } from '../../src/formats/tfjs.js';
import { initialModel } from '../../src/train/train.js';
import { centred } from '../../web/src/crop.js';
import { sampleOrder } from '../../web/src/methods.js';
import { buildPage, ensureChromium, launch, openPage, ROOT, serve } from './harness.js';
import { buildNetwork, IMAGENET, LABELS, picture, saveNetwork } from '../support/tfjs-model.js';

const missing = ensureChromium();
if (missing) console.warn(`test/web: skipping the browser tests: Chromium is not available (${missing})`);

/** Screenshots, for people to look at (ignored by git). */
const OUTPUT = join(ROOT, 'test/web/output');
/** The default model and sample faces the page is built with. */
const WEIGHTS = join(ROOT, 'weights');
const TIMEOUT = 240_000;

/** What the page does for a run, done with the Node engine: the page's default crop (the centred
 *  largest rectangle of the model's proportions), the same steps, the final logits and DX. */
function nodeAttack(engine: Engine, model: Model, image: Image, target: number | undefined, steps: { iterations: number; lr: number; beta: number }[], region?: [number, number, number, number]) {
  const [h, w] = model.architecture.input;
  const r = region ?? Object.values(centred(image.width, image.height, h / w)) as [number, number, number, number];
  const x = imageToInput(crop(image, ...r), model.architecture);
  const mark = engine.mark();
  const net = new Net(engine, model);
  const before = Array.from(predictLogits(net, [x])[0]);
  const t = target ?? (argmax(before) === 0 ? 1 : 0);
  const attack = new FilterAttack(net, x, t);
  const start = performance.now();
  for (const s of steps) attack.run(s);
  const ms = performance.now() - start;
  const result = { x, before, target: t, logits: Array.from(attack.logits.toArray()), dx: attack.dx.toArray(), ms };
  attack.dispose();
  engine.release(mark);
  return result;
}

/** What the page does for a run of a method, done with the Node engine: runAttack on the page's
 *  default crop of `image` (or `region`), with the same options. */
function nodeSuite(engine: Engine, model: Model, image: Image, options: AttackOptions, region?: [number, number, number, number]): { x: Float32Array; result: AttackResult } {
  const [h, w] = model.architecture.input;
  const r = region ?? Object.values(centred(image.width, image.height, h / w)) as [number, number, number, number];
  const x = imageToInput(crop(image, ...r), model.architecture);
  const mark = engine.mark();
  try {
    const [result] = runAttack(new Net(engine, model), [x], options);
    return { x, result };
  } finally {
    engine.release(mark);
  }
}

const state = (page: Page) => page.locator('#results').getAttribute('data-state');
const dataset = (page: Page) => page.evaluate(() => ({ ...document.getElementById('results')!.dataset }));

async function waitForInput(page: Page): Promise<void> {
  await page.waitForFunction(() => {
    const results = document.getElementById('results')!;
    return results.dataset.before !== undefined && !(document.getElementById('run') as HTMLButtonElement).disabled;
  }, null, { timeout: 60_000 });
}

async function runAndWait(page: Page, button = '#run'): Promise<Record<string, string | undefined>> {
  await page.click(button);
  await page.waitForFunction(() => ['done', 'stopped', 'error'].includes(document.getElementById('results')!.dataset.state!), null, { timeout: 120_000 });
  const d = await dataset(page);
  if (d.state === 'error') throw new Error(`the page failed: ${await page.locator('#error').textContent()}`);
  return d;
}

function expectClose(actual: number[], expected: number[]): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((v, i) => expect(Math.abs(v - expected[i]), `logit ${i}: page ${v}, node ${expected[i]}`).toBeLessThanOrEqual(1e-5));
}

describe.skipIf(!!missing)('the page in Chromium', () => {
  let engine: Engine;
  let server: Server;
  let url: string;
  let context: BrowserContext;
  let page: Page;
  let model: Model;
  let sample: { name: string; image: Image };
  let dist: string;
  const temp = mkdtempSync(join(tmpdir(), 'mislead-web-test-'));
  let errors: string[] = [];
  const rates: Record<string, number> = {};

  beforeAll(async () => {
    engine = await loadEngine();
    model = readModel(readFileSync(join(WEIGHTS, 'default.safetensors')), 'default.safetensors');
    const first = readdirSync(join(WEIGHTS, 'samples')).filter((f) => f.endsWith('.png')).sort(sampleOrder)[0];
    sample = { name: first, image: decodeImage(readFileSync(join(WEIGHTS, 'samples', first)), first) };
    dist = buildPage();
    ({ url, server } = await serve(dist));
    ({ context, page, errors } = await openPage());
    mkdirSync(OUTPUT, { recursive: true });
  }, TIMEOUT);

  afterAll(async () => {
    await context?.close();
    server?.close();
    rmSync(temp, { recursive: true, force: true });
  });

  it('loads the default model and the first sample face, and classifies it as Node does', async () => {
    await page.goto(url);
    await waitForInput(page);
    expect(await page.locator('#samples .sample').count()).toBeGreaterThan(0);
    expect(await page.locator('#samples .sample').first().getAttribute('aria-pressed')).toBe('true');
    expect(await page.locator('#model-info').textContent()).toContain(model.architecture.labels.join(', '));
    const ref = nodeAttack(engine, model, sample.image, undefined, []);
    expectClose(JSON.parse((await dataset(page)).before!), ref.before);
    // The target defaults to the first label that is not the current class, as on the command line.
    expect(await page.locator('#target').inputValue()).toBe(String(ref.target));
  }, TIMEOUT);

  it("builds the method form from the library's registry: each method's fields, bounds and defaults", async () => {
    expect(await page.locator('#method option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value))).toEqual(METHODS.map((m) => m.id));
    for (const m of METHODS) {
      await page.selectOption('#method', m.id);
      expect(await page.locator('#method option:checked').textContent()).toBe(m.name);
      expect(await page.locator('#method-summary').textContent()).toBe(m.summary);
      expect(await page.locator('#method-paper').textContent()).toBe(m.paper);
      expect(await page.locator('#target option[value="-1"]').count()).toBe(m.target === 'optional' ? 1 : 0);
      const fields = await page.locator('#params .field').evaluateAll((divs) =>
        divs.map((d) => {
          const input = d.querySelector('input, select') as HTMLInputElement | HTMLSelectElement;
          const label = d.querySelector('label')!.textContent!.trim();
          if (input instanceof HTMLSelectElement) return { key: input.name, label, kind: 'choice', value: input.value, choices: Array.from(input.options, (o) => o.value) };
          if (input.type === 'checkbox') return { key: input.name, label, kind: 'boolean', value: input.checked };
          if (input.type === 'text') return { key: input.name, label, kind: 'list', value: input.value };
          return { key: input.name, label, kind: input.step === '1' ? 'int' : 'float', value: input.value, placeholder: input.placeholder, min: input.min, max: input.max };
        }),
      );
      // The library's defaults, derived ones included (eps from the norm, the step from eps).
      const resolved = resolveOptions({ method: m.id } as AttackOptions, 1000) as unknown as Record<string, number | string | boolean>;
      // A page for one picture has no batch size; it keeps the filter's result as the float X + DX.
      // Its order: the registry's, the checkboxes last.
      const all = [...m.parameters, ...COMMON.filter((p) => p.key !== 'batchSize')];
      const expected = [...all.filter((p) => p.kind !== 'boolean'), ...all.filter((p) => p.kind === 'boolean')].map((p) => {
        const base = { key: p.key, label: p.label, kind: p.kind };
        if (p.kind === 'choice') return { ...base, value: p.default, choices: p.choices!.map((c) => c.value) };
        if (p.kind === 'boolean') return { ...base, value: m.id === 'filter' && p.key === 'quantize' ? false : p.default };
        if (p.kind === 'list') return { ...base, value: resolved[p.key] };
        // The page's filter keeps its promise of a change a person does not see: β 0.5 (the tutorial's second step).
        if (m.id === 'filter' && p.key === 'beta') return { ...base, value: '0.5', placeholder: '0.5', min: String(p.min), max: String(p.max) };
        const value = resolved[p.key] as number;
        // A derived default that follows other numbers (the step) is left blank: the library's value is the placeholder.
        const auto = p.key === 'step';
        return { ...base, value: auto ? '' : String(p.default ?? value), placeholder: auto ? `auto: ${+value.toPrecision(4)}` : String(value), min: String(p.min), max: String(p.max) };
      });
      expect(fields, m.id).toEqual(expected);
    }
    // A value out of the library's bounds is refused by its validator, at the field.
    await page.selectOption('#method', 'pgd');
    await page.fill('#param-eps', '1000001');
    await page.click('#run');
    expect(await page.locator('#error').textContent()).toBe('PGD cannot run with these numbers: pgd: eps (grey levels) must be a number ≥ 0 and at most 1000000, got 1000001');
    expect(await page.locator('#param-eps').evaluate((i) => (i as HTMLInputElement).validationMessage)).toMatch(/at most 1000000/);
    expect(await state(page)).toBe('idle');
    await page.selectOption('#method', 'filter');
    expect(await page.locator('#target').inputValue()).toBe(String(nodeAttack(engine, model, sample.image, undefined, []).target));
  }, TIMEOUT);

  it('runs the default attack: the class flips to the target with a change a person does not see, with the Node engine\'s logits', async () => {
    const ref = nodeAttack(engine, model, sample.image, undefined, [{ iterations: 1000, lr: 0.1, beta: 0.5 }]);
    // The page runs the filter method of the library, as the float X + DX (quantize: false), with β 0.5.
    const { result } = nodeSuite(engine, model, sample.image, { method: 'filter', target: ref.target, quantize: false, beta: 0.5 });
    const d = await runAndWait(page);
    expect(d.state).toBe('done');
    expect(d.iterations).toBe('1000');
    const logits = JSON.parse(d.logits!) as number[];
    expect(logits).toEqual(result.after.logits);
    expectClose(logits, ref.logits);
    expect(argmax(logits)).toBe(ref.target);
    expect(d.label).toBe(model.architecture.labels[ref.target]);
    expect(await page.locator('#adversarial-caption').textContent()).toContain(model.architecture.labels[ref.target]);
    expect(await page.locator('#stat-rate').textContent()).toMatch(/^[\d,]+ it\/s$/);
    // The promise: tiny changes (β 0 moves pixels by 100 grey levels and more), and a loss that
    // never rounds to 0, so that its curve is drawn.
    expect(Number(d.linf)).toBeLessThan(32);
    expect(Number(d.psnr)).toBeGreaterThan(35);
    expect(await page.locator('#loss-note').isHidden()).toBe(true);
    rates.browser = Number(d.rate);
    rates.node = 1000 / (ref.ms / 1000);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(OUTPUT, 'desktop.png'), fullPage: true });

    // The downloads are the library's result for the same run.
    const npy = await download(page, '#download-npy', 'perturbation.npy');
    const dx = readNpy(npy, 'perturbation.npy');
    expect(dx.shape).toEqual(model.architecture.input);
    expect(dx.data).toEqual(result.perturbation);
    const png = decodeImage(await download(page, '#download-png', 'adversarial.png'), 'adversarial.png');
    const expected = inputToImage(ref.x.map((v, i) => v + ref.dx[i]), model.architecture);
    expect(inputToImage(result.adversarial, model.architecture).data).toEqual(expected.data);
    expect(png.width).toBe(expected.width);
    expect(Array.from(png.data).filter((_, i) => i % 3 === 0)).toEqual(Array.from(expected.data));
  }, TIMEOUT);

  it('shows Run and the three pictures together on a desktop (1280×800, 1920×1080), wherever the controls are scrolled; on a phone, Run at hand and the pictures brought into view', async () => {
    // A run shows the results card from its top, wherever it had been scrolled (to the downloads).
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.fill('#param-iterations', '300');
    await runAndWait(page);
    for (const [width, height] of [[1280, 800], [1920, 1080]]) {
      await page.setViewportSize({ width, height });
      for (const where of ['top', 'attack', 'bottom'] as const) {
        await scrollTo(page, where);
        for (const id of ['#run', '#tutorial', '#stop', '#status', '#original', '#filter', '#adversarial']) {
          expect(await inView(page, id), `${id} at ${width}×${height}, scrolled to the ${where}`).toBe(true);
        }
      }
      await scrollTo(page, 'top');
      await page.screenshot({ path: join(OUTPUT, `desktop-${width}x${height}.png`) });
    }
    // A phone: Run, Tutorial and Stop in a bar along the bottom; a run brings the pictures into view above it.
    await page.setViewportSize({ width: 390, height: 844 });
    await scrollTo(page, 'top');
    for (const id of ['#run', '#tutorial', '#stop']) expect(await inView(page, id), id).toBe(true);
    await runAndWait(page);
    await page.waitForFunction(() => document.getElementById('adversarial')!.getBoundingClientRect().top >= 0, null, { timeout: 10_000 });
    await page.waitForTimeout(600);
    for (const id of ['#run', '#adversarial']) expect(await inView(page, id), `${id} on a phone after a run`).toBe(true);
    await page.screenshot({ path: join(OUTPUT, 'phone-390x844.png') });
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.fill('#param-iterations', '1000');
  }, TIMEOUT);

  it('refuses a target the picture already has: nothing to do, said at the target', async () => {
    const current = argmax(JSON.parse((await dataset(page)).before!));
    const label = model.architecture.labels[current];
    await page.selectOption('#target', String(current));
    for (const button of ['#run', '#tutorial']) {
      await page.click(button);
      await page.waitForFunction(() => !document.getElementById('target-error')!.hidden, null, { timeout: 10_000 });
      expect(await page.locator('#target-error').textContent()).toBe(`Already “${label}”: nothing to do. The network already says so for this picture: choose another target.`);
      expect(await inView(page, '#target-error')).toBe(true);
      expect(await page.locator('#status').textContent()).toBe(`Not run: the picture is already “${label}”.`);
      expect(['idle', 'done']).toContain(await state(page));
      expect(await page.locator('#run').isEnabled()).toBe(true);
    }
    // Another target clears it.
    await page.selectOption('#target', String(current === 0 ? 1 : 0));
    expect(await page.locator('#target-error').isHidden()).toBe(true);
  }, TIMEOUT);

  it('stays responsive while it runs, and Stop stops it', async () => {
    const workers = page.workers();
    await page.fill('#param-iterations', '1000000');
    await page.click('#run');
    await page.waitForFunction(() => Number((document.getElementById('stat-iterations')!.textContent ?? '0').replace(/,/g, '').split(' ')[0]) > 0, null, { timeout: 30_000 });
    // The main thread answers quickly: the optimisation is in the worker.
    const delays = await page.evaluate(async () => {
      const out: number[] = [];
      for (let i = 0; i < 10; i++) {
        const t = performance.now();
        await new Promise((r) => setTimeout(r, 0));
        out.push(performance.now() - t);
      }
      return out;
    });
    expect(Math.max(...delays)).toBeLessThan(250);
    expect(await state(page)).toBe('running');
    expect(await page.locator('#run').isDisabled()).toBe(true);
    const stopped = Date.now();
    await page.click('#stop');
    await page.waitForFunction(() => document.getElementById('results')!.dataset.state === 'stopped', null, { timeout: 10_000 });
    expect(Date.now() - stopped).toBeLessThan(5_000);
    const d = await dataset(page);
    expect(Number(d.iterations)).toBeLessThan(1_000_000);
    expect(await page.locator('#status').textContent()).toMatch(/^Stopped after/);
    expect(await page.locator('#downloads').isVisible()).toBe(true);
    // The same worker, ready at once for the next run.
    expect(page.workers()).toEqual(workers);
    expect(await page.locator('#run').isEnabled()).toBe(true);
    await page.fill('#param-iterations', '1000');
  }, TIMEOUT);

  it("replays the tutorial's two steps, showing each, with the Node engine's logits", async () => {
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { stages: string[] }).stages = seen;
      new MutationObserver(() => seen.push(document.getElementById('stage')!.textContent ?? '')).observe(document.getElementById('stage')!, { childList: true, characterData: true, subtree: true });
    });
    const ref = nodeAttack(engine, model, sample.image, undefined, [{ iterations: 1000, lr: 0.1, beta: 0 }, { iterations: 1000, lr: 0.1, beta: 0.5 }]);
    const d = await runAndWait(page, '#tutorial');
    expect(d.state).toBe('done');
    expect(d.iterations).toBe('2000');
    // FilterAttack continuing one DX, as in Node: the same numbers to the bit.
    expect(JSON.parse(d.logits!)).toEqual(ref.logits);
    const stages = await page.evaluate(() => (window as unknown as { stages: string[] }).stages);
    expect(stages.some((s) => s.startsWith('Step 1 of 2'))).toBe(true);
    expect(stages.some((s) => s.startsWith('Step 2 of 2'))).toBe(true);
    // It ends with both steps side by side, as the tutorial's figure: step 1's filter and picture
    // (β = 0, the target reached with a large change) beside step 2's (β = 0.5), all in view.
    const target = model.architecture.labels[ref.target];
    expect(await page.locator('.panel.step').evaluateAll((ps) => ps.map((p) => p.querySelector('strong')!.textContent))).toEqual(['Noise filter, β = 0', 'Adversarial, β = 0']);
    expect(await page.locator('#filter-title').textContent()).toBe('Noise filter, β = 0.5');
    expect(await page.locator('#adversarial-title').textContent()).toBe('Adversarial, β = 0.5');
    expect(await page.locator('#step1-adversarial-caption').textContent()).toMatch(new RegExp(`^${target} `));
    const linf = (caption: string | null) => Number(/±([\d.]+) grey levels/.exec(caption ?? '')![1]);
    expect(linf(await page.locator('#step1-filter-caption').textContent())).toBeGreaterThan(2 * linf(await page.locator('#filter-caption').textContent()));
    await page.setViewportSize({ width: 1280, height: 800 });
    await scrollTo(page, 'top');
    for (const id of ['#run', '#original', '#step1-filter', '#step1-adversarial', '#filter', '#adversarial']) expect(await inView(page, id), id).toBe(true);
    await page.screenshot({ path: join(OUTPUT, 'desktop-tutorial.png') });
    await page.setViewportSize({ width: 1280, height: 900 });
  }, TIMEOUT);

  it('shows an upload error next to the picture, in view, and says so in the status line', async () => {
    await page.setViewportSize({ width: 1280, height: 800 });
    await scrollTo(page, 'bottom');
    const bad = join(temp, 'not-a-picture.png');
    writeFileSync(bad, 'hello');
    await page.setInputFiles('#photo', bad);
    await page.waitForFunction(() => !document.getElementById('picture-error')!.hidden, null, { timeout: 30_000 });
    expect(await page.locator('#picture-error').textContent()).toMatch(/^Could not read not-a-picture\.png: /);
    await page.waitForTimeout(300);
    expect(await inView(page, '#picture-error')).toBe(true);
    expect(await page.locator('#status').textContent()).toBe(`not-a-picture.png was not loaded: still using ${sample.name}. See the message under the picture.`);
    await page.screenshot({ path: join(OUTPUT, 'desktop-upload-error.png') });
    await page.setViewportSize({ width: 1280, height: 900 });
  }, TIMEOUT);

  it('takes an uploaded photo with a crop box, as --crop does', async () => {
    // A 120×80 colour picture: the sample face inside a coloured frame.
    const [h, w] = [80, 120];
    const data = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set([(x * 2) & 255, (y * 3) & 255, 90], (y * w + x) * 3);
    const face = sample.image;
    for (let y = 0; y < Math.min(face.height, h); y++) {
      for (let x = 0; x < Math.min(face.width, w); x++) data.set(face.data.subarray((y * face.width + x) * 3, (y * face.width + x) * 3 + 3), ((y + 10) % h * w + x + 30) * 3);
    }
    const photo: Image = { width: w, height: h, channels: 3, data };
    const file = join(temp, 'photo.png');
    writeFileSync(file, encodePng(photo));
    await page.setInputFiles('#photo', file);
    await page.waitForFunction(() => document.getElementById('picture-name')!.textContent!.startsWith('photo.png'), null, { timeout: 30_000 });
    await waitForInput(page);
    // The crop box starts as the centred square.
    expect(await Promise.all(['x', 'y', 'w', 'h'].map((k) => page.inputValue(`#crop-${k}`)))).toEqual(['20', '0', '80', '80']);
    // Typed numbers, then the keyboard on the box.
    for (const [k, v] of [['w', '60'], ['h', '60'], ['x', '25'], ['y', '5']]) {
      await page.fill(`#crop-${k}`, v);
      await page.press(`#crop-${k}`, 'Enter');
    }
    await page.focus('#crop-box');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowDown');
    expect(await Promise.all(['x', 'y', 'w', 'h'].map((k) => page.inputValue(`#crop-${k}`)))).toEqual(['26', '6', '60', '60']);
    await page.waitForFunction(() => document.getElementById('results')!.dataset.crop === '26,6,60,60', null, { timeout: 30_000 });
    const ref = nodeAttack(engine, model, decodeImage(readFileSync(file), 'photo.png'), undefined, [], [26, 6, 60, 60]);
    expectClose(JSON.parse((await dataset(page)).before!), ref.before);

    // Dragging the box with the mouse moves it by as many picture pixels as it is dragged.
    const frame = (await page.locator('#frame').boundingBox())!;
    const box = (await page.locator('#crop-box').boundingBox())!;
    const perPixel = frame.width / w;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2 - 10 * perPixel, box.y + box.height / 2 + 4 * perPixel, { steps: 5 });
    await page.mouse.up();
    expect(await Promise.all(['x', 'y', 'w', 'h'].map((k) => page.inputValue(`#crop-${k}`)))).toEqual(['16', '10', '60', '60']);

    // A JPEG goes through the same decoder as on the command line.
    const rgba = new Uint8Array(w * h * 4);
    for (let i = 0; i < w * h; i++) rgba.set([...data.subarray(3 * i, 3 * i + 3), 255], 4 * i);
    const jpegFile = join(temp, 'photo.jpg');
    writeFileSync(jpegFile, jpeg.encode({ data: rgba, width: w, height: h }, 90).data);
    await page.setInputFiles('#photo', jpegFile);
    await page.waitForFunction(() => document.getElementById('results')!.dataset.crop === '20,0,80,80', null, { timeout: 30_000 });
    const refJpeg = nodeAttack(engine, model, decodeImage(readFileSync(jpegFile), 'photo.jpg'), undefined, [], [20, 0, 80, 80]);
    expectClose(JSON.parse((await dataset(page)).before!), refJpeg.before);
    // Back to the PNG, cropped as before, for the next test.
    await page.setInputFiles('#photo', file);
    await page.waitForFunction(() => document.getElementById('results')!.dataset.crop === '20,0,80,80' && document.getElementById('picture-name')!.textContent!.startsWith('photo.png'), null, { timeout: 30_000 });
    for (const [k, v] of [['w', '60'], ['h', '60'], ['x', '26'], ['y', '6']]) {
      await page.fill(`#crop-${k}`, v);
      await page.press(`#crop-${k}`, 'Enter');
    }
    await page.waitForFunction(() => document.getElementById('results')!.dataset.crop === '26,6,60,60', null, { timeout: 30_000 });
  }, TIMEOUT);

  it('applies the four crop numbers together, not each against the old box', async () => {
    const file = join(temp, 'wide.png');
    writeFileSync(file, encodePng({ width: 1200, height: 900, channels: 3, data: new Uint8Array(1200 * 900 * 3).map((_, i) => (i * 7) & 255) }));
    await page.setInputFiles('#photo', file);
    await page.waitForFunction(() => document.getElementById('results')!.dataset.crop === '150,0,900,900', null, { timeout: 30_000 });
    for (const [k, v] of [['x', '400'], ['y', '250'], ['w', '400'], ['h', '400']]) {
      await page.click(`#crop-${k}`);
      await page.fill(`#crop-${k}`, v);
      // Moving from one field to the next changes nothing yet.
      expect(await page.inputValue(`#crop-${k}`)).toBe(v);
    }
    expect(await page.evaluate(() => document.getElementById('results')!.dataset.crop)).toBe('150,0,900,900');
    await page.press('#crop-h', 'Enter');
    await page.waitForFunction(() => document.getElementById('results')!.dataset.crop === '400,250,400,400', null, { timeout: 30_000 });
    // Leaving the fields applies them too; a box too large is kept inside the picture.
    await page.fill('#crop-x', '1000');
    await page.focus('#crop-box');
    await page.waitForFunction(() => document.getElementById('results')!.dataset.crop === '800,250,400,400', null, { timeout: 30_000 });
    // Back to the photo of the next tests, cropped as they expect.
    await page.setInputFiles('#photo', join(temp, 'photo.png'));
    await page.waitForFunction(() => document.getElementById('picture-name')!.textContent!.startsWith('photo.png') && document.getElementById('results')!.dataset.crop === '20,0,80,80', null, { timeout: 30_000 });
    for (const [k, v] of [['w', '60'], ['h', '60'], ['x', '26'], ['y', '6']]) await page.fill(`#crop-${k}`, v);
    await page.press('#crop-y', 'Enter');
    await page.waitForFunction(() => document.getElementById('results')!.dataset.crop === '26,6,60,60', null, { timeout: 30_000 });
  }, TIMEOUT);

  it('takes a file dropped anywhere on the page, and refuses one during a run without leaving the page', async () => {
    const png = readFileSync(join(WEIGHTS, 'samples', sample.name));
    const drop = (selector: string, name: string) =>
      page.evaluate(([selector, name, bytes]) => {
        const data = new DataTransfer();
        data.items.add(new File([new Uint8Array(bytes as number[])], name as string, { type: 'image/png' }));
        const over = new DragEvent('dragover', { dataTransfer: data, bubbles: true, cancelable: true });
        const drop = new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true });
        const target = document.querySelector(selector as string)!;
        target.dispatchEvent(over);
        target.dispatchEvent(drop);
        return [over.defaultPrevented, drop.defaultPrevented];
      }, [selector, name, Array.from(png)] as const);
    // On the results card, far from the picture's drop zone: taken as the picture.
    expect(await drop('#bars', 'dropped.png')).toEqual([true, true]);
    await page.waitForFunction(() => document.getElementById('picture-name')!.textContent!.startsWith('dropped.png'), null, { timeout: 30_000 });
    await waitForInput(page);
    // During a run: refused, and the browser does not open the file either.
    await page.fill('#param-iterations', '1000000');
    await page.click('#run');
    await page.waitForFunction(() => document.getElementById('results')!.dataset.state === 'running', null, { timeout: 30_000 });
    expect(await drop('#adversarial', 'during.png')).toEqual([true, true]);
    expect(await page.locator('#status').textContent()).toMatch(/^during\.png was not taken: a run is under way/);
    expect(await page.locator('#picture-name').textContent()).toMatch(/^dropped\.png/);
    await page.click('#stop');
    await page.waitForFunction(() => document.getElementById('results')!.dataset.state === 'stopped', null, { timeout: 10_000 });
    await page.fill('#param-iterations', '1000');
    // Back to the photo of the next tests.
    await page.setInputFiles('#photo', join(temp, 'photo.png'));
    await page.waitForFunction(() => document.getElementById('picture-name')!.textContent!.startsWith('photo.png'), null, { timeout: 30_000 });
    for (const [k, v] of [['w', '60'], ['h', '60'], ['x', '26'], ['y', '6']]) await page.fill(`#crop-${k}`, v);
    await page.press('#crop-y', 'Enter');
    await page.waitForFunction(() => document.getElementById('results')!.dataset.crop === '26,6,60,60', null, { timeout: 30_000 });
  }, TIMEOUT);

  it('uses an uploaded model (any labels, RGB input) and refuses a broken one', async () => {
    const architecture = checkArchitecture({
      input: [32, 32, 3],
      labels: ['cat', 'dog', 'bird'],
      preprocess: { offset: 127.5, scale: 127.5 },
      layers: [
        { type: 'conv2d', name: 'c1', filters: 4, kernel: 3, stride: 1, padding: 'same', activation: 'relu' },
        { type: 'maxpool', size: 2, stride: 2, padding: 'valid' },
        { type: 'flatten' },
        { type: 'dense', name: 'fc', units: 3 },
      ],
    });
    const own = initialModel(architecture, 3);
    const file = join(temp, 'rgb-three.safetensors');
    writeFileSync(file, writeModel(own));
    await page.setInputFiles('#model-file', file);
    await page.waitForFunction(() => document.getElementById('model-info')!.textContent!.includes('cat, dog, bird'), null, { timeout: 30_000 });
    expect(await page.isChecked('#model-own')).toBe(true);
    expect(await page.locator('#target option').allTextContents()).toEqual(['cat', 'dog', 'bird']);
    await waitForInput(page);
    await page.selectOption('#target', { label: 'bird' });
    await page.fill('#param-iterations', '50');
    const ref = nodeAttack(engine, own, decodeImage(readFileSync(join(temp, 'photo.png')), 'photo.png'), 2, [{ iterations: 50, lr: 0.1, beta: 0.5 }], [26, 6, 60, 60]);
    const d = await runAndWait(page);
    expectClose(JSON.parse(d.before!), ref.before);
    expectClose(JSON.parse(d.logits!), ref.logits);
    await page.setViewportSize({ width: 390, height: 844 });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(OUTPUT, 'phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });

    const broken = join(temp, 'broken.safetensors');
    writeFileSync(broken, new Uint8Array([1, 2, 3]));
    await page.setInputFiles('#model-file', broken);
    await page.waitForFunction(() => !document.getElementById('model-error')!.hidden, null, { timeout: 30_000 });
    expect(await page.locator('#model-error').textContent()).toMatch(/broken\.safetensors: not a valid safetensors file/);
    expect(await inView(page, '#model-error')).toBe(true);
    expect(await page.locator('#status').textContent()).toBe('broken.safetensors was not loaded: still using rgb-three.safetensors. See the message under the model.');
    expect(await page.locator('#model-info').textContent()).toContain('cat, dog, bird');
    expect(await page.locator('#run').isEnabled()).toBe(true);

    // Back to the default model.
    await page.check('#model-default');
    await page.waitForFunction(() => document.getElementById('model-info')!.textContent!.startsWith('default.safetensors'), null, { timeout: 30_000 });
  }, TIMEOUT);

  it("runs PGD (eps 8, untargeted) from the attack suite, with the Node engine's runAttack result", async () => {
    await page.click('#samples .sample >> nth=0');
    await waitForInput(page);
    await page.selectOption('#method', 'pgd');
    // The suite's defaults are the library's: untargeted, L∞, eps 8, step eps/8, 40 iterations, 1 restart.
    expect(await page.locator('#target').inputValue()).toBe('-1');
    expect(await page.locator('#param-norm').inputValue()).toBe('linf');
    expect(await page.locator('#param-iterations').inputValue()).toBe('40');
    expect(await page.locator('#param-step').getAttribute('placeholder')).toBe('auto: 1');
    await page.selectOption('#param-norm', 'l2');
    expect(await page.locator('#param-eps').inputValue()).toBe('128');
    await page.selectOption('#param-norm', 'linf');
    await page.fill('#param-eps', '8');
    const { x, result: ref } = nodeSuite(engine, model, sample.image, { method: 'pgd', norm: 'linf', eps: 8, iterations: 40, restarts: 1 });
    const d = await runAndWait(page);
    expect(d.state).toBe('done');
    expect(d.method).toBe('pgd');
    expectClose(JSON.parse(d.before!), ref.before.logits);
    expectClose(JSON.parse(d.logits!), ref.after.logits);
    expect(d.success).toBe(String(ref.success));
    expect(Number(d.iterations)).toBe(ref.iterations);
    expect(Number(d.linf)).toBe(ref.norms.linf_pixels);
    expect(Number(d.linf)).toBeLessThanOrEqual(8);
    expect(Math.abs(Number(d.l2) - ref.norms.l2_pixels)).toBeLessThan(1e-6);
    expect(Math.abs(Number(d.psnr) - ref.psnr)).toBeLessThan(1e-6);
    expect(Math.abs(Number(d.ssim) - ref.ssim)).toBeLessThan(1e-6);
    expect(await page.locator('#stat-psnr').textContent()).toMatch(/^\d+\.\d\d dB$/);
    expect(await page.locator('#stat-l2').textContent()).toMatch(/ grey levels$/);
    expect(await page.locator('#status').textContent()).toMatch(/^Done: /);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(OUTPUT, 'desktop-pgd.png'), fullPage: true });

    // The downloads are the result as runAttack gives it: the adversarial on the 8-bit grid.
    const png = decodeImage(await download(page, '#download-png', 'adversarial.png'), 'adversarial.png');
    expect(Array.from(png.data).filter((_, i) => i % 3 === 0)).toEqual(Array.from(inputToImage(ref.adversarial, model.architecture).data));
    const npy = readNpy(await download(page, '#download-npy', 'perturbation.npy'), 'perturbation.npy');
    expect(npy.data).toEqual(ref.perturbation);
    expect(ref.adversarial.map((v, i) => v - x[i])).toEqual(ref.perturbation);
  }, TIMEOUT);

  it('shows FGSM as the one step it is: no loss curve, its time rather than a speed', async () => {
    await page.selectOption('#method', 'fgsm');
    const d = await runAndWait(page);
    expect(d.state).toBe('done');
    expect(await page.locator('#loss-section').isHidden()).toBe(true);
    expect(await page.locator('#one-step').textContent()).toBe('FGSM takes a single step: there is no loss curve to draw.');
    expect(await page.locator('#stat-iterations').textContent()).toBe('1');
    expect(await page.locator('#stat-rate-title').textContent()).toBe('Time');
    expect(await page.locator('#stat-rate').textContent()).toMatch(/^[\d,]+ ms$/);
    await page.selectOption('#method', 'pgd');
  }, TIMEOUT);

  it('lines up the inputs of parameters side by side, whatever their labels', async () => {
    for (const m of METHODS) {
      await page.selectOption('#method', m.id);
      const rows = await page.locator('#params .field:not(.check) :is(input, select)').evaluateAll((inputs) => inputs.map((i) => i.getBoundingClientRect()).map((r) => ({ x: r.x, y: r.y, bottom: r.bottom })));
      for (let i = 1; i < rows.length; i++) if (rows[i].x > rows[i - 1].x) expect(rows[i].y, `${m.id}: field ${i}`).toBe(rows[i - 1].y);
    }
    await page.selectOption('#method', 'pgd');
  }, TIMEOUT);

  it('stops a long C&W run mid-way in the same worker, and runs again afterwards', async () => {
    const workers = page.workers();
    expect(workers).toHaveLength(1);
    await page.selectOption('#method', 'cw');
    await page.fill('#param-steps', '1000000');
    await page.click('#run');
    // Live progress: the iterations, the loss and the class bars move while it runs.
    await page.waitForFunction(() => Number((document.getElementById('stat-iterations')!.textContent ?? '0').replace(/,/g, '').split(' ')[0]) > 0, null, { timeout: 30_000 });
    expect(await state(page)).toBe('running');
    expect(await page.locator('#stat-loss').textContent()).not.toBe('–');
    expect(await page.locator('#bars .bar-value').first().textContent()).toMatch(/%$/);
    expect(await page.locator('#stage').textContent()).toMatch(/^Binary-search step 1 of 5 · iteration [\d,]+ of 5,000,000$/);
    const stopped = Date.now();
    await page.click('#stop');
    await page.waitForFunction(() => document.getElementById('results')!.dataset.state === 'stopped', null, { timeout: 10_000 });
    expect(Date.now() - stopped).toBeLessThan(3_000);
    expect(await page.locator('#status').textContent()).toMatch(/^Stopped after [\d,]+ iterations in [\d.]+ s\. The network says “(man|woman)” for the picture as it was then/);
    expect(Number((await dataset(page)).iterations)).toBeGreaterThan(0);
    // What it had got to can be downloaded, and the engine is the same one: Run is back at once.
    expect(await page.locator('#downloads').isVisible()).toBe(true);
    expect(page.workers()).toEqual(workers);
    expect(await page.locator('#run').isEnabled()).toBe(true);
    await page.fill('#param-steps', '100');
    const { result: ref } = nodeSuite(engine, model, sample.image, { method: 'cw' });
    const d = await runAndWait(page);
    expect(d.state).toBe('done');
    expectClose(JSON.parse(d.logits!), ref.after.logits);
    expect(d.success).toBe(String(ref.success));
    expect(await page.locator('#error').isHidden()).toBe(true);
  }, TIMEOUT);

  it('takes a model imported from TensorFlow.js (RGB graph, per-channel preprocessing, softmax): its labels, its colour pictures at its size, a PGD run as in Node', async () => {
    await tf.setBackend('cpu');
    const saved = await saveNetwork(buildNetwork(1));
    const imported = importTfjs(saved.json, () => saved.weights, 'model.json', { labels: LABELS, preprocess: IMAGENET });
    const file = join(temp, 'imported.safetensors');
    writeFileSync(file, writeModel(imported));
    const image = picture(305, 48, 40);
    writeFileSync(join(temp, 'colour.png'), encodePng(image));
    await page.setInputFiles('#photo', join(temp, 'colour.png'));
    await page.waitForFunction(() => document.getElementById('picture-name')!.textContent!.startsWith('colour.png'), null, { timeout: 30_000 });
    await page.setInputFiles('#model-file', file);
    await page.waitForFunction(() => document.getElementById('model-info')!.textContent!.includes('cat, dog, bird'), null, { timeout: 30_000 });
    expect(await page.locator('#model-info').textContent()).toMatch(/^imported\.safetensors: labels cat, dog, bird; input 32×32×3 \(colour\); [\d,]+ weights\. Its final softmax is left out: attacks work on the logits before it\.$/);
    expect(await page.locator('#target option').allTextContents()).toEqual(expect.arrayContaining(LABELS));
    await waitForInput(page);

    // The picture as the model sees it: the centred square, in colour, at 32×32.
    const { x, result: ref } = nodeSuite(engine, imported, image, { method: 'pgd', eps: 16, target: 1 });
    expectClose(JSON.parse((await dataset(page)).before!), ref.before.logits);
    const original = await canvas(page, 'original');
    expect([original.width, original.height]).toEqual([32, 32]);
    expect(original.rgb).toEqual(Array.from(inputToImage(x, imported.architecture).data));
    expect(original.rgb.filter((v, i) => i % 3 === 0 && Math.abs(v - original.rgb[i + 1]) > 32).length).toBeGreaterThan(100);

    // Targeted PGD toward dog with eps 16 grey levels succeeds, with Node's numbers.
    await page.selectOption('#method', 'pgd');
    await page.selectOption('#param-norm', 'linf');
    await page.selectOption('#target', { label: 'dog' });
    await page.fill('#param-eps', '16');
    await page.fill('#param-iterations', '40');
    const d = await runAndWait(page);
    expect(d.state).toBe('done');
    expect(ref.success).toBe(true);
    expect(d.success).toBe('true');
    expect(d.label).toBe('dog');
    expectClose(JSON.parse(d.logits!), ref.after.logits);
    expect(Number(d.linf)).toBe(ref.norms.linf_pixels);
    expect(Number(d.linf)).toBeLessThanOrEqual(16);
    const adversarial = await canvas(page, 'adversarial');
    expect([adversarial.width, adversarial.height]).toEqual([32, 32]);
    expect(adversarial.rgb).toEqual(Array.from(inputToImage(ref.adversarial, imported.architecture).data));
    expect((await canvas(page, 'filter')).width).toBe(32);
    const png = await download(page, '#download-png', 'adversarial.png');
    expect(png[25]).toBe(2); // an RGB PNG
    expect(Array.from(decodeImage(png, 'adversarial.png').data)).toEqual(adversarial.rgb);
    const npy = readNpy(await download(page, '#download-npy', 'perturbation.npy'), 'perturbation.npy');
    expect(npy.shape).toEqual([32, 32, 3]);
    expect(npy.data).toEqual(ref.perturbation);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(OUTPUT, 'desktop-imported.png'), fullPage: true });
  }, TIMEOUT);

  it('opened from disk (file://), says that it has to be served', async () => {
    const local = await context.newPage();
    await local.goto(`file://${join(dist, 'index.html')}`);
    expect(await local.locator('#file-notice').isVisible()).toBe(true);
    expect(await local.locator('#file-notice').textContent()).toMatch(/has to be served[\s\S]*npm run preview:web/);
    expect(await local.locator('#status').textContent()).toBe('Not running: this page has to be served (see the note at the top).');
    await local.screenshot({ path: join(OUTPUT, 'file-url.png') });
    await local.close();
    // Served, the note stays hidden.
    expect(await page.locator('#file-notice').isHidden()).toBe(true);
  }, TIMEOUT);

  it('reports no page errors, and the iteration rate', () => {
    expect(errors.filter((e) => !/favicon/.test(e))).toEqual([]);
    console.log(`iteration rate, default attack (1000 iterations): browser ${Math.round(rates.browser)} it/s, Node ${Math.round(rates.node)} it/s`);
  });
});

describe.skipIf(!!missing)('the page built without weights/', () => {
  let server: Server;
  let context: BrowserContext;
  const empty = mkdtempSync(join(tmpdir(), 'mislead-no-weights-'));

  afterAll(async () => {
    await context?.close();
    server?.close();
    rmSync(empty, { recursive: true, force: true });
  });

  it('says that the default model and the samples are missing, and works with uploaded ones', async () => {
    const served = await serve(buildPage(empty));
    server = served.server;
    context = await launch({ width: 1024, height: 800 });
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(served.url);
    await page.waitForFunction(() => /No default model/.test(document.getElementById('model-info')!.textContent!), null, { timeout: 60_000 });
    expect(await page.locator('#samples-missing').textContent()).toMatch(/No sample faces in this build \(weights\/samples\/\*\.png was missing/);
    expect(await page.isDisabled('#model-default')).toBe(true);
    expect(await page.isDisabled('#run')).toBe(true);
    await page.setInputFiles('#model-file', join(WEIGHTS, 'default.safetensors'));
    await page.waitForFunction(() => document.getElementById('model-info')!.textContent!.startsWith('default.safetensors'), null, { timeout: 30_000 });
    expect(await page.locator('#status').textContent()).toMatch(/^Model default\.safetensors loaded\. Now pick or upload a picture\.$/);
    expect(await page.isDisabled('#run')).toBe(true);
    const face = readdirSync(join(WEIGHTS, 'samples')).find((f) => f.endsWith('.png'))!;
    await page.setInputFiles('#photo', join(WEIGHTS, 'samples', face));
    await waitForInput(page);
    expect(await page.isEnabled('#run')).toBe(true);
  }, TIMEOUT);
});

/** Whether the element is wholly inside the window, and above a bar fixed along its bottom (a phone's),
 *  to the pixel: the window scrolls by whole pixels, an element's edges may fall between them. */
async function inView(page: Page, selector: string): Promise<boolean> {
  return page.locator(selector).evaluate((e) => {
    const r = e.getBoundingClientRect();
    const [left, top, right, bottom] = [r.left, r.top, r.right, r.bottom].map(Math.round);
    const bar = document.getElementById('action-bar')!;
    const covered = getComputedStyle(bar).position === 'fixed' && !bar.contains(e) ? bar.getBoundingClientRect().top : innerHeight;
    return r.width > 0 && r.height > 0 && left >= 0 && top >= 0 && right <= innerWidth && bottom <= Math.min(innerHeight, covered);
  });
}

/** Scrolls the window to its top, to the attack's fieldset (the method and its parameters), or to its bottom. */
async function scrollTo(page: Page, where: 'top' | 'attack' | 'bottom'): Promise<void> {
  await page.evaluate((where) => {
    if (where === 'attack') document.getElementById('attack-set')!.scrollIntoView({ block: 'start' });
    else window.scrollTo(0, where === 'top' ? 0 : document.documentElement.scrollHeight);
  }, where);
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

/** A canvas of the page: its size and its pixels as RGB. */
async function canvas(page: Page, id: string): Promise<{ width: number; height: number; rgb: number[] }> {
  return page.evaluate((id) => {
    const c = document.getElementById(id) as HTMLCanvasElement;
    const rgba = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    return { width: c.width, height: c.height, rgb: Array.from(rgba).filter((_, i) => i % 4 !== 3) };
  }, id);
}

async function download(page: Page, link: string, name: string): Promise<Uint8Array> {
  const [file] = await Promise.all([page.waitForEvent('download'), page.click(link)]);
  expect(file.suggestedFilename()).toBe(name);
  const stream = await file.createReadStream();
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return new Uint8Array(Buffer.concat(chunks));
}
