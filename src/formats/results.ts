// The files of an attack's result, one way for the command line (which writes them) and the page
// (which offers them as downloads).
import { encodePng } from './image.js';
import type { Architecture } from './model.js';
import { writeNpy } from './npy.js';
import { filterImage, inputToImage } from './preprocess.js';

export interface ResultFiles {
  /** The adversarial image as 8-bit pixels, `clip(round(x·scale + offset))`, the model's input size. */
  'adversarial.png': Uint8Array;
  /** The perturbation, float32 [h, w, c] in model units (what --init reads). */
  'perturbation.npy': Uint8Array;
  /** The perturbation made visible, 0 as mid grey on a symmetric scale. */
  'filter.png': Uint8Array;
}

export function resultFiles(adversarial: Float32Array, perturbation: Float32Array, arch: Architecture): ResultFiles {
  const [h, w, c] = arch.input;
  return {
    'adversarial.png': encodePng(inputToImage(adversarial, arch)),
    'perturbation.npy': writeNpy(perturbation, [h, w, c]),
    'filter.png': encodePng(filterImage(perturbation, h, w, c as 1 | 3)),
  };
}
