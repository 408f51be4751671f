// `mislead attack`: any method of the registry on one image or many; its flags, help and checks
// come from the registry.
import { InputError, quote } from '../errors.js';
import { loadModel } from '../node/files.js';
import { readInputFile } from '../node/input.js';
import { runAttackJob } from './run.js';
import { COMMON, METHODS, resolveOptions, type AttackOptions, type Method, type Parameter } from '../attacks/index.js';
import { availableParallelism } from 'node:os';
import { readNpy } from '../formats/npy.js';
import { parseQueueUrl } from '../queue/connection.js';
import { IMAGES_PER_JOB } from '../queue/submit.js';
import { cropOption, intOption, modelOption, outputFlags, outputOptions, expandImages, type Command, type Options, type Values } from './command.js';

export const attackCommand: Command = {
  usage: 'mislead attack IMAGE... [--model FILE] [--method M] [--target LABEL | --untargeted] [METHOD OPTIONS] [--init FILE.npy] [--crop X,Y,W,H] [--batch N] [--workers N] [--queue redis://HOST:PORT[/DB] [--per-job N]] [--out DIR] [--force] [--json] [--quiet]',
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
    '--batch N: images per pass through the engine (default: 32 faces of 48×48; for larger inputs as many',
    'as make 73,728 values, one at a time for 112×112×3).',
    'With --queue, the batch is cut into jobs of --per-job images (default 8) for the workers of that',
    'queue ("mislead worker"), with the same results; an image whose job fails is reported with its error.',
    'An image whose folder\'s labels.csv gives it a face box (face_x,face_y,face_w,face_h) is read from that',
    'box, and --crop X,Y,W,H (pixels of the picture) reads every image from its box; the PNGs saved are the',
    'model\'s input (the face at the model\'s size), as the model saw it.',
    '',
    'Examples:',
    '  mislead attack face.png --target man --beta 0.5 --out result',
    '  mislead attack faces/ --method pgd --eps 4 --out pgd4',
  ].join('\n'),
  options: {
    ...modelOption, ...outputOptions, ...cropOption, method: { type: 'string' }, target: { type: 'string' }, untargeted: { type: 'boolean' },
    init: { type: 'string' }, workers: { type: 'string' }, queue: { type: 'string' }, 'per-job': { type: 'string' }, ...methodFlags(),
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
    const queue = queueOptions(values, images.length);
    const { model, path } = loadModel(values.model as string | undefined);
    const target = values.target as string | undefined;
    // Checked here, before any image is read, naming the flags.
    resolveOptions(given as unknown as AttackOptions, model.architecture.labels.length, flagOf);
    if (values.init !== undefined) {
      if (images.length > 1) throw new InputError('--init starts one image\'s filter: give one IMAGE');
      given.init = [readInit(values.init as string, model.architecture.input)];
    }
    await runAttackJob({ model, modelPath: path, images, options: given as unknown as AttackOptions, target, workers: intOption(values, 'workers', availableParallelism(), 1, 256), ...outputFlags(values), ...queue });
  },
};

/** --queue and --per-job, checked (the address read) before anything else is. */
function queueOptions(values: Values, images: number): { queue?: string; perJob?: number } {
  if (values.queue === undefined) {
    if (values['per-job'] !== undefined) throw new InputError('--per-job goes with --queue');
    return {};
  }
  if (images === 1) throw new InputError('--queue runs a batch: give several images or a folder');
  parseQueueUrl(values.queue as string);
  return { queue: values.queue as string, perJob: intOption(values, 'per-job', IMAGES_PER_JOB, 1, 10_000) };
}

const flagOf = (p: Parameter) => `--${p.flag}`;

function methodFlags(): Options {
  const flags: Options = {};
  for (const p of [...METHODS.flatMap((m) => m.parameters), ...COMMON]) if (p.flag) flags[p.flag] = { type: p.kind === 'boolean' ? 'boolean' : 'string' };
  return flags;
}

function methodHelp(m: Method): string[] {
  const options = m.parameters.map((p) =>
    p.kind === 'boolean' ? `--${p.flag}` : `--${p.flag} ${p.kind === 'choice' ? p.choices!.map((c) => c.value).join('|') : p.kind === 'list' ? 'ID,ID,…' : p.default ?? `(${p.derived})`}`);
  return [...wrap(`  ${m.id.padEnd(9)} `, `${m.name}: ${m.summary}`.split(' '), ' '), ...wrap(' '.repeat(12), options, '  ')];
}

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
    options[p.key] = p.kind === 'boolean' ? !p.default : p.kind === 'choice' || p.kind === 'list' || text === '' || Number.isNaN(Number(text)) ? v : Number(text);
  }
  return options;
}

function readInit(file: string, [h, w, c]: readonly number[]): Float32Array {
  // Room for a float64 array of the model's input and a generous header, no more.
  const npy = readNpy(readInputFile(file, 'a .npy perturbation', 8 * h * w * c + 65_536), file);
  if (npy.shape.join(',') !== `${h},${w},${c}`) throw new InputError(`${file}: shape ${quote(npy.shape)} does not match the model input [${h}, ${w}, ${c}]`);
  const bad = npy.data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new InputError(`${file}: holds a non-finite value (${npy.data[bad]}) at index ${bad}`);
  return npy.data;
}

