#!/usr/bin/env node
// The command line (SPEC §1). Every failure ends in one line on stderr starting "mislead: ",
// exit code 2 for bad usage or input, 1 for anything else.
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { InputError } from '../errors.js';
import { print, type Command, type Options } from './command.js';
import { predictCommand } from './predict.js';
import { attackCommand } from './attack.js';
import { tutorialCommand } from './tutorial.js';
import { benchCommand } from './bench.js';
import { importTfCommand } from './import-tf.js';
import { importTfjsCommand } from './import-tfjs.js';
import { importFaceApiCommand } from './import-faceapi.js';
import { datasetCommand } from './dataset.js';
import { trainCommand } from './train.js';
import { evalCommand } from './eval.js';
import { workerCommand } from './worker.js';

const commands: Record<string, Command> = {
  predict: predictCommand, attack: attackCommand, tutorial: tutorialCommand, bench: benchCommand,
  'import-tf': importTfCommand, 'import-tfjs': importTfjsCommand, 'import-faceapi': importFaceApiCommand, dataset: datasetCommand, train: trainCommand, eval: evalCommand, worker: workerCommand,
};

function mainHelp(): string {
  const width = Math.max(...Object.keys(commands).map((name) => name.length));
  const rows = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)} ${c.summary}`);
  return ['mislead: gradient-based adversarial attacks on small CNNs, no ML framework.', '', 'Commands:', ...rows, '', 'Run "mislead COMMAND --help" for the options of a command, "mislead --version" for the version.'].join('\n');
}

function version(): string {
  return JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;
}

/** Edit distance (insertions, deletions, substitutions, swaps of neighbours) between a and b. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** "; did you mean X?" for the closest of `known` to `typed`, when it is close enough to be a typo. */
function didYouMean(typed: string, known: readonly string[], prefix = ''): string {
  const scored = known.map((k) => ({ k, d: k.startsWith(typed) && typed.length >= 2 ? 0.5 : distance(typed.toLowerCase(), k) }));
  const best = scored.sort((a, b) => a.d - b.d)[0];
  return best && best.d <= Math.max(1, Math.min(3, Math.floor(best.k.length / 3))) ? `; did you mean ${prefix}${best.k}?` : '';
}

function joinNegativeNumbers(args: string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith('--') ? args[i].slice(2) : undefined;
    if (name && options[name]?.type === 'string' && /^-[\d.]/.test(args[i + 1] ?? '')) out.push(`${args[i]}=${args[++i]}`);
    else out.push(args[i]);
  }
  return out;
}

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') return print(mainHelp());
  if (name === '--version' || name === '-v' || name === 'version') return print(version());
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!command) {
    const hint = didYouMean(name, Object.keys(commands));
    throw new InputError(`unknown command "${name}"${hint || ` (commands: ${Object.keys(commands).join(', ')}`}${hint ? ' (' : '; '}see mislead --help)`);
  }
  if (rest.includes('--help') || rest.includes('-h')) return print(`Usage: ${command.usage}\n\n${command.summary}.\n${command.help}`);
  let parsed;
  try {
    parsed = parseArgs({ args: joinNegativeNumbers(rest, command.options), allowPositionals: true, options: command.options, strict: true });
  } catch (e) {
    // Node's message goes on about positional arguments after '--': its first sentence is the point.
    const message = (e as Error).message.split('\n')[0].split('. ')[0];
    const unknown = /^Unknown option '--([^']+)'/.exec(message)?.[1];
    const hint = unknown === undefined ? '' : didYouMean(unknown, Object.keys(command.options), '--');
    throw new InputError(`${message}${hint} (see mislead ${name} --help)`);
  }
  await command.run(parsed.positionals, parsed.values);
}

// A reader that stops early (`mislead predict … | head`) is not an error: the rest of the output
// is dropped, and the command finishes its work (a run that yields to the event loop, as the
// attack does, still writes all its result files rather than being cut short).
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
  process.stdout.write = (() => true) as typeof process.stdout.write;
});

main(process.argv.slice(2)).catch((e: unknown) => {
  const message = e instanceof Error ? e.message : String(e);
  process.stderr.write(`mislead: ${message.split('\n')[0]}\n`);
  if (process.env.MISLEAD_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  process.exitCode = e instanceof InputError ? 2 : 1;
});
