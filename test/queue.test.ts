// attack DIR --queue against a real Redis: Debian's redis-server (test/setup-debian.sh installs it
// when missing; the tests are skipped, saying why, when it cannot), started for this file on a free
// loopback port with its files in a temporary folder, and stopped afterwards. Every worker and
// submitter is a real `mislead` process; the results are compared with a local run's, byte for byte.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withoutTimes } from './helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(root, 'dist/cli/main.js');

function ensureRedis(): string | undefined {
  const r = spawnSync('sh', [join(root, 'test/setup-debian.sh'), 'command -v redis-server && command -v redis-cli', 'redis-server'], { encoding: 'utf8', timeout: 15 * 60_000 });
  return r.status === 0 ? undefined : (r.stderr || r.error?.message || `setup-debian.sh exited with ${r.status}`).trim();
}
const missing = ensureRedis();
if (missing) console.warn(`test/queue.test.ts skipped: ${missing}`);

const dir = mkdtempSync(join(tmpdir(), 'mislead-queue-'));
let port = 0;
let redis: ChildProcess | undefined;
const url = () => `redis://127.0.0.1:${port}`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
const redisCli = (...args: string[]) => spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8' }).stdout.trim();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
  for (const start = Date.now(); !ok(); await sleep(50)) if (Date.now() - start > ms) throw new Error(`timed out waiting until ${what}`);
}

/** Starts Redis (again) on `port`, its append-only file in `dir`: a restart keeps the queue. */
async function startRedis(): Promise<void> {
  redis = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--appendonly', 'yes', '--save', '', '--protected-mode', 'yes'], { stdio: 'ignore' });
  await until('redis answers', () => redisCli('ping') === 'PONG', 10_000);
}

async function stopRedis(): Promise<void> {
  const r = redis!;
  const exited = new Promise((resolve) => r.once('exit', resolve));
  r.kill('SIGTERM'); // Redis's own shutdown: the append-only file is flushed
  await exited;
}

const workers: ChildProcess[] = [];
function startWorker(lockSeconds = 2): ChildProcess {
  const w = spawn(process.execPath, [CLI, 'worker', '--queue', url(), '--workers', '1', '--lock', String(lockSeconds), '--quiet'], { cwd: dir, stdio: 'ignore' });
  workers.push(w);
  return w;
}
async function stopWorkers(): Promise<void> {
  await Promise.all(workers.splice(0).map((w) => {
    if (w.exitCode !== null || w.signalCode !== null) return;
    const exited = new Promise((resolve) => w.once('exit', resolve));
    w.kill('SIGKILL');
    return exited;
  }));
}

/** Runs `mislead ARGS` to its end without blocking the event loop. */
function submit(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const p = spawn(process.execPath, [CLI, ...args], { cwd: dir });
  let stdout = '', stderr = '';
  p.stdout.on('data', (d) => (stdout += d));
  p.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => p.on('exit', (status) => resolve({ status, stdout, stderr })));
}

/** The outputs of a batch, with the wall times taken out: what must be the same however it ran. */
function outputs(out: string) {
  const at = join(dir, out);
  const pngs = readdirSync(join(at, 'adversarial')).sort();
  const summary = JSON.parse(readFileSync(join(at, 'summary.json'), 'utf8'));
  delete summary.ms;
  delete summary.summary.ms;
  for (const r of summary.results) delete r.ms;
  const csv = readFileSync(join(at, 'summary.csv'), 'utf8').split('\n').map((line) => line.split(',').slice(0, -1).join(','));
  return { pngs: Object.fromEntries(pngs.map((f) => [f, readFileSync(join(at, 'adversarial', f)).toString('base64')])), contact: readFileSync(join(at, 'contact.png')).toString('base64'), summary, csv };
}

describe.skipIf(missing !== undefined)('attack DIR --queue', () => {
  beforeAll(async () => {
    port = await freePort();
    await startRedis();
    expect(cli('dataset', '--out', 'faces', '--count', '24').status).toBe(0);
    // A smaller folder for the faults, whose jobs last long enough to be caught under way.
    expect(cli('dataset', '--out', 'few', '--count', '8', '--seed', '5').status).toBe(0);
  });
  afterAll(async () => {
    await stopWorkers();
    if (redis && redis.exitCode === null) await stopRedis();
    rmSync(dir, { recursive: true, force: true });
  });

  const PGD = ['--method', 'pgd', '--seed', '3', '--quiet'];
  const steps = (iters: number) => ['--method', 'pgd', '--seed', '7', '--iters', String(iters), '--no-early-stop', '--quiet'];
  const SLOW = steps(300);
  // Jobs of about a second each (two images), so that one is still under way when it is stopped.
  const LONG = steps(4000);

  it('gives byte-identical PNGs and the same summary with 1, 2 and 3 worker processes as a local run', async () => {
    const local = cli('attack', 'faces', ...PGD, '--out', 'local', '--workers', '2');
    expect(local.stderr).toBe('');
    const expected = outputs('local');
    for (const n of [1, 2, 3]) {
      for (let i = 0; i < n; i++) startWorker();
      const r = await submit('attack', 'faces', ...PGD, '--out', `queued${n}`, '--queue', url(), '--per-job', '3');
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(outputs(`queued${n}`)).toEqual(expected);
      await stopWorkers();
    }
    // The run's jobs are removed once its outputs are written.
    expect(redisCli('zcard', 'bull:mislead:completed')).toBe('0');
  });

  it('eval DIR --attack --queue writes the same robustness.json (but for wall times) and charts as a local run', async () => {
    const args = ['eval', 'faces', '--attack', 'pgd', '--eps', '0,2,8', '--json'];
    expect(cli(...args, '--out', 'eval-local').status).toBe(0);
    startWorker();
    const r = await submit(...args, '--out', 'eval-queued', '--queue', url());
    await stopWorkers();
    expect(r.status).toBe(0);
    for (const f of ['robustness.svg', 'robustness.png']) expect(readFileSync(join(dir, 'eval-queued', f))).toEqual(readFileSync(join(dir, 'eval-local', f)));
    // The same numbers but the wall times.
    const report = (out: string) => withoutTimes(readFileSync(join(dir, out, 'robustness.json'), 'utf8'));
    expect(report('eval-queued')).toEqual(report('eval-local'));
    expect(report('eval-local').points[2].attacked).toBeGreaterThan(0);
  });

  it('takes up again the job of a worker killed in the middle of it, and the results are complete', async () => {
    expect(cli('attack', 'few', ...SLOW, '--out', 'few-local').status).toBe(0);
    const first = startWorker();
    const run = submit('attack', 'few', ...SLOW, '--out', 'few-killed', '--queue', url(), '--per-job', '2');
    await until('a job is under way', () => Number(redisCli('llen', 'bull:mislead:active')) > 0);
    first.kill('SIGKILL');
    startWorker();
    const r = await run;
    expect(r.stderr).toBe('');
    expect(outputs('few-killed')).toEqual(outputs('few-local'));
    await stopWorkers();
  });

  it('hands its jobs back to the queue at once when a worker is stopped by a second Ctrl-C', async () => {
    expect(cli('attack', 'few', ...LONG, '--out', 'few-long').status).toBe(0);
    const first = startWorker(60);
    const run = submit('attack', 'few', ...LONG, '--out', 'few-stopped', '--queue', url(), '--per-job', '2');
    await until('a job is under way', () => Number(redisCli('llen', 'bull:mislead:active')) > 0);
    const exited = new Promise((resolve) => first.once('exit', resolve));
    first.kill('SIGINT');
    await sleep(200);
    first.kill('SIGINT');
    expect(await exited).toBe(130);
    // Not held until its 60 s lock expires: waiting already, for the next worker.
    expect(redisCli('llen', 'bull:mislead:active')).toBe('0');
    startWorker();
    const r = await run;
    expect(r.stderr).toBe('');
    expect(outputs('few-stopped')).toEqual(outputs('few-long'));
    await stopWorkers();
  });

  it('fails the job of a worker thread that dies, replaces the thread and goes on', async () => {
    // A job no submitter would make: a method the thread does not know throws there, uncaught.
    const store = (key: string, bytes: Buffer) => spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), '-x', 'set', key], { input: bytes });
    store('mislead:blob:crash-model', readFileSync(join(root, 'weights/default.safetensors')));
    store('mislead:blob:crash-image', readFileSync(join(dir, 'few', '00000.png')));
    const queue = new Queue('mislead', { connection: { host: '127.0.0.1', port } });
    await queue.add('attack', { run: 'crash', model: 'crash-model', images: [{ hash: 'crash-image', name: 'few/00000.png' }], decode: 'file', options: { method: 'no-such-method' }, images8: false }, { jobId: 'crash-0', attempts: 1 });
    await queue.close();
    startWorker();
    await until('the job failed', () => redisCli('zscore', 'bull:mislead:failed', 'crash-0') !== '');
    expect(redisCli('hget', 'bull:mislead:crash-0', 'failedReason')).toMatch(/unknown attack method "no-such-method"/);
    // The same worker, its one thread replaced, does a whole run.
    const r = await submit('attack', 'few', ...PGD, '--out', 'after-crash', '--queue', url());
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    await stopWorkers();
  });

  it('reconnects and finishes when Redis restarts in the middle of a run', async () => {
    startWorker();
    const run = submit('attack', 'few', ...SLOW, '--out', 'few-restart', '--queue', url(), '--per-job', '2');
    await until('a job is done', () => Number(redisCli('zcard', 'bull:mislead:completed')) > 0);
    await stopRedis();
    await sleep(500);
    await startRedis();
    const r = await run;
    expect(r.stderr).toBe('');
    expect(outputs('few-restart')).toEqual(outputs('few-local'));
    await stopWorkers();
  });

  it('reuses the finished jobs of an interrupted submission when the same run is submitted again', async () => {
    const interrupted = spawn(process.execPath, [CLI, 'attack', 'few', ...SLOW, '--out', 'few-again', '--queue', url(), '--per-job', '2'], { cwd: dir, stdio: 'ignore' });
    await until('the jobs are queued', () => Number(redisCli('llen', 'bull:mislead:wait')) === 4);
    interrupted.kill('SIGKILL');
    startWorker();
    await until('every job is done', () => Number(redisCli('zcard', 'bull:mislead:completed')) === 4);
    await stopWorkers();
    // No worker is left: the run can only end by finding its jobs done.
    const r = await submit('attack', 'few', ...SLOW, '--out', 'few-again', '--queue', url(), '--per-job', '2');
    expect(r.stderr).toBe('');
    expect(outputs('few-again')).toEqual(outputs('few-local'));
  });

  it('reports the images of a job that failed on a bad image, with its error, and goes on with the rest', async () => {
    cpSync(join(dir, 'few'), join(dir, 'bad'), { recursive: true });
    writeFileSync(join(dir, 'bad', '00003.png'), 'not an image');
    startWorker();
    const r = await submit('attack', 'bad', ...PGD, '--out', 'bad-out', '--queue', url(), '--per-job', '2');
    await stopWorkers();
    expect(r.status).toBe(0);
    const summary = JSON.parse(readFileSync(join(dir, 'bad-out', 'summary.json'), 'utf8'));
    expect(summary.failed).toBe(2);
    const errors = summary.results.filter((row: { error?: string }) => row.error);
    expect(errors.map((row: { image: string }) => row.image)).toEqual(['bad/00002.png', 'bad/00003.png']);
    expect(errors[0].error).toMatch(/bad\/00003\.png: not a PNG or JPEG image/);
    expect(readdirSync(join(dir, 'bad-out', 'adversarial'))).toHaveLength(6);
    expect(readFileSync(join(dir, 'bad-out', 'summary.csv'), 'utf8').split('\n')[0]).toMatch(/,error$/);
  });

  it('refuses a bad queue address or an unreachable Redis in one line, at once', async () => {
    const bad = cli('attack', 'few', ...PGD, '--out', 'nowhere', '--queue', 'http://127.0.0.1:1');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^mislead: --queue http:\/\/127\.0\.0\.1:1: the scheme must be redis:/);
    const closed = await freePort();
    const start = Date.now();
    const down = cli('attack', 'few', ...PGD, '--out', 'nowhere', '--queue', `redis://127.0.0.1:${closed}`);
    expect(down.status).toBe(2);
    expect(down.stderr).toMatch(/^mislead: --queue redis:\/\/127\.0\.0\.1:\d+: cannot reach Redis \(.*\)\n$/);
    expect(Date.now() - start).toBeLessThan(10_000);
    const worker = cli('worker', '--queue', `redis://127.0.0.1:${closed}`);
    expect(worker.status).toBe(2);
  });
});
