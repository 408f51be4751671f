// A folder's labels.csv: the one reader, for eval, training data and the true classes of a batch
// attack. A header names the columns; "file" and "label" are needed, others (an age, a face box)
// are kept for whoever wants them. Checked whole before any image is read.
import { join } from 'node:path';
import { InputError, isPrintable, quote } from '../errors.js';
import { INPUT_LIMITS, readInputText } from './input.js';

export interface LabelRow {
  /** The image's file name, in the folder of labels.csv. */
  file: string;
  /** Its label's index in `labels`. */
  label: number;
  /** Every column of its row, by header name. */
  columns: Record<string, string>;
}

/** The rows of DIR/labels.csv, each label one of `labels`. */
export function readLabels(dir: string, labels: readonly string[]): LabelRow[] {
  const path = join(dir, 'labels.csv');
  const lines = readInputText(path, "the images' labels", INPUT_LIMITS.labels).split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1].trim() === '') lines.pop();
  const header = (lines[0] ?? '').replace(/^\uFEFF/, '').split(',').map((c) => c.trim());
  const fileAt = header.indexOf('file'), labelAt = header.indexOf('label');
  if (fileAt < 0 || labelAt < 0) throw new InputError(`${path}: not a list of labelled images (the first line must name the columns "file" and "label", as "file,label")`);
  const rows: LabelRow[] = [];
  for (let n = 1; n < lines.length; n++) {
    const where = `${path}:${n + 1}`;
    const cells = lines[n].split(',').map((c) => c.trim());
    if (cells.length !== header.length || cells[fileAt] === '') throw new InputError(`${where}: expected ${quote(header.join(','))}, got ${quote(lines[n])}`);
    const file = cells[fileAt], name = cells[labelAt];
    const label = labels.indexOf(name);
    if (label < 0) throw new InputError(`${where}: unknown label ${quote(name)} (expected ${labels.length <= 10 ? labels.join(' or ') : `one of the model's ${labels.length} labels`})`);
    // The name goes into paths and messages: a plain file name of this folder, printable, of a length a file system allows.
    if (file.includes('/') || file.includes('\\') || file === '.' || file === '..' || file.length > 255 || !isPrintable(file)) {
      throw new InputError(`${where}: ${quote(file)} must be a file name in the dataset's directory`);
    }
    rows.push({ file, label, columns: Object.fromEntries(header.map((h, i) => [h, cells[i]])) });
  }
  if (rows.length === 0) throw new InputError(`${path}: lists no image (it holds only its header line)`);
  return rows;
}
