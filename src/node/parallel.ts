// Both cores (or all): a pool of worker threads, each with its own engine, for the work that
// splits into independent parts: rendering faces, attacking a batch of images (a share each),
// and the gradients of a training batch (each worker takes an equal share of the batch; the
// shares' gradients add up to the batch's).
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Face } from '../train/dataset.js';
import type { Tensor } from '../core/engine.js';
import { writeModel, type Model } from '../formats/model.js';
import type { GradientSource, LabelledSet } from '../train/train.js';
import { fromImage, type AttackOptions, type AttackResult } from '../attacks/index.js';

export type Request =
  | { kind: 'faces'; seed: number; from: number; count: number }
  | { kind: 'setup'; model: Uint8Array; batch: number; share: number; inputs: SharedArrayBuffer; labels: SharedArrayBuffer }
  | { kind: 'gradients'; weights: Float32Array; indices: Uint32Array; from: number }
  | { kind: 'attack'; model: Uint8Array; inputs: Float32Array[]; options: AttackOptions };

/** The compiled worker: next to this file in dist/, or in dist/ when running from src/. */
const WORKER = new URL('../../dist/node/worker.js', import.meta.url);

export class Pool {
  private readonly workers: Worker[];
  private closed = false;

  constructor(readonly size = availableParallelism()) {
    this.workers = Array.from({ length: size }, (_, i) => this.start(i));
  }

  /** A new worker `i`. One that dies (an uncaught error, a WASM trap, out of memory) is replaced
   *  at once, so that a long-lived pool keeps its size; the request it was on fails (see ask). */
  private start(i: number): Worker {
    const worker = new Worker(WORKER);
    worker.on('error', () => {}); // reported by the ask under way, if any
    worker.once('exit', () => {
      if (!this.closed && this.workers[i] === worker) this.workers[i] = this.start(i);
    });
    return worker;
  }

  /** Sends a request to worker `i` and resolves with its answer; messages `{ progress }` the
   *  worker sends before it go to `onProgress`. Rejects with the worker's error if it dies. */
  ask<T>(i: number, request: Request, onProgress?: (fraction: number) => void): Promise<T> {
    const worker = this.workers[i];
    return new Promise((resolve, reject) => {
      // An error is always followed by the thread's exit: the request fails then, once the
      // thread has been replaced, so that the next request goes to the new one.
      let error: Error | undefined;
      const failed = (e: Error) => (error = e);
      const exit = (code: number) => {
        settle();
        reject(error ?? new Error(`worker thread ${i} stopped (exit code ${code})`));
      };
      const message = (answer: T | Progress) => {
        if (isProgress(answer)) return onProgress?.(answer.progress);
        settle();
        resolve(answer);
      };
      const settle = () => {
        worker.off('message', message);
        worker.off('error', failed);
        worker.off('exit', exit);
      };
      worker.on('message', message);
      worker.once('error', failed);
      worker.once('exit', exit);
      worker.postMessage(request);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  /** Faces 0 … count−1 of `seed`, exactly as generateFaces gives them, rendered in parallel. */
  async faces(count: number, seed: number, onProgress?: (done: number) => void): Promise<Face[]> {
    const chunk = 200;
    const faces: Face[] = new Array(count);
    let next = 0, done = 0;
    const work = async (i: number) => {
      while (next < count) {
        const from = next;
        const n = Math.min(chunk, count - from);
        next += n;
        const { labels, pixels } = await this.ask<{ labels: Uint8Array; pixels: Uint8Array }>(i, { kind: 'faces', seed, from, count: n });
        const side = Math.sqrt(pixels.length / n);
        for (let j = 0; j < n; j++) {
          faces[from + j] = { label: labels[j] as 0 | 1, image: { width: side, height: side, channels: 1, data: pixels.subarray(j * side * side, (j + 1) * side * side) } };
        }
        done += n;
        onProgress?.(done);
      }
    };
    await Promise.all(this.workers.map((_, i) => work(i)));
    return faces;
  }

  /** An attack on `inputs`, split in one contiguous share per worker; closes the pool.
   *  `onProgress` hears how many images' worth of work is done, as the workers go. */
  async attack(model: Model, inputs: Float32Array[], options: AttackOptions, onProgress?: (done: number) => void): Promise<AttackResult[]> {
    const bytes = writeModel(model);
    const share = Math.ceil(inputs.length / this.size);
    const done = new Float64Array(this.size);
    try {
      const parts = await Promise.all(this.workers.map(async (_, i) => {
        const mine = inputs.slice(i * share, (i + 1) * share);
        if (mine.length === 0) return [];
        return this.ask<AttackResult[]>(i, { kind: 'attack', model: bytes, inputs: mine, options: fromImage(options, i * share) }, (fraction) => {
          done[i] = fraction * mine.length;
          onProgress?.(done.reduce((a, b) => a + b, 0));
        });
      }));
      return parts.flat();
    } finally {
      await this.close();
    }
  }

  /** A gradient source for `train` whose batches are split over the workers. */
  async gradients(model: Model, data: LabelledSet, batch: number): Promise<GradientSource> {
    if (batch % this.size !== 0) throw new Error(`a batch of ${batch} does not split over ${this.size} workers`);
    const share = batch / this.size;
    const inputs = shared(data.inputs), labels = shared(data.labels);
    const bytes = writeModel(model);
    await Promise.all(this.workers.map((_, i) => this.ask(i, { kind: 'setup', model: bytes, batch: share, share: 1 / batch, inputs, labels })));
    return {
      compute: async (params: Tensor[], indices: Uint32Array, from: number) => {
        const weights = new Float32Array(params.reduce((n, p) => n + p.size, 0));
        let at = 0;
        for (const p of params) {
          weights.set(p.toArray(), at);
          at += p.size;
        }
        // Each worker gets its share of the indices alone: a typed array is posted with its whole buffer.
        const mine = (i: number) => indices.slice(from + i * share, from + (i + 1) * share);
        const parts = await Promise.all(this.workers.map((_, i) => this.ask<{ loss: number; correct: number; grads: Float32Array }>(i, { kind: 'gradients', weights, indices: mine(i), from: 0 })));
        at = 0;
        for (const p of params) {
          const g = p.grad!.engine.floats(p.grad!.ptr, p.size);
          g.set(parts[0].grads.subarray(at, at + p.size));
          for (const part of parts.slice(1)) for (let j = 0; j < p.size; j++) g[j] += part.grads[at + j];
          at += p.size;
        }
        return { loss: parts.reduce((s, p) => s + p.loss, 0), correct: parts.reduce((s, p) => s + p.correct, 0) };
      },
    };
  }
}

interface Progress {
  progress: number;
}

function isProgress(m: unknown): m is Progress {
  return typeof m === 'object' && m !== null && 'progress' in m && Object.keys(m).length === 1;
}

/** The same values in memory every worker can read. */
function shared<T extends Float32Array | Uint8Array>(a: T): SharedArrayBuffer {
  const buffer = new SharedArrayBuffer(a.byteLength);
  new Uint8Array(buffer).set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return buffer;
}
