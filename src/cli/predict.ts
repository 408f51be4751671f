// `mislead predict`: class, logits and probabilities of each image.
import { InputError } from '../errors.js';
import { loadModel, readModelInput } from '../node/files.js';
import { Net } from '../core/net.js';
import { loadEngine } from '../node/engine.js';
import { classify } from './run.js';
import { faceBoxes } from '../node/labels.js';
import { cropOption, modelOption, cropOf, expandImages, print, type Command } from './command.js';

export const predictCommand: Command = {
  usage: 'mislead predict IMAGE... [--model FILE] [--crop X,Y,W,H] [--json]',
  summary: 'class, logits and probabilities of each image',
  help: [
    'IMAGE may be a glob in quotes ("faces/*.png") or a folder. An image whose folder\'s labels.csv gives it',
    'a face box (columns face_x,face_y,face_w,face_h) is read from that box; --crop X,Y,W,H (pixels of the',
    'picture) reads every image from that box instead.',
    'Examples:',
    '  mislead predict face.png other.jpg --model model.safetensors',
    '  mislead predict "faces/*.png" --json',
    '  mislead predict photo.jpg --crop 80,60,90,96',
  ].join('\n'),
  options: { ...modelOption, ...cropOption, json: { type: 'boolean' } },
  async run(patterns, values) {
    if (patterns.length === 0) throw new InputError('predict needs at least one IMAGE');
    const images = expandImages(patterns);
    const { model, path } = loadModel(values.model as string | undefined);
    const regions = faceBoxes(images, cropOf(values));
    const inputs = images.map((image, i) => readModelInput(image, model.architecture, regions[i]?.box, regions[i]?.from));
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
};
