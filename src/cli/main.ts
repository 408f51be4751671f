#!/usr/bin/env node
// The command line (SPEC §1). Every failure ends in one line on stderr starting "mislead: ",
// exit code 2 for bad usage or input, 1 for anything else.
import { parseArgs } from 'node:util';
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

const commands: Record<string, Command> = {
  predict: predictCommand, attack: attackCommand, tutorial: tutorialCommand, bench: benchCommand,
  'import-tf': importTfCommand, 'import-tfjs': importTfjsCommand, 'import-faceapi': importFaceApiCommand, dataset: datasetCommand, train: trainCommand, eval: evalCommand,
};

function mainHelp(): string {
  const width = Math.max(...Object.keys(commands).map((name) => name.length));
  const rows = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)} ${c.summary}`);
  return ['mislead: gradient-based adversarial attacks on small CNNs, no ML framework.', '', 'Commands:', ...rows, '', 'Run "mislead COMMAND --help" for the options of a command.'].join('\n');
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
  const command = commands[name];
  if (!command) throw new InputError(`unknown command "${name}" (commands: ${Object.keys(commands).join(', ')}; see mislead --help)`);
  if (rest.includes('--help') || rest.includes('-h')) return print(`Usage: ${command.usage}\n\n${command.summary}.\n${command.help}`);
  let parsed;
  try {
    parsed = parseArgs({ args: joinNegativeNumbers(rest, command.options), allowPositionals: true, options: command.options, strict: true });
  } catch (e) {
    // Node's message goes on about positional arguments after '--': its first sentence is the point.
    throw new InputError(`${(e as Error).message.split('\n')[0].split('. ')[0]} (see mislead ${name} --help)`);
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
