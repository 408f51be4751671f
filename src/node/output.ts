// Writing results so that a failing command leaves nothing half-written: every file goes to a
// temporary name `.NAME.PID.tmp` first, and all are renamed into place together at the end.
// A run holds a lock on its --out folder, so that two runs cannot replace each other's results;
// what a killed run left (its temporary files, its lock) is removed by the next run into that
// folder. Every file system error on an output path becomes an InputError naming the path and
// the reason in words.
import { accessSync, constants, linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { InputError } from '../errors.js';

const REASONS: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a part of the path is not a directory',
  EISDIR: 'is a directory',
  ENOENT: 'no such file or directory',
  EEXIST: 'already exists',
  ENAMETOOLONG: 'name too long',
  ELOOP: 'too many levels of symbolic links',
  EIO: 'input/output error',
  EFBIG: 'file too large',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files',
  EBUSY: 'busy',
  EINVAL: 'invalid name for this file system',
  EMLINK: 'too many entries in the directory',
  ENXIO: 'no such device',
  ENODEV: 'no such device',
  ETXTBSY: 'file busy',
};

/** An error of the file system, in words: "no space left on the device", "read-only file system", … */
export function reasonOf(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code && REASONS[code]) return REASONS[code];
  if (code) return code;
  return e instanceof Error ? e.message.split('\n')[0] : String(e);
}

/** A failed operation on an output path as an InputError: `PREFIX: WHAT: REASON`. An InputError
 *  passes through unchanged, as do errors that are not the file system's. */
export function outputError(prefix: string, what: string, e: unknown): Error {
  if (e instanceof InputError) return e;
  const errno = (e as NodeJS.ErrnoException)?.code;
  if (!(e instanceof Error) || typeof errno !== 'string' || !/^E[A-Z]+$/.test(errno)) return e instanceof Error ? e : new Error(String(e));
  return new InputError(`${prefix}: ${what}: ${reasonOf(e)}`);
}

const code = (e: unknown) => (e as NodeJS.ErrnoException)?.code;

/** Creates `dir` and its missing parents one at a time; returns the folders it created, outermost
 *  first (`named`: say which folder in messages, `prefix` naming another path). Node's
 *  `mkdirSync(…, { recursive: true })` is not used: it loops forever where mkdir answers ENOENT
 *  under an existing folder (/proc), and reports a read-only parent as ENOENT. */
export function makeDirs(dir: string, prefix: string, named = false): string[] {
  const missing: string[] = [];
  for (let p = dir; ; ) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (e) {
      const parent = dirname(p);
      if ((code(e) === 'ENOENT' || code(e) === 'ENOTDIR') && parent !== p) {
        missing.unshift(p);
        p = parent;
        continue;
      }
      throw outputError(prefix, `cannot use ${p}`, e);
    }
    if (!isDir) throw new InputError(`${prefix}: cannot create the folder: ${p} is not a directory`);
    break;
  }
  const created: string[] = [];
  try {
    for (const p of missing) {
      try {
        mkdirSync(p);
      } catch (e) {
        if (code(e) === 'EEXIST' && statSync(p).isDirectory()) continue; // made meanwhile by someone else
        // mkdir answers ENOENT when the file system takes no new folder under an existing one (/proc).
        const what = p === dir && !named ? 'cannot create the folder' : `cannot create the folder ${p}`;
        if (code(e) === 'ENOENT') throw new InputError(`${prefix}: ${what}: ${dirname(p)} does not take new folders`);
        throw outputError(prefix, what, e);
      }
      created.push(p);
    }
  } catch (e) {
    removeDirs(created);
    throw e;
  }
  return created;
}

/** Removes the folders `makeDirs` created, innermost first, as far as they are empty. */
export function removeDirs(created: readonly string[]): void {
  for (const p of [...created].reverse()) {
    try {
      rmdirSync(p);
    } catch {
      return; // not empty (someone else's files): keep it and its parents
    }
  }
}

/** Whether process `pid` is alive (a process of another user counts as alive). */
export function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return code(e) !== 'ESRCH';
  }
}

const TEMP = /^\..+\.(\d+)\.tmp$/;

/** Removes the temporary files and folders `.NAME.PID.tmp` of runs that died in `dir` (those whose
 *  PID is no longer alive; `only` limits the sweep to names starting `.ONLY.`); says so in one line
 *  on stderr unless `quiet`. */
export function sweepLeftovers(dir: string, prefix: string, quiet: boolean, only?: string, staleLock?: number): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw outputError(prefix, `cannot list ${dir}`, e);
  }
  const pids = new Set<number>(staleLock === undefined ? [] : [staleLock]);
  let removed = 0;
  for (const name of names) {
    const m = TEMP.exec(name);
    if (!m || (only !== undefined && !name.startsWith(`.${only}.`))) continue;
    const pid = Number(m[1]);
    if (!Number.isSafeInteger(pid) || pid <= 0 || isAlive(pid)) continue;
    try {
      rmSync(join(dir, name), { recursive: true, force: true });
    } catch (e) {
      throw outputError(prefix, `cannot remove ${join(dir, name)}, left by an interrupted run`, e);
    }
    pids.add(pid);
    removed++;
  }
  if (pids.size > 0 && !quiet) {
    const what = [removed > 0 ? `${removed} temporary ${removed === 1 ? 'file' : 'files'}` : '', staleLock !== undefined ? `the lock ${LOCK_NAME}` : ''].filter(Boolean).join(' and ');
    process.stderr.write(`mislead: removed ${what} left in ${dir} by an interrupted run (pid ${[...pids].join(', ')})\n`);
  }
}

export const LOCK_NAME = '.mislead.lock';

/** Takes the lock of folder `dir` (the file `.mislead.lock` holding this PID), taking over a lock
 *  whose process has died; refuses when a live run holds it. Returns the lock's path, and the PID
 *  of the dead run whose lock it took over. */
function lock(dir: string, prefix: string): { path: string; stale?: number } {
  const path = join(dir, LOCK_NAME);
  let stale: number | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    // Written under a temporary name and linked into place, so that the lock is never seen
    // without its PID; link fails with EEXIST when another run holds it.
    const temp = join(dir, `${LOCK_NAME}.${process.pid}.tmp`);
    try {
      writeFileSync(temp, `${process.pid}\n`);
      try {
        linkSync(temp, path);
        return { path, stale };
      } catch (e) {
        if (code(e) !== 'EEXIST') {
          // A file system without hard links: exclusive creation instead.
          if (code(e) !== 'EPERM' && code(e) !== 'ENOTSUP' && code(e) !== 'EOPNOTSUPP') throw e;
          writeFileSync(path, `${process.pid}\n`, { flag: 'wx' });
          return { path, stale };
        }
      } finally {
        rmSync(temp, { force: true });
      }
    } catch (e) {
      if (code(e) !== 'EEXIST') throw outputError(prefix, `cannot create the lock file ${path}`, e);
    }
    let text = '';
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      if (code(e) === 'ENOENT') continue; // released meanwhile
      throw outputError(prefix, `cannot read the lock file ${path}`, e);
    }
    const pid = Number(text.trim());
    const valid = /^\d+$/.test(text.trim()) && pid > 0;
    if (valid && isAlive(pid)) throw new InputError(`${prefix}: in use by another mislead run (pid ${pid}); if there is none, remove ${path}`);
    if (!valid) {
      // An empty lock is one being written by `wx`, or one whose writer died at once: stale after a while.
      let age = Infinity;
      try {
        age = Date.now() - statSync(path).mtimeMs;
      } catch {
        continue;
      }
      if (age < 10_000) throw new InputError(`${prefix}: in use by another mislead run (${path} is being written)`);
    }
    // A lock left by a run that died: taken over. Moved aside first and read again, so that a
    // lock another run has just put in its place is not the one removed.
    const aside = join(dir, `${LOCK_NAME}.stale.${process.pid}.tmp`);
    try {
      renameSync(path, aside);
    } catch (e) {
      if (code(e) === 'ENOENT') continue;
      throw outputError(prefix, `cannot remove the stale lock file ${path}`, e);
    }
    let moved = '';
    try {
      moved = readFileSync(aside, 'utf8');
    } catch {
      // gone: nothing to compare
    }
    if (moved !== text) {
      try {
        linkSync(aside, path); // someone else's new lock: back in place
      } catch {
        // a third run holds the lock by now
      }
      rmSync(aside, { force: true });
      continue;
    }
    rmSync(aside, { force: true });
    if (valid) stale = pid;
  }
  throw new InputError(`${prefix}: in use by another mislead run (${join(dir, LOCK_NAME)} keeps changing)`);
}

/** The result sets not yet committed or abandoned: removed when the process exits or is stopped. */
const open = new Set<OutputSet>();
let exitHook = false;

/** A set of result files written into `dir` all at once by `commit()`. The constructor checks
 *  `dir`, creates it if needed (and removes it again if the command fails), takes its lock and
 *  removes what a dead run left there. */
export class OutputSet {
  private readonly staged: { temp: string; final: string }[] = [];
  private readonly prefix: string;
  private readonly created: string[] = [];
  private lockPath?: string;

  constructor(readonly dir: string, force: boolean, names: readonly string[], options: { quiet?: boolean } = {}) {
    this.prefix = `--out ${dir}`;
    if (dir === '') throw new InputError('--out: empty path; name a folder for the results');
    try {
      if (!statSync(dir).isDirectory()) throw new InputError(`--out ${dir}: exists and is not a directory`);
    } catch (e) {
      if (code(e) !== 'ENOENT' && code(e) !== 'ENOTDIR') throw outputError(this.prefix, 'cannot use it', e);
    }
    this.created.push(...makeDirs(dir, this.prefix));
    try {
      const { path, stale } = lock(dir, this.prefix);
      this.lockPath = path;
      if (!exitHook) {
        process.on('exit', abandonAll);
        exitHook = true;
      }
      open.add(this);
      sweepLeftovers(dir, this.prefix, Boolean(options.quiet), undefined, stale);
      const clash = names.filter((n) => exists(join(dir, n)));
      if (clash.length > 0 && !force) {
        throw new InputError(`--out ${dir}: already holds ${clash.join(', ')}; pass --force to overwrite, or choose another --out`);
      }
    } catch (e) {
      this.abandon();
      throw e;
    }
  }

  /** Writes `name` under a temporary name; returns that path (to read the file back). */
  write(name: string, data: Uint8Array | string): string {
    const temp = this.stage(name);
    try {
      writeFileSync(temp, data);
    } catch (e) {
      throw outputError(this.prefix, `cannot write ${name}`, e);
    }
    return temp;
  }

  /** Writes `name` into the folder `folder` of the results (staged as a whole, like a file). */
  writeInto(folder: string, name: string, data: Uint8Array): string {
    const temp = this.staged.find((s) => s.final === join(this.dir, folder))?.temp ?? this.stage(folder);
    try {
      if (!exists(temp)) mkdirSync(temp);
      writeFileSync(join(temp, name), data);
    } catch (e) {
      throw outputError(this.prefix, `cannot write ${join(folder, name)}`, e);
    }
    return join(temp, name);
  }

  /** Puts every staged file in place and releases the folder; returns the files' paths. A folder
   *  of the results replaces the earlier one only once the new one is in place. */
  commit(): string[] {
    const written: string[] = [];
    const replaced: { old: string; final: string }[] = [];
    try {
      for (const { temp, final } of this.staged) {
        if (statSync(temp).isDirectory() && exists(final)) {
          const old = join(this.dir, `.${basename(final)}.old.${process.pid}.tmp`);
          renameSync(final, old);
          replaced.push({ old, final });
        }
        renameSync(temp, final);
        written.push(final);
      }
    } catch (e) {
      const err = outputError(this.prefix, 'cannot put the results in place', e);
      for (const { old, final } of replaced) {
        if (exists(final)) rmSync(old, { recursive: true, force: true });
        else {
          try {
            renameSync(old, final); // the earlier folder back where it was
          } catch {
            // left as a temporary name: the next run's sweep removes it
          }
        }
      }
      this.abandon();
      throw err;
    }
    for (const { old } of replaced) rmSync(old, { recursive: true, force: true });
    this.staged.length = 0;
    this.release();
    return written;
  }

  /** Removes the temporary files of a command that failed, the lock, and the folder if this run
   *  created it and nothing else is in it. */
  abandon(): void {
    for (const { temp } of this.staged) rmSync(temp, { recursive: true, force: true });
    this.staged.length = 0;
    this.release();
    removeDirs(this.created);
    this.created.length = 0;
  }

  private release(): void {
    open.delete(this);
    if (this.lockPath === undefined) return;
    try {
      if (readFileSync(this.lockPath, 'utf8').trim() === String(process.pid)) unlinkSync(this.lockPath);
    } catch {
      // already gone
    }
    this.lockPath = undefined;
  }

  private stage(name: string): string {
    const temp = join(this.dir, `.${name}.${process.pid}.tmp`);
    this.staged.push({ temp, final: join(this.dir, name) });
    return temp;
  }
}

/** Whether anything (a file, a folder, a link) is at `path`. */
export function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Abandons every result set still open (the process is ending without having committed them). */
export function abandonAll(): void {
  for (const set of [...open]) {
    try {
      set.abandon();
    } catch {
      // best effort while exiting
    }
  }
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** While a run guards itself (cleanOnSignals), SIGINT, SIGTERM and SIGHUP first remove the open
 *  result sets (temporary files, lock, a folder the run created), then end the process as the
 *  signal would. */
let guards = 0;
let listening = false;

function onSignal(signal: NodeJS.Signals): void {
  abandonAll();
  listen(false);
  process.kill(process.pid, signal);
}

function listen(on: boolean): void {
  if (on === listening) return;
  for (const s of SIGNALS) {
    if (on) process.on(s, onSignal);
    else process.removeListener(s, onSignal);
  }
  listening = on;
}

/** A turn of the event loop: a signal that came meanwhile is handled. */
const turn = () => new Promise((resolve) => setImmediate(resolve));

/** Runs `work` with the signal handlers above. For work that returns to the event loop often (an
 *  attack is stepped in slices for this): a handler cannot run during a synchronous stretch. */
export async function cleanOnSignals<T>(work: () => Promise<T>): Promise<T> {
  guards++;
  listen(true);
  try {
    return await work();
  } finally {
    await turn();
    if (--guards === 0) listen(false);
  }
}

/** Writes one file atomically (a temporary file beside it, renamed into place; always removed on
 *  failure); refuses a directory, and an existing file unless `force`. Creates missing folders
 *  above it, and removes them again on failure. */
export function writeFileAtomic(path: string, data: Uint8Array, force: boolean, options: { quiet?: boolean } = {}): void {
  checkOutputFile(path, force);
  const prefix = `--out ${path}`;
  const created = makeDirs(dirname(path), prefix, true);
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  let done = false;
  try {
    sweepLeftovers(dirname(path), prefix, Boolean(options.quiet), basename(path));
    try {
      writeFileSync(temp, data);
    } catch (e) {
      throw outputError(prefix, 'cannot write', e);
    }
    checkOutputFile(path, force); // still not a directory, nor a file made meanwhile
    try {
      renameSync(temp, path);
    } catch (e) {
      throw outputError(prefix, 'cannot put the file in place', e);
    }
    done = true;
  } finally {
    if (!done) {
      rmSync(temp, { force: true });
      removeDirs(created);
    }
  }
}

/** Refuses an output file path that cannot be written: empty, a directory, an existing file
 *  without `force`, or under a file. Checked before long work (training) as well. */
export function checkOutputFile(path: string, force: boolean): void {
  if (path === '') throw new InputError('--out: empty path; name a file');
  if (path.endsWith('/') || path.endsWith('\\')) throw new InputError(`--out ${path}: names a directory; name a file`);
  let stat;
  try {
    stat = statSync(path);
  } catch (e) {
    if (code(e) === 'ENOENT') return;
    if (code(e) === 'ENOTDIR') {
      for (let p = dirname(path); p !== dirname(p); p = dirname(p)) {
        if (exists(p) && !statSync(p).isDirectory()) throw new InputError(`--out ${path}: cannot create the file: ${p} is not a directory`);
      }
    }
    throw outputError(`--out ${path}`, 'cannot use it', e);
  }
  if (stat.isDirectory()) throw new InputError(`--out ${path}: is a directory; name a file`);
  if (!force) throw new InputError(`${path}: already exists; pass --force to overwrite`);
}

/** checkOutputFile, and the nearest existing folder above `path` is writable (not read-only). */
export function checkOutputFileWritable(path: string, force: boolean): void {
  checkOutputFile(path, force);
  let p = dirname(path);
  while (!exists(p) && dirname(p) !== p) p = dirname(p);
  try {
    accessSync(p, constants.W_OK);
  } catch (e) {
    throw outputError(`--out ${path}`, p === dirname(path) ? 'cannot write there' : `cannot create folders in ${p}`, e);
  }
}
