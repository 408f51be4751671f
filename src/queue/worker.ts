// The worker loop: takes jobs from the queue until stopped, each on one of this process's worker
// threads (each thread its own engine, as in a local run), so that the main thread stays free to
// renew the jobs' locks. A worker that dies (killed, its machine gone) stops renewing them: once
// its locks have expired, the stalled-job check of the other workers puts its jobs back in the
// queue, and another worker does them again. A thread that dies (out of memory, a WASM trap) fails
// its job with its error and is replaced (src/node/parallel.ts), and the worker goes on.
import { Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { Pool } from '../node/parallel.js';
import { readModel, type Architecture, type Model } from '../formats/model.js';
import { fileToInput, imageToInput, inputToImage } from '../formats/preprocess.js';
import { encodePng, imageSize } from '../formats/image.js';
import { checkBox } from '../node/files.js';
import { datasetImage } from '../node/dataset.js';
import type { AttackResult } from '../attacks/index.js';
import { checkReachable, connectionOptions, type QueueAddress } from './connection.js';
import { blobKey, encodeResults, QUEUE_NAME, type JobData, type JobImage, type JobResult } from './job.js';

export interface WorkerSettings {
  address: QueueAddress;
  /** Jobs at a time, each on its own thread. */
  threads: number;
  /** How long a job's lock lasts without renewal: how soon a dead worker's jobs are done again. */
  lockSeconds: number;
  /** A line on stderr per job, unless quiet. */
  quiet: boolean;
}

/** Runs jobs until SIGINT or SIGTERM: the first lets the jobs under way finish, a second stops at
 *  once and hands those jobs back to the queue (a third does not wait for Redis to take them). */
export async function runWorker(settings: WorkerSettings): Promise<void> {
  const { address, threads } = settings;
  await checkReachable(address);
  const say = (line: string) => settings.quiet || process.stderr.write(`${line}\n`);
  const redis = new Redis(connectionOptions(address));
  redis.on('error', () => {}); // reconnects by itself; a command waits for it
  const pool = new Pool(threads);
  const free = Array.from({ length: threads }, (_, i) => i);
  let model: { hash: string; bytes: Uint8Array; model: Model } | undefined;

  const work = async (job: Job<JobData>): Promise<string> => {
    const data = job.data;
    const started = performance.now();
    if (model?.hash !== data.model) {
      const bytes = await redis.getBuffer(blobKey(data.model));
      if (!bytes) throw new Error(`the model ${data.model.slice(0, 12)}… is not stored in Redis (expired, or Redis lost it): submit the run again`);
      model = { hash: data.model, bytes: new Uint8Array(bytes), model: readModel(new Uint8Array(bytes), 'the model') };
    }
    const { bytes: modelBytes, model: { architecture } } = model;
    const files = await redis.mgetBuffer(...data.images.map((image) => blobKey(image.hash)));
    const inputs = data.images.map((image, k) => {
      const bytes = files[k];
      if (!bytes) throw new Error(`${image.name}: not stored in Redis (expired, or Redis lost it): submit the run again`);
      return decodeInput(new Uint8Array(bytes), image, data.decode, architecture);
    });
    const thread = free.pop();
    if (thread === undefined) throw new Error('no worker thread is free');
    let results: AttackResult[];
    try {
      results = await pool.ask<AttackResult[]>(thread, { kind: 'attack', model: modelBytes, inputs, options: data.options });
    } finally {
      free.push(thread);
    }
    say(`job ${job.id}: ${inputs.length} images in ${((performance.now() - started) / 1000).toFixed(2)} s`);
    return encodeResults(results.map((r) => toJobResult(r, data.images8 ? architecture : undefined)));
  };

  // The jobs under way and their locks' tokens, for a stop at once to hand them back.
  const active = new Map<Job<JobData>, string>();
  const worker = new Worker<JobData, string>(QUEUE_NAME, async (job, token) => {
    active.set(job, token!);
    try {
      return await work(job);
    } finally {
      active.delete(job);
    }
  }, {
    connection: connectionOptions(address),
    concurrency: threads,
    lockDuration: settings.lockSeconds * 1000,
    stalledInterval: (settings.lockSeconds * 1000) / 2,
    // A job whose workers keep dying is given up after this many, and reported as failed.
    maxStalledCount: 3,
  });
  worker.on('error', () => {}); // connection errors: the worker reconnects
  worker.on('failed', (job, e) => say(`job ${job?.id}: failed: ${e.message.split('\n')[0]}`));
  say(`mislead worker: ${threads} ${threads === 1 ? 'thread' : 'threads'} on ${address.url}`);

  await new Promise<void>((resolve) => {
    let stops = 0;
    const stop = () => {
      if (++stops > 2) process.exit(130);
      if (stops === 2) {
        // Back in the queue's waiting list at its head, their locks released, so that another
        // worker takes them now rather than after the lock. Should Redis not answer, they come
        // back when their locks expire, as a killed worker's do.
        say('mislead worker: stopping now; the jobs under way go back to the queue');
        const handBack = Promise.allSettled([...active].map(([job, token]) => job.moveToWait(token)));
        void Promise.race([handBack, new Promise((resolve) => setTimeout(resolve, 5000))]).then(() => process.exit(130));
        return;
      }
      say('mislead worker: finishing the jobs under way (Ctrl-C again to stop at once)');
      void worker.close().then(resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await pool.close();
  redis.disconnect();
}

/** An image's bytes as the model's input, read as a local run reads it. */
function decodeInput(bytes: Uint8Array, image: JobImage, decode: JobData['decode'], arch: Architecture): Float32Array {
  if (decode === 'dataset') return imageToInput(datasetImage(bytes, image.name, image.box && { box: image.box, from: image.from ?? 'crop' }, arch.input[2] as 1 | 3), arch);
  if (image.box) checkBox(image.box, imageSize(bytes, image.name), image.name, image.from ?? 'crop');
  return fileToInput(bytes, image.name, arch, image.box);
}

/** A result as the job sends it back: its numbers, and the adversarial as its 8-bit PNG. */
function toJobResult({ adversarial, perturbation: _, ...rest }: AttackResult, arch: Architecture | undefined): JobResult {
  return arch ? { ...rest, png: Buffer.from(encodePng(inputToImage(adversarial, arch))).toString('base64') } : rest;
}
