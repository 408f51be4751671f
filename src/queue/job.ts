// The job format of a run on the queue, shared by the submitter (submit.ts) and the workers
// (worker.ts).
//
// A run is cut into jobs of a few consecutive images, as the local pool cuts a folder into shares:
// a seeded method's image k draws from seed + k, so a job whose first image is k is given seed + k
// and its images get exactly the randomness they get in a local run. Jobs carry no paths: the model
// and each image file travel as their bytes, stored once in Redis under their SHA-256 (SET NX) and
// named in the job by it. A worker decodes the images itself, with the same code a local run uses,
// so a picture it cannot read fails its job alone. A job's id is `RUN-INDEX`, RUN a hash of the
// model, the images, the options and the cut: the same run submitted again finds its jobs, and the
// finished ones are not done again.
import { createHash } from 'node:crypto';
import type { AttackOptions, AttackResult } from '../attacks/index.js';
import type { Crop } from '../node/files.js';

/** The BullMQ queue every run's jobs go into (their ids tell the runs apart). */
export const QUEUE_NAME = 'mislead';

/** Key of the bytes whose SHA-256 is `hash`. */
export const blobKey = (hash: string) => `mislead:blob:${hash}`;

/** How long stored bytes are kept after the last run that named them was submitted. */
export const BLOB_SECONDS = 7 * 24 * 3600;

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** One image of a job: its bytes' hash, its name in the submitter's messages, and its face box. */
export interface JobImage {
  hash: string;
  name: string;
  box?: Crop;
  /** Where the box was given ("--crop", "DIR/labels.csv:3"), for the message refusing it. */
  from?: string;
}

export interface JobData {
  run: string;
  /** The SHA-256 of the model (as writeModel writes it). */
  model: string;
  images: JobImage[];
  /** How the images become model inputs: as `attack` reads a file (the model's preprocessing,
   *  from the box), or as `eval` reads a labelled folder (the box cut out, then resized). */
  decode: 'file' | 'dataset';
  /** The method's options, a seed shifted to this job's first image. */
  options: AttackOptions;
  /** Whether to send back the adversarial images (as 8-bit PNGs). */
  images8: boolean;
}

/** What a job gives back per image: the result without its arrays, and the adversarial as the
 *  PNG a local run would write (base64), when asked. */
export type JobResult = Omit<AttackResult, 'adversarial' | 'perturbation'> & { png?: string };

/** A job's answer, as JSON that keeps Infinity and NaN (a PSNR of identical images is Infinity). */
export function encodeResults(results: JobResult[]): string {
  return JSON.stringify(results, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? { nonFinite: String(v) } : v));
}

export function decodeResults(text: string): JobResult[] {
  return JSON.parse(text, (_, v) => (v !== null && typeof v === 'object' && Object.keys(v).length === 1 && typeof v.nonFinite === 'string' ? Number(v.nonFinite) : v));
}

/** The run's id: a hash of everything that decides its results. */
export function runId(parts: object): string {
  return sha256(new TextEncoder().encode(JSON.stringify(parts))).slice(0, 32);
}
