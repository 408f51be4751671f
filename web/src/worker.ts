// The worker that owns the engine: the same kernel module (build/mislead.wasm) and the same
// TypeScript engine, model and attack code as the command line, off the page's main thread.
// An attack is a stepper (the library's startAttack, or the tutorial's FilterAttack going on from
// one step to the next): the worker steps it for a slice of time, gives its event loop a turn so
// that a Stop message is seen, and every REPORT_MS sends the page the current image, the model's
// logits for it (on the same engine, between two iterations) and the losses since the last report.
import wasmUrl from '../../build/mislead.wasm?url';
import { FilterAttack, psnr, resolveOptions, roundName, ssim, startAttack, type AttackOptions } from '../../src/attacks/index.js';
import { geometry, toPixel } from '../../src/attacks/batch.js';
import { distances } from '../../src/attacks/metrics.js';
import { Engine } from '../../src/core/engine.js';
import { InputError } from '../../src/errors.js';
import { decodeImage } from '../../src/formats/image.js';
import { parameterShapes, readModel } from '../../src/formats/model.js';
import { argmax, Net, predictLogits } from '../../src/core/net.js';
import type { TutorialStep } from './methods.js';
import type { Progress, Request, Response, Result } from './protocol.js';

interface Scope {
  onmessage: ((e: MessageEvent<Request>) => void) | null;
  postMessage(message: Response, transfer?: Transferable[]): void;
}
const scope = self as unknown as Scope;
const post = (message: Response, transfer: Transferable[] = []) => scope.postMessage(message, transfer);

/** How long the worker steps an attack before it looks at its messages, and how often the page
 *  is sent the current state. */
const SLICE_MS = 25;
const REPORT_MS = 100;

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
      case 'attack':
      case 'tutorial': {
        const model = needNet();
        const size = model.architecture.input.reduce((a, b) => a * b, 1);
        if (req.input.length !== size) throw new InputError(`the image has ${req.input.length} values, the model takes ${size}`);
        await run(req.id, model, (report) =>
          req.type === 'attack' ? attackRun(model, req.input, req.options, report) : tutorialRun(model, req.input, req.target, req.steps, report),
        );
        break;
      }
    }
  } catch (e) {
    post({ type: 'error', id: req.id, message: message(e), input: e instanceof InputError });
  }
}

function needNet(): Net {
  if (!net) throw new InputError('no model is loaded');
  return net;
}

/** Called for each loss an attack reports, with the round it is in. */
type Report = (round: number, loss: number) => void;

/** An attack on one image that the worker steps through. */
interface Stepper {
  /** Iterations planned (at most). */
  readonly planned: number;
  /** Runs up to `k` iterations; returns whether any are left. */
  step(k: number): boolean;
  /** The current image (a copy). */
  current(): Float32Array;
  /** The result, once no iterations are left. */
  result(): Result;
  /** What round `round` is called while it runs, and where it starts on the loss curve. */
  round(round: number): { phase: string; mark: string };
  /** The images at the end of the tutorial's steps (but the last) since the last call. */
  finished?(): Float32Array[];
  dispose(): void;
}

/** A method of the library on the one image: startAttack, reporting each progress report's loss. */
function attackRun(model: Net, x0: Float32Array, options: AttackOptions, report: Report): Stepper {
  const run = startAttack(model, [x0], options, { onProgress: (_done, _total, info) => report(info.round, info.loss[0]) });
  return {
    planned: run.total,
    step: (k) => run.step(k),
    current: () => (run.info?.x ?? x0).slice(0, x0.length),
    result() {
      const r = run.results[0];
      return {
        adversarial: r.adversarial, perturbation: r.perturbation, logits: r.after.logits, success: r.success,
        l2: r.norms.l2_pixels, linf: r.norms.linf_pixels, psnr: r.psnr, ssim: r.ssim, iterations: r.iterations, gradients: r.gradients,
        ...(r.brokenBy !== undefined && { brokenBy: r.brokenBy }),
      };
    },
    round(round) {
      const phase = roundName(run.options, round);
      return { phase, mark: phase.replace(/ of \d+$/, '') };
    },
    dispose: () => run.dispose(),
  };
}

/** The tutorial: one FilterAttack, whose DX each step continues (as the command line's tutorial). */
function tutorialRun(model: Net, x0: Float32Array, target: number, steps: TutorialStep[], report: Report): Stepper {
  const classes = model.architecture.labels.length;
  if (steps.length === 0) throw new InputError('nothing to run: no steps');
  // The one validator: each step's numbers are the filter method's options.
  for (const s of steps) resolveOptions({ method: 'filter', iterations: s.iterations, lr: s.lr, beta: s.beta, target }, classes);
  const attack = new FilterAttack(model, x0, target);
  const loss = new Float32Array(1);
  let step = 0, t = 0;
  const ends: Float32Array[] = [];
  const current = () => {
    const x = new Float32Array(x0.length);
    attack.image(x);
    return x;
  };
  return {
    planned: steps.reduce((n, s) => n + s.iterations, 0),
    step(k) {
      for (let i = 0; i < k && step < steps.length; i++) {
        const s = steps[step];
        attack.iterate(s.lr, s.beta, loss);
        report(step, loss[0]);
        if (++t === s.iterations) {
          if (++step < steps.length) ends.push(current());
          t = 0;
        }
      }
      return step < steps.length;
    },
    current,
    result() {
      // A run of no iterations is the forward pass FilterAttack.run ends with: the logits of the final DX.
      attack.run({ iterations: 0, lr: 0, beta: 0 });
      const logits = Array.from(attack.logits.toArray());
      const adversarial = current();
      const iterations = steps.reduce((n, s) => n + s.iterations, 0);
      return { adversarial, perturbation: attack.dx.toArray(), logits, success: argmax(logits) === target, ...measures(model, x0, adversarial), iterations, gradients: iterations };
    },
    round: (r) => ({ phase: steps[r].title, mark: steps[r].mark }),
    finished: () => ends.splice(0),
    dispose: () => attack.dispose(),
  };
}

/** Distances (grey levels), PSNR and SSIM of an image against the original, as the library measures a result. */
function measures(model: Net, x0: Float32Array, x: Float32Array) {
  const g = geometry(model.architecture);
  const original = Float64Array.from(x0, (v) => toPixel(v, g)), image = Float64Array.from(x, (v) => toPixel(v, g));
  const d = distances(image, original);
  return { l2: d.l2, linf: d.linf, psnr: psnr(image, original), ssim: ssim(image, original, g.height, g.width, g.channels) };
}

/** Steps an attack to its end or until Stop, reporting now and then; sends its end either way. */
async function run(id: number, model: Net, make: (report: Report) => Stepper): Promise<void> {
  let losses: number[] = [];
  let marks: Progress['marks'] = [];
  let count = 0, round = 0;
  const attack = make((r, loss) => {
    if (r !== round) {
      round = r;
      marks.push({ at: count, label: attack.round(r).mark });
    }
    losses.push(loss);
    count++;
  });
  const start = performance.now();
  let busy = 0, lastReport = -Infinity;
  const progress = (): Progress => {
    const x = attack.current();
    const p: Progress = {
      done: count, planned: attack.planned, losses: Float32Array.from(losses), marks, phase: attack.round(round).phase,
      x, logits: Array.from(predictLogits(model, [x])[0]), elapsed: performance.now() - start, busy,
      finished: (attack.finished?.() ?? []).map((end) => ({ x: end, logits: Array.from(predictLogits(model, [end])[0]) })),
    };
    losses = [];
    marks = [];
    return p;
  };
  running = true;
  stopRequested = false;
  try {
    let going = true;
    while (going && !stopRequested) {
      const t0 = performance.now();
      let t1 = t0;
      while (going && t1 - t0 < SLICE_MS) {
        going = attack.step(1);
        t1 = performance.now();
      }
      busy += t1 - t0;
      // A new round is shown at once (the tutorial's figure shows each step).
      if (going && (t1 - lastReport >= REPORT_MS || marks.length > 0)) {
        const p = progress();
        post({ type: 'progress', id, ...p }, [p.losses.buffer, p.x.buffer, ...p.finished.map((f) => f.x.buffer)]);
        lastReport = performance.now();
      }
      await yieldToEvents();
    }
    const p = progress();
    const result = going ? undefined : attack.result();
    const transfer: Transferable[] = [p.losses.buffer, p.x.buffer, ...p.finished.map((f) => f.x.buffer)];
    if (result) transfer.push(result.adversarial.buffer, result.perturbation.buffer);
    post({ type: 'done', id, stopped: going, result, ...p }, transfer);
  } finally {
    running = false;
    stopRequested = false;
    attack.dispose();
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
