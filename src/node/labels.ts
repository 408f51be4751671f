// A folder's labels.csv: the one reader, for eval, training data, the true classes of a batch
// attack and the face boxes of predict and attack. A header names the columns; "file" and "label"
// are needed; face_x, face_y, face_w, face_h (all four or none) give a face box in pixels of the
// picture (four empty cells: the whole picture); others (an age) are kept for whoever wants them.
// Checked whole before any image is read.
import { basename, dirname, join } from 'node:path';
import { InputError, isPrintable, quote } from '../errors.js';
import { INPUT_LIMITS, present, readInputText } from './input.js';
import type { Crop } from './files.js';

export interface LabelRow {
  /** The image's file name, in the folder of labels.csv. */
  file: string;
  /** Its label's index in `labels` (−1 when the labels are not checked). */
  label: number;
  /** Every column of its row, by header name. */
  columns: Record<string, string>;
  /** The face's box, when the row gives one. */
  face?: FaceBox;
}

/** A rectangle of a picture to read, and where it was given (for messages: "--crop", "DIR/labels.csv:3"). */
export interface FaceBox {
  box: Crop;
  from: string;
}

const FACE_COLUMNS = ['face_x', 'face_y', 'face_w', 'face_h'];

/** The rows of DIR/labels.csv, each label one of `labels` (any label when `labels` is null). */
export function readLabels(dir: string, labels: readonly string[] | null): LabelRow[] {
  const path = join(dir, 'labels.csv');
  const lines = readInputText(path, "the images' labels", INPUT_LIMITS.labels).split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1].trim() === '') lines.pop();
  const header = (lines[0] ?? '').replace(/^\uFEFF/, '').split(',').map((c) => c.trim());
  const fileAt = header.indexOf('file'), labelAt = header.indexOf('label');
  if (fileAt < 0 || labelAt < 0) throw new InputError(`${path}: not a list of labelled images (the first line must name the columns "file" and "label", as "file,label")`);
  const faceAt = FACE_COLUMNS.map((c) => header.indexOf(c));
  const hasFaces = faceAt.some((i) => i >= 0);
  if (hasFaces && faceAt.some((i) => i < 0)) throw new InputError(`${path}: a face box needs all four columns ${FACE_COLUMNS.join(', ')}`);
  const rows: LabelRow[] = [];
  for (let n = 1; n < lines.length; n++) {
    const where = `${path}:${n + 1}`;
    const cells = lines[n].split(',').map((c) => c.trim());
    if (cells.length !== header.length || cells[fileAt] === '') throw new InputError(`${where}: expected ${quote(header.join(','))}, got ${quote(lines[n])}`);
    const file = cells[fileAt], name = cells[labelAt];
    const label = labels ? labels.indexOf(name) : -1;
    if (labels && label < 0) throw new InputError(`${where}: unknown label ${quote(name)} (expected ${labels.length <= 10 ? labels.join(' or ') : `one of the model's ${labels.length} labels`})`);
    // The name goes into paths and messages: a plain file name of this folder, printable, of a length a file system allows.
    if (file.includes('/') || file.includes('\\') || file === '.' || file === '..' || file.length > 255 || !isPrintable(file)) {
      throw new InputError(`${where}: ${quote(file)} must be a file name in the dataset's directory`);
    }
    const face = hasFaces ? faceBox(faceAt.map((i) => cells[i]), `${where}`, file) : undefined;
    rows.push({ file, label, columns: Object.fromEntries(header.map((h, i) => [h, cells[i]])), ...(face ? { face } : {}) });
  }
  if (rows.length === 0) throw new InputError(`${path}: lists no image (it holds only its header line)`);
  return rows;
}

/** A row's face box: four whole numbers (x, y ≥ 0; width, height ≥ 1), or four empty cells for none. */
function faceBox(cells: string[], where: string, file: string): FaceBox | undefined {
  if (cells.every((c) => c === '')) return undefined;
  const values = cells.map((c) => (/^\d{1,9}$/.test(c) ? Number(c) : NaN));
  if (values.some((v) => Number.isNaN(v)) || values[2] === 0 || values[3] === 0) {
    throw new InputError(`${where}: the face box of ${quote(file)} is ${quote(cells.join(','))}; expected whole numbers ${FACE_COLUMNS.join(',')} (x and y from 0, width and height from 1), or four empty cells for the whole picture`);
  }
  return { box: values as unknown as Crop, from: where };
}

/**
 * Where each image is read from: `crop` (--crop) when given, else its face box in its folder's
 * labels.csv when that lists one for it, else the whole picture (undefined).
 */
export function faceBoxes(images: readonly string[], crop?: Crop): (FaceBox | undefined)[] {
  if (crop) return images.map(() => ({ box: crop, from: '--crop' }));
  const tables = new Map<string, Map<string, FaceBox | undefined>>();
  return images.map((image) => {
    const dir = dirname(image);
    if (!tables.has(dir)) tables.set(dir, new Map(present(join(dir, 'labels.csv')) ? readLabels(dir, null).map((r) => [r.file, r.face]) : []));
    return tables.get(dir)!.get(basename(image));
  });
}
