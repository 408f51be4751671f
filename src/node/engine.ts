// Node-only glue: where the kernel module is on disk, and how V8 compiles it.
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { Engine } from '../core/engine.js';

// By default V8 compiles WebAssembly lazily with its baseline compiler and recompiles hot
// functions later: the first few hundred iterations of an attack run 3–4× slower, with pauses
// while kernels are recompiled. The kernel module is small, so it is compiled by the optimising
// compiler once, when it is loaded (a few ms).
setFlagsFromString('--no-wasm-lazy-compilation');
setFlagsFromString('--no-wasm-dynamic-tiering');

/** The engine, from build/mislead.wasm (next to src/ and dist/ alike). */
export function loadEngine(): Promise<Engine> {
  return Engine.create(readFileSync(new URL('../../build/mislead.wasm', import.meta.url)));
}
