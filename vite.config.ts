// The browser page (web/): `npm run web` serves it, `npm run build:web` writes dist-web/.
// The page bundles build/mislead.wasm and the engine code in src/, and, at build time, the default
// model and sample faces in weights/ (weights/default.safetensors, weights/samples/*.png); set
// MISLEAD_WEIGHTS=DIR to take them from another folder with the same layout. Asset paths are
// relative (base './'), so dist-web/ can be served from any folder of any static server.
// When @vladmandic/face-api (or face-api.js) is installed, its gender network is converted at build
// time by the project's own importer (`mislead import-faceapi`) and offered as a third model: the
// converted file goes with the built page only (an asset of dist-web/, or served by `npm run web`),
// never into the project's folders. MISLEAD_FACEAPI=off builds the page without it.
// Vitest does not read this file: it has its own vitest.config.ts.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';
import { importFaceApiFolder, installedModelFolder } from './src/cli/import-faceapi.js';
import { InputError } from './src/errors.js';
import { writeModel } from './src/formats/model.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const weights = resolve(here, process.env.MISLEAD_WEIGHTS ?? 'weights');

export default defineConfig({
  root: resolve(here, 'web'),
  base: './',
  publicDir: false,
  resolve: { alias: { '@weights': weights } },
  plugins: [faceApiModel()],
  server: {
    host: 'localhost',
    port: 5173,
    fs: { allow: [here, weights] },
  },
  preview: { host: 'localhost' },
  build: {
    outDir: resolve(here, 'dist-web'),
    emptyOutDir: true,
    target: 'es2022',
    // Keep the model, the samples and the kernels as files of their own rather than data: URLs.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1000,
  },
  worker: { format: 'es' },
});

/** `virtual:faceapi-model`: face-api.js's gender network converted, `{ url, source }` (the package it
 *  came from: name, version, licence), or null when no face-api package is installed. */
function faceApiModel(): Plugin {
  const id = 'virtual:faceapi-model';
  const served = '/@mislead/faceapi-gender.safetensors';
  let converted: { bytes: Uint8Array; source: { name: string; version: string; license: string } } | null | undefined;
  const convert = () => {
    if (converted !== undefined) return converted;
    let dir: string;
    try {
      if (process.env.MISLEAD_FACEAPI === 'off') return (converted = null);
      dir = installedModelFolder();
    } catch (e) {
      // Not installed: the page is built without it. A package that is there but cannot be
      // converted fails the build.
      if (e instanceof InputError) return (converted = null);
      throw e;
    }
    const { name, version, license } = JSON.parse(readFileSync(join(dirname(dir), 'package.json'), 'utf8'));
    return (converted = { bytes: writeModel(importFaceApiFolder(dir)), source: { name, version, license } });
  };
  let build = false;
  return {
    name: 'mislead-faceapi-model',
    configResolved: (config) => void (build = config.command === 'build'),
    resolveId: (source) => (source === id ? `\0${id}` : undefined),
    load(key) {
      if (key !== `\0${id}`) return undefined;
      const model = convert();
      if (!model) return 'export default null;';
      const url = build ? `import.meta.ROLLUP_FILE_URL_${this.emitFile({ type: 'asset', name: 'faceapi-gender.safetensors', source: model.bytes })}` : JSON.stringify(served);
      return `export default { url: ${url}, source: ${JSON.stringify(model.source)} };`;
    },
    configureServer(server) {
      server.middlewares.use(served, (_req, res) => {
        const model = convert();
        res.statusCode = model ? 200 : 404;
        res.setHeader('content-type', 'application/octet-stream');
        res.end(model?.bytes);
      });
    },
  };
}
