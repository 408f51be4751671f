// face-api.js's gender network on the page, in Debian's Chromium: the build converts it from the
// installed @vladmandic/face-api (a development dependency) with the project's importer, and a
// person draws the face box on their own photo. The page's numbers are checked against what the
// command line computes for the same box (`predict --crop`, `attack --crop`), and a build without
// the package is checked to say nothing of it.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAttack } from '../../src/attacks/index.js';
import { importFaceApiFolder, installedModelFolder } from '../../src/cli/import-faceapi.js';
import type { Engine } from '../../src/core/engine.js';
import { Net, predictLogits } from '../../src/core/net.js';
import { decodeImage, encodePng, resize, type Image } from '../../src/formats/image.js';
import type { Model } from '../../src/formats/model.js';
import { inputToImage } from '../../src/formats/preprocess.js';
import { readNpy } from '../../src/formats/npy.js';
import { loadEngine } from '../../src/node/engine.js';
import { readModelInput, type Crop } from '../../src/node/files.js';
import { centred } from '../../web/src/crop.js';
import { buildPage, ensureChromium, openPage, ROOT, serve } from './harness.js';

const missing = ensureChromium();
if (missing) console.warn(`test/web: skipping the browser tests: Chromium is not available (${missing})`);

const OUTPUT = join(ROOT, 'test/web/output');
const TIMEOUT = 240_000;
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'node_modules/@vladmandic/face-api/package.json'), 'utf8'));

/** A 400×300 colour photo: a sample face, tinted and three times its size, at (215, 60) on a
 *  coloured background; the face is off the centre, so the default box does not fit it. */
function photo(): Image {
  const width = 400, height = 300;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set([60 + Math.round(x * 0.4), 90 + Math.round(y * 0.3), 150], (y * width + x) * 3);
  }
  const sample = decodeImage(readFileSync(join(ROOT, 'weights/samples/man-2.png')), 'man-2.png');
  const face = resize(sample, 144, 144);
  for (let y = 0; y < 144; y++) {
    for (let x = 0; x < 144; x++) {
      const v = face.data[(y * 144 + x) * face.channels];
      data.set([v, Math.round(v * 0.85), Math.round(v * 0.7)], ((60 + y) * width + 215 + x) * 3);
    }
  }
  return { width, height, channels: 3, data };
}

const dataset = (page: Page) => page.evaluate(() => ({ ...document.getElementById('results')!.dataset }));

function expectClose(actual: number[], expected: ArrayLike<number>): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((v, i) => expect(Math.abs(v - expected[i]), `logit ${i}: page ${v}, node ${expected[i]}`).toBeLessThanOrEqual(1e-5));
}

async function waitForInput(page: Page): Promise<void> {
  await page.waitForFunction(() => document.getElementById('results')!.dataset.before !== undefined && !(document.getElementById('run') as HTMLButtonElement).disabled, null, { timeout: 60_000 });
}

/** A canvas of the page: its size and its pixels as RGB. */
async function canvas(page: Page, id: string): Promise<{ width: number; height: number; rgb: number[] }> {
  return page.evaluate((id) => {
    const c = document.getElementById(id) as HTMLCanvasElement;
    const rgba = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    return { width: c.width, height: c.height, rgb: Array.from(rgba).filter((_, i) => i % 4 !== 3) };
  }, id);
}

/** Drags the mouse across the picture from one picture pixel to another. */
async function drag(page: Page, from: [number, number], to: [number, number], size: { width: number; height: number }): Promise<void> {
  await page.locator('#frame').evaluate((e) => e.scrollIntoView({ block: 'center' }));
  const frame = (await page.locator('#frame').boundingBox())!;
  const at = ([x, y]: [number, number]) => [frame.x + ((x + 0.5) * frame.width) / size.width, frame.y + ((y + 0.5) * frame.height) / size.height] as const;
  await page.mouse.move(...at(from));
  await page.mouse.down();
  await page.mouse.move(...at(to), { steps: 8 });
  await page.mouse.up();
}

async function download(page: Page, link: string, name: string): Promise<Uint8Array> {
  const [file] = await Promise.all([page.waitForEvent('download'), page.click(link)]);
  expect(file.suggestedFilename()).toBe(name);
  const chunks: Buffer[] = [];
  for await (const c of await file.createReadStream()) chunks.push(c as Buffer);
  return new Uint8Array(Buffer.concat(chunks));
}

describe.skipIf(!!missing)("face-api.js's gender network on the page", () => {
  let engine: Engine;
  let model: Model;
  let server: Server;
  let context: BrowserContext;
  let page: Page;
  let url: string;
  const temp = mkdtempSync(join(tmpdir(), 'mislead-faceapi-web-'));
  const file = join(temp, 'photo.png');
  const image = photo();
  let errors: string[] = [];

  beforeAll(async () => {
    engine = await loadEngine();
    model = importFaceApiFolder(installedModelFolder());
    writeFileSync(file, encodePng(image));
    ({ url, server } = await serve(buildPage()));
    ({ context, page, errors } = await openPage({ width: 1280, height: 800 }));
    mkdirSync(OUTPUT, { recursive: true });
  }, TIMEOUT);

  afterAll(async () => {
    await context?.close();
    server?.close();
    rmSync(temp, { recursive: true, force: true });
  });

  it('offers the network converted at build time, with where it came from; the default model stays the default', async () => {
    await page.goto(url);
    await waitForInput(page);
    expect(await page.locator('#model-default').isChecked()).toBe(true);
    expect(await page.locator('label:has(#model-faceapi)').textContent()).toBe(' face-api.js gender (112×112 RGB)');
    expect(await page.locator('#model-faceapi').isVisible()).toBe(true);
    expect(await page.locator('#model-faceapi-note').textContent()).toBe(
      `face-api.js's gender classifier (man or woman for a face box), converted when this page was built from @vladmandic/face-api ${PACKAGE.version} (MIT licence).`,
    );
  }, TIMEOUT);

  it('reads a face box drawn on a photo as face-api does, in colour, with the numbers of `predict --crop`; PGD ε 2 fools it invisibly, as `attack --crop` does', async () => {
    await page.setInputFiles('#photo', file);
    await page.waitForFunction(() => document.getElementById('picture-name')!.textContent!.startsWith('photo.png'), null, { timeout: 30_000 });
    await page.check('#model-faceapi');
    await page.waitForFunction(() => document.getElementById('model-info')!.textContent!.startsWith('faceapi-gender.safetensors'), null, { timeout: 60_000 });
    await waitForInput(page);
    expect(await page.locator('#model-info').textContent()).toMatch(/^faceapi-gender\.safetensors: labels man, woman; input 112×112×3 \(colour\); [\d,]+ weights\. Its final softmax is left out/);
    expect(await page.locator('#view-note').textContent()).toMatch(/padded with black to a square, then resized to 112×112/);
    // The default box: the centred square. The attack offered: PGD L∞, ε 2 grey levels.
    expect((await dataset(page)).crop).toBe(Object.values(centred(image.width, image.height, 1)).join(','));
    expect(await page.locator('#method').inputValue()).toBe('pgd');
    expect(await page.locator('#param-norm').inputValue()).toBe('linf');
    expect(await page.locator('#param-eps').inputValue()).toBe('2');
    expect(await page.locator('#target').inputValue()).toBe('-1');
    // ε 2 is every method's L∞ budget with this model; L2's stays the library's.
    await page.selectOption('#method', 'fgsm');
    expect(await page.locator('#param-eps').inputValue()).toBe('2');
    await page.selectOption('#param-norm', 'l2');
    expect(await page.locator('#param-eps').inputValue()).toBe('128');
    await page.selectOption('#method', 'pgd');
    expect(await page.locator('#param-eps').inputValue()).toBe('2');

    // A new box drawn around the face, from outside the default box up and to the left: any shape.
    await drag(page, [360, 225], [205, 50], image);
    await waitForInput(page);
    const box = (await dataset(page)).crop!.split(',').map(Number) as unknown as Crop;
    const [x, y, w, h] = box;
    for (const [v, want] of [[x, 205], [y, 50], [x + w, 360], [y + h, 225]]) expect(Math.abs(v - want), `box ${box}`).toBeLessThanOrEqual(2);
    expect(await page.locator('#crop-x').inputValue()).toBe(String(x));

    // The command line's reading of the same box, and the network's answer for it.
    const input = readModelInput(file, model.architecture, box);
    const mark = engine.mark();
    const net = new Net(engine, model);
    const before = predictLogits(net, [input])[0];
    const [ref] = runAttack(net, [input], { method: 'pgd', eps: 2 });
    engine.release(mark);
    expectClose(JSON.parse((await dataset(page)).before!), before);
    const original = await canvas(page, 'original');
    expect([original.width, original.height]).toEqual([112, 112]);
    expect(original.rgb).toEqual(Array.from(inputToImage(input, model.architecture).data));
    expect(original.rgb.filter((v, i) => i % 3 === 0 && Math.abs(v - original.rgb[i + 2]) > 32).length).toBeGreaterThan(1000);
    const label = (logits: ArrayLike<number>) => (logits[0] > logits[1] ? 'man' : 'woman');
    expect(await page.locator('#original-caption').textContent()).toMatch(new RegExp(`^${label(before)} \\(\\d+(\\.\\d)?\\s?%\\)$`));

    await page.click('#run');
    await page.waitForFunction(() => ['done', 'stopped', 'error'].includes(document.getElementById('results')!.dataset.state!), null, { timeout: 120_000 });
    const d = await dataset(page);
    expect(d.state).toBe('done');
    expectClose(JSON.parse(d.logits!), ref.after.logits);
    expect(d.success).toBe(String(ref.success));
    expect(ref.success).toBe(true);
    expect(d.label).toBe(label(ref.after.logits));
    expect(d.label).not.toBe(label(before));
    expect(Number(d.linf)).toBe(ref.norms.linf_pixels);
    expect(Number(d.linf)).toBeLessThanOrEqual(2);
    expect(Math.abs(Number(d.psnr) - ref.psnr)).toBeLessThan(1e-6);
    expect(Number(d.psnr)).toBeGreaterThanOrEqual(40);
    expect(await page.locator('#adversarial-caption').textContent()).toMatch(new RegExp(`^${d.label} \\(\\d+(\\.\\d)?\\s?%\\)$`));
    const adversarial = await canvas(page, 'adversarial');
    expect(adversarial.rgb).toEqual(Array.from(inputToImage(ref.adversarial, model.architecture).data));

    // The download is what `attack --crop` saves: the 112×112 face the network read, in colour.
    expect(await page.locator('#download-note').textContent()).toBe(
      `adversarial.png is the picture the network read, 112×112 as shown above, made from the box ${w}×${h} at (${x}, ${y}) of photo.png (400×300), as “mislead attack --crop” saves it; the photo itself is not changed.`,
    );
    const png = decodeImage(await download(page, '#download-png', 'adversarial.png'), 'adversarial.png');
    expect([png.width, png.height, png.channels]).toEqual([112, 112, 3]);
    expect(Array.from(png.data)).toEqual(adversarial.rgb);
    expect(readNpy(await download(page, '#download-npy', 'perturbation.npy'), 'perturbation.npy').data).toEqual(ref.perturbation);
    expect(await page.locator('#saved').textContent()).toMatch(/^As saved \(8-bit adversarial\.png\), the network says (man|woman) .*: misled\.$/);

    await page.evaluate(() => {
      window.scrollTo(0, 0);
      document.getElementById('results')!.scrollTop = 0;
    });
    await page.screenshot({ path: join(OUTPUT, 'faceapi-desktop.png') });
    await page.screenshot({ path: join(OUTPUT, 'faceapi-desktop-full.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.evaluate(() => document.getElementById('results')!.scrollIntoView({ block: 'start' }));
    await page.screenshot({ path: join(OUTPUT, 'faceapi-phone.png') });
    await page.screenshot({ path: join(OUTPUT, 'faceapi-phone-full.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });
    const worst = Math.max(...[[JSON.parse(d.before!), before], [JSON.parse(d.logits!), ref.after.logits]].flatMap(([a, b]) => a.map((v: number, i: number) => Math.abs(v - b[i]))));
    console.log(`face-api.js on the page: ${d.iterations} PGD iterations, ${Math.round(Number(d.rate))} it/s, PSNR ${Number(d.psnr).toFixed(2)} dB; logits against Node's: worst difference ${worst.toExponential(2)}`);
  }, TIMEOUT);

  it('goes back to the default model, its proportions and its box', async () => {
    await page.check('#model-default');
    await page.waitForFunction(() => document.getElementById('model-info')!.textContent!.startsWith('default.safetensors'), null, { timeout: 30_000 });
    await waitForInput(page);
    expect(await page.locator('#view-note').isHidden()).toBe(true);
    const [, , w, h] = (await dataset(page)).crop!.split(',').map(Number);
    expect(w).toBe(h);
    expect(await page.locator('#param-eps').inputValue()).toBe('8');
  }, TIMEOUT);

  it('reports no page errors', () => {
    expect(errors.filter((e) => !/favicon/.test(e))).toEqual([]);
  });
});

describe.skipIf(!!missing)('the page built without face-api', () => {
  let server: Server;
  let context: BrowserContext;

  afterAll(async () => {
    await context?.close();
    server?.close();
  });

  it('does not offer it, and says nothing wrong', async () => {
    const dist = buildPage(undefined, { MISLEAD_FACEAPI: 'off' });
    expect(readdirSync(join(dist, 'assets')).filter((f) => f.includes('faceapi'))).toEqual([]);
    const served = await serve(dist);
    server = served.server;
    const opened = await openPage({ width: 1280, height: 800 });
    context = opened.context;
    const { page, errors } = opened;
    await page.goto(served.url);
    await waitForInput(page);
    expect(await page.locator('#model-faceapi').isVisible()).toBe(false);
    expect(await page.locator('#model-faceapi-note').isHidden()).toBe(true);
    expect(await page.locator('#model-error').isHidden()).toBe(true);
    expect(await page.locator('#error').isHidden()).toBe(true);
    expect(errors.filter((e) => !/favicon/.test(e))).toEqual([]);
  }, TIMEOUT);
});
