// Node-only glue: where the kernel module is on disk.
import { readFileSync } from 'node:fs';
import { Engine } from './engine.js';

/** The engine, from build/mislead.wasm (next to src/ and dist/ alike). */
export function loadEngine(): Promise<Engine> {
  return Engine.create(readFileSync(new URL('../build/mislead.wasm', import.meta.url)));
}
