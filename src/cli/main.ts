#!/usr/bin/env node
// The command line (SPEC §1). Every failure ends in one line on stderr starting "mislead: ",
// exit code 2 for bad usage or input, 1 for anything else.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isAbsolute, join } from 'node:path';
import { InputError, quote } from '../errors.js';
import { loadModel, SAMPLE_FACE, readModelInput, type Crop } from '../node/files.js';
import { readInputFile } from '../node/input.js';
import { checkOutputFileWritable, cleanOnSignals, OutputSet, withDefaultSignals, writeFileAtomic } from '../node/output.js';
import { globSync, isDynamicPattern } from 'tinyglobby';
import { modelFromTutorialCheckpoint, TUTORIAL_ARCHITECTURE } from '../formats/importtf.js';
import { writeModel, type Model } from '../formats/model.js';
import { Net } from '../core/net.js';
import { loadEngine } from '../node/engine.js';
import { runAttackJob, runTutorial, classify, checkLogits, checkResults } from './run.js';
import { COMMON, METHODS, resolveOptions, runAttack as runSuite, type AttackOptions, type Method, type Parameter } from '../attacks/index.js';
import { robustnessSvg, svgToPng } from './figures.js';
import { generateFaces, readDataset, writeDataset } from '../train/dataset.js';
import { Progress } from './progress.js';
import { Pool } from '../node/parallel.js';
import { availableParallelism } from 'node:os';
import { evaluate, facesToSet, initialModel, train, type LabelledSet } from '../train/train.js';
import { loadTfCheckpoint } from '../formats/tfcheckpoint.js';
import { readNpy } from '../formats/npy.js';

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, unknown>;

interface Command {
  usage: string;
  summary: string;
  help: string;
  options: Options;
  run(positionals: string[], values: Values): Promise<void>;
}

const modelOption = { model: { type: 'string' } } as const;
const cropOption = { crop: { type: 'string' } } as const;
const outputOptions = { out: { type: 'string' }, force: { type: 'boolean' }, json: { type: 'boolean' }, quiet: { type: 'boolean' } } as const;


const commands: Record<string, Command> = {
  predict: {
    usage: 'mislead predict IMAGE... [--model FILE] [--crop X,Y,W,H] [--json]',
    summary: 'class, logits and probabilities of each image',
    help: 'IMAGE may be a glob in quotes ("faces/*.png").\nExamples:\n  mislead predict face.png other.jpg --model model.safetensors\n  mislead predict "faces/*.png" --json',
    options: { ...modelOption, ...cropOption, json: { type: 'boolean' } },
    async run(patterns, values) {
      if (patterns.length === 0) throw new InputError('predict needs at least one IMAGE');
      const images = expandGlobs(patterns);
      const { model, path } = loadModel(values.model as string | undefined);
      const region = cropOf(values);
      const inputs = images.map((image) => readModelInput(image, model.architecture, region));
      const net = new Net(await loadEngine(), model);
      const results = classify(net, inputs, path, images).map((c, i) => ({ image: images[i], ...c }));
      if (values.json) return print(JSON.stringify(results, null, 2));
      const width = Math.max(5, ...images.map((p) => p.length));
      const labelWidth = Math.max(5, ...model.architecture.labels.map((l) => l.length));
      print(`${'image'.padEnd(width)}  ${'class'.padEnd(labelWidth)}  prob    logits`);
      for (const r of results) {
        print(`${r.image.padEnd(width)}  ${r.label.padEnd(labelWidth)}  ${r.probabilities[r.index].toFixed(4)}  ${r.logits.map((v) => v.toFixed(6)).join(', ')}`);
      }
    },
  },

  attack: {
    usage: 'mislead attack IMAGE... [--model FILE] [--method M] [--target LABEL | --untargeted] [METHOD OPTIONS] [--init FILE.npy] [--crop X,Y,W,H] [--batch N] [--workers N] [--out DIR] [--force] [--json] [--quiet]',
    summary: 'a perturbation that makes the model say LABEL (or anything but the true class)',
    help: [
      'Methods (--method, default filter) and their options, with their defaults:',
      ...METHODS.flatMap(methodHelp),
      'Sizes are in grey levels (--eps 8 = 8 of 255). Every method but filter keeps the image in the pixel',
      'box, and success is judged on the image rounded to 8 bits. Without --target, filter learns toward the',
      'first label that is not the image\'s class and the others are untargeted (anything but that class).',
      '--init FILE.npy starts the filter from a saved DX.',
      '',
      'One IMAGE: adversarial.png, perturbation.npy, filter.png, figure.png (and loss.svg for filter) and',
      'report.json in --out (default ./out). Several images, globs or a folder: a batch,',
      'spread over --workers threads: adversarial/, summary.csv, summary.json, contact.png and a table.',
      '',
      'Examples:',
      '  mislead attack face.png --target man --beta 0.5 --out result',
      '  mislead attack faces/ --method pgd --eps 4 --out pgd4',
    ].join('\n'),
    options: {
      ...modelOption, ...outputOptions, ...cropOption, method: { type: 'string' }, target: { type: 'string' }, untargeted: { type: 'boolean' },
      init: { type: 'string' }, workers: { type: 'string' }, ...methodFlags(),
    },
    async run(positionals, values) {
      if (positionals.length === 0) throw new InputError('attack needs an IMAGE (or several, or a folder)');
      const method = METHODS.find((m) => m.id === ((values.method as string | undefined) ?? 'filter'));
      if (!method) throw new InputError(`unknown --method ${values.method as string} (available: ${METHODS.map((m) => m.id).join(', ')})`);
      if (values.target !== undefined && values.untargeted) throw new InputError('--target and --untargeted exclude each other');
      if (values.untargeted && method.target === 'required') throw new InputError(`--method ${method.id} is targeted: it learns toward --target`);
      if (values.init !== undefined && method.id !== 'filter') throw new InputError('--init belongs to --method filter');
      const given = methodOptions(method as Method, values);
      const images = expandImages(positionals);
      const { model, path } = loadModel(values.model as string | undefined);
      const target = values.target as string | undefined;
      // Checked here, before any image is read, naming the flags.
      resolveOptions(given as unknown as AttackOptions, model.architecture.labels.length, flagOf);
      if (values.init !== undefined) {
        if (images.length > 1) throw new InputError('--init starts one image\'s filter: give one IMAGE');
        given.init = [readInit(values.init as string, model.architecture.input)];
      }
      await runAttackJob({ model, modelPath: path, images, options: given as unknown as AttackOptions, target, workers: intOption(values, 'workers', availableParallelism(), 1, 256), ...outputFlags(values) });
    },
  },

  tutorial: {
    usage: 'mislead tutorial [IMAGE] [--model FILE] [--crop X,Y,W,H] [--out DIR] [--force] [--json] [--quiet]',
    summary: 'the tutorial end to end: 1000 iterations with beta 0, then 1000 more with beta 0.5',
    help: 'Prints the tutorial\'s log lines and its table, and writes the results into --out (default ./out).\nWith no IMAGE, the sample face shipped in weights/samples/ (a generated woman\'s face).\nExample:\n  mislead tutorial face.png --model model.safetensors',
    options: { ...modelOption, ...outputOptions, ...cropOption },
    async run(positionals, values) {
      if (positionals.length > 1) throw new InputError('tutorial takes at most one IMAGE');
      const { model, path } = loadModel(values.model as string | undefined);
      await runTutorial({ model, modelPath: path, imagePath: positionals[0] ?? SAMPLE_FACE, ...outputFlags(values) });
    },
  },

  bench: {
    usage: 'mislead bench [--quick]',
    summary: 'the kernels and end-to-end loops against TensorFlow.js (WASM and CPU backends), side by side',
    help: 'Checks that both engines agree, then times each kernel, one attack iteration (batch 1 and 64), one training\nstep, `attack --json` (1000 iterations, its own reported time) against the same loop in TensorFlow.js, the\ntutorial as a whole process, and batch attacks and training on one thread against a pool of one worker per\ncore. Prints medians, ratios, GFLOP/s and % of the SIMD peak, and writes bench/results.json.\n--quick is a smoke check of a few seconds (batch 4). Needs the repository with its dev dependencies\n(npm install), where TensorFlow.js is installed for the comparison. Same as "npm run bench".',
    options: { quick: { type: 'boolean' } },
    async run(positionals, values) {
      if (positionals.length > 0) throw new InputError(`bench takes no positional argument (got ${positionals[0]})`);
      const script = fileURLToPath(new URL('../../bench/run.ts', import.meta.url));
      const runner = fileURLToPath(new URL('../../node_modules/vite-node/vite-node.mjs', import.meta.url));
      if (!existsSync(script) || !existsSync(runner)) throw new InputError('bench needs the source repository with its dev dependencies (run npm install there)');
      const r = spawnSync(process.execPath, [runner, script, ...(values.quick ? ['--quick'] : [])], { stdio: 'inherit' });
      if (r.status !== 0) throw new Error(`the benchmark failed (exit code ${r.status})`);
    },
  },

  'import-tf': {
    usage: 'mislead import-tf PREFIX --out FILE [--force]',
    summary: 'converts the tutorial\'s TensorFlow 2 checkpoint into a model file',
    help: 'PREFIX names PREFIX.index and PREFIX.data-00000-of-00001.\nExample:\n  mislead import-tf saved_model-1 --out tutorial.safetensors',
    options: { out: { type: 'string' }, force: { type: 'boolean' } },
    async run(positionals, values) {
      if (positionals.length !== 1) throw new InputError('import-tf needs exactly one checkpoint PREFIX');
      if (typeof values.out !== 'string') throw new InputError('import-tf needs --out FILE');
      const prefix = positionals[0];
      const model = modelFromTutorialCheckpoint(loadTfCheckpoint(prefix), prefix);
      writeFileAtomic(values.out, writeModel(model), Boolean(values.force));
      print(`wrote ${values.out}: ${model.weights.size} tensors, labels ${model.architecture.labels.join(', ')}`);
    },
  },

  dataset: {
    usage: 'mislead dataset --out DIR [--count N] [--seed S]',
    summary: 'generated 48×48 faces (half men, half women) as PNGs and labels.csv',
    help: 'The faces are cartoons from facesjs, varied in race, features, framing, background and light, and\nreproducible: the same seed gives the same pictures on any machine. Defaults: --count 1000, --seed 1.\nExample:\n  mislead dataset --out faces --count 2000 --seed 1000',
    options: { out: { type: 'string' }, count: { type: 'string' }, seed: { type: 'string' } },
    async run(positionals, values) {
      if (positionals.length > 0) throw new InputError(`dataset takes no positional argument (got ${positionals[0]})`);
      if (typeof values.out !== 'string') throw new InputError('dataset needs --out DIR');
      const count = intOption(values, 'count', 1000, 1, 1_000_000);
      const progress = new Progress('faces', count);
      writeDataset(values.out, count, intOption(values, 'seed', 1, 0, 0xffffffff), (done) => progress.update(done));
      progress.done();
      print(`wrote ${count} faces and labels.csv to ${values.out}`);
    },
  },

  train: {
    usage: 'mislead train --out FILE [--train N] [--test M] [--epochs E] [--batch B] [--lr X] [--seed S] [--workers W] [--force] [--json]',
    summary: "trains the tutorial's network on generated faces",
    help: [
      "The tutorial's architecture, initialised as its Layers.py (truncated normal, sigma 0.1, zero biases),",
      'trained with Adam (learning rate X decayed along a half cosine) on N generated faces from seed S;',
      'accuracy is measured on M faces from seed S + 1. Faces are rendered and batches computed on W',
      'worker threads (default: one per core; 1 = this thread only), each with its own WASM engine.',
      'Defaults: --train 20000 --test 2000 --epochs 10 --batch 64 --lr 0.001 --seed 1.',
      'Example:\n  mislead train --out model.safetensors --epochs 5',
    ].join('\n'),
    options: { out: { type: 'string' }, train: { type: 'string' }, test: { type: 'string' }, epochs: { type: 'string' }, batch: { type: 'string' }, lr: { type: 'string' }, seed: { type: 'string' }, workers: { type: 'string' }, force: { type: 'boolean' }, json: { type: 'boolean' } },
    async run(positionals, values) {
      if (positionals.length > 0) throw new InputError(`train takes no positional argument (got ${positionals[0]})`);
      if (typeof values.out !== 'string') throw new InputError('train needs --out FILE');
      const out = values.out;
      checkOutputFileWritable(out, Boolean(values.force)); // before hours of training, not after
      const options = {
        epochs: intOption(values, 'epochs', 10, 1, 10_000),
        batch: intOption(values, 'batch', 64, 1, 4096),
        lr: numberOption(values, 'lr', 1e-3, { min: 0, exclusiveMin: true }),
        seed: intOption(values, 'seed', 1, 0, 0xfffffffe),
      };
      const sizes = { train: intOption(values, 'train', 20_000, 2, 1_000_000), test: intOption(values, 'test', 2000, 0, 1_000_000) };
      const workers = intOption(values, 'workers', availableParallelism(), 1, 256);
      const json = Boolean(values.json);
      const log = (line: string) => json || print(line);
      const began = performance.now();
      const pool = workers > 1 ? new Pool(workers) : undefined;
      const faces = async (count: number, seed: number, what: string) => {
        const progress = new Progress(`${what} faces`, count, json);
        const onProgress = (done: number) => progress.update(done);
        const set = facesToSet(pool ? await pool.faces(count, seed, onProgress) : generateFaces(count, seed, onProgress), TUTORIAL_ARCHITECTURE);
        progress.done();
        return set;
      };
      const data = await faces(sizes.train, options.seed, 'training');
      const test = sizes.test > 0 ? await faces(sizes.test, options.seed + 1, 'test') : undefined;
      const generated = (performance.now() - began) / 1000;
      log(`generated ${sizes.train} training and ${sizes.test} test faces in ${generated.toFixed(1)} s`);
      const engine = await loadEngine();
      const batches = Math.floor(sizes.train / Math.min(options.batch, sizes.train));
      let progress = new Progress('epoch 1', batches, json);
      const initial = initialModel(TUTORIAL_ARCHITECTURE, options.seed);
      const batch = Math.min(options.batch, sizes.train);
      const source = pool && batch % workers === 0 ? await pool.gradients(initial, data, batch) : undefined;
      const { model, history } = await train(engine, initial, data, test, {
        ...options,
        onBatch: (done) => progress.update(done),
        onEpoch: (s) => {
          progress.done();
          progress = new Progress(`epoch ${s.epoch + 1}`, batches, json);
          const testPart = s.testAccuracy === undefined ? '' : ` - test accuracy ${(100 * s.testAccuracy).toFixed(2)} %`;
          log(`epoch ${String(s.epoch).padStart(3)} - loss ${s.loss.toFixed(5)} - train accuracy ${(100 * s.trainAccuracy).toFixed(2)} %${testPart} - ${s.seconds.toFixed(1)} s (${Math.round(s.imagesPerSecond)} images/s)`);
        },
      }, source);
      await pool?.close();
      writeFileAtomic(out, writeModel(model), true);
      const seconds = (performance.now() - began) / 1000;
      if (json) print(JSON.stringify({ out, ...sizes, ...options, generated_seconds: generated, seconds, history }));
      else print(`wrote ${out} (${seconds.toFixed(1)} s in all)`);
    },
  },

  eval: {
    usage: 'mislead eval DIR [--model FILE] [--attack M --eps LIST [--out DIR]] [--json]',
    summary: 'accuracy, per-class accuracy and confusion matrix on a labelled folder; accuracy under attack',
    help: [
      'DIR holds images and labels.csv ("file,label" rows), as "mislead dataset" writes.',
      'With --attack (fgsm, bim, pgd, mifgsm) and --eps (grey levels, e.g. 0,1,2,4,8,16): the accuracy',
      'under that untargeted L-infinity attack at each budget, judged on the 8-bit images, as a table and',
      'as robustness.svg, robustness.png and robustness.json in --out (default ./out).',
      'Examples:',
      '  mislead eval faces --model model.safetensors',
      '  mislead eval faces --attack pgd --eps 0,1,2,4,8,16 --out robustness',
    ].join('\n'),
    options: { ...modelOption, json: { type: 'boolean' }, attack: { type: 'string' }, eps: { type: 'string' }, out: { type: 'string' }, force: { type: 'boolean' }, workers: { type: 'string' } },
    async run(positionals, values) {
      if (positionals.length !== 1) throw new InputError('eval needs exactly one DIR');
      const { model, path } = loadModel(values.model as string | undefined);
      const labels = model.architecture.labels;
      const dataset = readDataset(positionals[0], labels);
      const set = facesToSet(dataset.images.map((image, i) => ({ image, label: dataset.labels[i] })), model.architecture);
      const names = dataset.files.map((f) => join(positionals[0], f));
      if (values.attack !== undefined) return cleanOnSignals(() => robustness(model, path, set, names, values));
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
  },

};

/** Accuracy under an untargeted L∞ attack at each budget of --eps, as RobustBench reports it. */
async function robustness(model: Model, modelPath: string, set: LabelledSet, names: readonly string[], values: Values): Promise<void> {
  const method = values.attack as string;
  if (!['fgsm', 'bim', 'pgd', 'mifgsm'].includes(method)) throw new InputError(`--attack ${method}: expected fgsm, bim, pgd or mifgsm (budgeted attacks)`);
  const text = (values.eps as string | undefined) ?? '0,1,2,4,8,16';
  const budgets = text.split(',').map((v) => Number(v.trim()));
  if (budgets.length === 0 || budgets.some((e) => !Number.isFinite(e) || e < 0 || e > 255)) throw new InputError(`--eps ${text}: expected grey levels from 0 to 255, separated by commas`);
  const out = (values.out as string | undefined) ?? 'out';
  const outputs = new OutputSet(out, Boolean(values.force), ['robustness.svg', 'robustness.png', 'robustness.json']);
  const size = set.inputs.length / set.labels.length;
  const inputs = Array.from(set.labels, (_, i) => set.inputs.slice(i * size, (i + 1) * size));
  const workers = intOption(values, 'workers', availableParallelism(), 1, 256);
  const net = new Net(await loadEngine(), model);
  const points: { eps: number; accuracy: number }[] = [];
  for (const eps of budgets) {
    const attacked = async () => {
      const results = workers > 1 ? await new Pool(workers).attack(model, inputs, { method: method as 'pgd', eps }) : await withDefaultSignals(() => runSuite(net, inputs, { method: method as 'pgd', eps }));
      checkResults(results, modelPath, names);
      return results.map((r) => r.after.index);
    };
    const predicted = eps === 0 ? checkedEvaluate(net, set, modelPath, names).predictions : await attacked();
    const accuracy = Array.from(predicted).filter((p, i) => p === set.labels[i]).length / set.labels.length;
    points.push({ eps, accuracy });
    if (!values.json) print(`eps ${String(eps).padStart(5)}  accuracy under ${method} ${(100 * accuracy).toFixed(2)} %`);
  }
  const svg = robustnessSvg(points, `Accuracy under ${method.toUpperCase()} (L∞) on ${set.labels.length} images`);
  const report = { model: modelPath, attack: method, images: set.labels.length, points };
  let written: string[];
  try {
    outputs.write('robustness.svg', svg);
    outputs.write('robustness.png', svgToPng(svg));
    outputs.write('robustness.json', JSON.stringify(report, null, 2) + '\n');
    written = outputs.commit();
  } catch (e) {
    outputs.abandon();
    throw e;
  }
  print(values.json ? JSON.stringify(report) : `wrote ${written.join(', ')}`);
}

/** A method's parameter or common option named as the command line names it. */
const flagOf = (p: Parameter) => `--${p.flag}`;

/** Every flag of every method (and --batch), for the parser: a boolean's flag takes no value. */
function methodFlags(): Options {
  const flags: Options = {};
  for (const p of [...METHODS.flatMap((m) => m.parameters), ...COMMON]) if (p.flag) flags[p.flag] = { type: p.kind === 'boolean' ? 'boolean' : 'string' };
  return flags;
}

/** The help lines of a method: what it is, then its options with their defaults. */
function methodHelp(m: Method): string[] {
  const options = m.parameters.map((p) =>
    p.kind === 'boolean' ? `--${p.flag}` : `--${p.flag} ${p.kind === 'choice' ? p.choices!.map((c) => c.value).join('|') : p.default ?? `(${p.derived})`}`);
  return [...wrap(`  ${m.id.padEnd(10)}`, `${m.name}: ${m.summary}`.split(' '), ' '), ...wrap(' '.repeat(12), options, '  ')];
}

/** `items` joined by `separator` after `head`, in lines of at most `width`, each line after the
 *  first indented as long as `head`. */
function wrap(head: string, items: string[], separator: string, width = 100): string[] {
  const lines: string[] = [];
  let line = head;
  for (const item of items) {
    if (line.length > head.length && line.length + separator.length + item.length > width) {
      lines.push(line);
      line = ' '.repeat(head.length);
    }
    line += (line.length > head.length ? separator : '') + item;
  }
  return [...lines, line];
}

/** The library options of `method` from the flags: each of its parameters read by its kind, to
 *  be checked by the one validator (resolveOptions). A text that is not a number stays text, so
 *  that the message shows it as typed. */
function methodOptions(method: Method, values: Values): Record<string, unknown> {
  const own = [...method.parameters, ...COMMON].filter((p) => p.flag);
  for (const flag of Object.keys(methodFlags())) {
    if (values[flag] !== undefined && !own.some((p) => p.flag === flag)) {
      throw new InputError(`--${flag} is not an option of --method ${method.id} (its options: ${own.map(flagOf).join(', ')})`);
    }
  }
  const options: Record<string, unknown> = { method: method.id };
  for (const p of own) {
    const v = values[p.flag!];
    if (v === undefined) continue;
    const text = String(v).trim();
    options[p.key] = p.kind === 'boolean' ? !p.default : p.kind === 'choice' || text === '' || Number.isNaN(Number(text)) ? v : Number(text);
  }
  return options;
}

/** --init FILE.npy: a DX of the model's input shape, every value finite. */
function readInit(file: string, [h, w, c]: readonly number[]): Float32Array {
  // Room for a float64 array of the model's input and a generous header, no more.
  const npy = readNpy(readInputFile(file, 'a .npy perturbation', 8 * h * w * c + 65_536), file);
  if (npy.shape.join(',') !== `${h},${w},${c}`) throw new InputError(`${file}: shape ${quote(npy.shape)} does not match the model input [${h}, ${w}, ${c}]`);
  const bad = npy.data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new InputError(`${file}: holds a non-finite value (${npy.data[bad]}) at index ${bad}`);
  return npy.data;
}

function outputFlags(values: Values) {
  return { out: (values.out as string | undefined) ?? 'out', force: Boolean(values.force), json: Boolean(values.json), quiet: Boolean(values.quiet), crop: cropOf(values) };
}

/** evaluate(), refusing logits that are not finite (naming the model file and the image). */
function checkedEvaluate(net: Net, set: LabelledSet, modelPath: string, names: readonly string[]) {
  const result = evaluate(net, set);
  const classes = net.architecture.labels.length;
  names.forEach((name, i) => checkLogits(result.logits.subarray(i * classes, (i + 1) * classes), modelPath, name));
  return result;
}

/** --crop X,Y,W,H: the region of the picture to take before resizing. */
function cropOf(values: Values): Crop | undefined {
  const text = values.crop as string | undefined;
  if (text === undefined) return undefined;
  const parts = text.split(',').map((p) => Number(p.trim()));
  if (parts.length !== 4 || !parts.every((v) => Number.isSafeInteger(v) && v >= 0) || parts[2] === 0 || parts[3] === 0) {
    throw new InputError(`--crop ${text}: expected X,Y,W,H in pixels (whole numbers, width and height > 0)`);
  }
  return parts as unknown as Crop;
}

/** Images named by the arguments: files, the PNG and JPEG files of a folder, or globs. */
function expandImages(args: string[]): string[] {
  return expandGlobs(args).flatMap((p) => {
    if (!existsSync(p) || !statSync(p).isDirectory()) return [p];
    const found = readdirSync(p).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort().map((f) => join(p, f));
    if (found.length === 0) throw new InputError(`${p}: a folder with no PNG or JPEG image`);
    return found;
  });
}

/** Arguments with glob characters that name no file are expanded; a pattern matching nothing is refused. */
function expandGlobs(patterns: string[]): string[] {
  return patterns.flatMap((p) => {
    if (existsSync(p) || !isDynamicPattern(p)) return [p];
    const found = globSync(p, { onlyFiles: true, expandDirectories: false, absolute: isAbsolute(p) }).sort();
    if (found.length === 0) throw new InputError(`${p}: no file matches`);
    return found;
  });
}

function intOption(values: Values, name: string, fallback: number, min: number, max: number): number {
  const text = values[name] as string | undefined;
  if (text === undefined) return fallback;
  const v = Number(text);
  if (!/^\s*[+-]?\d+(\.0*)?(e\+?\d+)?\s*$/i.test(text) || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new InputError(`--${name} ${text}: expected a whole number from ${min} to ${max}`);
  }
  return v;
}

function numberOption(values: Values, name: string, fallback: number, range: { min: number; exclusiveMin?: boolean }): number {
  const text = values[name] as string | undefined;
  if (text === undefined) return fallback;
  const v = Number(text);
  const low = range.exclusiveMin ? v <= range.min : v < range.min;
  if (text.trim() === '' || !Number.isFinite(v) || low || v > 1e6) {
    throw new InputError(`--${name} ${text}: expected a number ${range.exclusiveMin ? '>' : '≥'} ${range.min} and at most 1e6`);
  }
  return v;
}

function print(line: string): void {
  process.stdout.write(line + '\n');
}

function mainHelp(): string {
  const rows = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return ['mislead: gradient-based adversarial attacks on small CNNs, no ML framework.', '', 'Commands:', ...rows, '', 'Run "mislead COMMAND --help" for the options of a command.'].join('\n');
}

/** "--iters -5" as "--iters=-5", so that a negative number reaches its range check instead of
 *  being taken for an option. */
function joinNegativeNumbers(args: string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith('--') ? args[i].slice(2) : undefined;
    if (name && options[name]?.type === 'string' && /^-[\d.]/.test(args[i + 1] ?? '')) out.push(`${args[i]}=${args[++i]}`);
    else out.push(args[i]);
  }
  return out;
}

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') return print(mainHelp());
  const command = commands[name];
  if (!command) throw new InputError(`unknown command "${name}" (commands: ${Object.keys(commands).join(', ')}; see mislead --help)`);
  if (rest.includes('--help') || rest.includes('-h')) return print(`Usage: ${command.usage}\n\n${command.summary}.\n${command.help}`);
  let parsed;
  try {
    parsed = parseArgs({ args: joinNegativeNumbers(rest, command.options), allowPositionals: true, options: command.options, strict: true });
  } catch (e) {
    // Node's message goes on about positional arguments after '--': its first sentence is the point.
    throw new InputError(`${(e as Error).message.split('\n')[0].split('. ')[0]} (see mislead ${name} --help)`);
  }
  await command.run(parsed.positionals, parsed.values);
}

// A reader that stops early (`mislead predict … | head`) is not an error: the rest of the output
// is dropped, and the command finishes its work (a run that yields to the event loop, as the
// attack does, still writes all its result files rather than being cut short).
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
  process.stdout.write = (() => true) as typeof process.stdout.write;
});

main(process.argv.slice(2)).catch((e: unknown) => {
  const message = e instanceof Error ? e.message : String(e);
  process.stderr.write(`mislead: ${message.split('\n')[0]}\n`);
  if (process.env.MISLEAD_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  process.exitCode = e instanceof InputError ? 2 : 1;
});
