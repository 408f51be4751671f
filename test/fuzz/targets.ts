// The parsers under fuzzing, and how many inputs each gets in the normal test run (test/fuzz.test.ts;
// about the same time for each on a 2-core machine) and in `npm run fuzz` (test/fuzz/run.ts).
import type { Target } from './harness.js';
import { jpegTarget } from './jpeg.js';
import { labelsTarget } from './labels.js';
import { modelTarget } from './model.js';
import { npyTarget } from './npy.js';
import { pngTarget } from './png.js';
import { tfTarget } from './tfcheckpoint.js';
import { tfjsTarget } from './tfjs.js';

export const TARGETS: { target: Target; testInputs: number }[] = [
  { target: pngTarget, testInputs: 3000 },
  { target: jpegTarget, testInputs: 2000 },
  { target: modelTarget, testInputs: 1500 },
  { target: npyTarget, testInputs: 3000 },
  { target: tfTarget, testInputs: 2000 },
  { target: labelsTarget, testInputs: 1000 },
  { target: tfjsTarget, testInputs: 1000 },
];

/** Inputs per parser in `npm run fuzz`. */
export const FULL_INPUTS = 20_000;
