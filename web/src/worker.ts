// The worker that owns the engine: the same kernel module (build/mislead.wasm) and the same
// TypeScript engine, model and attack code as the command line, off the page's main thread.
// A filter attack runs in chunks of CHUNK iterations; between chunks the worker reports progress
// now and then and gives its event loop a turn, so that a Stop message is seen within one chunk.
// A suite attack (src/attacks.ts's runAttack) is one synchronous call: it reports from its
// onProgress hook, and cannot see a Stop message, so the page stops it by terminating the worker.
// Its live class bars come from a second instance of the kernels holding the same model (the
// "view" engine), so that the attack's own engine memory is not touched while it runs.
import wasmUrl from '../../build/mislead.wasm?url';
import { FilterAttack } from '../../src/attacks/filter.js';
import { predictLogits } from '../../src/model.js';
import { plannedIterations, runAttack, type AttackMethod } from '../../src/attacks/index.js';
import { Engine } from '../../src/engine.js';
import { InputError } from '../../src/errors.js';
import { decodeImage } from '../../src/image.js';
import { Net, parameterShapes, readModel } from '../../src/model.js';
import { attackOptions, checkParams, METHODS, roundName, suiteOptions, type MethodSpec, type Params } from './methods.js';
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

/** One filter attack method in the worker: what METHODS (methods.ts) lists by id. */
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
/** The kernels compiled once, instantiated twice: the engine of the attacks, and the view engine. */
const engines: Promise<[Engine, Engine]> = fetch(wasmUrl)
  .then((r) => {
    if (!r.ok) throw new Error(`could not load the kernels (${wasmUrl}: HTTP ${r.status})`);
    return r.arrayBuffer();
  })
  .then((bytes) => WebAssembly.compile(bytes))
  .then((module) => Promise.all([Engine.create(module), Engine.create(module)]));
const ready: Promise<Engine> = engines.then(([engine]) => engine);
ready.then(
  () => post({ type: 'ready', ms: performance.now() - started }),
  (e) => post({ type: 'error', id: 0, message: `the WebAssembly kernels did not load: ${message(e)}`, input: false }),
);

let net: Net | undefined;
/** The same model in the view engine, for the live class bars of suite runs. */
let viewNet: Net | undefined;
/** The engines' memory marks before the current model's weights: loading another model frees them. */
let modelMark: number | undefined;
let viewMark: number | undefined;
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
    const [engine, view] = await engines;
    switch (req.type) {
      case 'decode': {
        const image = decodeImage(req.bytes, req.name);
        post({ type: 'decoded', id: req.id, image }, [image.data.buffer]);
        break;
      }
      case 'model': {
        const model = readModel(req.bytes, req.name);
        if (modelMark !== undefined) engine.release(modelMark);
        if (viewMark !== undefined) view.release(viewMark);
        net = viewNet = undefined;
        modelMark = engine.mark();
        viewMark = view.mark();
        net = new Net(engine, model);
        viewNet = new Net(view, model);
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
  const spec = METHODS.find((m) => m.id === req.method);
  const make = ATTACKS[req.method];
  if (!spec || (spec.engine === 'filter' && !make)) throw new InputError(`unknown attack method ${JSON.stringify(req.method)}`);
  const size = model.architecture.input.reduce((a, b) => a * b, 1);
  if (req.input.length !== size) throw new InputError(`the image has ${req.input.length} values, the model takes ${size}`);
  const classes = model.architecture.labels.length;
  if (req.target === null ? !spec.untargeted : !Number.isInteger(req.target) || req.target < 0 || req.target >= classes) {
    throw new InputError(req.target === null ? `${spec.name} needs a target label` : `target ${req.target} is not a label index of this model`);
  }

  if (req.steps.length === 0) throw new InputError('nothing to run: no steps');
  for (const { params } of req.steps) {
    const problem = checkParams(spec, params);
    if (problem) throw new InputError(problem);
  }
  if (spec.engine === 'suite') return runSuite(req, spec, model);
  const target = req.target!;

  const session = make!(model, req.input, target);
  const planned = req.steps.reduce((n, s) => n + Number(s.params.iterations), 0);
  running = true;
  stopRequested = false;
  const start = performance.now();
  let busy = 0, total = 0, step = 0, iteration = 0;
  let losses: number[] = [];
  let lastReport = start, lastYield = start;
  const onLoss = (loss: number) => void losses.push(loss);
  const state = (): Progress => {
    const out = {
      step, iteration, total, losses: Float32Array.from(losses), logits: Array.from(session.logits()), dx: session.dx(),
      elapsed: performance.now() - start, busy, planned, marks: [], phase: '',
    };
    losses = [];
    return out;
  };
  try {
    for (step = 0; step < req.steps.length && !stopRequested; step++) {
      const params = req.steps[step].params as Record<string, number>;
      const count = params.iterations;
      for (iteration = 0; iteration < count && !stopRequested; ) {
        const n = Math.min(CHUNK, count - iteration);
        const t0 = performance.now();
        session.run(n, params, onLoss);
        const t1 = performance.now();
        busy += t1 - t0;
        iteration += n;
        total += n;
        // Each step's first chunk is shown too: a step may end before the next report is due.
        if ((t1 - lastReport >= REPORT_MS || iteration === n) && iteration < count) {
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

/** A suite method (runAttack) on the one image: one synchronous call, reporting from its onProgress
 *  hook every REPORT_MS with the live image, its logits (from the view engine) and the losses. */
function runSuite(req: Extract<Request, { type: 'run' }>, spec: MethodSpec, model: Net): void {
  const params: Params = req.steps[0].params;
  const options = attackOptions(spec, req.target, params);
  const resolved = suiteOptions(spec.id as AttackMethod, params);
  const view = viewNet!;
  const x0 = req.input, size = x0.length;
  let planned = plannedIterations(resolved);
  let calls = 0, round = 0, overhead = 0, phase = roundName(resolved, 0);
  let losses: number[] = [];
  let marks: { at: number; label: string }[] = [];
  const start = performance.now();
  let lastReport = start;
  running = true;
  try {
    const [result] = runAttack(model, [x0], options, {
      onProgress(_done, total, info) {
        planned = total;
        if (info.round !== round) {
          round = info.round;
          phase = roundName(resolved, round);
          marks.push({ at: calls, label: phase.replace(/ of \d+$/, '') });
        }
        losses.push(info.loss[0]);
        calls++;
        const now = performance.now();
        if (now - lastReport < REPORT_MS) return;
        const x = info.x.slice(0, size);
        const logits = Array.from(predictLogits(view, [x])[0]);
        const dx = x.map((v, i) => v - x0[i]);
        const p: Progress = {
          step: 0, iteration: calls, total: calls, losses: Float32Array.from(losses), logits, dx,
          elapsed: now - start, busy: now - start - overhead, planned, marks, phase,
        };
        losses = [];
        marks = [];
        post({ type: 'progress', id: req.id, ...p }, [p.losses.buffer, p.dx.buffer]);
        lastReport = performance.now();
        overhead += lastReport - now;
      },
    });
    const now = performance.now();
    const p: Progress = {
      step: 0, iteration: calls, total: calls, losses: Float32Array.from(losses), logits: result.after.logits, dx: result.perturbation.slice(),
      elapsed: now - start, busy: now - start - overhead, planned, marks, phase,
    };
    post(
      {
        type: 'done', id: req.id, stopped: false, ...p,
        result: {
          adversarial: result.adversarial, perturbation: result.perturbation, logits: result.after.logits, success: result.success,
          l2: result.norms.l2_pixels, linf: result.norms.linf_pixels, psnr: result.psnr, ssim: result.ssim,
          iterations: result.iterations, gradients: result.gradients,
        },
      },
      [p.losses.buffer, p.dx.buffer, result.adversarial.buffer, result.perturbation.buffer],
    );
  } finally {
    running = false;
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
