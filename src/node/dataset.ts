// A dataset on disk: a folder of images and its labels.csv. writeDataset stores generated faces
// (src/train/dataset.ts) this way; readDataset reads such a folder back, or one made by hand.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { InputError } from '../errors.js';
import { INPUT_LIMITS, readInputFile } from './input.js';
import { crop, decodeImage, encodePng, toGray, type Image } from '../formats/image.js';
import { checkBox } from './files.js';
import { exists, LOCK_NAME, makeDirs, outputError, removeDirs, sweepLeftovers } from './output.js';
import { readLabels, type FaceBox } from './labels.js';
import { checkCount, checkSeed, generateFace, LABELS } from '../train/dataset.js';

const fileName = (i: number) => `${String(i).padStart(5, '0')}.png`;

/**
 * Writes DIR/00000.png … (8-bit gray 48×48) and DIR/labels.csv (`file,label` then `00000.png,woman`
 * …). The whole dataset is made in a temporary folder beside DIR (`.DIR.PID.tmp`) and renamed into
 * place at the end, so that DIR never holds half a dataset: a failure removes the temporary folder,
 * and one a killed run left is removed by the next run. DIR may be new or empty; a dataset this
 * function made is replaced as a whole, and a folder holding anything else written into, only with
 * `force`.
 */
export function writeDataset(dir: string, count: number, seed: number, onProgress?: (done: number) => void, options: { quiet?: boolean; force?: boolean } = {}): void {
  checkCount('count', count);
  checkSeed(seed);
  if (dir === '') throw new InputError('--out: empty path; name a folder for the dataset');
  const prefix = `--out ${dir}`;
  const found = folderState(dir, prefix, Boolean(options.quiet));
  if (found === 'dataset' && !options.force) throw new InputError(`${dir}: already holds a dataset; pass --force to replace it, or choose another folder`);
  if (found === 'other' && !options.force) throw new InputError(`${dir}: is not empty and not a dataset made by mislead dataset; choose a new or empty folder, or pass --force to write the dataset into it`);
  const parent = dirname(resolve(dir));
  const created = makeDirs(parent, prefix, true);
  const temp = join(parent, `.${basename(resolve(dir))}.${process.pid}.tmp`);
  const old = join(parent, `.${basename(resolve(dir))}.old.${process.pid}.tmp`);
  try {
    sweepLeftovers(parent, prefix, Boolean(options.quiet), basename(resolve(dir)));
    try {
      mkdirSync(temp);
    } catch (e) {
      throw outputError(prefix, 'cannot create the folder', e);
    }
    const rows = ['file,label'];
    for (let i = 0; i < count; i++) {
      const { label, image } = generateFace(seed, i);
      write(join(temp, fileName(i)), encodePng(image), prefix);
      rows.push(`${fileName(i)},${LABELS[label]}`);
      onProgress?.(i + 1);
    }
    write(join(temp, 'labels.csv'), rows.join('\n') + '\n', prefix);
    try {
      if (found === 'other') {
        // Into someone's folder: each image, then labels.csv, which makes it a dataset.
        for (const name of readdirSync(temp).filter((n) => n !== 'labels.csv')) renameSync(join(temp, name), join(dir, name));
        renameSync(join(temp, 'labels.csv'), join(dir, 'labels.csv'));
        rmdirSync(temp);
      } else {
        if (found === 'dataset') renameSync(dir, old);
        else if (found === 'empty') rmdirSync(dir);
        renameSync(temp, dir);
        rmSync(old, { recursive: true, force: true });
      }
    } catch (e) {
      throw outputError(prefix, 'cannot put the dataset in place', e);
    }
  } catch (e) {
    rmSync(temp, { recursive: true, force: true });
    try {
      if (found === 'dataset' && !exists(dir)) renameSync(old, dir); // the earlier dataset back
    } catch {
      // left under its temporary name: the next run's sweep removes it
    }
    removeDirs(created);
    throw e;
  }
}

function write(path: string, data: Uint8Array | string, prefix: string): void {
  try {
    writeFileSync(path, data);
  } catch (e) {
    throw outputError(prefix, `cannot write ${basename(path)}`, e);
  }
}

/** What `dir` is now: absent, an empty folder, a dataset writeDataset made (labels.csv and the
 *  images it lists, nothing else), or a folder of other things. What a killed run left in it
 *  (see output.ts) is removed first and does not count. */
function folderState(dir: string, prefix: string, quiet: boolean): 'absent' | 'empty' | 'dataset' | 'other' {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new InputError(`${prefix}: exists and is not a directory`);
    sweepLeftovers(dir, prefix, quiet);
    names = readdirSync(dir).filter((n) => n !== LOCK_NAME);
  } catch (e) {
    if (e instanceof InputError) throw e;
    // Under a file: makeDirs says which part of the path is not a folder.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return 'absent';
    throw outputError(prefix, 'cannot use it', e);
  }
  if (names.length === 0) return 'empty';
  if (!names.includes('labels.csv')) return 'other';
  let lines: string[];
  try {
    lines = readFileSync(join(dir, 'labels.csv'), 'utf8').trim().split('\n');
  } catch {
    return 'other';
  }
  const listed = new Set(lines.slice(1).map((l) => l.split(',')[0]));
  const ours = lines[0].startsWith('file,label') && [...listed].every((f) => /^\d{5,}\.png$/.test(f));
  return ours && names.every((n) => n === 'labels.csv' || listed.has(n)) ? 'dataset' : 'other';
}

/** Reads a folder of images with its labels.csv (as writeDataset makes it, or by hand, with any
 *  extra columns), each label one of `labels` (by default the generated faces'), as gray images
 *  or, for a model of 3 channels, RGB; an image whose row gives a face box is cut to it. */
export function readDataset(dir: string, labels: readonly string[] = LABELS, channels: 1 | 3 = 1): { files: string[]; labels: number[]; images: Image[]; faces: (FaceBox | undefined)[] } {
  const rows = readLabels(dir, labels);
  const files = rows.map((r) => r.file);
  const images = files.map((file, i) => {
    const path = join(dir, file);
    return datasetImage(readInputFile(path, 'an image listed in labels.csv', INPUT_LIMITS.image), path, rows[i].face, channels);
  });
  return { files, labels: rows.map((r) => r.label), images, faces: rows.map((r) => r.face) };
}

/** An image of a labelled folder as readDataset reads it from its bytes: cut to its face box. */
export function datasetImage(bytes: Uint8Array, path: string, face: FaceBox | undefined, channels: 1 | 3): Image {
  let image = decodeImage(bytes, path);
  if (face) {
    checkBox(face.box, image, path, face.from);
    image = crop(image, ...face.box);
  }
  return channels === 1 ? toGray(image) : image;
}
