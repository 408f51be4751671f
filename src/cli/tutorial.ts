// `mislead tutorial`: the tutorial's two steps end to end.
import { InputError } from '../errors.js';
import { loadModel, SAMPLE_FACE } from '../node/files.js';
import { runTutorial } from './run.js';
import { cropOption, modelOption, outputFlags, outputOptions, type Command } from './command.js';

export const tutorialCommand: Command = {
  usage: 'mislead tutorial [IMAGE] [--model FILE] [--crop X,Y,W,H] [--out DIR] [--force] [--json] [--quiet]',
  summary: 'the tutorial end to end: 1000 iterations with beta 0, then 1000 more with beta 0.5',
  help: 'Prints the tutorial\'s log lines and its table, and writes the results into --out (default ./out).\nWith no IMAGE, the sample face shipped in weights/samples/ (a generated woman\'s face).\nExample:\n  mislead tutorial face.png --model model.safetensors',
  options: { ...modelOption, ...outputOptions, ...cropOption },
  async run(positionals, values) {
    if (positionals.length > 1) throw new InputError('tutorial takes at most one IMAGE');
    const { model, path } = loadModel(values.model as string | undefined);
    await runTutorial({ model, modelPath: path, imagePath: positionals[0] ?? SAMPLE_FACE, ...outputFlags(values) });
  },
};
