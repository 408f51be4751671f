// Where the queue lives: a Redis server named by `redis://HOST:PORT[/DB]`. A command first checks
// that the server answers, within a few seconds, so that a wrong address or a server that is down
// ends in one line rather than a hang; after that, connections retry for as long as it takes (a
// Redis restarted mid-run is reconnected to, and the run goes on).
import { Redis, type RedisOptions } from 'ioredis';
import { InputError } from '../errors.js';

export interface QueueAddress {
  /** The URL as given, for messages. */
  url: string;
  host: string;
  port: number;
  db: number;
}

/** Reads `redis://HOST:PORT[/DB]` (port 6379 and database 0 by default). */
export function parseQueueUrl(url: string): QueueAddress {
  const refuse = (why: string) => new InputError(`--queue ${url}: ${why} (expected redis://HOST:PORT[/DB])`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw refuse('not a URL');
  }
  if (parsed.protocol !== 'redis:') throw refuse(`the scheme must be redis:, not ${parsed.protocol}`);
  if (parsed.hostname === '') throw refuse('no host');
  if (parsed.username !== '' || parsed.password !== '' || parsed.search !== '' || parsed.hash !== '') throw refuse('only a host, a port and a database number may be given');
  const path = parsed.pathname.replace(/^\//, '');
  if (!/^\d{0,5}$/.test(path)) throw refuse(`the database must be a number, not ${path}`);
  const db = path === '' ? 0 : Number(path);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  return { url, host, port: parsed.port === '' ? 6379 : Number(parsed.port), db };
}

/** Options of a long-lived connection: it reconnects without end, and commands wait for it
 *  (BullMQ's workers need maxRetriesPerRequest null). */
export function connectionOptions(address: QueueAddress): RedisOptions {
  return {
    host: address.host, port: address.port, db: address.db,
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(200 * times, 2000),
  };
}

/** Checks that Redis answers at `address` within `timeoutMs`; refuses in one line otherwise. */
export async function checkReachable(address: QueueAddress, timeoutMs = 3000): Promise<void> {
  const redis = new Redis({ host: address.host, port: address.port, db: address.db, lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null });
  // The socket's error says why ("connect ECONNREFUSED …"); connect() only that it closed.
  let cause: Error | undefined;
  redis.on('error', (e: Error) => (cause ??= e));
  try {
    await redis.connect();
    await redis.ping();
  } catch (e) {
    throw new InputError(`--queue ${address.url}: cannot reach Redis (${(cause ?? (e as Error)).message.split('\n')[0]})`);
  } finally {
    redis.disconnect();
  }
}
