// `mislead import-faceapi`: face-api.js's gender network (its model folder's age and gender
// weights) as a model file.
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { INPUT_LIMITS, readInputFile } from '../node/input.js';
import { checkOutputFile, writeFileAtomic } from '../node/output.js';
import { FACEAPI_MANIFEST, importFaceApi } from '../formats/faceapi.js';
import { parseModelJson } from '../formats/tfjs.js';
import { writeModel, type Model } from '../formats/model.js';
import { print, type Command } from './command.js';

/** The packages that ship the weights, and the folders they keep them in. */
const PACKAGES = ['@vladmandic/face-api', 'face-api.js'];
const FOLDERS = ['model', 'weights'];

export const importFaceApiCommand: Command = {
  usage: 'mislead import-faceapi [DIR] --out FILE [--force]',
  summary: "converts face-api.js's gender network (age_gender_model) into a model file",
  help: [
    `Reads DIR/${FACEAPI_MANIFEST} and the weight file it lists, as face-api.js and`,
    '@vladmandic/face-api ship them in their model folder. DIR defaults to the model folder of either',
    'package, installed where mislead is run or beside mislead.',
    'The model takes a 112×112 RGB face and gives the logits of man and woman (face-api\'s order); its',
    'preprocessing is face-api\'s: (p − mean RGB 122.782, 117.001, 104.298) / 255 (face-api pads a face',
    'to a square before it resizes it to 112×112).',
    'Example:\n  mislead import-faceapi --out gender.safetensors\n  mislead predict face.jpg --model gender.safetensors',
  ].join('\n'),
  options: { out: { type: 'string' }, force: { type: 'boolean' } },
  async run(positionals, values) {
    if (positionals.length > 1) throw new InputError('import-faceapi takes at most one DIR');
    if (typeof values.out !== 'string') throw new InputError('import-faceapi needs --out FILE');
    const dir = positionals[0] ?? installedModelFolder();
    checkOutputFile(values.out, Boolean(values.force));
    const model = importFaceApiFolder(dir);
    writeFileAtomic(values.out, writeModel(model), Boolean(values.force));
    const { architecture } = model;
    print(`wrote ${values.out}: ${architecture.layers.length} layers, ${model.weights.size} tensors, input ${architecture.input.join('×')}, labels ${architecture.labels.join(', ')}; its final softmax is left out: attacks work on the logits`);
  },
};

/** face-api's gender network from its model folder `dir` (the page's build converts it too). */
export function importFaceApiFolder(dir: string): Model {
  if (!existsSync(dir)) throw new InputError(`${dir}: no such folder, expected face-api's model folder`);
  if (!statSync(dir).isDirectory()) throw new InputError(`${dir}: not a folder, expected face-api's model folder (holding ${FACEAPI_MANIFEST})`);
  const path = join(dir, FACEAPI_MANIFEST);
  if (!existsSync(path)) throw new InputError(`${dir}: no ${FACEAPI_MANIFEST} in it (face-api's age and gender model)`);
  const manifest = parseModelJson(readInputFile(path, 'a weights manifest', INPUT_LIMITS.model), path);
  // No weight file is read beyond what the manifest's weights need of it.
  const shard = (file: string, maxBytes: number) => readInputFile(join(dir, file), `a weight file of ${path}`, Math.min(maxBytes, INPUT_LIMITS.model));
  return importFaceApi(manifest, shard, path);
}

/** The model folder of face-api installed where mislead is run, or else beside mislead. */
export function installedModelFolder(): string {
  for (const from of [join(process.cwd(), 'index.js'), import.meta.filename]) {
    const lookups = createRequire(from).resolve.paths(PACKAGES[0]) ?? [];
    for (const modules of lookups) {
      for (const name of PACKAGES) {
        for (const folder of FOLDERS) {
          const dir = join(modules, name, folder);
          if (existsSync(join(dir, FACEAPI_MANIFEST))) return dir;
        }
      }
    }
  }
  throw new InputError(`no face-api model folder found: install @vladmandic/face-api (npm install @vladmandic/face-api), or give its model folder as DIR`);
}
