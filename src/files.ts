// Reading the user's files with clear refusals. Results are written by output.ts: every file
// goes to a temporary name first, and all are renamed into place together at the end.
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { InputError } from './errors.js';
import { readModel, type Architecture, type Model } from './model.js';
import { crop, decodeImage } from './image.js';
import { imageToInput } from './preprocess.js';

/** Refuses anything that is not a readable, non-empty regular file of sensible size. */
export function readInputFile(path: string, what: string, maxBytes = 256 * 1024 * 1024): Uint8Array {
  let size: number;
  try {
    const stat = statSync(path);
    if (stat.isDirectory()) throw new InputError(`${path}: is a directory, expected ${what}`);
    size = stat.size;
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`${path}: cannot read ${what} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (size === 0) throw new InputError(`${path}: empty file, expected ${what}`);
  if (size > maxBytes) throw new InputError(`${path}: ${size} bytes is too large for ${what}`);
  return new Uint8Array(readFileSync(path));
}

/** The model shipped with the package, and the sample face `tutorial` runs on by default. */
export const DEFAULT_MODEL = fileURLToPath(new URL('../weights/default.safetensors', import.meta.url));
export const SAMPLE_FACE = fileURLToPath(new URL('../weights/samples/woman.png', import.meta.url));

export function loadModel(path: string | undefined): { model: Model; path: string } {
  const file = path ?? DEFAULT_MODEL;
  return { model: readModel(readInputFile(file, 'a model file'), file), path: file };
}

/** Writing results: see output.ts. */
export { OutputSet, writeFileAtomic } from './output.js';

export type Crop = readonly [x: number, y: number, width: number, height: number];

/** An image file as model input, cropped first when asked. */
export function readModelInput(path: string, architecture: Architecture, region?: Crop): Float32Array {
  let img = decodeImage(readInputFile(path, 'an image'), path);
  if (region) img = crop(img, ...region);
  return imageToInput(img, architecture);
}
