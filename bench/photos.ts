// What the scripts on FairFace photographs share (realfaces.ts, robustness.ts): the built command
// line as a user runs it, and folders of links to chosen photographs with their rows of
// labels.csv. The photographs are another party's data: they are read where they are, and the
// folders of links live in a temporary folder outside the repository.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));

export const progress = (line: string) => process.stderr.write(`${line}\n`);

/** The built command line; its stdout, and its wall time in ms. */
export function mislead(args: string[]): { stdout: string; ms: number } {
  const start = performance.now();
  const r = spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`mislead ${args.join(' ')}: exit ${r.status}: ${r.stderr.trim()}`);
  return { stdout: r.stdout, ms: performance.now() - start };
}

export interface Face {
  file: string;
  label: string;
  age: string;
  /** The row of labels.csv, as it is. */
  line: string;
  boxed: boolean;
}

export const adult = (f: Face) => !['0-2', '3-9', '10-19'].includes(f.age);

/** The photographs of `dir` (its labels.csv: file, label, age, face box), or null when absent. */
export function readFaces(dir: string): { header: string; faces: Face[] } | null {
  if (!existsSync(join(dir, 'labels.csv'))) return null;
  const [header, ...lines] = readFileSync(join(dir, 'labels.csv'), 'utf8').trim().split(/\r?\n/);
  const columns = header.split(',');
  const at = (name: string) => columns.indexOf(name);
  const faces = lines.map((line) => {
    const cells = line.split(',');
    return { file: cells[at('file')], label: cells[at('label')], age: cells[at('age')], line, boxed: cells[at('face_x')] !== '' };
  });
  return { header, faces };
}

/** A folder `work/name` of links to `chosen` (photographs of `facesDir`) and their rows of labels.csv. */
export function linkFolder(work: string, name: string, facesDir: string, header: string, chosen: readonly Face[]): string {
  const dir = join(work, name);
  mkdirSync(dir);
  for (const f of chosen) symlinkSync(join(facesDir, f.file), join(dir, f.file));
  writeFileSync(join(dir, 'labels.csv'), [header, ...chosen.map((f) => f.line)].join('\n') + '\n');
  return dir;
}
