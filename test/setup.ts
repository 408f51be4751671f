// Every test file: after each test, one turn of the event loop. A test file worker reports to the
// runner over RPC and reads its answers in the event loop's poll phase; synchronous tests
// (spawnSync of the command line, long optimisations) chained through promises never reach that
// phase, and after 60 s without it the worker's report times out, failing a green run on a
// loaded machine. setImmediate resolves after a poll phase.
import { afterEach } from 'vitest';

afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)));
