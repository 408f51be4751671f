// Loading the user's model and images. Results are written by output.ts: every file goes to a
// temporary name first, and all are renamed into place together at the end.
import { fileURLToPath } from 'node:url';
import { INPUT_LIMITS, readInputFile } from './input.js';
import { readModel, type Architecture, type Model } from '../formats/model.js';
import { fileToInput } from '../formats/preprocess.js';
import { imageSize } from '../formats/image.js';
import { InputError } from '../errors.js';

/** The model shipped with the package, and the sample face `tutorial` runs on by default. */
export const DEFAULT_MODEL = fileURLToPath(new URL('../../weights/default.safetensors', import.meta.url));
export const SAMPLE_FACE = fileURLToPath(new URL('../../weights/samples/woman.png', import.meta.url));

export function loadModel(path: string | undefined): { model: Model; path: string } {
  const file = path ?? DEFAULT_MODEL;
  return { model: readModel(readInputFile(file, 'a model file', INPUT_LIMITS.model), file), path: file };
}

export type Crop = readonly [x: number, y: number, width: number, height: number];

/**
 * An image file as model input, cropped first when asked (read in bounded memory: fileToInput);
 * `from` says where the crop was given, in the message that refuses one outside the picture.
 */
export function readModelInput(path: string, architecture: Architecture, region?: Crop, from = 'crop'): Float32Array {
  const bytes = readInputFile(path, 'an image', INPUT_LIMITS.image);
  if (region) checkBox(region, imageSize(bytes, path), path, from);
  return fileToInput(bytes, path, architecture, region);
}

/** Refuses a box that is not inside the picture at `path` of `size` (as shown). */
export function checkBox([x, y, w, h]: Crop, size: { width: number; height: number }, path: string, from: string): void {
  if (x + w > size.width || y + h > size.height) {
    throw new InputError(`${from}: the box ${x},${y},${w},${h} (x,y,width,height) is not inside the ${size.width}x${size.height} picture ${path}`);
  }
}
