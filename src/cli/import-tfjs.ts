// `mislead import-tfjs`: a TensorFlow.js Layers model (model.json and its weight files) as a model file.
import { dirname, join } from 'node:path';
import { InputError, quote } from '../errors.js';
import { INPUT_LIMITS, readInputFile } from '../node/input.js';
import { checkOutputFile, writeFileAtomic } from '../node/output.js';
import { importTfjs, parseModelJson, SUPPORTED_LAYERS, type TfjsImportOptions } from '../formats/tfjs.js';
import { endsInSoftmax, writeModel } from '../formats/model.js';
import { print, type Command, type Values } from './command.js';

export const importTfjsCommand: Command = {
  usage: 'mislead import-tfjs DIR/model.json --out FILE [--labels A,B,…] [--offset X[,X,X]] [--scale X[,X,X]] [--size HxW] [--force]',
  summary: 'converts a TensorFlow.js Layers model (Sequential or functional) into a model file',
  help: [
    'Reads model.json and the weight files its manifest lists (float32, or uint8/uint16/float16 quantized).',
    '  --labels A,B,…   class names, one per output (default class0, class1, …)',
    '  --offset, --scale  the model input from a 0..255 pixel p: (p − offset) / scale, one number or one',
    '                   per channel (default 0 and 1: raw pixel values); a Rescaling layer at the',
    '                   model\'s start is folded into this',
    '  --size HxW       the input size, for a model that leaves it open',
    `Layers: ${SUPPORTED_LAYERS.join(', ')}.`,
    'Batch normalisation is folded into the convolution before it; a final softmax is recorded and left',
    'out (attacks work on the logits).',
    'Example:\n  mislead import-tfjs mobilenet/model.json --out mobilenet.safetensors --labels cat,dog --offset 127.5 --scale 127.5',
  ].join('\n'),
  options: { out: { type: 'string' }, force: { type: 'boolean' }, labels: { type: 'string' }, offset: { type: 'string' }, scale: { type: 'string' }, size: { type: 'string' } },
  async run(positionals, values) {
    if (positionals.length !== 1) throw new InputError('import-tfjs needs exactly one model.json');
    if (typeof values.out !== 'string') throw new InputError('import-tfjs needs --out FILE');
    const path = positionals[0];
    const options = importOptions(values);
    checkOutputFile(values.out, Boolean(values.force));
    const json = parseModelJson(readInputFile(path, 'a model.json', INPUT_LIMITS.model), path);
    // No weight file is read beyond what the manifest's weights need of it.
    const shard = (file: string, maxBytes: number) => readInputFile(join(dirname(path), file), `a weight file of ${path}`, Math.min(maxBytes, INPUT_LIMITS.model));
    const model = importTfjs(json, shard, path, options);
    writeFileAtomic(values.out, writeModel(model), Boolean(values.force));
    const { architecture } = model;
    const softmax = endsInSoftmax(architecture) ? '; its final softmax is left out: attacks work on the logits' : '';
    print(`wrote ${values.out}: ${architecture.layers.length} layers, ${model.weights.size} tensors, input ${architecture.input.join('×')}, labels ${architecture.labels.join(', ')}${softmax}`);
  },
};

function importOptions(values: Values): TfjsImportOptions {
  const numbers = (flag: string): number | number[] | undefined => {
    const text = values[flag] as string | undefined;
    if (text === undefined) return undefined;
    const list = text.split(',').map((t) => (t.trim() === '' ? NaN : Number(t)));
    if (!list.every(Number.isFinite) || (list.length !== 1 && list.length !== 3)) throw new InputError(`--${flag} ${quote(text)}: expected one number or three (one per channel)`);
    return list.length === 1 ? list[0] : list;
  };
  const offset = numbers('offset'), scale = numbers('scale');
  const size = values.size as string | undefined;
  const hw = size?.match(/^(\d{1,4})x(\d{1,4})$/);
  const side = (text: string) => Number(text) >= 1 && Number(text) <= 4096;
  if (size !== undefined && !(hw && side(hw[1]) && side(hw[2]))) throw new InputError(`--size ${quote(size)}: expected HxW, each from 1 to 4096, such as 224x224`);
  const labels = (values.labels as string | undefined)?.split(',').map((l) => l.trim());
  return {
    ...(labels ? { labels } : {}),
    ...(offset !== undefined || scale !== undefined ? { preprocess: { offset: offset ?? 0, scale: scale ?? 1 } } : {}),
    ...(hw ? { size: [Number(hw[1]), Number(hw[2])] as [number, number] } : {}),
  };
}
