// The `attack` and `tutorial` commands end to end: image in, optimisation, result files and
// report out. The files are staged and only put in place once everything has worked.
import { predictLogits, argmax, Net, softmax } from '../core/net.js';
import { InputError } from '../errors.js';
import { readModelInput, type Crop } from '../node/files.js';
import { present } from '../node/input.js';
import { faceBoxes, readLabels } from '../node/labels.js';
import { cleanOnSignals, OutputSet } from '../node/output.js';
import { distances, isSuccess, methodById, norms, nothingToDo, plannedIterations, resolveOptions, startAttack, summarize, type AttackOptions, type AttackResult, type AttackRun, type ResolvedOptions } from '../attacks/index.js';
import { Pool } from '../node/parallel.js';
import { basename, dirname, join } from 'node:path';
import { Progress } from './progress.js';
import { snakeKeys } from './command.js';
import { decodeImage, encodePng, toGray } from '../formats/image.js';
import { endsInSoftmax, inputUnits, type Architecture, type Model } from '../formats/model.js';
import { loadEngine } from '../node/engine.js';
import { resultFiles } from '../formats/results.js';
import { figurePng, lossSvg, successCurveSvg, svgToPng, type Curve, type Panel } from './figures.js';
import { filterImage, inputToImage } from '../formats/preprocess.js';
import { IMAGES_PER_JOB, submitRun } from '../queue/submit.js';

export interface Classification {
  label: string;
  index: number;
  logits: number[];
  probabilities: number[];
}

/** Refuses logits that are not all finite: a model whose weights overflow float32 on an image
 *  says nothing about it, and its NaN must not pass for a class. `model` and `image` name them. */
export function checkLogits(logits: ArrayLike<number>, model: string, image: string): void {
  for (let i = 0; i < logits.length; i++) {
    if (!Number.isFinite(logits[i])) throw new InputError(`${model}: the model's logits are not finite (${logits[i]}) on ${image}`);
  }
}

/** The class, logits and probabilities of the model `model` (its file) on `image`. */
export function describe(net: Net, logits: Float32Array, model: string, image: string): Classification {
  checkLogits(logits, model, image);
  const index = argmax(logits);
  return { label: net.architecture.labels[index], index, logits: Array.from(logits), probabilities: softmax(logits) };
}

/** describe() for each of `inputs`, the images named `images`. */
export function classify(net: Net, inputs: Float32Array[], model: string, images: readonly string[]): Classification[] {
  return predictLogits(net, inputs).map((l, i) => describe(net, l, model, images[i]));
}

/** Refuses the results of an attack suite run whose logits, before or after, are not finite. */
export function checkResults(results: readonly ResultRecord[], model: string, images: readonly string[]): void {
  results.forEach((r, i) => {
    checkLogits(r.before.logits, model, images[i]);
    checkLogits(r.after.logits, model, `${images[i]} after the attack`);
  });
}

/** An image's result without its arrays: what the numbers of a batch's outputs come from. */
export type ResultRecord = Omit<AttackResult, 'adversarial' | 'perturbation'>;
/** An image's result in a batch: its numbers and its adversarial image. */
type BatchResult = Omit<AttackResult, 'perturbation'>;
/** An image of a batch run on a queue whose job failed: its error instead of a result. */
export interface Failed {
  error: string;
}

/** A model that ends in a softmax is attacked on the logits before it: said once on stdout (not
 *  with --json, whose stdout is the report alone) and, as `note`, in the report. */
export function softmaxNote(arch: Architecture, json: boolean): { note?: string } {
  if (!endsInSoftmax(arch)) return {};
  const note = 'the model ends in a softmax: attacks work on the logits before it';
  if (!json) process.stdout.write(`note: ${note}\n`);
  return { note };
}

/** What the method says about this run (parts it leaves out): on stdout (not with --json) and,
 *  as `notes`, in the report. */
export function methodNotes(options: ResolvedOptions, classes: number, json: boolean): { notes?: string[] } {
  const notes = methodById(options.method).notes?.(options, classes) ?? [];
  if (notes.length === 0) return {};
  if (!json) for (const note of notes) process.stdout.write(`note: ${note}\n`);
  return { notes };
}

/** The label index for --target: a label name (any case), or by default the first label that is not `current`. */
function resolveTarget(labels: string[], target: string | undefined, current: number): number {
  if (target === undefined) return current === 0 ? 1 : 0;
  const index = labels.findIndex((l) => l.toLowerCase() === target.toLowerCase());
  if (index < 0) {
    const shown = labels.length <= 10 ? labels.join(', ') : `${labels.slice(0, 10).join(', ')}, … (${labels.length} labels)`;
    throw new InputError(`--target ${target}: not a label of this model (labels: ${shown})`);
  }
  return index;
}

interface Job {
  model: Model;
  modelPath: string;
  imagePath: string;
  out: string;
  force: boolean;
  json: boolean;
  quiet?: boolean;
  crop?: Crop;
}

/** The size of a filter DX (model units) in grey levels and model units. */
function dxNorms(dx: Float32Array, scale: number) {
  return norms(distances(dx.map((v) => v * scale), new Float32Array(dx.length)), 1 / Math.abs(scale));
}

/** One stage of the story the figure tells: a perturbation and what the model made of it. */
interface Stage {
  title: string;
  dx: Float32Array;
  after: Classification;
}

const capitalise = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
const scores = (net: Net, c: Classification) => net.architecture.labels.map((l, i) => `${l} ${c.logits[i].toFixed(2)}`).join(' · ');

/** Writes the result files of the last stage, and the figure and loss plot of all of them;
 *  reads adversarial.png back from disk to classify the image as saved. */
function writeResults(net: Net, modelPath: string, outputs: OutputSet, x: Float32Array, before: Classification, stages: Stage[], curves: Curve[]): Classification {
  const arch = net.architecture;
  const [height, width, channels] = arch.input;
  const adversarialImage = (dx: Float32Array) => inputToImage(x.map((v, i) => v + dx[i]), arch);
  const last = stages[stages.length - 1];
  const files = resultFiles(x.map((v, i) => v + last.dx[i]), last.dx, arch);
  const png = outputs.write('adversarial.png', files['adversarial.png']);
  outputs.write('perturbation.npy', files['perturbation.npy']);
  outputs.write('filter.png', files['filter.png']);
  const panels: Panel[] = [{ title: `Original: ${capitalise(before.label)}`, subtitle: scores(net, before), image: inputToImage(x, arch) }];
  for (const s of stages) {
    const filterTitle = s === stages[0] ? 'Noise filter' : `Noise filter (${s.title.replace(/^Adversarial /, '')})`;
    panels.push({ title: filterTitle, subtitle: `max |DX| ${(maxAbs(s.dx) * Math.abs(inputUnits(arch).scale)).toFixed(1)} grey levels`, image: filterImage(s.dx, height, width, channels as 1 | 3) });
    panels.push({ title: `${s.title}: ${capitalise(s.after.label)}`, subtitle: scores(net, s.after), image: adversarialImage(s.dx) });
  }
  outputs.write('figure.png', figurePng(panels));
  if (curves.length > 0) outputs.write('loss.svg', lossSvg(curves, 'Loss per iteration'));
  const reread = readModelInput(png, arch);
  return classify(net, [reread], modelPath, ['the saved adversarial.png'])[0];
}

function maxAbs(v: Float32Array): number {
  return v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
}

function finish(outputs: OutputSet, report: object, json: boolean): void {
  outputs.write('report.json', JSON.stringify(report, null, 2) + '\n');
  const written = outputs.commit();
  if (json) process.stdout.write(JSON.stringify(report) + '\n');
  else process.stdout.write(`wrote ${written.join(', ')}\n`);
}

/** Runs `work`, removing the staged files if it fails. */
async function withOutputs(outputs: OutputSet, work: () => void | Promise<void>): Promise<void> {
  try {
    await work();
  } catch (e) {
    outputs.abandon();
    throw e;
  }
}

/** An attack from the command line: the images, the method's options and the target by name. */
export interface AttackJob extends Omit<Job, 'imagePath'> {
  images: string[];
  options: AttackOptions;
  target?: string;
  workers: number;
  /** `redis://…`: the batch is run by the workers of this queue (src/queue), `perJob` images a job. */
  queue?: string;
  perJob?: number;
}

/** Any method on one image or many, through the library's stepped runs (or a pool of workers for
 *  a batch): one image gets the result files and report of SPEC §1, a batch a summary. */
export function runAttackJob(job: AttackJob): Promise<void> {
  return cleanOnSignals(() => attack(job));
}

async function attack(job: AttackJob): Promise<void> {
  const arch = job.model.architecture;
  const single = job.images.length === 1;
  // On a queue, the workers read the images: here only those the contact sheet shows.
  const queued = job.queue !== undefined;
  const inputs = queued ? [] : readInputs(job.images, arch, job.crop);
  const truth = single ? undefined : trueLabels(job.images, arch.labels);
  const net = new Net(await loadEngine(), job.model);
  const target = job.target === undefined ? undefined : resolveTarget(arch.labels, job.target, 0);
  // The filter is the tutorial's: its result is X + DX in float, the 8-bit file judged apart.
  const options = { ...job.options, target, quantize: job.options.method !== 'filter' } as AttackOptions;
  const resolved = resolveOptions(options, arch.labels.length, undefined, arch.input[0] * arch.input[1] * arch.input[2]);
  const iterative = plannedIterations(resolved) > 1;
  const note = { ...softmaxNote(arch, job.json), ...methodNotes(resolved, arch.labels.length, job.json) };
  const outputs = new OutputSet(job.out, job.force, single ? [...SINGLE_FILES, ...(iterative ? ['loss.svg'] : [])] : [...BATCH_FILES, ...(options.method === 'square' ? ['queries.svg', 'queries.png'] : [])], { quiet: job.quiet });
  await withOutputs(outputs, async () => {
    const start = performance.now();
    const display = job.json || job.quiet ? 'none' : single && !process.stderr.isTTY ? 'lines' : 'bar';
    const params = snakeKeys({ ...resolved, init: undefined, target: target === undefined ? null : arch.labels[target] });
    if (queued) {
      return attackOnQueue(job, options, display === 'bar' ? options.method : null, (entries) => {
        const done = entries.flatMap((e, i) => ('error' in e ? [] : [i]));
        checkResults(done.map((i) => entries[i] as BatchResult), job.modelPath, done.map((i) => job.images[i]));
        const shown = readInputs(done.slice(0, CONTACT_IMAGES).map((i) => job.images[i]), arch, job.crop);
        const inputOf = (i: number) => shown[done.indexOf(i)];
        writeSummary(job, net, outputs, inputOf, entries, truth, { ...note, params }, performance.now() - start);
      });
    }
    const { results, losses } = await attackImages(job, net, inputs, options, display);
    const ms = performance.now() - start;
    checkResults(results, job.modelPath, job.images);
    if (single) {
      const [r] = results;
      if (r.skipped) throw new InputError(`${job.images[0]}: ${nothingToDo(arch.labels[r.before.index])}`);
      // The classes before come from the attack's own first forward pass, not a second one.
      const before = [describe(net, Float32Array.from(r.before.logits), job.modelPath, job.images[0])];
      const after = describe(net, Float32Array.from(r.after.logits), job.modelPath, `${job.images[0]} after the attack`);
      const curves = iterative ? [{ name: 'loss', values: losses }] : [];
      const saved = writeResults(net, job.modelPath, outputs, inputs[0], before[0], [{ title: 'Adversarial', dx: r.perturbation, after }], curves);
      if (!job.json) {
        printClasses(before[0], after, saved);
        printDistances(r);
      }
      finish(outputs, {
        model: job.modelPath, image: job.images[0], method: resolved.method, ...note, params,
        target: r.target === null ? null : arch.labels[r.target], target_index: r.target,
        before: before[0], after, saved, success: r.success, success_saved: isSuccess(r.before.index, saved.index, r.target),
        loss: Array.from(losses),
        norms: r.norms, psnr: r.psnr, ssim: r.ssim, iterations: r.iterations, gradients: r.gradients, queries: r.queries, ms,
        ...(r.brokenBy !== undefined && { broken_by: r.brokenBy }),
      }, job.json);
      return;
    }
    writeSummary(job, net, outputs, (i) => inputs[i], results, truth, { ...note, params }, ms);
  });
}

/** A batch attacked by the workers of `job.queue`; `write` gets each image's result (its
 *  adversarial back from the PNG the worker made of it) or its job's error. */
function attackOnQueue(job: AttackJob, options: AttackOptions, title: string | null, write: (entries: (BatchResult | Failed)[]) => void): Promise<void> {
  const arch = job.model.architecture;
  const regions = faceBoxes(job.images, job.crop);
  const { offset, scale } = inputUnits(arch);
  const images = job.images.map((path, i) => ({ path, name: path, ...(regions[i] && { box: regions[i].box, from: regions[i].from }) }));
  return submitRun({ queue: job.queue!, model: job.model, images, decode: 'file', options, images8: true, perJob: job.perJob ?? IMAGES_PER_JOB, title }, (outcomes) =>
    write(outcomes.map((o) => {
      if ('error' in o) return o;
      const { png, ...result } = o;
      // Decoded as RGB: a gray model's pixels are its three equal channels, which toGray gives back exactly.
      const rgb = decodeImage(Buffer.from(png!, 'base64'), 'an adversarial image from the queue');
      const image = arch.input[2] === 1 ? toGray(rgb) : rgb;
      return { ...result, adversarial: Float32Array.from(image.data, (v) => (v - offset) / scale) };
    })));
}

/** How an attack shows its progress: the tutorial's log lines, a bar on stderr, or nothing. */
export type Display = 'lines' | 'bar' | 'none';

/** The attack on this thread in slices of about 50 ms, with a turn of the event loop between
 *  them (a signal is handled at once), or for a batch over a pool of workers; with progress
 *  (`title`, the method by default: images for a batch, as they finish, iterations for one
 *  image), and the loss of the first image at each iteration of its batch. */
export async function attackImages(job: Pick<AttackJob, 'model' | 'modelPath' | 'images' | 'workers'>, net: Net, inputs: Float32Array[], options: AttackOptions, display: Display, title: string = options.method) {
  const images = inputs.length;
  if (job.workers > 1 && images > 1) {
    const bar = display === 'bar' ? new Progress(title, images, { unit: 'images' }) : null;
    const results = await new Pool(Math.min(job.workers, images)).attack(job.model, inputs, options, (done) => bar?.update(done));
    bar?.done();
    return { results, losses: [] };
  }
  const losses: number[] = [];
  let reported = -1;
  // A bar of iterations for one image (with its loss and the class it has now), of images for a batch.
  const shown: { bar?: Progress } = {};
  const run = startAttack(net, inputs, options, {
    onProgress: (done, total, info) => {
      // A batch's end is reported again with its results: the iteration's line is already out.
      if (done === reported) return;
      reported = done;
      const loss = info.loss[0];
      if (!Number.isFinite(loss)) {
        // Say why when it is the model itself: its logits on the original are not finite.
        const image = job.images[info.batch * run.options.batchSize];
        classify(net, [info.original.subarray(0, inputs[0].length)], job.modelPath, [image]);
        throw new InputError(`${job.modelPath}: the loss is not finite (${loss}) at iteration ${info.iteration} of the attack on ${image}`);
      }
      // The loss curve: the first image's, one value per iteration (not the end of an early stop).
      if (info.batch === 0 && done - 1 === losses.length) losses.push(loss);
      if (display === 'lines') tutorialLine(info.iteration, loss, run.total);
      if (display !== 'bar') return;
      if (images > 1) return void (shown.bar ??= new Progress(title, images, { unit: 'images' })).update((done / total) * images);
      // The class is worked out only when the bar is drawn (20 times a second at most).
      const now = () => net.architecture.labels[argmax(predictLogits(net, [info.x.subarray(0, inputs[0].length)])[0])];
      (shown.bar ??= new Progress(title, total, { unit: 'iterations' })).update(done, () => `loss ${loss.toFixed(6)} · ${now()}`);
    },
  });
  await stepInSlices(run);
  shown.bar?.done();
  return { results: run.results, losses };
}

/** Steps `run` to its end in slices of about 50 ms, yielding to the event loop between them. */
async function stepInSlices(run: AttackRun): Promise<void> {
  for (let slice = 8; ; ) {
    const start = performance.now();
    if (!run.step(slice)) return;
    slice = Math.max(1, Math.min(4 * slice, Math.round((slice * 50) / Math.max(performance.now() - start, 1))));
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** The tutorial's log line, printed every 100 iterations and at the last one. */
function tutorialLine(i: number, loss: number, iterations: number): void {
  if (i % 100 === 0 || i === iterations - 1) process.stdout.write(`iter= ${String(i).padStart(6)} - loss= ${loss.toFixed(6)}\n`);
}

function tableLine(title: string, net: Net, c: Classification): string {
  const scores = net.architecture.labels.map((l, i) => `${l}: ${c.logits[i].toFixed(6)}`).join(', ');
  return `Image ${title}: ${capitalise(c.label)} (scores: ${scores})`;
}

/** The tutorial: the filter method, 1000 iterations with β = 0, then 1000 more with β = 0.5
 *  starting from the first step's DX. */
export function runTutorial(job: Job): Promise<void> {
  return cleanOnSignals(() => tutorial(job));
}

async function tutorial(job: Job): Promise<void> {
  const [x] = readInputs([job.imagePath], job.model.architecture, job.crop);
  const net = new Net(await loadEngine(), job.model);
  const [before] = classify(net, [x], job.modelPath, [job.imagePath]);
  const note = softmaxNote(net.architecture, job.json);
  const outputs = new OutputSet(job.out, job.force, [...SINGLE_FILES, 'loss.svg'], { quiet: job.quiet });
  await withOutputs(outputs, async () => {
    const steps = [];
    let dx: Float32Array | undefined;
    for (const [n, { title, beta }] of [{ title: 'Adversarial', beta: 0 }, { title: 'Adversarial with L2', beta: 0.5 }].entries()) {
      const params = { iterations: 1000, lr: 0.1, beta };
      if (!job.json) process.stdout.write(`== Step ${n + 1}: ${params.iterations} iterations, beta ${beta} ==\n`);
      const start = performance.now();
      const { results: [r], losses } = await attackImages({ ...job, images: [job.imagePath], workers: 1 }, net, [x], { method: 'filter', ...params, init: [dx], quantize: false }, job.json || job.quiet ? 'none' : 'lines');
      checkResults([r], job.modelPath, [job.imagePath]);
      dx = r.perturbation;
      const after = describe(net, Float32Array.from(r.after.logits), job.modelPath, `${job.imagePath} after step ${n + 1}`);
      steps.push({ title, params, ms: performance.now() - start, loss: Array.from(losses), after, dx });
    }
    const saved = writeResults(net, job.modelPath, outputs, x, before, steps, steps.map((s, n) => ({ name: `step ${n + 1} (beta ${s.params.beta})`, values: s.loss })));
    if (!job.json) {
      process.stdout.write(`${tableLine('Original', net, before)}\n`);
      for (const s of steps) process.stdout.write(`${tableLine(s.title, net, s.after)}\n`);
    }
    const after = steps[1].after, target = before.index === 0 ? 1 : 0;
    finish(outputs, {
      model: job.modelPath, image: job.imagePath, method: 'filter', ...note,
      params: steps.map((s) => ({ iters: s.params.iterations, lr: s.params.lr, beta: s.params.beta })),
      target: net.architecture.labels[target], target_index: target,
      before, after, saved, success: after.index === target, success_saved: saved.index === target,
      steps: steps.map((s) => ({ title: s.title, after: s.after, loss: s.loss, ms: s.ms })),
      loss: steps.flatMap((s) => s.loss), norms: dxNorms(dx!, inputUnits(net.architecture).scale),
      iterations: steps.reduce((k, s) => k + s.params.iterations, 0), ms: steps.reduce((t, s) => t + s.ms, 0),
    }, job.json);
  });
}

/** A batch's results: adversarial/, summary.json and .csv, contact.png, and a table. */
function writeSummary(job: AttackJob, net: Net, outputs: OutputSet, inputOf: (i: number) => Float32Array, entries: readonly (BatchResult | Failed)[], truth: number[] | undefined, run: { note?: string; notes?: string[]; params: object }, ms: number): void {
  const arch = net.architecture;
  // The images attacked (all but those whose job failed on a queue), by their index.
  const done = entries.flatMap((e, i) => ('error' in e ? [] : [i]));
  const results = done.map((i) => entries[i] as BatchResult);
  const failed = entries.length - done.length;
  const files = writeBatch(net, outputs, job.images, inputOf, results, done);
  const summary = summarize(results, truth && done.map((i) => truth[i]));
  // Success as saved: each adversarial PNG read back from disk and classified again.
  const reread = classify(net, files.map((f) => readModelInput(f, arch)), job.modelPath, done.map((i) => `the saved adversarial/${batchName(job.images, i)}`));
  const savedSuccess = results.filter((r, k) => !r.skipped && isSuccess(r.before.index, reread[k].index, r.target)).length / (results.length - summary.skipped);
  const records = entries.map((e, i) => ('error' in e ? { image: job.images[i], error: e.error } : resultRow(job.images[i], arch.labels, e)));
  const report = { model: job.modelPath, method: job.options.method, ...run, images: job.images.length, ...(failed > 0 && { failed }), summary, success_saved: savedSuccess, ms, results: records };
  outputs.write('summary.json', JSON.stringify(report, null, 2) + '\n');
  const header = `image,before,after,success,skipped,l2_pixels,linf_pixels,psnr,ssim,iterations,gradients,queries,ms${failed > 0 ? ',error' : ''}`;
  const csvRow = (r: (typeof records)[number]) => ('error' in r ? [r.image, ...Array(12).fill(''), `"${r.error.replace(/"/g, '""')}"`] : [r.image, r.before, r.after, r.success, r.skipped, r.l2_pixels, r.linf_pixels, r.psnr, r.ssim, r.iterations, r.gradients, r.queries, r.ms, ...(failed > 0 ? [''] : [])]);
  outputs.write('summary.csv', [header, ...records.map((r) => csvRow(r).join(','))].join('\n') + '\n');
  if (job.options.method === 'square') {
    const svg = queriesSvg([{ name: 'square', results }], (run.params as { queries: number }).queries, results.length);
    outputs.write('queries.svg', svg);
    outputs.write('queries.png', svgToPng(svg));
  }
  const written = outputs.commit();
  if (job.json) return void process.stdout.write(JSON.stringify(report) + '\n');
  // A rate over no images (every one skipped) is none, not NaN %.
  const pct = (v: number) => (Number.isFinite(v) ? `${(100 * v).toFixed(1)} %` : 'none attacked');
  const rows = [
    ['images', String(entries.length)],
    ...(failed === 0 ? [] : [['failed on the queue (errors in summary.json)', String(failed)]]),
    ...(summary.skipped === 0 ? [] : [['skipped (already the target: nothing to do)', String(summary.skipped)]]),
    [summary.skipped === 0 ? 'success over all images' : `success over the ${summary.images - summary.skipped} attacked`, `${pct(summary.success)} (re-read from the saved files: ${pct(savedSuccess)})`],
    ...(summary.success_correct === undefined ? [] : [[`success over the ${summary.correct} classified correctly before`, pct(summary.success_correct)]]),
    ...brokenByPart(results, run.params, arch.labels.length).map(([part, count]) => [`broken by ${part}`, String(count)]),
    ['L2 mean / median (grey levels)', `${summary.l2_pixels.mean.toFixed(2)} / ${summary.l2_pixels.median.toFixed(2)}`],
    ['L∞ mean / median (grey levels)', `${summary.linf_pixels.mean.toFixed(2)} / ${summary.linf_pixels.median.toFixed(2)}`],
    ['PSNR mean / median (dB)', `${summary.psnr.mean.toFixed(2)} / ${summary.psnr.median.toFixed(2)}`],
    ['SSIM mean / median', `${summary.ssim.mean.toFixed(4)} / ${summary.ssim.median.toFixed(4)}`],
    ['iterations / gradients / queries per image (mean)', `${mean(results.map((r) => r.iterations)).toFixed(1)} / ${mean(results.map((r) => r.gradients)).toFixed(1)} / ${mean(results.map((r) => r.queries)).toFixed(1)}`],
    ['time', `${(ms / 1000).toFixed(2)} s (${(ms / results.length).toFixed(1)} ms per image)`],
  ];
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(44)} ${v}\n`);
  process.stdout.write(`wrote ${written.join(', ')}\n`);
}

/** The model inputs of `images`, each read from --crop, else from its face box in labels.csv, else whole. */
function readInputs(images: readonly string[], arch: Architecture, crop: Crop | undefined): Float32Array[] {
  const regions = faceBoxes(images, crop);
  return images.map((path, i) => readModelInput(path, arch, regions[i]?.box, regions[i]?.from));
}

/** The true label of each image when its folder has a labels.csv (see labels.ts); undefined
 *  when any image has none. */
function trueLabels(images: readonly string[], labels: readonly string[]): number[] | undefined {
  const tables = new Map<string, Map<string, number>>();
  const found = images.map((image) => {
    const dir = dirname(image);
    if (!tables.has(dir)) tables.set(dir, new Map(present(join(dir, 'labels.csv')) ? readLabels(dir, labels).map((r) => [r.file, r.label]) : []));
    return tables.get(dir)!.get(basename(image));
  });
  return found.every((l) => l !== undefined) ? (found as number[]) : undefined;
}

/** The classes before the attack, after it, and as saved (the PNG read back). */
function printClasses(before: Classification, after: Classification, saved: Classification): void {
  for (const [name, c] of [['before', before], ['after', after], ['saved', saved]] as const) {
    process.stdout.write(`${name.padEnd(6)} ${c.label} (p = ${c.probabilities[c.index].toFixed(4)}; logits ${c.logits.map((v) => v.toFixed(6)).join(', ')})\n`);
  }
}

/** The size of one image's perturbation, as a batch's table gives it (grey levels first). */
function printDistances(r: AttackResult): void {
  const { l2, linf, l2_pixels, linf_pixels } = r.norms;
  process.stdout.write(`L2     ${l2_pixels.toFixed(2)} grey levels (${l2.toPrecision(4)} in model units)\n`);
  process.stdout.write(`L∞     ${linf_pixels.toFixed(2)} grey levels (${linf.toPrecision(4)} in model units)\n`);
  process.stdout.write(`PSNR   ${r.psnr.toFixed(2)} dB · SSIM ${r.ssim.toFixed(4)}\n`);
}

/** Images on a batch's contact sheet, at most. */
const CONTACT_IMAGES = 24;
const SINGLE_FILES = ['adversarial.png', 'perturbation.npy', 'filter.png', 'figure.png', 'report.json'];
const BATCH_FILES = ['adversarial', 'summary.csv', 'summary.json', 'contact.png'];
/** Square's success against its queries: the share of the images fooled within each count. */
export function queriesSvg(curves: { name: string; results: readonly ResultRecord[] }[], budget: number, images: number): string {
  const data = curves.map(({ name, results }) => ({ name, queries: results.filter((r) => r.success).map((r) => r.queries), total: results.length }));
  return successCurveSvg(data, budget, `Square: success against queries on ${images} images`);
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;

/** The file name of image i's adversarial in a batch: its own name, numbered. */
function batchName(images: readonly string[], i: number): string {
  return `${String(i).padStart(4, '0')}-${basename(images[i]).replace(/\.[^.]*$/, '')}.png`;
}

function resultRow(image: string, labels: string[], r: ResultRecord) {
  return {
    image, before: labels[r.before.index], after: labels[r.after.index], success: r.success, skipped: r.skipped,
    l2_pixels: round(r.norms.l2_pixels), linf_pixels: round(r.norms.linf_pixels), psnr: round(r.psnr), ssim: round(r.ssim),
    iterations: r.iterations, gradients: r.gradients, queries: r.queries, ms: round(r.ms),
    ...(r.brokenBy !== undefined && { broken_by: r.brokenBy }),
  };
}

/** For a method made of parts (its params list them): how many images each part broke, in order;
 *  a part that refuses a model of `classes` classes did not run (the method's notes say so), and
 *  is left out rather than shown to have broken nothing. */
export function brokenByPart(results: readonly ResultRecord[], params: object, classes: number): [string, number][] {
  const parts = (params as { parts?: string }).parts;
  if (parts === undefined) return [];
  const ran = parts.split(',').filter((part) => !methodById(part).refuses?.(classes, false));
  return ran.map((part) => [part, results.filter((r) => r.brokenBy === part).length]);
}

const round = (v: number) => (Number.isFinite(v) ? Number(v.toPrecision(6)) : v);

/** Each adversarial as a PNG (in adversarial/), and a contact sheet of original/adversarial
 *  pairs; returns the (staged) paths of the PNGs. `results` are those of the images `done`. */
function writeBatch(net: Net, outputs: OutputSet, images: readonly string[], inputOf: (i: number) => Float32Array, results: BatchResult[], done: number[]): string[] {
  const arch = net.architecture;
  const labels = arch.labels;
  const files = results.map((r, k) => outputs.writeInto('adversarial', batchName(images, done[k]), encodePng(inputToImage(r.adversarial, arch))));
  const shown = Math.min(results.length, CONTACT_IMAGES);
  const panels: Panel[] = [];
  for (let k = 0; k < shown; k++) {
    const r = results[k], i = done[k];
    panels.push({ title: `${capitalise(labels[r.before.index])}`, subtitle: basename(images[i]), image: inputToImage(inputOf(i), arch) });
    const mark = r.success ? '✓' : '✗';
    panels.push({ title: `${mark} ${capitalise(labels[r.after.index])}`, subtitle: `L∞ ${r.norms.linf_pixels.toFixed(0)} · L2 ${r.norms.l2_pixels.toFixed(0)}`, image: inputToImage(r.adversarial, arch) });
  }
  outputs.write('contact.png', figurePng(panels, { columns: 8, size: 96 }));
  return files;
}
