// What the browser tests need around the page: Debian's Chromium (installed on demand by
// test/setup-debian.sh), a build of the page (vite build into a folder of our choice) and a tiny
// static server of our own on localhost.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CHROMIUM = '/usr/bin/chromium';

/** Installs Chromium when it is missing; returns why it could not, or undefined when it is there. */
export function ensureChromium(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  const r = spawnSync('sh', [join(ROOT, 'test/setup-debian.sh'), `test -x ${CHROMIUM}`, 'chromium'], { encoding: 'utf8', timeout: 15 * 60_000 });
  if (r.status === 0 && existsSync(CHROMIUM)) return undefined;
  return (r.stderr || r.error?.message || `setup-debian.sh exited with ${r.status}`).trim();
}

/** `vite build` of the page into a new temporary folder; `weights` replaces weights/ when given,
 *  `vars` are more environment variables of the build (MISLEAD_FACEAPI). */
export function buildPage(weights?: string, vars: Record<string, string> = {}): string {
  const out = mkdtempSync(join(tmpdir(), 'mislead-web-'));
  const vite = join(ROOT, 'node_modules/vite/bin/vite.js');
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'production', ...vars };
  if (weights) env.MISLEAD_WEIGHTS = weights;
  else delete env.MISLEAD_WEIGHTS;
  const r = spawnSync(process.execPath, [vite, 'build', '--outDir', out, '--emptyOutDir', '--logLevel', 'warn'], { cwd: ROOT, env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`vite build failed:\n${r.stdout}\n${r.stderr}`);
  return out;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
};

/** Serves `dir` on 127.0.0.1 (a free port) under `/some/sub/path/`, to check that asset paths are relative. */
export async function serve(dir: string, prefix = '/app/'): Promise<{ url: string; server: Server }> {
  const root = resolve(dir);
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    if (!path.startsWith(prefix)) {
      res.writeHead(404).end('not found');
      return;
    }
    let file = normalize(join(root, path.slice(prefix.length)));
    if (file !== root && !file.startsWith(root + sep)) {
      res.writeHead(403).end('forbidden');
      return;
    }
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (!existsSync(file)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    res.end(readFileSync(file));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return { url: `http://127.0.0.1:${address.port}${prefix}`, server };
}

/** Headless Chromium with a fresh profile, as a persistent context (its own user-data dir). */
export async function launch(viewport = { width: 1280, height: 900 }): Promise<BrowserContext> {
  return chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'mislead-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    acceptDownloads: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'],
  });
}

/** A page in a fresh browser, with the errors it logs or throws collected in `errors`. */
export async function openPage(viewport?: { width: number; height: number }): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await launch(viewport);
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  return { context, page, errors };
}
