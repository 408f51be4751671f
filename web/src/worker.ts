// The worker that owns the engine: the same kernel module (build/mislead.wasm) and the same
// TypeScript engine, model and attack code as the command line, off the page's main thread.
// An attack runs in chunks of CHUNK iterations; between chunks the worker reports progress now and
// then and gives its event loop a turn, so that a Stop message is seen within one chunk.
import wasmUrl from '../../build/mislead.wasm?url';
import { FilterAttack, predictLogits } from '../../src/attack.js';
import { Engine } from '../../src/engine.js';
import { InputError } from '../../src/errors.js';
import { decodeImage } from '../../src/image.js';
import { Net, parameterShapes, readModel } from '../../src/model.js';
import { METHODS } from './methods.js';
import type { Progress, Request, Response } from './protocol.js';

interface Scope {
  onmessage: ((e: MessageEvent<Request>) => void) | null;
  postMessage(message: Response, transfer?: Transferable[]): void;
}
const scope = self as unknown as Scope;
const post = (message: Response, transfer: Transferable[] = []) => scope.postMessage(message, transfer);

/** Iterations per call of the attack's run(): each call ends with one more forward pass. */
const CHUNK = 10;
/** How often the page is sent the current state, and how long the worker computes without looking at its messages. */
const REPORT_MS = 100;
const YIELD_MS = 25;

/** One attack method in the worker: what METHODS (methods.ts) lists by id. */
interface Session {
  /** Runs `iterations` more iterations with these parameters; calls `onLoss` after each. */
  run(iterations: number, params: Record<string, number>, onLoss: (loss: number) => void): void;
  logits(): Float32Array;
  dx(): Float32Array;
  dispose(): void;
}

const ATTACKS: Record<string, (net: Net, x: Float32Array, target: number) => Session> = {
  filter(net, x, target) {
    const attack = new FilterAttack(net, x, target);
    return {
      run: (iterations, { lr, beta }, onLoss) => void attack.run({ iterations, lr, beta, onIteration: (_, loss) => onLoss(loss) }),
      logits: () => attack.logits.toArray(),
      dx: () => attack.dx.toArray(),
      dispose: () => attack.dispose(),
    };
  },
};

const started = performance.now();
const ready: Promise<Engine> = fetch(wasmUrl)
  .then((r) => {
    if (!r.ok) throw new Error(`could not load the kernels (${wasmUrl}: HTTP ${r.status})`);
    return r.arrayBuffer();
  })
  .then((bytes) => Engine.create(bytes));
ready.then(
  () => post({ type: 'ready', ms: performance.now() - started }),
  (e) => post({ type: 'error', id: 0, message: `the WebAssembly kernels did not load: ${message(e)}`, input: false }),
);

let net: Net | undefined;
/** The engine's memory mark before the current model's weights: loading another model frees them. */
let modelMark: number | undefined;
let stopRequested = false;
let running = false;
/** Requests wait here while a run is going on (the run holds the engine's memory stack). */
let queue: Promise<void> = Promise.resolve();

scope.onmessage = (e) => {
  const req = e.data;
  if (req.type === 'stop') {
    if (running) stopRequested = true;
    return;
  }
  queue = queue.then(() => handle(req)).catch(() => undefined);
};

async function handle(req: Exclude<Request, { type: 'stop' }>): Promise<void> {
  try {
    const engine = await ready;
    switch (req.type) {
      case 'decode': {
        const image = decodeImage(req.bytes, req.name);
        post({ type: 'decoded', id: req.id, image }, [image.data.buffer]);
        break;
      }
      case 'model': {
        const model = readModel(req.bytes, req.name);
        if (modelMark !== undefined) engine.release(modelMark);
        net = undefined;
        modelMark = engine.mark();
        net = new Net(engine, model);
        let parameters = 0;
        for (const shape of parameterShapes(model.architecture).values()) parameters += shape.reduce((a, b) => a * b, 1);
        post({ type: 'model', id: req.id, architecture: model.architecture, parameters });
        break;
      }
      case 'predict': {
        const logits = predictLogits(needNet(), req.inputs).map((l) => Array.from(l));
        post({ type: 'predicted', id: req.id, logits });
        break;
      }
      case 'run':
        await run(req);
        break;
    }
  } catch (e) {
    post({ type: 'error', id: req.id, message: message(e), input: e instanceof InputError });
  }
}

function needNet(): Net {
  if (!net) throw new InputError('no model is loaded');
  return net;
}

async function run(req: Extract<Request, { type: 'run' }>): Promise<void> {
  const model = needNet();
  const make = ATTACKS[req.method];
  if (!make || !METHODS.some((m) => m.id === req.method)) throw new InputError(`unknown attack method ${JSON.stringify(req.method)}`);
  const size = model.architecture.input.reduce((a, b) => a * b, 1);
  if (req.input.length !== size) throw new InputError(`the image has ${req.input.length} values, the model takes ${size}`);
  const classes = model.architecture.labels.length;
  if (!Number.isInteger(req.target) || req.target < 0 || req.target >= classes) throw new InputError(`target ${req.target} is not a label index of this model`);

  if (req.steps.length === 0) throw new InputError('nothing to run: no steps');
  const spec = METHODS.find((m) => m.id === req.method)!;
  for (const { params } of req.steps) {
    for (const p of spec.params) {
      const v = params[p.key];
      if (typeof v !== 'number' || !Number.isFinite(v) || v < p.min || v > p.max || (p.kind === 'int' && !Number.isInteger(v))) {
        throw new InputError(`${p.label} must be ${p.kind === 'int' ? 'a whole number' : 'a number'} from ${p.min} to ${p.max}, got ${v}`);
      }
    }
  }

  const session = make(model, req.input, req.target);
  running = true;
  stopRequested = false;
  const start = performance.now();
  let busy = 0, total = 0, step = 0, iteration = 0;
  let losses: number[] = [];
  let lastReport = start, lastYield = start;
  const onLoss = (loss: number) => void losses.push(loss);
  const state = (): Progress => {
    const out = { step, iteration, total, losses: Float32Array.from(losses), logits: Array.from(session.logits()), dx: session.dx(), elapsed: performance.now() - start, busy };
    losses = [];
    return out;
  };
  try {
    for (step = 0; step < req.steps.length && !stopRequested; step++) {
      const { params } = req.steps[step];
      const count = params.iterations;
      for (iteration = 0; iteration < count && !stopRequested; ) {
        const n = Math.min(CHUNK, count - iteration);
        const t0 = performance.now();
        session.run(n, params, onLoss);
        const t1 = performance.now();
        busy += t1 - t0;
        iteration += n;
        total += n;
        if (t1 - lastReport >= REPORT_MS && iteration < count) {
          const p = state();
          post({ type: 'progress', id: req.id, ...p }, [p.losses.buffer, p.dx.buffer]);
          lastReport = t1;
        }
        if (t1 - lastYield >= YIELD_MS) {
          await yieldToEvents();
          lastYield = performance.now();
        }
      }
      if (stopRequested || step === req.steps.length - 1) break;
      // The end of a step is always shown (the tutorial's figure shows each).
      const p = state();
      post({ type: 'progress', id: req.id, ...p }, [p.losses.buffer, p.dx.buffer]);
      lastReport = performance.now();
    }
    const p = state();
    post({ type: 'done', id: req.id, stopped: stopRequested, ...p }, [p.losses.buffer, p.dx.buffer]);
  } finally {
    running = false;
    stopRequested = false;
    session.dispose();
  }
}

/** Lets the worker's event loop run (and so see a Stop message) without setTimeout's 4 ms clamp. */
function yieldToEvents(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
