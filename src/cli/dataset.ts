// `mislead dataset`: generated faces with labels.csv.
import { InputError } from '../errors.js';
import { writeDataset } from '../node/dataset.js';
import { Progress } from './progress.js';
import { intOption, print, type Command } from './command.js';

export const datasetCommand: Command = {
  usage: 'mislead dataset --out DIR [--count N] [--seed S] [--force]',
  summary: 'generated 48×48 faces (half men, half women) as PNGs and labels.csv',
  help: 'The faces are cartoons from facesjs, varied in race, features, framing, background and light, and\nreproducible: the same seed gives the same pictures on any machine. Defaults: --count 1000, --seed 1.\nThe dataset is made in a temporary folder beside DIR and renamed into place when complete. DIR must be\nnew or empty; --force replaces a dataset made earlier (no stray images from a larger --count stay)\nor writes into a folder holding other files.\nExample:\n  mislead dataset --out faces --count 2000 --seed 1000',
  options: { out: { type: 'string' }, count: { type: 'string' }, seed: { type: 'string' }, force: { type: 'boolean' } },
  async run(positionals, values) {
    if (positionals.length > 0) throw new InputError(`dataset takes no positional argument (got ${positionals[0]})`);
    if (typeof values.out !== 'string') throw new InputError('dataset needs --out DIR');
    const count = intOption(values, 'count', 1000, 1, 1_000_000);
    const progress = new Progress('dataset', count, { unit: 'faces' });
    writeDataset(values.out, count, intOption(values, 'seed', 1, 0, 0xffffffff), (done) => progress.update(done), { force: Boolean(values.force) });
    progress.done();
    print(`wrote ${count} faces and labels.csv to ${values.out}`);
  },
};
