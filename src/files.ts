// Loading the user's model and images, and writing results so that a failing command
// leaves nothing half-written: every file goes to a temporary name first, and all are renamed
// into place together at the end.
import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from './errors.js';
import { INPUT_LIMITS, readInputFile } from './input.js';
import { readModel, type Architecture, type Model } from './model.js';
import { fileToInput } from './preprocess.js';

/** The model shipped with the package, and the sample face `tutorial` runs on by default. */
export const DEFAULT_MODEL = fileURLToPath(new URL('../weights/default.safetensors', import.meta.url));
export const SAMPLE_FACE = fileURLToPath(new URL('../weights/samples/woman.png', import.meta.url));

export function loadModel(path: string | undefined): { model: Model; path: string } {
  const file = path ?? DEFAULT_MODEL;
  return { model: readModel(readInputFile(file, 'a model file', INPUT_LIMITS.model), file), path: file };
}

/** A set of result files written into `dir` all at once by `commit()`; `dir` is made only
 *  when the first file is written. */
export class OutputSet {
  private readonly staged: { temp: string; final: string }[] = [];

  constructor(readonly dir: string, force: boolean, names: readonly string[]) {
    if (existsSync(dir) && !statSync(dir).isDirectory()) throw new InputError(`--out ${dir}: exists and is not a directory`);
    const clash = names.filter((n) => existsSync(join(dir, n)));
    if (clash.length > 0 && !force) {
      throw new InputError(`--out ${dir}: already holds ${clash.join(', ')}; pass --force to overwrite, or choose another --out`);
    }
  }

  /** Writes `name` under a temporary name; returns that path (to read the file back). */
  write(name: string, data: Uint8Array | string): string {
    mkdirSync(this.dir, { recursive: true });
    const temp = this.stage(name);
    writeFileSync(temp, data);
    return temp;
  }

  /** Writes `name` into the folder `folder` of the results (staged as a whole, like a file). */
  writeInto(folder: string, name: string, data: Uint8Array): string {
    const temp = this.staged.find((s) => s.final === join(this.dir, folder))?.temp ?? this.stage(folder);
    mkdirSync(temp, { recursive: true });
    writeFileSync(join(temp, name), data);
    return join(temp, name);
  }

  /** Puts every staged file in place; returns their paths. */
  commit(): string[] {
    const written = this.staged.map(({ temp, final }) => {
      if (statSync(temp).isDirectory()) rmSync(final, { recursive: true, force: true });
      renameSync(temp, final);
      return final;
    });
    this.staged.length = 0;
    return written;
  }

  /** Removes the temporary files of a command that failed. */
  abandon(): void {
    for (const { temp } of this.staged) rmSync(temp, { recursive: true, force: true });
    this.staged.length = 0;
  }

  private stage(name: string): string {
    mkdirSync(this.dir, { recursive: true });
    const temp = join(this.dir, `.${name}.${process.pid}.tmp`);
    this.staged.push({ temp, final: join(this.dir, name) });
    return temp;
  }
}

/** Writes one file atomically; refuses to replace an existing one unless `force`. */
export function writeFileAtomic(path: string, data: Uint8Array, force: boolean): void {
  if (existsSync(path) && !force) throw new InputError(`${path}: already exists; pass --force to overwrite`);
  mkdirSync(dirname(path), { recursive: true });
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  writeFileSync(temp, data);
  renameSync(temp, path);
}

export type Crop = readonly [x: number, y: number, width: number, height: number];

/** An image file as model input, cropped first when asked (read in bounded memory: fileToInput). */
export function readModelInput(path: string, architecture: Architecture, region?: Crop): Float32Array {
  return fileToInput(readInputFile(path, 'an image', INPUT_LIMITS.image), path, architecture, region);
}
