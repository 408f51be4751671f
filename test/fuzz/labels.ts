// Fuzz target: readDataset's labels.csv. The dataset folder is made once (two small PNGs, a file
// that is no image, a sub-folder); each input is a labels.csv written into it. Mutations: bytes,
// numbers, and whole lines (duplicated, removed, swapped, or replaced by hostile rows: paths out
// of the folder, a folder, the CSV itself, odd labels, extra cells, NULs, very long names).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readDataset } from '../../src/node/dataset.js';
import { encodePng } from '../../src/formats/image.js';
import { Invalid, type Target } from './harness.js';
import { below, mutate, pick, streamOf, type Mutation } from './mutate.js';

let folder: string | undefined;
/** The dataset folder, made on first use (so that importing this module writes nothing). */
export function datasetFolder(): string {
  if (folder) return folder;
  folder = mkdtempSync(join(tmpdir(), 'mislead-fuzz-labels-'));
  const gray = (v: number) => encodePng({ width: 3, height: 2, channels: 1, data: new Uint8Array(6).fill(v) });
  writeFileSync(join(folder, 'a.png'), gray(10));
  writeFileSync(join(folder, 'b.png'), gray(200));
  writeFileSync(join(folder, 'bad.png'), 'not an image');
  mkdirSync(join(folder, 'sub'));
  return folder;
}

/** Removes the dataset folder, if it was made. */
export function removeDatasetFolder(): void {
  if (folder) rmSync(folder, { recursive: true, force: true });
  folder = undefined;
}

const text = (s: string) => new TextEncoder().encode(s);

const SEEDS = [
  { name: 'labels-two', bytes: text('file,label\na.png,man\nb.png,woman\n') },
  { name: 'labels-crlf-bom', bytes: text('\uFEFFfile,label\r\nb.png,woman\r\na.png,man\r\n\r\n') },
  { name: 'labels-header-only', bytes: text('file,label\n') },
  { name: 'labels-spaces', bytes: text(' file,label \n a.png , woman \nb.png,man') },
];

const ROWS = [
  '../a.png,man', '/etc/hostname,man', 'sub,man', '.,woman', '..,man', 'bad.png,man', 'labels.csv,woman', 'sub/a.png,man',
  'a.png,Man', 'a.png,man,woman', ',man', 'a.png', '', '   ', 'a.png,', 'a.png\u0000,man', `${'a'.repeat(300)}.png,man`,
  'missing.png,woman', 'a.png,\uFEFFman', 'a.png;man', '"a.png","man"', 'a.png\\b,man', 'file,label', 'a.png,man\rb.png,woman',
];

const lines = (b: Uint8Array) => new TextDecoder().decode(b).split('\n');
const unlines = (l: string[]) => text(l.join('\n'));

const MUTATIONS: Mutation[] = [
  (b, r) => {
    const l = lines(b), i = below(r, l.length + 1), row = pick(r, ROWS);
    l.splice(i, 0, row);
    return [unlines(l), `row@${i}=${JSON.stringify(row.slice(0, 24))}`];
  },
  (b, r) => {
    const l = lines(b), i = below(r, l.length);
    l.splice(below(r, l.length + 1), 0, ...Array<string>(pick(r, [1, 2, 100])).fill(l[i]));
    return [unlines(l), `dup-line${i}`];
  },
  (b, r) => {
    const l = lines(b), i = below(r, l.length);
    l.splice(i, 1);
    return [unlines(l), `del-line${i}`];
  },
  (b, r) => {
    const l = lines(b), i = below(r, l.length), j = below(r, l.length);
    [l[i], l[j]] = [l[j], l[i]];
    return [unlines(l), `swap-lines${i},${j}`];
  },
];

export const labelsTarget: Target = {
  name: 'labels',
  parser: 'readDataset (labels.csv)',
  make(index) {
    const r = streamOf('labels', index);
    const seed = pick(r, SEEDS);
    const { bytes, ops } = mutate(seed.bytes, r, { structural: MUTATIONS, structuralShare: 0.6, others: SEEDS.map((s) => s.bytes), text: true });
    return {
      seed: seed.name, ops, size: bytes.length, files: { 'labels.csv': bytes },
      run() {
        const dir = datasetFolder();
        writeFileSync(join(dir, 'labels.csv'), bytes);
        const d = readDataset(dir);
        if (d.files.length !== d.labels.length || d.files.length !== d.images.length) throw new Invalid('files, labels and images differ in number');
        if (d.images.some((img) => img.channels !== 1 || img.data.length !== img.width * img.height)) throw new Invalid('an image is not gray');
      },
    };
  },
};
