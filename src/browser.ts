// The library, as a browser (or any bundler) sees it: nothing here imports a Node built-in.
// Node scripts import the same and more from index.ts. Data flows one way: image → tensor in
// WASM memory → model forward on the tape → loss → backward → step.
import { Engine } from './core/engine.js';
import { readModel, type Model } from './formats/model.js';

export { Engine, EngineMemoryError, Tensor, type Kernels } from './core/engine.js';
export { Tape, type Step } from './core/tape.js';
export * as ops from './core/ops.js';
export { checkArchitecture, readModel, writeModel, type Architecture, type Layer, type Model } from './formats/model.js';
export { Net, argmax, predictLogits, softmax } from './core/net.js';
export * from './attacks/index.js';
export { crop, decodeImage, encodePng, imageSize, resize, toGray, type Image } from './formats/image.js';
export { fileToInput, filterImage, imageToInput, inputToImage, pixelBox } from './formats/preprocess.js';
export { InputError } from './errors.js';

/** The engine, from the kernel module shipped beside this file (build/mislead.wasm), fetched
 *  by URL: bundlers such as Vite resolve it as an asset. */
export async function loadEngine(): Promise<Engine> {
  const url = new URL('../build/mislead.wasm', import.meta.url);
  const response = await fetch(url);
  if (!response.ok) throw new Error(`could not load the kernels (${url}: HTTP ${response.status})`);
  return Engine.create(await WebAssembly.compileStreaming(response));
}

/** A model file fetched by URL and checked (readModel); by default the model shipped with the
 *  package (weights/default.safetensors), which bundlers resolve as an asset. In Node, index.ts's
 *  loadModel reads a path instead; `await loadModel(…)` reads the same in both. */
export async function loadModel(url: string | URL = new URL('../weights/default.safetensors', import.meta.url)): Promise<{ model: Model; path: string }> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`could not load the model (${url}: HTTP ${response.status})`);
  const name = String(url);
  return { model: readModel(new Uint8Array(await response.arrayBuffer()), name), path: name };
}
