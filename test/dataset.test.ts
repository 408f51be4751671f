// The synthetic face dataset: deterministic per (seed, index), balanced, 48×48 gray, written and
// read back, refusing to overwrite, and with classes that actually differ.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { faceSvg, generateFace, generateFaces, LABELS, type Face } from '../src/train/dataset.js';
import { readDataset, writeDataset } from '../src/node/dataset.js';
import { InputError } from '../src/errors.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'mislead-faces-'));

function expectInputError(f: () => unknown, pattern: RegExp): void {
  let error: unknown;
  try {
    f();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(InputError);
  expect((error as Error).message).toMatch(pattern);
  expect((error as Error).message).not.toContain('\n');
}

describe('generateFace', () => {
  it('gives 48×48 one-channel 8-bit images', () => {
    const { label, image } = generateFace(1, 0);
    expect([0, 1]).toContain(label);
    expect(image.width).toBe(48);
    expect(image.height).toBe(48);
    expect(image.channels).toBe(1);
    expect(image.data).toBeInstanceOf(Uint8Array);
    expect(image.data.length).toBe(48 * 48);
    // A face on a background, not a flat picture.
    expect(Math.max(...image.data) - Math.min(...image.data)).toBeGreaterThan(60);
  });

  it('is deterministic per (seed, index), whatever the count, and restores Math.random', () => {
    const random = Math.random;
    const a = generateFace(42, 5);
    expect(Math.random).toBe(random);
    const b = generateFace(42, 5);
    expect(b.label).toBe(a.label);
    expect(Buffer.from(b.image.data).equals(Buffer.from(a.image.data))).toBe(true);
    const many = generateFaces(6, 42);
    expect(Buffer.from(many[5].image.data).equals(Buffer.from(a.image.data))).toBe(true);
    expect(faceSvg(42, 5).svg).toBe(faceSvg(42, 5).svg);
    // Faces in a batch, and the same index under other seeds, all differ.
    const other = generateFaces(6, 43);
    for (let i = 0; i < 6; i++) {
      expect(Buffer.from(other[i].image.data).equals(Buffer.from(many[i].image.data))).toBe(false);
      if (i > 0) expect(Buffer.from(many[i].image.data).equals(Buffer.from(many[i - 1].image.data))).toBe(false);
    }
  });

  it('balances the classes: one man and one woman in each pair, in a seeded order', () => {
    const labels = Array.from({ length: 400 }, (_, i) => faceSvg(7, i).label);
    for (let k = 0; k < 200; k++) expect(labels[2 * k] + labels[2 * k + 1]).toBe(1);
    const firstWoman = labels.filter((_, i) => i % 2 === 0).reduce((n: number, l) => n + l, 0);
    expect(firstWoman).toBeGreaterThan(60); // not simply alternating
    expect(firstWoman).toBeLessThan(140);
    const progress: number[] = [];
    const faces = generateFaces(10, 7, (done) => progress.push(done));
    expect(faces.map((f) => f.label)).toEqual(labels.slice(0, 10));
    expect(progress).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('refuses bad seeds and counts', () => {
    expectInputError(() => generateFace(-1, 0), /seed/);
    expectInputError(() => generateFace(1.5, 0), /seed/);
    expectInputError(() => generateFace(1, -1), /index/);
    expectInputError(() => generateFaces(2.5, 1), /count/);
  });

  it('draws men and women whose mean pictures differ, the same way in two independent halves', () => {
    const faces = generateFaces(400, 1);
    const men = faces.filter((f) => f.label === 0), women = faces.filter((f) => f.label === 1);
    expect(men.length).toBe(200);
    expect(women.length).toBe(200);
    const mean = (fs: Face[]) => {
      const m = new Float64Array(48 * 48);
      for (const f of fs) for (let p = 0; p < m.length; p++) m[p] += f.image.data[p] / fs.length;
      return m;
    };
    const minus = (a: Float64Array, b: Float64Array) => a.map((v, p) => v - b[p]);
    const correlation = (a: Float64Array, b: Float64Array) => {
      const ma = a.reduce((s, v) => s + v) / a.length, mb = b.reduce((s, v) => s + v) / b.length;
      let ab = 0, aa = 0, bb = 0;
      for (let p = 0; p < a.length; p++) {
        ab += (a[p] - ma) * (b[p] - mb);
        aa += (a[p] - ma) ** 2;
        bb += (b[p] - mb) ** 2;
      }
      return ab / Math.sqrt(aa * bb);
    };
    // Mean man minus mean woman: large somewhere (hair, beards), and reproduced by a second sample.
    const d = minus(mean(men), mean(women));
    expect(Math.max(...d.map(Math.abs))).toBeGreaterThan(15);
    const [m1, m2, w1, w2] = [men.slice(0, 100), men.slice(100), women.slice(0, 100), women.slice(100)].map(mean);
    expect(correlation(minus(m1, w1), minus(m2, w2))).toBeGreaterThan(0.6);
    // Whereas the difference between two samples of one class is noise, unrelated between classes.
    expect(Math.abs(correlation(minus(m1, m2), minus(w1, w2)))).toBeLessThan(0.3);
  });
});

describe('writeDataset / readDataset', () => {
  it('writes gray PNGs and labels.csv, and reads them back', () => {
    const dir = join(tmp(), 'faces');
    const progress: number[] = [];
    writeDataset(dir, 6, 99, (done) => progress.push(done));
    expect(progress).toEqual([1, 2, 3, 4, 5, 6]);
    const faces = generateFaces(6, 99);
    const files = ['00000.png', '00001.png', '00002.png', '00003.png', '00004.png', '00005.png'];
    expect(readdirSync(dir).sort()).toEqual([...files, 'labels.csv']);
    expect(readFileSync(join(dir, 'labels.csv'), 'utf8')).toBe(
      ['file,label', ...files.map((f, i) => `${f},${LABELS[faces[i].label]}`)].join('\n') + '\n',
    );
    // 8-bit gray PNG (colour type 0)
    const png = readFileSync(join(dir, files[0]));
    expect(png.readUInt32BE(16)).toBe(48);
    expect(png.readUInt32BE(20)).toBe(48);
    expect(png[24]).toBe(8);
    expect(png[25]).toBe(0);

    const read = readDataset(dir);
    expect(read.files).toEqual(files);
    expect(read.labels).toEqual(faces.map((f) => f.label));
    read.images.forEach((img, i) => {
      expect(img.channels).toBe(1);
      expect(img.width).toBe(48);
      expect(Buffer.from(img.data).equals(Buffer.from(faces[i].image.data))).toBe(true);
    });
    rmSync(dir, { recursive: true });
  });

  it('refuses a directory that already holds a dataset, and leaves no labels.csv after a failed run', () => {
    const dir = tmp();
    expect(() =>
      writeDataset(dir, 6, 1, (done) => {
        if (done === 3) throw new Error('interrupted');
      }),
    ).toThrow('interrupted');
    expect(existsSync(join(dir, 'labels.csv'))).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes('labels'))).toEqual([]);
    expectInputError(() => readDataset(dir), /labels\.csv/);
    writeDataset(dir, 2, 1); // an unfinished directory can be written again
    expect(readDataset(dir).files).toEqual(['00000.png', '00001.png']);
    expectInputError(() => writeDataset(dir, 2, 1), /already holds a dataset/);
    rmSync(dir, { recursive: true });
  });

  it('makes the dataset beside DIR and renames it into place: never half a dataset in DIR, no stray images after --force', () => {
    const parent = tmp(), dir = join(parent, 'faces');
    expect(() => writeDataset(dir, 6, 1, (done) => {
      if (done === 3) {
        expect(existsSync(dir)).toBe(false); // under way: only the temporary folder beside it
        expect(readdirSync(parent)).toEqual([`.faces.${process.pid}.tmp`]);
        throw new Error('interrupted');
      }
    })).toThrow('interrupted');
    expect(readdirSync(parent)).toEqual([]);
    writeDataset(dir, 5, 1);
    writeDataset(dir, 3, 2, undefined, { force: true }); // replaced as a whole
    expect(readdirSync(dir).sort()).toEqual(['00000.png', '00001.png', '00002.png', 'labels.csv']);
    expect(readdirSync(parent)).toEqual(['faces']);
    const other = join(parent, 'mine');
    mkdirSync(other);
    writeFileSync(join(other, 'notes.txt'), 'keep');
    expectInputError(() => writeDataset(other, 2, 1), /not empty and not a dataset made by mislead dataset.*--force/);
    expect(readdirSync(other)).toEqual(['notes.txt']);
    writeDataset(other, 2, 1, undefined, { force: true });
    expect(readdirSync(other).sort()).toEqual(['00000.png', '00001.png', 'labels.csv', 'notes.txt']);
    expect(readDataset(other).files).toEqual(['00000.png', '00001.png']);
    rmSync(parent, { recursive: true });
  });

  it('refuses malformed labels, unknown labels and missing images', () => {
    const dir = tmp();
    writeDataset(dir, 2, 5);
    const labels = join(dir, 'labels.csv');
    const good = readFileSync(labels, 'utf8');
    writeFileSync(labels, 'name,gender\n00000.png,man\n');
    expectInputError(() => readDataset(dir), /first line/);
    writeFileSync(labels, 'file,label\n00000.png\n');
    expectInputError(() => readDataset(dir), /labels\.csv:2/);
    writeFileSync(labels, 'file,label\n00000.png,child\n');
    expectInputError(() => readDataset(dir), /unknown label "child"/);
    writeFileSync(labels, 'file,label\n../00000.png,man\n');
    expectInputError(() => readDataset(dir), /file name/);
    writeFileSync(labels, good);
    unlinkSync(join(dir, '00001.png'));
    expectInputError(() => readDataset(dir), /00001\.png.*no such file or directory/);
    writeFileSync(join(dir, '00001.png'), 'not a picture');
    expectInputError(() => readDataset(dir), /00001\.png/);
    rmSync(dir, { recursive: true });
  });
});
