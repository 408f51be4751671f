// `mislead train`: training a model, the tutorial's network from scratch or a given model file
// further, on generated faces or a labelled folder.
import { InputError } from '../errors.js';
import { checkOutputFileWritable, writeFileAtomic } from '../node/output.js';
import { TUTORIAL_ARCHITECTURE } from '../formats/importtf.js';
import { writeModel, type Architecture } from '../formats/model.js';
import { loadEngine } from '../node/engine.js';
import { loadModel } from '../node/files.js';
import { readDataset } from '../node/dataset.js';
import { generateFaces, LABELS } from '../train/dataset.js';
import { Progress } from './progress.js';
import { Pool } from '../node/parallel.js';
import { availableParallelism } from 'node:os';
import { facesToSet, initialModel, train, type LabelledSet } from '../train/train.js';
import { intOption, numberOption, print, snakeKeys, type Command } from './command.js';

export const trainCommand: Command = {
  usage: 'mislead train --out FILE [--model FILE] [--data DIR | --train N --test M] [--epochs E] [--batch B] [--lr X] [--seed S] [--workers W] [--force] [--json]',
  summary: "trains the tutorial's network on generated faces, or fine-tunes a model",
  help: [
    "The tutorial's architecture, initialised as its Layers.py (truncated normal, sigma 0.1, zero biases),",
    'or with --model FILE that model as it is (any architecture: its weights are the starting point),',
    'trained with Adam (learning rate X decayed along a half cosine) on N generated faces from seed S;',
    'accuracy is measured on M faces from seed S + 1. With --data DIR, on the images of DIR and its',
    'labels.csv ("file,label" rows, the labels of the model) instead, with no test set. Faces are',
    'rendered and batches computed on W worker threads (default: one per core; 1 = this thread only),',
    'each with its own WASM engine. The model is written with its architecture, labels and',
    'preprocessing unchanged.',
    'Defaults: --train 20000 --test 2000 --epochs 10 --batch 64 --lr 0.001 --seed 1.',
    'Examples:\n  mislead train --out model.safetensors --epochs 5',
    '  mislead train --model mobilenet.safetensors --data photos --epochs 3 --lr 0.0001 --out tuned.safetensors',
  ].join('\n'),
  options: { out: { type: 'string' }, model: { type: 'string' }, data: { type: 'string' }, train: { type: 'string' }, test: { type: 'string' }, epochs: { type: 'string' }, batch: { type: 'string' }, lr: { type: 'string' }, seed: { type: 'string' }, workers: { type: 'string' }, force: { type: 'boolean' }, json: { type: 'boolean' } },
  async run(positionals, values) {
    if (positionals.length > 0) throw new InputError(`train takes no positional argument (got ${positionals[0]})`);
    if (typeof values.out !== 'string') throw new InputError('train needs --out FILE');
    const out = values.out;
    checkOutputFileWritable(out, Boolean(values.force)); // before hours of training, not after
    const folder = values.data as string | undefined;
    if (folder !== undefined && (values.train !== undefined || values.test !== undefined)) throw new InputError('--train and --test count generated faces: with --data, the folder\'s images are the training set');
    const options = {
      epochs: intOption(values, 'epochs', 10, 1, 10_000),
      batch: intOption(values, 'batch', 64, 1, 4096),
      lr: numberOption(values, 'lr', 1e-3, { min: 0, exclusiveMin: true }),
      seed: intOption(values, 'seed', 1, 0, 0xfffffffe),
    };
    const given = values.model === undefined ? undefined : loadModel(values.model as string);
    const architecture = given?.model.architecture ?? TUTORIAL_ARCHITECTURE;
    if (folder === undefined && architecture.labels.join() !== LABELS.join()) {
      throw new InputError(`${given!.path}: generated faces are labelled ${LABELS.join(' and ')}, the model's labels are ${architecture.labels.join(', ')}: give --data DIR`);
    }
    const workers = intOption(values, 'workers', availableParallelism(), 1, 256);
    const json = Boolean(values.json);
    const log = (line: string) => json || print(line);
    const began = performance.now();
    // A folder is read before any worker starts: a bad file then ends the run at once.
    const folderSet = folder === undefined ? undefined : labelledFolder(folder, architecture);
    const pool = workers > 1 ? new Pool(workers) : undefined;
    const faces = async (count: number, seed: number, what: string) => {
      const progress = new Progress(`${what} faces`, count, { quiet: json });
      const onProgress = (done: number) => progress.update(done);
      const set = facesToSet(pool ? await pool.faces(count, seed, onProgress) : generateFaces(count, seed, onProgress), architecture);
      progress.done();
      return set;
    };
    let data: LabelledSet, test: LabelledSet | undefined;
    if (folderSet) {
      data = folderSet;
      log(`read ${data.labels.length} images of ${folder}`);
    } else {
      const count = { train: intOption(values, 'train', 20_000, 2, 1_000_000), test: intOption(values, 'test', 2000, 0, 1_000_000) };
      data = await faces(count.train, options.seed, 'training');
      test = count.test > 0 ? await faces(count.test, options.seed + 1, 'test') : undefined;
      log(`generated ${count.train} training and ${count.test} test faces in ${((performance.now() - began) / 1000).toFixed(1)} s`);
    }
    const sizes = { train: data.labels.length, test: test?.labels.length ?? 0 };
    const generated = (performance.now() - began) / 1000;
    const engine = await loadEngine();
    const batches = Math.floor(sizes.train / Math.min(options.batch, sizes.train));
    let progress = new Progress('epoch 1', batches, { quiet: json, unit: 'batches' });
    const initial = given?.model ?? initialModel(architecture, options.seed);
    const batch = Math.min(options.batch, sizes.train);
    const source = pool && batch % workers === 0 ? await pool.gradients(initial, data, batch) : undefined;
    const { model, history } = await train(engine, initial, data, test, {
      ...options,
      onBatch: (done) => progress.update(done),
      onEpoch: (s) => {
        progress.done();
        progress = new Progress(`epoch ${s.epoch + 1}`, batches, { quiet: json, unit: 'batches' });
        const testPart = s.testAccuracy === undefined ? '' : ` - test accuracy ${(100 * s.testAccuracy).toFixed(2)} %`;
        log(`epoch ${String(s.epoch).padStart(3)} - loss ${s.loss.toFixed(5)} - train accuracy ${(100 * s.trainAccuracy).toFixed(2)} %${testPart} - ${s.seconds.toFixed(1)} s (${Math.round(s.imagesPerSecond)} images/s)`);
      },
    }, source);
    await pool?.close();
    writeFileAtomic(out, writeModel(model), true);
    const seconds = (performance.now() - began) / 1000;
    if (json) print(JSON.stringify({ out, ...(given ? { model: given.path } : {}), ...(folder === undefined ? {} : { data: folder }), ...sizes, ...options, generated_seconds: generated, seconds, history: history.map(snakeKeys) }));
    else print(`wrote ${out} (${seconds.toFixed(1)} s in all)`);
  },
};

/** A labelled folder (readDataset) as the model's inputs. */
function labelledFolder(dir: string, architecture: Architecture): LabelledSet {
  const read = readDataset(dir, architecture.labels, architecture.input[2] as 1 | 3);
  if (read.labels.length < 2) throw new InputError(`${dir}: one image; training needs at least two`);
  return facesToSet(read.images.map((image, i) => ({ image, label: read.labels[i] })), architecture);
}
