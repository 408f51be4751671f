// Hostile places to write results into: an empty --out, a path under a file, /proc, a read-only
// file system, a full disk, a directory where a file is expected, what a killed run left, and a
// second run into the same --out. Each ends in exit code 2 and one line "mislead: …" naming the
// path and the reason, quickly, and leaves nothing partial behind.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const cli = join(root, 'dist/cli/main.js');
const face = join(root, 'weights/samples/woman.png');
const samples = join(root, 'weights/samples');
const checkpoint = resolve(root, '../shared/tutorial/saved_model-1');
const hasCheckpoint = existsSync(`${checkpoint}.index`);
if (!hasCheckpoint) console.log(`skipping import-tf cases: ${checkpoint}.index is absent`);
const dir = mkdtempSync(join(tmpdir(), 'mislead-out-'));

function mislead(args: string[], cwd = dir) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectRefused(args: string[], message: RegExp) {
  const run = mislead(args);
  expect(run.code, `${args.join(' ')}\n${run.stderr}`).toBe(2);
  expect(run.stderr).toMatch(/^mislead: [^\n]+\n$/);
  expect(run.stderr).toMatch(message);
  expect(run.stderr).not.toMatch(/\bat .*\.js:\d+/);
  return run;
}

// A labelled folder for eval, made once.
const dataset = join(dir, 'dataset');
beforeAll(() => {
  expect(mislead(['dataset', '--out', dataset, '--count', '4']).code).toBe(0);
});

/** Every command that writes, with its results going to `out`. */
function writers(out: string): [string, string[]][] {
  return [
    ['attack', ['attack', face, '--iters', '3', '--out', out, '--quiet']],
    ['attack on a folder', ['attack', samples, '--method', 'fgsm', '--workers', '1', '--out', out, '--quiet']],
    ['tutorial', ['tutorial', '--out', out, '--quiet']],
    ['eval --attack', ['eval', dataset, '--attack', 'fgsm', '--eps', '0,2', '--workers', '1', '--out', out]],
    ['dataset', ['dataset', '--out', out, '--count', '3']],
    ['train', ['train', '--out', out, '--train', '8', '--test', '0', '--epochs', '1', '--batch', '4', '--workers', '1']],
    ...(hasCheckpoint ? [['import-tf', ['import-tf', checkpoint, '--out', out]] as [string, string[]]] : []),
  ];
}

describe('an impossible --out', () => {
  const file = join(dir, 'a-file');
  writeFileSync(file, 'precious');

  for (const [what, args] of writers('')) it(`${what} --out ""`, () => expectRefused(args, /^mislead: --out: empty path; name a (folder|file)/));

  for (const [what, args] of writers(join(file, 'x'))) {
    it(`${what} --out under a regular file`, () => {
      expectRefused(args, new RegExp(`--out ${file}/x: cannot create the (folder|file): ${file} is not a directory`));
      expect(readFileSync(file, 'utf8')).toBe('precious');
    });
  }

  // mkdir in /proc answers ENOENT though /proc exists: Node's recursive mkdir loops there forever.
  for (const [what, args] of writers('/proc/mislead-x/y')) {
    it(`${what} --out under /proc ends at once`, () => {
      const began = Date.now();
      expectRefused(args, /--out \/proc\/mislead-x\/y: cannot create the folder( \/proc\/mislead-x)?: \/proc does not take new folders/);
      expect(Date.now() - began).toBeLessThan(30_000);
    });
  }
});

/** A tmpfs mounted at a new folder (root only): undefined, with the reason printed, where not permitted. */
function mountTmpfs(options: string): string | undefined {
  const at = mkdtempSync(join(tmpdir(), 'mislead-mnt-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', at], { encoding: 'utf8' });
  if (r.status === 0) return at;
  console.log(`skipping: cannot mount a tmpfs (${(r.stderr || String(r.error)).trim()})`);
  rmSync(at, { recursive: true, force: true });
  return undefined;
}

function unmount(at: string | undefined): void {
  if (at === undefined) return;
  spawnSync('umount', [at]);
  rmSync(at, { recursive: true, force: true });
}

const readOnly = mountTmpfs('ro,size=16k');
const small = mountTmpfs('size=64k');
afterAll(() => {
  unmount(readOnly);
  unmount(small);
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!readOnly)('a read-only file system', () => {
  for (const [what, args] of writers(join(readOnly ?? '', 'out'))) {
    it(`${what} says so, not "no such file"`, () => expectRefused(args, new RegExp(`--out ${readOnly}/out: cannot (create the folder|write|write there): read-only file system`)));
  }
  it('attack into the read-only folder itself', () => {
    expectRefused(['attack', face, '--iters', '3', '--out', readOnly!], /--out .*: cannot create the lock file .*\.mislead\.lock: read-only file system/);
  });
});

describe.skipIf(!small)('a full disk', () => {
  // The file system nearly full: a few KB left, less than any command's results.
  beforeAll(() => {
    writeFileSync(join(small!, 'filler'), new Uint8Array(56 * 1024));
  });

  for (const [what, args] of writers(join(small ?? '', 'made/out'))) {
    it(`${what} fails naming the path, and leaves nothing (not even the folders it made)`, () => {
      expectRefused(args, new RegExp(`--out ${small}/made/out: .*no space left on the device`));
      expect(readdirSync(small!)).toEqual(['filler']);
    });
  }

  it('a dataset into an existing folder leaves no PNG behind, and no labels.csv', () => {
    const out = join(small!, 'faces');
    mkdirSync(out);
    writeFileSync(join(out, 'mine.txt'), 'keep');
    expectRefused(['dataset', '--out', out, '--count', '20'], /is not empty and not a dataset made by mislead dataset/);
    expectRefused(['dataset', '--out', out, '--count', '20', '--force'], /no space left on the device/);
    expect(readdirSync(out)).toEqual(['mine.txt']);
    expect(readdirSync(small!).sort()).toEqual(['faces', 'filler']); // nor the temporary folder beside it
    rmSync(out, { recursive: true });
  });
});

describe('a directory where import-tf and train write a file', () => {
  const target = join(dir, 'a-dir');
  mkdirSync(target);

  it.skipIf(!hasCheckpoint)('import-tf --out DIR --force is refused, with no temporary file left beside it', () => {
    expectRefused(['import-tf', checkpoint, '--out', target, '--force'], /--out .*a-dir: is a directory; name a file/);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(readdirSync(target)).toEqual([]);
  });

  it('train --out DIR --force is refused before training', () => {
    const run = expectRefused(['train', '--out', target, '--force', '--train', '8', '--test', '0'], /--out .*a-dir: is a directory; name a file/);
    expect(run.stdout).toBe('');
  });
});

/** The PID of a process that has ended. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '0']);
  return r.pid!;
}

describe('what a killed run left', () => {
  it('is removed by the next run into that --out, which says so on stderr; a live run\'s files are left alone', () => {
    const out = join(dir, 'leftovers');
    mkdirSync(out);
    const dead = deadPid();
    writeFileSync(join(out, `.report.json.${dead}.tmp`), '{');
    mkdirSync(join(out, `.adversarial.${dead}.tmp`));
    writeFileSync(join(out, `.adversarial.${dead}.tmp`, '0000-a.png'), 'x');
    writeFileSync(join(out, '.mislead.lock'), `${dead}\n`);
    const live = join(out, `.figure.png.${process.pid}.tmp`); // this test's own process: alive
    writeFileSync(live, 'x');
    const run = mislead(['attack', face, '--iters', '3', '--out', out, '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).method).toBe('filter'); // stdout stays one JSON document
    expect(run.stderr).toBe(`mislead: removed 2 temporary files and the lock .mislead.lock left in ${out} by an interrupted run (pid ${dead})\n`);
    expect(readdirSync(out).sort()).toEqual([`.figure.png.${process.pid}.tmp`, 'adversarial.png', 'figure.png', 'filter.png', 'loss.svg', 'perturbation.npy', 'report.json']);
  });

  it('is removed quietly with --quiet', () => {
    const out = join(dir, 'leftovers-quiet');
    mkdirSync(out);
    const dead = deadPid();
    writeFileSync(join(out, `.adversarial.png.${dead}.tmp`), 'x');
    const run = mislead(['attack', face, '--iters', '3', '--out', out, '--quiet']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toBe('');
    expect(readdirSync(out).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('by dataset and train is removed too', () => {
    const faces = join(dir, 'leftover-faces');
    mkdirSync(faces);
    const dead = deadPid();
    writeFileSync(join(faces, `.00000.png.${dead}.tmp`), 'x');
    const run = mislead(['dataset', '--out', faces, '--count', '2']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(new RegExp(`removed 1 temporary file left in .* \\(pid ${dead}\\)`));
    expect(readdirSync(faces).sort()).toEqual(['00000.png', '00001.png', 'labels.csv']);

    const models = join(dir, 'leftover-models');
    mkdirSync(models);
    writeFileSync(join(models, `.m.safetensors.${dead}.tmp`), 'x');
    writeFileSync(join(models, `.other.safetensors.${dead}.tmp`), 'x'); // not this file's: left alone
    const trained = mislead(['train', '--out', join(models, 'm.safetensors'), '--train', '8', '--test', '0', '--epochs', '1', '--batch', '4', '--workers', '1']);
    expect(trained.code, trained.stderr).toBe(0);
    expect(trained.stderr).toMatch(/removed 1 temporary file/);
    expect(readdirSync(models).sort()).toEqual([`.other.safetensors.${dead}.tmp`, 'm.safetensors']);
  });
});

describe('two runs into one --out', () => {
  /** Starts a long attack into `out` and waits until it holds the lock. */
  async function longRun(out: string) {
    const child = spawn(process.execPath, [cli, 'attack', face, '--iters', '200000', '--out', out, '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | string | null>((done) => child.on('exit', (code, signal) => done(code ?? signal)));
    const lock = join(out, '.mislead.lock');
    for (let t = 0; !existsSync(lock) || readFileSync(lock, 'utf8') === ''; t++) {
      if (t > 300 || child.exitCode !== null) throw new Error(`the long run did not take the lock: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(readFileSync(lock, 'utf8').trim()).toBe(String(child.pid));
    return { child, exited, lock, stderr: () => stderr };
  }

  it('the second is refused while the first runs; a killed first run\'s lock is taken over by the next', async () => {
    const out = join(dir, 'busy');
    const first = await longRun(out);
    try {
      expectRefused(['attack', face, '--iters', '3', '--out', out], new RegExp(`--out ${out}: in use by another mislead run \\(pid ${first.child.pid}\\)`));
      expectRefused(['tutorial', '--out', out, '--force'], /in use by another mislead run/);
      expect(existsSync(first.lock)).toBe(true); // the refused runs took nothing away
    } finally {
      first.child.kill('SIGKILL');
    }
    expect(await first.exited).toBe('SIGKILL');
    expect(readFileSync(first.lock, 'utf8').trim()).toBe(String(first.child.pid)); // nobody left to remove it
    const next = mislead(['attack', face, '--iters', '3', '--out', out]);
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).toBe(`mislead: removed the lock .mislead.lock left in ${out} by an interrupted run (pid ${first.child.pid})\n`);
    expect(readdirSync(out).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('of three runs started at once on a dead run\'s lock, one takes it over and two are refused', async () => {
    const out = join(dir, 'race');
    mkdirSync(out);
    writeFileSync(join(out, '.mislead.lock'), `${deadPid()}\n`);
    const runs = [0, 1, 2].map(() => {
      const child = spawn(process.execPath, [cli, 'attack', face, '--iters', '200000', '--out', out, '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<number | string | null>((done) => child.on('exit', (code, signal) => done(code ?? signal)));
      return { child, exited, stderr: () => stderr };
    });
    try {
      for (let t = 0; runs.filter((r) => r.child.exitCode === null).length > 1; t++) {
        if (t > 600) throw new Error('two runs still going');
        await new Promise((r) => setTimeout(r, 50));
      }
      const [holder] = runs.filter((r) => r.child.exitCode === null);
      await new Promise((r) => setTimeout(r, 300));
      expect(holder.child.exitCode).toBe(null);
      expect(readFileSync(join(out, '.mislead.lock'), 'utf8').trim()).toBe(String(holder.child.pid));
      for (const r of runs.filter((r) => r !== holder)) {
        expect(await r.exited).toBe(2);
        expect(r.stderr()).toMatch(/^(mislead: removed the lock[^\n]*\n)?mislead: --out [^\n]*: in use by another mislead run \(pid \d+\)[^\n]*\n$/);
      }
    } finally {
      for (const r of runs) r.child.kill('SIGTERM');
    }
    await Promise.all(runs.map((r) => r.exited));
    expect(readdirSync(out)).toEqual([]);
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} stops a run at once, removing its lock and the folder it made`, async () => {
      const out = join(dir, `stopped-${signal}`, 'out');
      const run = await longRun(out);
      const began = Date.now();
      run.child.kill(signal);
      expect(await run.exited).toBe(signal);
      expect(Date.now() - began).toBeLessThan(5_000);
      expect(existsSync(join(dir, `stopped-${signal}`))).toBe(false);
    });
  }

  it('a refused run into an existing folder (no --force) leaves the folder as it was', () => {
    const out = join(dir, 'done');
    expect(mislead(['attack', face, '--iters', '3', '--out', out]).code).toBe(0);
    const before = readdirSync(out).sort();
    expectRefused(['attack', face, '--iters', '3', '--out', out], /already holds adversarial\.png/);
    expect(readdirSync(out).sort()).toEqual(before);
  });
});
