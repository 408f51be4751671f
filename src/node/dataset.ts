// A dataset on disk: a folder of images and its labels.csv. writeDataset stores generated faces
// (src/train/dataset.ts) this way; readDataset reads such a folder back, or one made by hand.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { INPUT_LIMITS, readInputFile } from './input.js';
import { crop, decodeImage, encodePng, toGray, type Image } from '../formats/image.js';
import { checkBox } from './files.js';
import { OutputSet } from './output.js';
import { readLabels } from './labels.js';
import { checkCount, checkSeed, generateFace, LABELS } from '../train/dataset.js';

const fileName = (i: number) => `${String(i).padStart(5, '0')}.png`;

/**
 * Writes DIR/00000.png … (8-bit gray 48×48) and DIR/labels.csv (`file,label` then `00000.png,woman`
 * …). labels.csv is written last, under a temporary name then renamed, so that a dataset is complete
 * exactly when labels.csv exists; a DIR that already holds one is refused.
 */
export function writeDataset(dir: string, count: number, seed: number, onProgress?: (done: number) => void, options: { quiet?: boolean } = {}): void {
  checkCount('count', count);
  checkSeed(seed);
  if (existsSync(join(dir, 'labels.csv'))) throw new InputError(`${dir}: already holds a dataset (labels.csv); choose another directory`);
  // Every image and labels.csv staged under a temporary name and renamed into place at the end,
  // labels.csv last: a failure (a full disk, an interruption) leaves no half dataset.
  const outputs = new OutputSet(dir, false, ['labels.csv'], options);
  try {
    const rows = ['file,label'];
    for (let i = 0; i < count; i++) {
      const { label, image } = generateFace(seed, i);
      outputs.write(fileName(i), encodePng(image));
      rows.push(`${fileName(i)},${LABELS[label]}`);
      onProgress?.(i + 1);
    }
    outputs.write('labels.csv', rows.join('\n') + '\n');
    outputs.commit();
  } catch (e) {
    outputs.abandon();
    throw e;
  }
}

/** Reads a folder of images with its labels.csv (as writeDataset makes it, or by hand, with any
 *  extra columns), each label one of `labels` (by default the generated faces'), as gray images
 *  or, for a model of 3 channels, RGB; an image whose row gives a face box is cut to it. */
export function readDataset(dir: string, labels: readonly string[] = LABELS, channels: 1 | 3 = 1): { files: string[]; labels: number[]; images: Image[] } {
  const rows = readLabels(dir, labels);
  const files = rows.map((r) => r.file);
  const images = files.map((file, i) => {
    const path = join(dir, file);
    const row = rows[i];
    let image = decodeImage(readInputFile(path, 'an image listed in labels.csv', INPUT_LIMITS.image), path);
    if (row.face) {
      checkBox(row.face.box, image, path, row.face.from);
      image = crop(image, ...row.face.box);
    }
    return channels === 1 ? toGray(image) : image;
  });
  return { files, labels: rows.map((r) => r.label), images };
}
