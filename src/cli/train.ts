// `mislead train`: training a model on generated faces.
import { InputError } from '../errors.js';
import { checkOutputFileWritable, writeFileAtomic } from '../node/output.js';
import { TUTORIAL_ARCHITECTURE } from '../formats/importtf.js';
import { writeModel } from '../formats/model.js';
import { loadEngine } from '../node/engine.js';
import { generateFaces } from '../train/dataset.js';
import { Progress } from './progress.js';
import { Pool } from '../node/parallel.js';
import { availableParallelism } from 'node:os';
import { facesToSet, initialModel, train } from '../train/train.js';
import { intOption, numberOption, print, type Command } from './command.js';

export const trainCommand: Command = {
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
};
