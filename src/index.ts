// The library for Node: everything of browser.ts, with the engine loaded from disk and the
// model and image files read with clear refusals.
export * from './browser.js';
export { loadEngine } from './node.js';
export { DEFAULT_MODEL, SAMPLE_FACE, loadModel, readModelInput, type Crop } from './files.js';
export { readInputFile } from './input.js';
