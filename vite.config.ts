// The browser page (web/): `npm run web` serves it, `npm run build:web` writes dist-web/.
// The page bundles build/mislead.wasm and the engine code in src/, and, at build time, the default
// model and sample faces in weights/ (weights/default.safetensors, weights/samples/*.png); set
// MISLEAD_WEIGHTS=DIR to take them from another folder with the same layout. Asset paths are
// relative (base './'), so dist-web/ can be served from any folder of any static server.
// Vitest does not read this file: it has its own vitest.config.ts.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));
const weights = resolve(here, process.env.MISLEAD_WEIGHTS ?? 'weights');

export default defineConfig({
  root: resolve(here, 'web'),
  base: './',
  publicDir: false,
  resolve: { alias: { '@weights': weights } },
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
