// Messages between the page (main.ts) and the worker (worker.ts) that owns the engine.
import type { AttackOptions } from '../../src/attacks/index.js';
import type { Image } from '../../src/formats/image.js';
import type { Architecture, Model } from '../../src/formats/model.js';
import type { TutorialStep } from './methods.js';

export type Request =
  /** Reads a PNG or JPEG as the command line does (decodeImage: EXIF orientation, 8-bit RGB). */
  | { type: 'decode'; id: number; bytes: Uint8Array; name: string }
  /** Reads and checks a .safetensors model, and places it in the engine (replacing the last one). */
  | { type: 'model'; id: number; bytes: Uint8Array; name: string }
  /** Logits of model inputs (each [h, w, c] in model units) with the current model. */
  | { type: 'predict'; id: number; inputs: Float32Array[] }
  /** Attacks one model input with the library's startAttack and these options. */
  | { type: 'attack'; id: number; input: Float32Array; options: AttackOptions }
  /** The tutorial: the filter toward `target`, step after step, each continuing from the last
   *  one's DX (FilterAttack). */
  | { type: 'tutorial'; id: number; input: Float32Array; target: number; steps: TutorialStep[] }
  /** Ends the current run after the iteration under way; what it had got to is still sent. */
  | { type: 'stop' };

/** The state of a run, sent every 100 ms or so while it goes on, and at its end. */
export interface Progress {
  /** Iterations reported so far, and planned for the whole run (at most: most methods stop
   *  once the image is adversarial). */
  done: number;
  planned: number;
  /** The loss of each report since the last one. */
  losses: Float32Array;
  /** Where new rounds (the tutorial's steps, PGD's restarts, C&W's binary-search steps) began
   *  since the last report, as indices into the run's losses, and the round now ('' if one). */
  marks: { at: number; label: string }[];
  phase: string;
  /** The current image [h, w, c] in model units, and the model's logits for it. */
  x: Float32Array;
  logits: number[];
  /** The tutorial's steps that ended since the last report, but the last step (whose end is
   *  the result): the image at the step's end, and the model's logits for it. */
  finished: { x: Float32Array; logits: number[] }[];
  /** Milliseconds since the run started, and spent inside the attack's iterations. */
  elapsed: number;
  busy: number;
}

/** The result of a run that ended by itself, for its one image: the library's AttackResult
 *  (the tutorial's made alike). Distances are in grey levels. */
export interface Result {
  /** The image the attack gives (on the 8-bit grid unless it ran with quantize: false, as the
   *  filter does here), and its change from the original (the filter's DX for the tutorial). */
  adversarial: Float32Array;
  perturbation: Float32Array;
  /** The model's logits for `adversarial`. */
  logits: number[];
  success: boolean;
  l2: number;
  linf: number;
  psnr: number;
  ssim: number;
  iterations: number;
  gradients: number;
  /** AutoAttack's part that broke the image (null: none did). */
  brokenBy?: string | null;
}

export type Response =
  | { type: 'ready'; ms: number }
  | { type: 'decoded'; id: number; image: Image }
  | { type: 'model'; id: number; architecture: Architecture; parameters: number }
  | { type: 'predicted'; id: number; logits: number[][] }
  | ({ type: 'progress'; id: number } & Progress)
  /** The end of a run: its result, or, when it was stopped, none (the progress is where it had got to). */
  | ({ type: 'done'; id: number; stopped: boolean; result?: Result } & Progress)
  /** A request failed: `input` when it was the user's file or numbers (the message says why). */
  | { type: 'error'; id: number; message: string; input: boolean };

export type { Image, Model };
