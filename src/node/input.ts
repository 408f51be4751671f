// Reading a file the user names: every input file (image, model, .npy, checkpoint, labels.csv)
// goes through readInputFile, which refuses what is not a regular file of sensible size before
// opening it. A FIFO or a device would block the open or never end (/dev/zero), and a huge file
// would be read whole into memory: both are caught by stat, which blocks on nothing.
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { InputError } from '../errors.js';
import { reasonOf } from './output.js';

const MiB = 1024 * 1024;

/** The largest file read of each kind, in bytes. */
export const INPUT_LIMITS = {
  image: 256 * MiB,
  model: 256 * MiB,
  /** labels.csv: a million rows take about 20 MiB. */
  labels: 64 * MiB,
  checkpointIndex: 64 * MiB,
  checkpointData: 256 * MiB,
} as const;

/** What a path is when it is not a regular file, in words. */
function kindOf(stat: Stats): string {
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isDirectory()) return 'a directory';
  if (stat.isSymbolicLink()) return 'a symbolic link';
  return 'not a file';
}

const code = (e: unknown) => (e as NodeJS.ErrnoException).code ?? (e as Error).message;

/**
 * The bytes of the file at `path`, `what` it should be ("an image") naming it in refusals: it
 * must be a regular file (or a symbolic link to one), not empty and at most `maxBytes` long,
 * all checked with stat before the file is opened. It is then opened without blocking, checked
 * again to be the same file, and read for exactly the size stat gave.
 */
export function readInputFile(path: string, what: string, maxBytes: number): Uint8Array {
  let stat: Stats;
  try {
    stat = statSync(path);
  } catch (e) {
    const link = (() => {
      try {
        return lstatSync(path).isSymbolicLink();
      } catch {
        return false;
      }
    })();
    if (link && code(e) === 'ENOENT') throw new InputError(`${path}: is a symbolic link to a missing file, expected ${what}`);
    throw new InputError(`${path}: cannot read ${what} (${reasonOf(e)})`);
  }
  if (stat.isDirectory()) throw new InputError(`${path}: is a directory, expected ${what}`);
  if (!stat.isFile()) {
    let through = '';
    try {
      if (lstatSync(path).isSymbolicLink()) through = ', through a symbolic link';
    } catch {
      // Gone since: the kind stat saw is still the answer.
    }
    throw new InputError(`${path}: is not a regular file (${kindOf(stat)}${through}), expected ${what}`);
  }
  if (stat.size === 0) throw new InputError(`${path}: empty file, expected ${what}`);
  if (stat.size > maxBytes) {
    throw new InputError(`${path}: ${stat.size} bytes is too large for ${what} (the limit is ${limitText(maxBytes)})`);
  }
  let fd: number;
  try {
    // O_NONBLOCK: had the path become a FIFO since stat, the open would otherwise wait for a writer.
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw new InputError(`${path}: cannot read ${what} (${reasonOf(e)})`);
  }
  try {
    const opened = fstatSync(fd);
    if (!opened.isFile() || opened.ino !== stat.ino || opened.dev !== stat.dev) throw changed(path);
    const bytes = new Uint8Array(stat.size);
    let done = 0;
    while (done < bytes.length) {
      const n = readSync(fd, bytes, done, bytes.length - done, null);
      if (n === 0) throw changed(path);
      done += n;
    }
    if (readSync(fd, new Uint8Array(1), 0, 1, null) !== 0) throw changed(path);
    return bytes;
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`${path}: cannot read ${what} (${reasonOf(e)})`);
  } finally {
    closeSync(fd);
  }
}

/** A text file (UTF-8; a byte-order mark is dropped), read as readInputFile reads. */
export function readInputText(path: string, what: string, maxBytes: number): string {
  return new TextDecoder().decode(readInputFile(path, what, maxBytes));
}

/** Whether anything (even a broken symbolic link) is at `path`, without following or opening it. */
export function present(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

const changed = (path: string) => new InputError(`${path}: the file changed while it was being read`);

function limitText(bytes: number): string {
  return bytes >= MiB && bytes % MiB === 0 ? `${bytes / MiB} MiB` : `${bytes} bytes`;
}
