// The submitter's side of a run on the queue: stores the model and the image files in Redis by
// their hashes, enqueues the run's jobs (or finds them from an earlier submission of the same run),
// waits for them while showing progress, and hands back every image's result or its job's error,
// in the images' order. Writing the outputs is left to the command, as in a local run.
import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { writeModel, type Model } from '../formats/model.js';
import { INPUT_LIMITS, readInputFile } from '../node/input.js';
import type { Crop } from '../node/files.js';
import { methodById, type AttackOptions } from '../attacks/index.js';
import { Progress } from '../cli/progress.js';
import { checkReachable, connectionOptions, parseQueueUrl } from './connection.js';
import { BLOB_SECONDS, blobKey, decodeResults, jobOptions, QUEUE_NAME, runId, sha256, type JobData, type JobImage, type JobResult } from './job.js';

/** Images a job takes, unless told otherwise. */
export const IMAGES_PER_JOB = 8;

export interface QueueRun {
  /** `redis://HOST:PORT[/DB]`. */
  queue: string;
  model: Model;
  /** Each image's file, the name it has in messages and results, and its face box. */
  images: { path: string; name: string; box?: Crop; from?: string }[];
  decode: JobData['decode'];
  options: AttackOptions;
  images8: boolean;
  perJob: number;
  /** The progress bar's title, or null for none. */
  title: string | null;
}

/** An image's result, or the error of the job that was to attack it. */
export type Outcome = JobResult | { error: string };

/** Runs `run` on the queue and gives its outcomes to `use` (which writes them); once `use` has
 *  succeeded, the run's jobs are removed. Until then they stay, for a submission of the same run
 *  to find. */
export async function submitRun(run: QueueRun, use: (outcomes: Outcome[]) => Promise<void> | void): Promise<void> {
  const address = parseQueueUrl(run.queue);
  await checkReachable(address);
  const redis = new Redis(connectionOptions(address));
  redis.on('error', () => {}); // reconnects by itself; commands wait for it
  const queue = new Queue<JobData, string>(QUEUE_NAME, { connection: connectionOptions(address) });
  queue.on('error', () => {});
  try {
    const modelBytes = writeModel(run.model);
    const model = sha256(modelBytes);
    const paths = new Map<string, string>();
    await store(redis, [[model, modelBytes]]);
    const images: JobImage[] = [];
    // In groups, so that a folder of large photos is never all in memory at once.
    for (let at = 0; at < run.images.length; at += 32) {
      const group = run.images.slice(at, at + 32).map((image) => ({ image, bytes: readInputFile(image.path, 'an image', INPUT_LIMITS.image) }));
      const hashed = group.map(({ image, bytes }) => ({ image, bytes, hash: sha256(bytes) }));
      await store(redis, hashed.map(({ hash, bytes }) => [hash, bytes]));
      for (const { image, hash } of hashed) {
        paths.set(hash, image.path);
        images.push({ hash, name: image.name, ...(image.box && { box: image.box, from: image.from }) });
      }
    }
    const id = runId({ model, images, decode: run.decode, options: run.options, images8: run.images8, perJob: run.perJob });
    const seeded = methodById(run.options.method).parameters.some((p) => p.key === 'seed');
    const jobs = Array.from({ length: Math.ceil(images.length / run.perJob) }, (_, k) => ({
      id: `${id}-${k}`,
      first: k * run.perJob,
      data: { run: id, model, images: images.slice(k * run.perJob, (k + 1) * run.perJob), decode: run.decode, options: jobOptions(run.options, seeded, k * run.perJob), images8: run.images8 },
    }));
    const enqueue = (list: typeof jobs) => queue.addBulk(list.map((j) => ({ name: 'attack', data: j.data, opts: { jobId: j.id, attempts: 1, removeOnComplete: false, removeOnFail: false } })));
    await enqueue(jobs);
    // A job that failed in an earlier submission of this run is tried again (the same bad image
    // fails again; a passing fault does not).
    await Promise.all(jobs.map(async (j) => {
      const found = await Job.fromId(queue, j.id);
      if (found && (await found.isFailed())) await found.retry('failed');
    }));

    const outcomes: Outcome[] = new Array(images.length);
    const pending = new Set(jobs);
    const bar = run.title === null ? null : new Progress(run.title, images.length, { unit: 'images' });
    let done = 0;
    while (pending.size > 0) {
      await Promise.all([...pending].map(async (j) => {
        const found = await Job.fromId<JobData, string>(queue, j.id);
        if (!found) {
          // Gone: Redis restarted without having saved it. The bytes may be gone too.
          await store(redis, [[model, modelBytes], ...j.data.images.map((image) => [image.hash, readInputFile(paths.get(image.hash)!, 'an image', INPUT_LIMITS.image)] as [string, Uint8Array])]);
          await enqueue([j]);
          return;
        }
        if (found.finishedOn === undefined) return;
        const n = j.data.images.length;
        if (found.failedReason) for (let i = 0; i < n; i++) outcomes[j.first + i] = { error: found.failedReason.split('\n')[0] };
        else decodeResults(found.returnvalue).forEach((r, i) => (outcomes[j.first + i] = r));
        pending.delete(j);
        done += n;
        bar?.update(done);
      }));
      if (pending.size > 0) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    bar?.done();
    await use(outcomes);
    await Promise.all(jobs.map(async (j) => (await Job.fromId(queue, j.id))?.remove()));
  } finally {
    await queue.close();
    redis.disconnect();
  }
}

/** Stores each of `blobs` ([hash, bytes]) once, kept BLOB_SECONDS from now. */
async function store(redis: Redis, blobs: [string, Uint8Array][]): Promise<void> {
  const there = await redis.pipeline(blobs.map(([hash]) => ['expire', blobKey(hash), BLOB_SECONDS])).exec();
  const missing = blobs.filter((_, i) => there?.[i]?.[1] !== 1);
  if (missing.length > 0) await redis.pipeline(missing.map(([hash, bytes]) => ['set', blobKey(hash), Buffer.from(bytes), 'EX', BLOB_SECONDS, 'NX'])).exec();
}
