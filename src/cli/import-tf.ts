// `mislead import-tf`: the tutorial's TensorFlow 2 checkpoint as a model file.
import { InputError } from '../errors.js';
import { writeFileAtomic } from '../node/output.js';
import { modelFromTutorialCheckpoint } from '../formats/importtf.js';
import { writeModel } from '../formats/model.js';
import { loadTfCheckpoint } from '../formats/tfcheckpoint.js';
import { print, type Command } from './command.js';

export const importTfCommand: Command = {
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
};
