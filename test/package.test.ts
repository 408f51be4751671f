// The package as its users import it: `import { … } from 'mislead'` in a Node script, and in a
// page bundled by Vite (the "browser" condition of the exports map, which imports no Node
// built-in), each installed as a dependency would be (node_modules/mislead → this repository).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runAttack } from '../src/attacks/index.js';
import { DEFAULT_MODEL, loadModel, readModelInput, SAMPLE_FACE } from '../src/node/files.js';
import { Net } from '../src/core/net.js';
import { loadEngine } from '../src/node/engine.js';
import { ensureChromium, launch, serve } from './web/harness.js';

const ROOT = resolve(import.meta.dirname, '..');

/** A project folder whose node_modules/mislead is this repository. */
function project(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'mislead-user-'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(ROOT, join(dir, 'node_modules/mislead'), 'dir');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'user', type: 'module', private: true }));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

/** What the scripts run: PGD ε 4 on the sample face with the default model. */
async function reference() {
  const { model } = loadModel(DEFAULT_MODEL);
  const x = readModelInput(SAMPLE_FACE, model.architecture);
  const [r] = runAttack(new Net(await loadEngine(), model), [x], { method: 'pgd', eps: 4 });
  return { success: r.success, after: r.after.logits, linf: r.norms.linf_pixels };
}

describe('the package', () => {
  it("import { … } from 'mislead' in a Node script: load the model, read a face, attack it", async () => {
    const dir = project({
      'attack.mjs': `
        import { loadEngine, loadModel, readModelInput, startAttack, DEFAULT_MODEL, SAMPLE_FACE, Net } from 'mislead';
        const { model } = loadModel(DEFAULT_MODEL);
        const x = readModelInput(SAMPLE_FACE, model.architecture);
        const run = startAttack(new Net(await loadEngine(), model), [x], { method: 'pgd', eps: 4 });
        while (run.step(10));
        const [r] = run.results;
        console.log(JSON.stringify({ success: r.success, after: r.after.logits, linf: r.norms.linf_pixels }));`,
    });
    const r = spawnSync(process.execPath, ['attack.mjs'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual(await reference());
  }, 60_000);

  it('the browser part imports no Node built-in, nor does anything the page imports', () => {
    const seen = new Set<string>();
    const visit = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(file, 'utf8');
      for (const [, kind, spec] of text.matchAll(/(?:^|\n)\s*(import type|import|export)\s[^'"]*?from\s+'([^']+)'/g)) {
        if (kind === 'import type') continue;
        expect(spec, `${file} imports ${spec}`).not.toMatch(/^node:|^(fs|path|os|url|child_process|worker_threads|v8)$/);
        if (spec.startsWith('.') && spec.endsWith('.js')) visit(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
      }
    };
    for (const entry of ['src/browser.ts', 'web/src/main.ts', 'web/src/worker.ts']) visit(join(ROOT, entry));
    expect(seen.size).toBeGreaterThan(20);
  });

  it('Node built-ins only in src/node, src/cli (the command line) and src/queue (Redis workers): the engine, formats, attacks and training run anywhere', () => {
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
        const path = join(dir, name.name);
        if (name.isDirectory()) walk(path);
        else if (path.endsWith('.ts') && !/^src\/(node|cli|queue)\//.test(path) && /from 'node:/.test(readFileSync(join(ROOT, path), 'utf8'))) offenders.push(path);
      }
    };
    walk('src');
    expect(offenders).toEqual([]);
  });

  const missing = ensureChromium();
  let server: Server | undefined;
  afterAll(() => server?.close());
  it.skipIf(missing)("import { … } from 'mislead' in a page bundled by Vite: the same attack, the same numbers, in Chromium", async () => {
    const dir = project({
      'index.html': '<!doctype html><script type="module" src="./main.js"></script>',
      'main.js': `
        import { loadEngine, loadModel, decodeImage, imageToInput, startAttack, Net } from 'mislead';
        import faceUrl from 'mislead/weights/samples/woman.png?url';
        const bytes = async (url) => new Uint8Array(await (await fetch(url)).arrayBuffer());
        window.result = (async () => {
          const { model } = await loadModel();
          const x = imageToInput(decodeImage(await bytes(faceUrl), 'woman.png'), model.architecture);
          const run = startAttack(new Net(await loadEngine(), model), [x], { method: 'pgd', eps: 4 });
          while (run.step(10)) await new Promise((ok) => setTimeout(ok));
          const [r] = run.results;
          return { success: r.success, after: r.after.logits, linf: r.norms.linf_pixels };
        })();`,
    });
    const vite = join(ROOT, 'node_modules/vite/bin/vite.js');
    const out = join(dir, 'dist');
    const built = spawnSync(process.execPath, [vite, 'build', '--outDir', out, '--logLevel', 'warn', '--base', './'], { cwd: dir, encoding: 'utf8' });
    expect(built.status, built.stderr).toBe(0);
    expect(built.stderr).not.toMatch(/externalized for browser compatibility/);
    const assets = readdirSync(join(out, 'assets'));
    expect(assets.some((f) => f.endsWith('.wasm'))).toBe(true);
    const served = await serve(out);
    server = served.server;
    const browser = await launch();
    try {
      const page = await browser.newPage();
      await page.goto(served.url);
      const got = await page.evaluate(() => (window as unknown as { result: Promise<unknown> }).result);
      expect(got).toEqual(await reference());
    } finally {
      await browser.close();
    }
  }, 120_000);
});
