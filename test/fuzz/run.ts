// `npm run fuzz`: 20,000 mutated inputs per parser (test/fuzz/targets.ts), each parser in a child
// process of its own, watched from here: a child that stops making progress (a parser that hangs)
// is killed, one that dies (out of memory, a crash) is reported with the input it was on. Prints
// per parser the inputs, how many were accepted and refused, the slowest input, the largest
// allocation and the peak resident memory; exits 1 on any failure.
//
//   npm run fuzz                                   all parsers, 20,000 inputs each
//   npm run fuzz -- --inputs 5000 --only png,npy   fewer inputs, some parsers (also --from N, --max-failures N)
//   npm run fuzz -- --replay png:613 [--save DIR]  one input: what it is, what the parser does
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { InputError } from '../../src/errors.js';
import { formatFailure, LIMITS, mb, runOne, runTarget, type Failure, type Stats } from './harness.js';
import { removeDatasetFolder } from './labels.js';
import { FULL_INPUTS, TARGETS } from './targets.js';

const targetNamed = (name: string) => {
  const t = TARGETS.find((t) => t.target.name === name)?.target;
  if (!t) throw new Error(`no fuzz target ${name} (targets: ${TARGETS.map((t) => t.target.name).join(', ')})`);
  return t;
};

/** Seconds without progress after which a child is taken to hang. */
const STALL_SECONDS = 60;
/** Failures per parser after which its run stops (--max-failures). */
const MAX_FAILURES = 10;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      inputs: { type: 'string' }, only: { type: 'string' }, from: { type: 'string' }, 'max-failures': { type: 'string' },
      replay: { type: 'string' }, save: { type: 'string' },
    },
  });
  if (values.replay) return replay(values.replay, values.save);
  const count = Number(values.inputs ?? FULL_INPUTS), from = Number(values.from ?? 0), maxFailures = Number(values['max-failures'] ?? MAX_FAILURES);
  const names = values.only ? values.only.split(',') : TARGETS.map((t) => t.target.name);
  names.forEach(targetNamed);
  const started = new Date();
  console.log(`fuzzing ${names.length} parsers, inputs ${from} to ${from + count - 1} of each (limits per input: ${LIMITS.ms} ms; ` +
    `${mb(LIMITS.bytes)} + ${LIMITS.perInputByte} × its size of new memory)`);
  const all: Stats[] = [];
  for (const name of names) {
    const stats = await child(name, from, count, maxFailures);
    all.push(stats);
    console.log(line(stats));
  }
  const failures = all.flatMap((s) => s.failures);
  const total = all.reduce((n, s) => n + s.inputs, 0);
  const slowest = all.reduce((a, b) => (b.slowest.ms > a.slowest.ms ? b : a));
  console.log(
    `\n${total} inputs in ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s (${started.toISOString().slice(0, 16).replace('T', ' ')} UTC, node ${process.version}); ` +
    `slowest ${slowest.slowest.ms.toFixed(0)} ms (${slowest.target}:${slowest.slowest.index}); peak RSS ${mb(Math.max(...all.map((s) => s.peakRss)))}`,
  );
  for (const f of failures) console.log(`  ${formatFailure(f)}`);
  const stopped = all.filter((s) => s.inputs < count).map((s) => s.target);
  if (failures.length === 0) {
    console.log('PASS: every input was accepted or refused with an InputError, within the time and memory limits');
  } else {
    console.log(`FAIL: ${failures.length} failing inputs in ${[...new Set(failures.map((f) => f.target))].join(', ')}` +
      (stopped.length ? ` (${stopped.join(', ')} stopped after ${maxFailures} failures or a crash)` : ''));
    process.exitCode = 1;
  }
}

const pad = (s: string | number, n: number) => String(s).padStart(n);
function line(s: Stats): string {
  const pct = (n: number) => `${((100 * n) / Math.max(1, s.inputs)).toFixed(1)}%`;
  return `${s.target.padEnd(13)} ${pad(s.inputs, 6)} inputs  accepted ${pad(s.accepted, 6)} (${pad(pct(s.accepted), 5)})  refused ${pad(s.refused, 6)}  ` +
    `slowest ${pad(s.slowest.ms.toFixed(1), 7)} ms (#${s.slowest.index})  max new memory ${pad(mb(s.maxGrowth.bytes), 9)}  peak RSS ${pad(mb(s.peakRss), 9)}  ` +
    `${(s.ms / 1000).toFixed(1)} s  ${s.failures.length ? `${s.failures.length} FAILURES` : 'ok'}` +
    (s.multiline ? `  (${s.multiline} refusals with a line break in their message: #${s.multilineInputs.join(', #')}…)` : '');
}

/** Runs one target in a child process and watches it; a hang or a death becomes a failure. */
function child(name: string, from: number, count: number, maxFailures: number): Promise<Stats> {
  const dir = mkdtempSync(join(tmpdir(), 'mislead-fuzz-'));
  const status = join(dir, 'status'), result = join(dir, 'result.json');
  writeFileSync(status, '');
  const viteNode = fileURLToPath(new URL('../../node_modules/vite-node/vite-node.mjs', import.meta.url));
  const proc = fork(viteNode, [fileURLToPath(import.meta.url)], {
    env: { ...process.env, MISLEAD_FUZZ_CHILD: JSON.stringify({ name, from, count, maxFailures, status, result }) },
    execArgv: ['--expose-gc'],
    stdio: 'inherit',
  });
  const current = () => Number(readFileSync(status, 'utf8') || from);
  return new Promise((resolve) => {
    let last = -1, since = Date.now(), hung = false;
    const timer = setInterval(() => {
      const now = current();
      if (now !== last) [last, since] = [now, Date.now()];
      else if (Date.now() - since > STALL_SECONDS * 1000) {
        hung = true;
        proc.kill('SIGKILL');
      }
    }, 500);
    proc.on('exit', async (code, signal) => {
      clearInterval(timer);
      let stats: Stats;
      try {
        stats = JSON.parse(readFileSync(result, 'utf8'));
      } catch {
        await targetNamed(name).prepare?.();
        const index = current(), c = targetNamed(name).make(index);
        const problem = hung ? `no result after ${STALL_SECONDS} s (hangs)` : `the process died (${signal ?? `exit code ${code}`})`;
        const failure: Failure = { target: name, index, seed: c.seed, ops: c.ops, problem };
        stats = {
          target: name, parser: targetNamed(name).parser, inputs: index - from + 1, accepted: 0, refused: 0, multiline: 0, multilineInputs: [], failures: [failure],
          slowest: { index, ms: NaN, seed: c.seed, ops: c.ops }, maxGrowth: { index: -1, bytes: 0 }, peakRss: 0, ms: NaN,
        };
      }
      rmSync(dir, { recursive: true, force: true });
      resolve(stats);
    });
  });
}

/** Rebuilds one input, says what it is, runs it with the full stack of whatever escapes, and can save its files. */
async function replay(spec: string, save?: string): Promise<void> {
  const [name, index] = spec.split(':');
  const target = targetNamed(name);
  await target.prepare?.();
  const c = target.make(Number(index));
  console.log(`${name}:${index}: seed ${c.seed}; ${c.ops.join(' · ')}; ${c.size} bytes`);
  if (save) {
    mkdirSync(save, { recursive: true });
    for (const [file, bytes] of Object.entries(c.files)) writeFileSync(join(save, file), bytes);
    console.log(`saved ${Object.keys(c.files).map((f) => join(save, f)).join(', ')}`);
  }
  const o = runOne(target, Number(index));
  try {
    c.run();
    console.log('accepted');
  } catch (e) {
    console.log(e instanceof InputError ? `refused: ${e.message}` : (e as Error).stack ?? String(e));
  }
  console.log(o.failure ? `FAIL: ${o.failure.problem}` : `ok (${o.ms.toFixed(1)} ms, ${mb(o.growth)} new memory)`);
  removeDatasetFolder();
  if (o.failure) process.exitCode = 1;
}

if (process.env.MISLEAD_FUZZ_CHILD) {
  // In a child: run one target, writing the index being tried to the status file before each input.
  const { name, from, count, maxFailures, status, result } = JSON.parse(process.env.MISLEAD_FUZZ_CHILD);
  await targetNamed(name).prepare?.();
  const stats = runTarget(targetNamed(name), from, count, { maxFailures, onInput: (i) => writeFileSync(status, String(i)) });
  removeDatasetFolder();
  writeFileSync(result, JSON.stringify(stats));
} else {
  await main();
}
