// The `attack` and `tutorial` commands end to end: image in, optimisation, result files and
// report out. The files are staged and only put in place once everything has worked.
import { FilterAttack, predictLogits, type FilterStep } from './attack.js';
import { InputError } from './errors.js';
import { OutputSet, readModelInput, type Crop } from './files.js';
import { Progress } from './progress.js';
import { encodePng } from './image.js';
import { argmax, Net, softmax, type Model } from './model.js';
import { loadEngine } from './node.js';
import { writeNpy } from './npy.js';
import { figurePng, lossSvg, type Curve, type Panel } from './figures.js';
import { filterImage, inputToImage } from './preprocess.js';

export interface Classification {
  label: string;
  index: number;
  logits: number[];
  probabilities: number[];
}

export function describe(net: Net, logits: Float32Array): Classification {
  const index = argmax(logits);
  return { label: net.architecture.labels[index], index, logits: Array.from(logits), probabilities: softmax(logits) };
}

export function classify(net: Net, inputs: Float32Array[]): Classification[] {
  return predictLogits(net, inputs).map((l) => describe(net, l));
}

/** The label index for --target: a label name (any case), or by default the first label that is not `current`. */
function resolveTarget(labels: string[], target: string | undefined, current: number): number {
  if (target === undefined) return current === 0 ? 1 : 0;
  const index = labels.findIndex((l) => l.toLowerCase() === target.toLowerCase());
  if (index < 0) throw new InputError(`--target ${target}: not a label of this model (labels: ${labels.join(', ')})`);
  return index;
}

const RESULT_FILES = ['adversarial.png', 'perturbation.npy', 'filter.png', 'figure.png', 'loss.svg', 'report.json'] as const;

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

/** Everything an attack run needs, checked before any work starts. */
async function prepare(job: Job) {
  const x = readModelInput(job.imagePath, job.model.architecture, job.crop);
  const outputs = new OutputSet(job.out, job.force, RESULT_FILES);
  const net = new Net(await loadEngine(), job.model);
  return { x, outputs, net, before: classify(net, [x])[0] };
}

/** The tutorial's log line, printed every 100 iterations and at the last one. */
function tutorialLog(iterations: number): FilterStep['onIteration'] {
  return (i, loss) => {
    if (i % 100 === 0 || i === iterations - 1) process.stdout.write(`iter= ${String(i).padStart(6)} - loss= ${loss.toFixed(6)}\n`);
  };
}

/** Progress of an attack: a bar with the loss and the current class on a terminal, the
 *  tutorial's log lines otherwise, nothing with --json or --quiet. */
function attackProgress(job: Job, attack: FilterAttack, net: Net, iterations: number): FilterStep['onIteration'] {
  if (job.json || job.quiet) return undefined;
  if (!process.stderr.isTTY) return tutorialLog(iterations);
  const bar = new Progress('attack', iterations);
  const labels = net.architecture.labels;
  return (i, loss) => {
    bar.update(i + 1, () => `loss ${loss.toFixed(6)} · ${labels[argmax(attack.logits.toArray())]}`);
    if (i === iterations - 1) bar.done();
  };
}

function norms(dx: Float32Array, scale: number) {
  let sq = 0, max = 0;
  for (const v of dx) {
    sq += v * v;
    max = Math.max(max, Math.abs(v));
  }
  const l2 = Math.sqrt(sq);
  return { l2, linf: max, l2_pixels: l2 * Math.abs(scale), linf_pixels: max * Math.abs(scale) };
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
function writeResults(net: Net, outputs: OutputSet, x: Float32Array, before: Classification, stages: Stage[], curves: Curve[]): Classification {
  const arch = net.architecture;
  const [height, width, channels] = arch.input;
  const adversarialImage = (dx: Float32Array) => inputToImage(x.map((v, i) => v + dx[i]), arch);
  const last = stages[stages.length - 1];
  const png = outputs.write('adversarial.png', encodePng(adversarialImage(last.dx)));
  outputs.write('perturbation.npy', writeNpy(last.dx, [...arch.input]));
  outputs.write('filter.png', encodePng(filterImage(last.dx, height, width, channels as 1 | 3)));
  const panels: Panel[] = [{ title: `Original: ${capitalise(before.label)}`, subtitle: scores(net, before), image: inputToImage(x, arch) }];
  for (const s of stages) {
    const filterTitle = s === stages[0] ? 'Noise filter' : `Noise filter (${s.title.replace(/^Adversarial /, '')})`;
    panels.push({ title: filterTitle, subtitle: `max |DX| ${(maxAbs(s.dx) * Math.abs(arch.preprocess.scale)).toFixed(1)} grey levels`, image: filterImage(s.dx, height, width, channels as 1 | 3) });
    panels.push({ title: `${s.title}: ${capitalise(s.after.label)}`, subtitle: scores(net, s.after), image: adversarialImage(s.dx) });
  }
  outputs.write('figure.png', figurePng(panels));
  outputs.write('loss.svg', lossSvg(curves, 'Loss per iteration'));
  const reread = readModelInput(png, arch);
  return classify(net, [reread])[0];
}

function maxAbs(v: Float32Array): number {
  return v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
}

function finish(outputs: OutputSet, report: object, json: boolean): void {
  outputs.write('report.json', JSON.stringify(report, null, 2) + '\n');
  outputs.commit();
  if (json) process.stdout.write(JSON.stringify(report) + '\n');
  else process.stdout.write(`wrote ${RESULT_FILES.map((f) => `${outputs.dir}/${f}`).join(', ')}\n`);
}

/** Runs `work`, removing the staged files if it fails. */
function withOutputs(outputs: OutputSet, work: () => void): void {
  try {
    work();
  } catch (e) {
    outputs.abandon();
    throw e;
  }
}

export async function runAttack(job: Job & { target?: string; init?: Float32Array; params: { iterations: number; lr: number; beta: number } }): Promise<void> {
  const { x, outputs, net, before } = await prepare(job);
  const arch = net.architecture;
  const target = resolveTarget(arch.labels, job.target, before.index);
  withOutputs(outputs, () => {
    const attack = new FilterAttack(net, x, target, job.init);
    const start = performance.now();
    const loss = attack.run({ ...job.params, onIteration: attackProgress(job, attack, net, job.params.iterations) });
    const ms = performance.now() - start;
    const after = describe(net, attack.logits.toArray());
    const dx = attack.dx.toArray();
    attack.dispose();
    const saved = writeResults(net, outputs, x, before, [{ title: 'Adversarial', dx, after }], [{ name: 'loss', values: loss }]);
    if (!job.json) {
      for (const [name, c] of [['before', before], ['after', after], ['saved', saved]] as const) {
        process.stdout.write(`${name.padEnd(6)} ${c.label} (p = ${c.probabilities[c.index].toFixed(4)}; logits ${c.logits.map((v) => v.toFixed(6)).join(', ')})\n`);
      }
    }
    finish(outputs, {
      model: job.modelPath, image: job.imagePath, method: 'filter',
      params: { iters: job.params.iterations, lr: job.params.lr, beta: job.params.beta, init: job.init !== undefined },
      target: arch.labels[target], target_index: target,
      before, after, saved, success: after.index === target, success_saved: saved.index === target,
      loss: Array.from(loss), norms: norms(dx, arch.preprocess.scale), iterations: job.params.iterations, ms,
    }, job.json);
  });
}

function tableLine(title: string, net: Net, c: Classification): string {
  const scores = net.architecture.labels.map((l, i) => `${l}: ${c.logits[i].toFixed(6)}`).join(', ');
  return `Image ${title}: ${capitalise(c.label)} (scores: ${scores})`;
}

/** The tutorial: step 1 with β = 0, then step 2 with β = 0.5 continuing from step 1's DX. */
export async function runTutorial(job: Job): Promise<void> {
  const { x, outputs, net, before } = await prepare(job);
  const target = resolveTarget(net.architecture.labels, undefined, before.index);
  withOutputs(outputs, () => {
    const attack = new FilterAttack(net, x, target);
    const steps = [
      { title: 'Adversarial', params: { iterations: 1000, lr: 0.1, beta: 0 } },
      { title: 'Adversarial with L2', params: { iterations: 1000, lr: 0.1, beta: 0.5 } },
    ].map(({ title, params }, n) => {
      if (!job.json) process.stdout.write(`== Step ${n + 1}: ${params.iterations} iterations, beta ${params.beta} ==\n`);
      const start = performance.now();
      const loss = attack.run({ ...params, onIteration: job.json || job.quiet ? undefined : tutorialLog(params.iterations) });
      return { title, params, ms: performance.now() - start, loss: Array.from(loss), after: describe(net, attack.logits.toArray()), dx: attack.dx.toArray() };
    });
    const dx = steps[1].dx;
    attack.dispose();
    const curves = steps.map((s, n) => ({ name: `step ${n + 1} (beta ${s.params.beta})`, values: s.loss }));
    const saved = writeResults(net, outputs, x, before, steps, curves);
    if (!job.json) {
      process.stdout.write(`${tableLine('Original', net, before)}\n`);
      for (const s of steps) process.stdout.write(`${tableLine(s.title, net, s.after)}\n`);
    }
    const after = steps[1].after;
    finish(outputs, {
      model: job.modelPath, image: job.imagePath, method: 'filter',
      params: steps.map((s) => ({ iters: s.params.iterations, lr: s.params.lr, beta: s.params.beta })),
      target: net.architecture.labels[target], target_index: target,
      before, after, saved, success: after.index === target, success_saved: saved.index === target,
      steps: steps.map((s) => ({ title: s.title, after: s.after, loss: s.loss, ms: s.ms })),
      loss: steps.flatMap((s) => s.loss), norms: norms(dx, net.architecture.preprocess.scale),
      iterations: steps.reduce((n, s) => n + s.params.iterations, 0), ms: steps.reduce((t, s) => t + s.ms, 0),
    }, job.json);
  });
}
