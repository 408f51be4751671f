// `mislead bench`: the benchmark against TensorFlow.js (bench/run.ts).
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { InputError } from '../errors.js';
import { type Command } from './command.js';

export const benchCommand: Command = {
  usage: 'mislead bench [--quick]',
  summary: 'the kernels and end-to-end loops against TensorFlow.js (WASM and CPU backends), side by side',
  help: 'Checks that both engines agree, then times each kernel, one attack iteration (batch 1 and 64), one training\nstep, `attack --json` (1000 iterations, its own reported time) against the same loop in TensorFlow.js, the\ntutorial as a whole process, and batch attacks and training on one thread against a pool of one worker per\ncore; and a MobileNet (112×112, built with tfjs-layers and imported): its convolutions, its forward pass and\none attack iteration (batch 1 and 32). Prints medians, ratios, GFLOP/s and % of the SIMD peak, and writes\nbench/results.json. --quick is a smoke check of under a minute (batch 4). Needs the repository with its dev\ndependencies (npm install), where TensorFlow.js is installed for the comparison. Same as "npm run bench".',
  options: { quick: { type: 'boolean' } },
  async run(positionals, values) {
    if (positionals.length > 0) throw new InputError(`bench takes no positional argument (got ${positionals[0]})`);
    const script = fileURLToPath(new URL('../../bench/run.ts', import.meta.url));
    const runner = fileURLToPath(new URL('../../node_modules/vite-node/vite-node.mjs', import.meta.url));
    if (!existsSync(script) || !existsSync(runner)) throw new InputError('bench needs the source repository with its dev dependencies (run npm install there)');
    const r = spawnSync(process.execPath, [runner, script, ...(values.quick ? ['--quick'] : [])], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`the benchmark failed (exit code ${r.status})`);
  },
};
