// A worker thread of the pool in parallel.ts: it has its own engine (its own WASM instance)
// and answers its requests: render faces, attack images, compute a share of a batch's gradients.
import { parentPort } from 'node:worker_threads';
import type { Engine } from '../core/engine.js';
import { readModel } from '../formats/model.js';
import { Net } from '../core/net.js';
import { runAttack } from '../attacks/index.js';
import { loadEngine } from './engine.js';
import { BatchGradients, type LabelledSet } from '../train/train.js';
import type { Request } from './parallel.js';

let engine: Engine | undefined;
let gradients: BatchGradients | undefined;
let data: LabelledSet | undefined;

parentPort!.on('message', async (request: Request) => {
  engine ??= await loadEngine();
  switch (request.kind) {
    case 'faces': {
      // Imported here: the face renderer takes longer to load than the rest of the worker, and
      // attacks and training never use it.
      const { generateFaces } = await import('../train/dataset.js');
      const faces = generateFaces(request.count, request.seed, undefined, request.from);
      const pixels = new Uint8Array(faces.reduce((n, f) => n + f.image.data.length, 0));
      let at = 0;
      for (const f of faces) {
        pixels.set(f.image.data, at);
        at += f.image.data.length;
      }
      parentPort!.postMessage({ labels: Uint8Array.from(faces, (f) => f.label), pixels }, [pixels.buffer]);
      break;
    }
    case 'attack': {
      // The share's progress, as a fraction of its planned iterations, at most 10 times a second.
      let last = 0;
      const onProgress = (done: number, total: number) => {
        const now = performance.now();
        if (now - last < 100) return;
        last = now;
        parentPort!.postMessage({ progress: done / total });
      };
      const mark = engine.mark();
      const results = runAttack(new Net(engine, readModel(request.model, 'model')), request.inputs, request.options, { onProgress });
      engine.release(mark);
      parentPort!.postMessage(results);
      break;
    }
    case 'setup': {
      const model = readModel(request.model, 'model');
      gradients = new BatchGradients(engine, model, request.batch, request.share);
      data = { inputs: new Float32Array(request.inputs), labels: new Uint8Array(request.labels) };
      parentPort!.postMessage({});
      break;
    }
    case 'gradients': {
      let at = 0;
      for (const p of gradients!.params) {
        p.write(request.weights.subarray(at, at + p.size));
        at += p.size;
      }
      const result = gradients!.compute(data!, request.indices, request.from);
      const grads = new Float32Array(at);
      at = 0;
      for (const p of gradients!.params) {
        grads.set(p.grad!.toArray(), at);
        at += p.size;
      }
      parentPort!.postMessage({ ...result, grads }, [grads.buffer]);
      break;
    }
  }
});
