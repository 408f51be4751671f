// `mislead worker`: takes attack jobs from a queue until stopped (src/queue/worker.ts).
import { availableParallelism } from 'node:os';
import { InputError } from '../errors.js';
import { parseQueueUrl } from '../queue/connection.js';
import { runWorker } from '../queue/worker.js';
import { intOption, type Command } from './command.js';

export const workerCommand: Command = {
  usage: 'mislead worker --queue redis://HOST:PORT[/DB] [--workers N] [--lock SECONDS] [--quiet]',
  summary: 'does the jobs of attack DIR --queue and eval DIR --queue until stopped',
  help: [
    'Takes jobs from the queue in Redis, --workers at a time (default: one per core), each on its own',
    'thread and engine, and says on stderr how each went (not with --quiet). Ctrl-C lets the jobs under',
    'way finish, then stops; a second Ctrl-C stops at once and hands them back to the queue, for another',
    'worker to take. A worker that dies holds its jobs no longer than --lock seconds (default 30): then',
    'another worker does them again.',
    '',
    'Examples:',
    '  mislead worker --queue redis://10.0.0.5:6379',
    '  mislead worker --queue redis://localhost:6379/2 --workers 1',
  ].join('\n'),
  options: { queue: { type: 'string' }, workers: { type: 'string' }, lock: { type: 'string' }, quiet: { type: 'boolean' } },
  async run(positionals, values) {
    if (positionals.length > 0) throw new InputError(`worker takes no arguments, got ${positionals[0]}`);
    if (values.queue === undefined) throw new InputError('worker needs --queue redis://HOST:PORT[/DB]');
    await runWorker({
      address: parseQueueUrl(values.queue as string),
      threads: intOption(values, 'workers', availableParallelism(), 1, 256),
      lockSeconds: intOption(values, 'lock', 30, 1, 3600),
      quiet: Boolean(values.quiet),
    });
  },
};
