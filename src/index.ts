// The library for Node: everything of browser.ts, with the engine loaded from disk and the
// model and image files read with clear refusals.
export * from './browser.js';
export { loadEngine } from './node/engine.js';
export { DEFAULT_MODEL, SAMPLE_FACE, loadModel, readModelInput, type Crop } from './node/files.js';
export { readInputFile } from './node/input.js';
