// The submitter's side of a run on the queue: stores the model and the image files in Redis by
// their hashes, enqueues the run's jobs (or finds them from an earlier submission of the same run),
// waits for them while showing progress, and hands back every image's result or its job's error,
// in the images' order. Writing the outputs is left to the command, as in a local run.
import { Job, Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { writeModel, type Model } from '../formats/model.js';
import { INPUT_LIMITS, readInputFile } from '../node/input.js';
import type { Crop } from '../node/files.js';
import { fromImage, type AttackOptions } from '../attacks/index.js';
import { Progress } from '../cli/progress.js';
import { checkReachable, connectionOptions, parseQueueUrl } from './connection.js';
import { BLOB_SECONDS, blobKey, decodeResults, QUEUE_NAME, runId, sha256, type JobData, type JobImage, type JobResult } from './job.js';

/** Images a job takes, unless told otherwise. */
export const IMAGES_PER_JOB = 8;

/** How often the submitter checks every pending job, besides hearing of them as they finish. */
const SWEEP_MS = 10_000;

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
    const jobs = Array.from({ length: Math.ceil(images.length / run.perJob) }, (_, k) => ({
      id: `${id}-${k}`,
      first: k * run.perJob,
      data: { run: id, model, images: images.slice(k * run.perJob, (k + 1) * run.perJob), decode: run.decode, options: fromImage(run.options, k * run.perJob), images8: run.images8 },
    }));
    const enqueue = (list: typeof jobs) => queue.addBulk(list.map((j) => ({ name: 'attack', data: j.data, opts: { jobId: j.id, attempts: 1, removeOnComplete: false, removeOnFail: false } })));
    await enqueue(jobs);

    const outcomes: Outcome[] = new Array(images.length);
    const pending = new Map(jobs.map((j) => [j.id, j]));
    const bar = run.title === null ? null : new Progress(run.title, images.length, { unit: 'images' });
    let done = 0;
    let wake = () => {};
    const finish = (j: (typeof jobs)[number], failedReason: string | undefined, returnvalue: string) => {
      if (!pending.delete(j.id)) return;
      const n = j.data.images.length;
      if (failedReason) for (let i = 0; i < n; i++) outcomes[j.first + i] = { error: failedReason.split('\n')[0] };
      else decodeResults(returnvalue).forEach((r, i) => (outcomes[j.first + i] = r));
      done += n;
      bar?.update(done);
      if (pending.size === 0) wake();
    };
    // Every pending job's state in one round trip: the finished ones are read, and the ones Redis
    // lost (restarted without having saved them) are put back, with their bytes, which may be gone
    // too. At the start, a job that failed in an earlier submission of this run is tried again
    // instead (the same bad image fails again; a passing fault does not).
    const sweep = async (retryFailed: boolean) => {
      const list = [...pending.values()];
      const states = await redis.pipeline(list.map((j) => ['hmget', queue.toKey(j.id), 'timestamp', 'finishedOn'])).exec();
      await Promise.all(list.map(async (j, k) => {
        const [error, state] = states?.[k] ?? [];
        if (error || !Array.isArray(state)) return;
        const [created, finishedOn] = state as (string | null)[];
        if (created === null) {
          await store(redis, [[model, modelBytes], ...j.data.images.map((image) => [image.hash, readInputFile(paths.get(image.hash)!, 'an image', INPUT_LIMITS.image)] as [string, Uint8Array])]);
          await enqueue([j]);
          return;
        }
        if (finishedOn === null) return;
        const found = await Job.fromId<JobData, string>(queue, j.id);
        if (!found) return;
        if (retryFailed && found.failedReason) await found.retry('failed');
        else finish(j, found.failedReason, found.returnvalue);
      }));
    };
    await sweep(true);
    // Then jobs are heard of as they finish, from the queue's event stream, read from the
    // millisecond before the second sweep (an event heard twice is harmless), so that a job
    // finishing in between is either swept or heard. The stream's reader keeps its place across
    // reconnections; a sweep after each reconnection, and every SWEEP_MS, finds the jobs Redis
    // lost and any event the stream dropped (it keeps the last 10,000 or so).
    const [seconds, micros] = (await redis.time()) as [number | string, number | string];
    const events = new QueueEvents(QUEUE_NAME, { connection: connectionOptions(address), lastEventId: `${Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - 1}-0` });
    events.on('error', () => {});
    events.on('completed', ({ jobId, returnvalue }) => pending.has(jobId) && finish(pending.get(jobId)!, undefined, returnvalue));
    events.on('failed', ({ jobId, failedReason }) => pending.has(jobId) && finish(pending.get(jobId)!, failedReason || 'failed', ''));
    const reconnected = () => wake();
    redis.on('ready', reconnected);
    try {
      await events.waitUntilReady();
      await sweep(false);
      while (pending.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, SWEEP_MS);
        });
        clearTimeout(timer);
        if (pending.size > 0) await sweep(false);
      }
    } finally {
      redis.off('ready', reconnected);
      await events.close();
    }
    bar?.done();
    await use(outcomes);
    await Promise.all(jobs.map((j) => queue.remove(j.id)));
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
