// Messages between the page (main.ts) and the worker (worker.ts) that owns the engine.
import type { Image } from '../../src/image.js';
import type { Architecture, Model } from '../../src/model.js';
import type { Step } from './methods.js';

export type Request =
  /** Reads a PNG or JPEG as the command line does (decodeImage: EXIF orientation, 8-bit RGB). */
  | { type: 'decode'; id: number; bytes: Uint8Array; name: string }
  /** Reads and checks a .safetensors model, and places it in the engine (replacing the last one). */
  | { type: 'model'; id: number; bytes: Uint8Array; name: string }
  /** Logits of model inputs (each [h, w, c] in model units) with the current model. */
  | { type: 'predict'; id: number; inputs: Float32Array[] }
  /** Runs an attack on one model input, step after step, each continuing from the last one's DX.
   *  `target` null is untargeted (suite methods only). A suite method has one step, whose params
   *  are runAttack's options. */
  | { type: 'run'; id: number; method: string; input: Float32Array; target: number | null; steps: Step[] }
  /** Ends the current filter run after its current chunk of iterations; its result is still sent.
   *  (A suite run cannot see it: the page ends those by terminating the worker.) */
  | { type: 'stop' };

export interface Progress {
  /** Which of the run's steps, from 0. */
  step: number;
  /** Iterations done in this step, and in the whole run. */
  iteration: number;
  total: number;
  /** Loss of each iteration since the last report. */
  losses: Float32Array;
  logits: number[];
  /** The current DX, [h, w, c] in model units. */
  dx: Float32Array;
  /** Milliseconds since the run started, and spent inside the attack's iterations. */
  elapsed: number;
  busy: number;
  /** Iterations the whole run plans (the loss curve's x axis). */
  planned: number;
  /** Suite runs: where new rounds (PGD's restarts, C&W's binary-search steps) began since the
   *  last report, as indices into the run's losses, and which round is on now ('' if one). */
  marks: { at: number; label: string }[];
  phase: string;
}

/** The final result of a suite method (runAttack's AttackResult, for the one image), judged on
 *  the image as saved: the adversarial is on the 8-bit grid. Distances are in grey levels. */
export interface SuiteResult {
  adversarial: Float32Array;
  perturbation: Float32Array;
  logits: number[];
  success: boolean;
  l2: number;
  linf: number;
  psnr: number;
  ssim: number;
  iterations: number;
  gradients: number;
}

export type Response =
  | { type: 'ready'; ms: number }
  | { type: 'decoded'; id: number; image: Image }
  | { type: 'model'; id: number; architecture: Architecture; parameters: number }
  | { type: 'predicted'; id: number; logits: number[][] }
  | ({ type: 'progress'; id: number } & Progress)
  /** The end of a run; `result` for a suite method (then `logits` and `dx` are its after-logits
   *  and perturbation). */
  | ({ type: 'done'; id: number; stopped: boolean; result?: SuiteResult } & Progress)
  /** A request failed: `input` when it was the user's file or numbers (the message says why). */
  | { type: 'error'; id: number; message: string; input: boolean };

export type { Image, Model };
