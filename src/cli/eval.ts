// `mislead eval`: accuracy on a labelled folder, and under attack per budget.
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { loadModel } from '../node/files.js';
import { cleanOnSignals, OutputSet } from '../node/output.js';
import type { Model } from '../formats/model.js';
import { Net } from '../core/net.js';
import { loadEngine } from '../node/engine.js';
import { METHODS, resolveOptions, type AttackOptions } from '../attacks/index.js';
import { attackImages, brokenByPart, checkLogits, checkResults, methodNotes, queriesSvg, softmaxNote, type Failed, type ResultRecord } from './run.js';
import { parseQueueUrl } from '../queue/connection.js';
import { IMAGES_PER_JOB, submitRun } from '../queue/submit.js';
import type { FaceBox } from '../node/labels.js';
import { robustnessSvg, svgToPng } from './figures.js';
import { readDataset } from '../node/dataset.js';
import { availableParallelism } from 'node:os';
import { evaluate, facesToSet, type LabelledSet } from '../train/train.js';
import { intOption, modelOption, print, type Command, type Values } from './command.js';

export const evalCommand: Command = {
  usage: 'mislead eval DIR [--model FILE] [--attack M --eps LIST [--out DIR] [--queue redis://HOST:PORT[/DB]]] [--json]',
  summary: 'accuracy, per-class accuracy and confusion matrix on a labelled folder; accuracy under attack',
  help: [
    'DIR holds images and labels.csv ("file,label" rows), as "mislead dataset" writes; optional columns',
    'face_x,face_y,face_w,face_h give a face box in pixels of the picture (empty cells: the whole picture).',
    'With --attack (fgsm, bim, pgd, mifgsm, apgd-ce, apgd-dlr, apgd-t, square, autoattack) and --eps (grey levels, e.g. 0,1,2,4,8,16): the accuracy',
    'under that untargeted L-infinity attack at each budget (the images the model gets right and the',
    'attack does not move), judged on the 8-bit images, as a table and as robustness.svg,',
    'robustness.png and robustness.json in --out (default ./out). With --queue, the attacks are done by',
    'the workers of that queue ("mislead worker"), in jobs of 8 images, with the same results.',
    'Examples:',
    '  mislead eval faces --model model.safetensors',
    '  mislead eval faces --attack pgd --eps 0,1,2,4,8,16 --out robustness',
  ].join('\n'),
  options: { ...modelOption, json: { type: 'boolean' }, attack: { type: 'string' }, eps: { type: 'string' }, out: { type: 'string' }, force: { type: 'boolean' }, workers: { type: 'string' }, queue: { type: 'string' } },
  async run(positionals, values) {
    if (positionals.length !== 1) throw new InputError('eval needs exactly one DIR');
    if (values.queue !== undefined) {
      if (values.attack === undefined) throw new InputError('--queue goes with --attack');
      parseQueueUrl(values.queue as string);
    }
    const { model, path } = loadModel(values.model as string | undefined);
    const labels = model.architecture.labels;
    const dataset = readDataset(positionals[0], labels, model.architecture.input[2] as 1 | 3);
    const set = facesToSet(dataset.images.map((image, i) => ({ image, label: dataset.labels[i] })), model.architecture);
    const names = dataset.files.map((f) => join(positionals[0], f));
    if (values.attack !== undefined) return cleanOnSignals(() => robustness(model, path, set, names, values, dataset.faces));
    const { predictions, accuracy } = checkedEvaluate(new Net(await loadEngine(), model), set, path, names);
    const confusion = labels.map((_, truth) => labels.map((_, predicted) => predictions.filter((p, i) => set.labels[i] === truth && p === predicted).length));
    const perClass = Object.fromEntries(labels.map((l, c) => [l, confusion[c][c] / Math.max(1, confusion[c].reduce((a, b) => a + b, 0))]));
    if (values.json) return print(JSON.stringify({ images: set.labels.length, accuracy, per_class: perClass, labels, confusion }));
    print(`${set.labels.length} images: accuracy ${(100 * accuracy).toFixed(2)} %`);
    for (const l of labels) print(`  ${l.padEnd(12)} ${(100 * perClass[l]).toFixed(2)} %`);
    const width = Math.max(8, ...labels.map((l) => l.length)) + 2;
    print(`\nconfusion (rows: truth, columns: predicted)\n${' '.repeat(width)}${labels.map((l) => l.padStart(width)).join('')}`);
    confusion.forEach((row, i) => print(`${labels[i].padEnd(width)}${row.map((v) => String(v).padStart(width)).join('')}`));
  },
};

async function robustness(model: Model, modelPath: string, set: LabelledSet, names: readonly string[], values: Values, faces: readonly (FaceBox | undefined)[]): Promise<void> {
  const method = values.attack as string;
  // The budgeted methods: those with an eps.
  const budgeted = METHODS.filter((m) => m.parameters.some((p) => p.key === 'eps')).map((m) => m.id as string);
  if (!budgeted.includes(method)) throw new InputError(`--attack ${method}: expected ${budgeted.slice(0, -1).join(', ')} or ${budgeted[budgeted.length - 1]} (budgeted attacks)`);
  const text = (values.eps as string | undefined) ?? '0,1,2,4,8,16';
  const budgets = text.split(',').map((v) => Number(v.trim()));
  if (budgets.length === 0 || budgets.some((e) => !Number.isFinite(e) || e < 0 || e > 255)) throw new InputError(`--eps ${text}: expected grey levels from 0 to 255, separated by commas`);
  const out = (values.out as string | undefined) ?? 'out';
  const outputs = new OutputSet(out, Boolean(values.force), ['robustness.svg', 'robustness.png', 'robustness.json', ...(method === 'square' ? ['queries.svg', 'queries.png'] : [])]);
  const size = set.inputs.length / set.labels.length;
  const inputs = Array.from(set.labels, (_, i) => set.inputs.slice(i * size, (i + 1) * size));
  const workers = intOption(values, 'workers', availableParallelism(), 1, 256);
  const net = new Net(await loadEngine(), model);
  // The method's notes (parts it leaves out) do not depend on the budget.
  const resolved = resolveOptions({ method } as AttackOptions, labels(model).length);
  const note = { ...softmaxNote(model.architecture, Boolean(values.json)), ...methodNotes(resolved, labels(model).length, Boolean(values.json)) };
  const points: { eps: number; accuracy: number; attacked?: number; ms_per_image?: number; gradients?: number; queries?: number; broken_by?: Record<string, number> }[] = [];
  const runs: { name: string; results: ResultRecord[] }[] = [];
  // Only the images the model gets right are attacked: the others count as wrong at every budget.
  // (An untargeted attack moves away from the model's class: from a wrong one it may land on the
  // true one, which is no robustness.)
  const clean = checkedEvaluate(net, set, modelPath, names).predictions;
  const right = names.flatMap((_, i) => (clean[i] === set.labels[i] ? [i] : []));
  const rightNames = right.map((i) => names[i]);
  for (const eps of budgets) {
    let kept = right.length;
    let point: Omit<(typeof points)[number], 'eps' | 'accuracy'> = {};
    if (eps > 0 && right.length > 0) {
      const display = values.json ? 'none' : 'bar';
      const options = { method: method as 'pgd', eps }, title = `${method} eps ${eps}`;
      const start = performance.now();
      const { results } = values.queue === undefined
        ? await attackImages({ model, modelPath, images: rightNames, workers }, net, right.map((i) => inputs[i]), options, display, title)
        : { results: await attackOnQueue(values.queue as string, model, rightNames, right.map((i) => faces[i]), options, display === 'bar' ? title : null) };
      const ms = performance.now() - start;
      checkResults(results, modelPath, rightNames);
      runs.push({ name: `eps ${eps}`, results });
      kept = results.filter((r) => r.after.index === r.before.index).length;
      const perImage = (count: (r: ResultRecord) => number) => results.reduce((t, r) => t + count(r), 0) / results.length;
      const broken = brokenByPart(results, resolved, labels(model).length);
      point = { attacked: results.length, ms_per_image: Number((ms / results.length).toPrecision(4)), gradients: perImage((r) => r.gradients), queries: perImage((r) => r.queries), ...(broken.length && { broken_by: Object.fromEntries(broken) }) };
    }
    const accuracy = kept / set.labels.length;
    points.push({ eps, accuracy, ...point });
    if (!values.json) print(`eps ${String(eps).padStart(5)}  accuracy under ${method} ${(100 * accuracy).toFixed(2)} %`);
  }
  const svg = robustnessSvg(points, `Accuracy under ${method.toUpperCase()} (L∞) on ${set.labels.length} images`);
  const report = { model: modelPath, attack: method, ...note, images: set.labels.length, points };
  let written: string[];
  try {
    outputs.write('robustness.svg', svg);
    outputs.write('robustness.png', svgToPng(svg));
    outputs.write('robustness.json', JSON.stringify(report, null, 2) + '\n');
    if (method === 'square') {
      const curve = queriesSvg(runs, Math.max(1, ...runs.flatMap((r) => r.results.map((x) => x.queries))), right.length);
      outputs.write('queries.svg', curve);
      outputs.write('queries.png', svgToPng(curve));
    }
    written = outputs.commit();
  } catch (e) {
    outputs.abandon();
    throw e;
  }
  print(values.json ? JSON.stringify(report) : `wrote ${written.join(', ')}`);
}

const labels = (model: Model) => model.architecture.labels;

/** The attack of every image by the workers of `queue`; a job that failed fails the evaluation. */
async function attackOnQueue(queue: string, model: Model, names: readonly string[], faces: readonly (FaceBox | undefined)[], options: AttackOptions, title: string | null): Promise<ResultRecord[]> {
  const images = names.map((path, i) => ({ path, name: path, ...(faces[i] && { box: faces[i].box, from: faces[i].from }) }));
  let results: ResultRecord[] = [];
  await submitRun({ queue, model, images, decode: 'dataset', options, images8: false, perJob: IMAGES_PER_JOB, title }, (outcomes) => {
    const failed = outcomes.find((o) => 'error' in o);
    if (failed) throw new InputError((failed as Failed).error);
    results = outcomes as ResultRecord[];
  });
  return results;
}

function checkedEvaluate(net: Net, set: LabelledSet, modelPath: string, names: readonly string[]) {
  const result = evaluate(net, set);
  const classes = net.architecture.labels.length;
  names.forEach((name, i) => checkLogits(result.logits.subarray(i * classes, (i + 1) * classes), modelPath, name));
  return result;
}

