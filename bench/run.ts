// `npm run bench [-- --quick] [-- --out FILE]`: the project's kernels and end-to-end loops against
// TensorFlow.js's WASM and CPU backends, measured in the same run on the tutorial network's
// shapes, after checking that every engine computes the same thing. Prints a table and writes
// bench/results.json (bench/results.quick.json for --quick, a smoke check of a few seconds).
import { writeFileSync } from 'node:fs';
import os, { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { loadModel, readModelInput, SAMPLE_FACE } from '../src/node/files.js';
import { barChartSvg, svgToPng } from '../src/cli/figures.js';
import { loadEngine } from '../src/node/engine.js';
import { importTfjs } from '../src/formats/tfjs.js';
import { inputUnits, type Model } from '../src/formats/model.js';
import { MisleadBatchAttack, MisleadNetworkAttack, MisleadTraining, misleadAttack, misleadKernel, nearTies, steadyGradient } from './mislead.js';
import { ARCH, ATTACK, MOBILENET, TRAIN, convTraffic, endToEndFlops, images, kernelCases, kernelData, mobileNetImages, mobileNetKernelCases, networkConvs, normal, randomModel, relativeError } from './setup.js';
import { BACKENDS, NotAvailable, TfjsAttack, TfjsNetworkAttack, TfjsTraining, backendInfo, mobileNet, numTensors, tfjsKernel, useBackend, type Backend, type NetworkPeer } from './tfjs.js';
import { FaceApiAttack, faceApiImages, faceApiModel } from './faceapi.js';
import { StandIns, standInHow } from './standins.js';
import { fromSamples, measure, sumTimings, type Timing } from './timing.js';
import { runCli, timeAttack, timeTraining } from './whole.js';

const TOLERANCE = 1e-4;
/** Rounds of the peak kernel per call: 10 f32x4 mul-adds each, 80 flops (assembly/peak.ts). */
const PEAK_ROUNDS = 1_000_000;
const PEAK_FLOPS = 80 * PEAK_ROUNDS;

type EngineName = 'mislead' | Backend;
const ENGINES: readonly EngineName[] = ['mislead', ...BACKENDS];
type Result = Timing | { na: string };

interface Row {
  name: string;
  group: 'peak' | 'kernel' | 'end-to-end' | 'conv layers' | 'whole runs' | 'mobilenet kernel' | 'mobilenet' | 'faceapi';
  batch: number | null;
  /** Flops of one operation (see setup.ts for how each is counted). */
  flops: number;
  results: Partial<Record<EngineName, Result>>;
  /** The worst relative error against the engine's result, over the checks of this row. */
  agreement: Partial<Record<Backend, number | null>>;
  /** The SIMD peak around mislead's timing of this row, in GFLOP/s (see localPeak). */
  peak?: number;
  /** The memory stream of the row's least traffic, timed right after mislead's timing of the row (see streamAfter). */
  stream?: { ms: number; gbps: number };
}

function isTiming(r: Result | undefined): r is Timing {
  return r !== undefined && 'meanMs' in r;
}

interface Check {
  name: string;
  backend: Backend;
  /** max |tfjs − mislead| / max |mislead|, or null when the backend cannot run it. */
  relError: number | null;
  ok: boolean;
  /** When not the run's TOLERANCE. */
  tolerance?: number;
  note?: string;
}

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const outIndex = args.indexOf('--out');
const outPath = outIndex >= 0 ? args[outIndex + 1] : fileURLToPath(new URL(quick ? './results.quick.json' : './results.json', import.meta.url));
const started = performance.now();
const rows: Row[] = [];
const checks: Check[] = [];
const progress = (line: string) => process.stderr.write(`${line}\n`);
/** Wall time of each part of the run, in s. */
const sections: Record<string, number> = {};
let sectionStart = performance.now();
function section(name: string): void {
  const now = performance.now();
  sections[name] = Number(((now - sectionStart) / 1e3).toFixed(2));
  sectionStart = now;
}

function row(name: string, group: Row['group'], batch: number | null, flops: number): Row {
  const r: Row = { name, group, batch, flops, results: {}, agreement: {} };
  rows.push(r);
  return r;
}

function time(r: Row, engine: EngineName, fn: () => void, perCall = 1, options = {}): void {
  const t = aroundPeak(r, engine, () => measure(`${engine} ${r.name}`, fn, quick, perCall, options));
  r.results[engine] = t;
  progress(`  ${engine.padEnd(9)} ${r.name.padEnd(26)} ${formatMs(t.medianMs).padStart(9)} ms ±${t.rmePct.toFixed(1)}% (${t.samples} samples)`);
}

/** Records the agreement of a tfjs result with the engine's; `expected` is the engine's. A
 *  known difference of the peer's (`excuse`) is recorded and shown, not held to the tolerance. */
function check(r: Row, name: string, backend: Backend, actual: ArrayLike<number> | number, expected: ArrayLike<number> | number, { tolerance = TOLERANCE, excuse }: { tolerance?: number; excuse?: string } = {}): void {
  const e = typeof actual === 'number' ? relativeError([actual], [expected as number]) : relativeError(actual, expected as ArrayLike<number>);
  const ok = excuse !== undefined || e <= tolerance;
  checks.push({ name, backend, relError: e, ok, ...(tolerance !== TOLERANCE ? { tolerance } : {}), ...(excuse ? { note: `not held to the tolerance: ${excuse}` } : {}) });
  if (!excuse) r.agreement[backend] = Math.max(r.agreement[backend] ?? 0, e); // the table shows checks held to a tolerance
  if (!ok) progress(`  MISMATCH ${backend} ${name}: relative error ${e.toExponential(2)} > ${tolerance}`);
}

function notAvailable(r: Row, name: string, backend: Backend, e: NotAvailable): void {
  checks.push({ name, backend, relError: null, ok: true, note: `n/a: ${e.message}` });
  r.agreement[backend] ??= null;
  r.results[backend] = { na: e.message };
  progress(`  ${backend.padEnd(9)} ${r.name.padEnd(26)} n/a (${e.message})`);
}

/** Runs a tfjs case, turning a missing kernel into "n/a" and checking that no tensor leaks. */
function tfjsCase(r: Row, name: string, backend: Backend, body: () => void): void {
  const before = numTensors();
  try {
    body();
  } catch (e) {
    if (!(e instanceof NotAvailable)) throw e;
    notAvailable(r, name, backend, e);
    return; // a failed gradient leaves its intermediate tensors behind
  }
  const leaked = numTensors() - before;
  if (leaked !== 0) progress(`  warning: ${backend} ${r.name} leaked ${leaked} tensors`);
}

// ---- the SIMD peak --------------------------------------------------------------------------

const engine = await loadEngine();
const info = { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version, v8: process.versions.v8, platform: `${os.platform()} ${os.release()} ${os.arch()}`, memoryGB: Math.round(os.totalmem() / 2 ** 30) };
progress(`mislead bench (${quick ? 'quick' : 'full'}): ${info.cpu}, ${info.cores} cores, Node ${info.node}`);

let sink = 0;
const peakRow = row('peak f32x4 mul-add ×10', 'peak', null, PEAK_FLOPS);
/** The peak kernel's operands: two vectors and five weights (small, so that its sums stay finite). */
const peakOperands = engine.tensor([13], [1e-4, 2e-4, 3e-4, 4e-4, -1e-4, -2e-4, -3e-4, -4e-4, 1, 0.5, 0.25, -0.5, -1]);
const peak = () => engine.kernels.peak_madd(PEAK_ROUNDS, peakOperands.ptr);
sink += peak(); // warm-up
/** The peak is measured at the start and at the end of the run, with more samples than a case
 *  (2 s): the machine's capability is the fastest sample of either, which other processes on the
 *  machine slow down least. The row shows the first measurement's mean, as for every case. */
const peakSamples: number[] = [];
function measurePeak(): void {
  time(peakRow, 'mislead', () => void (sink += peak()), 1, quick ? {} : { maxTime: 2 });
  peakSamples.push(PEAK_FLOPS / ((peakRow.results.mislead as Timing).minMs * 1e6));
}
measurePeak();
const firstPeak = peakRow.results.mislead;
/** This virtual machine's speed drifts by up to 40 % within a run, so a case's share of the peak
 *  is taken against the peak kernel timed just before and after it (25 short calls each, their
 *  median, as the case's median), not against the run's fastest peak sample. */
function localPeak(): number {
  const samples: number[] = [];
  for (let i = 0; i < 25; i++) {
    const start = performance.now();
    sink += engine.kernels.peak_madd(PEAK_ROUNDS / 20, peakOperands.ptr);
    samples.push(PEAK_FLOPS / 20 / ((performance.now() - start) * 1e6));
  }
  return samples.sort((a, b) => a - b)[12];
}
/** Runs mislead's timing of a case between two measurements of the peak, kept in the row. */
function aroundPeak<T>(r: Row, engine: EngineName, timing: () => T): T {
  if (engine !== 'mislead' || r.group === 'peak') return timing();
  const before = localPeak();
  const t = timing();
  r.peak = (before + localPeak()) / 2;
  return t;
}
progress(`  SIMD peak: ${peakSamples[0].toFixed(1)} GFLOP/s (wasm f32x4 mul + add, single thread, fastest sample)`);
section('peak');

// ---- kernels --------------------------------------------------------------------------------

const model = randomModel();
/** The large batch: 64, or 4 for --quick (tfjs-cpu takes seconds for one training step at 64). */
const big = quick ? 4 : 64;
const cases = kernelCases(ARCH, [1, big]);
const data = new Map(cases.map((c) => [c.name, kernelData(c, model)]));
const reference = new Map<string, Float32Array>();
const kernelRows = new Map(cases.map((c) => [c.name, row(c.name, 'kernel', c.n, c.flops)]));

for (const c of cases) {
  const runner = misleadKernel(engine, c, data.get(c.name)!);
  reference.set(c.name, runner.result());
  time(kernelRows.get(c.name)!, 'mislead', runner.run);
  runner.dispose();
}
section('kernels mislead');

for (const backend of BACKENDS) {
  await useBackend(backend);
  for (const c of cases) {
    const r = kernelRows.get(c.name)!;
    const runner = tfjsKernel(c, data.get(c.name)!);
    tfjsCase(r, c.name, backend, () => {
      check(r, c.name, backend, runner.result(), reference.get(c.name)!);
      time(r, backend, runner.run);
    });
    runner.dispose();
  }
  section(`kernels ${backend}`);
}

// ---- end to end -----------------------------------------------------------------------------

const [h, w, ch] = ARCH.input;
const init1 = normal(h * w * ch, 0.01, 21), initBig = normal(big * h * w * ch, 0.01, 23);
/** The first seed from `seed` whose images, alone and plus `init`, give no max-pool near-tie. */
async function cleanImages(n: number, seed: number, init: Float32Array): Promise<ReturnType<typeof images> & { seed: number }> {
  const e = await loadEngine();
  for (let s = seed; ; s++) {
    const drawn = images(n, s);
    if (nearTies(e, model, drawn.x, n) === 0 && nearTies(e, model, drawn.x.map((v, i) => v + init[i]), n) === 0) return { ...drawn, seed: s };
    progress(`  images(${n}, seed ${s}) have a max-pool near-tie: trying seed ${s + 1}`);
  }
}
const one = await cleanImages(1, 11, init1), batch = await cleanImages(big, 13, initBig);
const target = 1;
const targets = batch.labels.map((l) => 1 - l);
const iterationsPerCall = quick ? 5 : 20;
const trajectory = 5;
const flops1 = endToEndFlops(ARCH, 1), flopsBig = endToEndFlops(ARCH, big);
const attack1Row = row('attack iteration b1', 'end-to-end', 1, flops1.attack);
const attackBigRow = row(`attack iteration b${big}`, 'end-to-end', big, flopsBig.attack);
const trainRow = row(`train step b${big} (SGD)`, 'end-to-end', big, flopsBig.train);

// The engine's results, each on a fresh engine.
const ref1 = await (async () => {
  const e = await loadEngine();
  const a = misleadAttack(e, model, one.x, target, init1);
  const logits = a.logits.toArray();
  const loss = a.run({ ...ATTACK, iterations: 1 })[0];
  const grad = a.dx.grad!.toArray();
  const b = misleadAttack(await loadEngine(), model, one.x, target, init1);
  const losses = b.run({ ...ATTACK, iterations: trajectory });
  return { logits, loss, grad, losses, dx: b.dx.toArray() };
})();
// FilterAttack.run itself, N iterations a call, divided by N (run ends with one more forward pass,
// so that its logits are the final DX's: 1/N of a forward pass over the iteration's cost).
const attack1 = misleadAttack(await loadEngine(), model, one.x, target);
time(attack1Row, 'mislead', () => void attack1.run({ ...ATTACK, iterations: iterationsPerCall }), iterationsPerCall);

const attackBig = new MisleadBatchAttack(await loadEngine(), model, batch.x, targets, ATTACK.lr, ATTACK.beta, initBig);
const refBig = attackBig.gradient();
time(attackBigRow, 'mislead', () => void attackBig.step());

const training = new MisleadTraining(await loadEngine(), model, batch.x, batch.labels, TRAIN.lr);
const refTrain = { logits: training.logits.toArray(), ...training.gradients() };
time(trainRow, 'mislead', () => void training.step());
section('end-to-end mislead');

for (const backend of BACKENDS) {
  await useBackend(backend);
  tfjsCase(attack1Row, 'attack b1', backend, () => {
    const a = new TfjsAttack(model, one.x, [target], ATTACK.lr, ATTACK.beta, init1);
    try {
      check(attack1Row, 'forward b1: logits', backend, a.logits(), ref1.logits);
      const g = a.gradient();
      check(attack1Row, 'attack b1: loss', backend, g.loss, ref1.loss);
      check(attack1Row, 'attack b1: d loss / d DX', backend, g.grad, ref1.grad);
      const losses = Array.from({ length: trajectory }, () => a.step());
      check(attack1Row, `attack b1: losses of ${trajectory} SGD steps`, backend, losses, ref1.losses);
      check(attack1Row, `attack b1: DX after ${trajectory} SGD steps`, backend, a.dxValues(), ref1.dx);
    } finally {
      a.dispose();
    }
    const timed = new TfjsAttack(model, one.x, [target], ATTACK.lr, ATTACK.beta);
    try {
      time(attack1Row, backend, () => void timed.step());
    } finally {
      timed.dispose();
    }
  });
  tfjsCase(attackBigRow, `attack b${big}`, backend, () => {
    const a = new TfjsAttack(model, batch.x, targets, ATTACK.lr, ATTACK.beta, initBig);
    try {
      const g = a.gradient();
      check(attackBigRow, `attack b${big}: loss`, backend, g.loss, refBig.loss);
      check(attackBigRow, `attack b${big}: d loss / d DX`, backend, g.grad, refBig.grad);
      time(attackBigRow, backend, () => void a.step());
    } finally {
      a.dispose();
    }
  });
  tfjsCase(trainRow, `train b${big}`, backend, () => {
    const t = new TfjsTraining(model, batch.x, batch.labels, TRAIN.lr);
    try {
      check(trainRow, `forward b${big}: logits`, backend, t.logits(), refTrain.logits);
      const g = t.gradients();
      check(trainRow, `train b${big}: loss`, backend, g.loss, refTrain.loss);
      for (const [key, grad] of g.grads) check(trainRow, `train b${big}: d loss / d ${key}`, backend, grad, refTrain.grads.get(key)!);
      time(trainRow, backend, () => void t.step());
    } finally {
      t.dispose();
    }
  });
  section(`end-to-end ${backend}`);
}

// ---- MobileNet ------------------------------------------------------------------------------

// The MobileNet of setup.ts, built with tfjs-layers from seeded weights, saved through an IO
// handler and imported with importTfjs, all in memory: its convolutions alone, and one attack
// iteration (forward, gradient to the input of the cross-entropy toward a target) against the
// same model run by tfjs-layers. Calls of over a second (tfjs-cpu) are timed by hand.
const mnBig = quick ? 4 : MOBILENET.batch;
/** The tolerance of input gradients through the whole network (float32 sums in other orders). */
const GRADIENT_TOLERANCE = 1e-3;
const SLOW_MS = 1000;
await useBackend('tfjs-cpu');
const saved = await mobileNet();
const mobilenet = importTfjs(saved.json, () => saved.weights, 'MobileNet (in memory)');
const mnFlops = networkConvs(mobilenet.architecture).flops;
const mnCases = mobileNetKernelCases(mobilenet.architecture, [1, mnBig]);
const mnData = new Map(mnCases.map((c) => [c.name, kernelData(c, mobilenet)]));
const mnReference = new Map<string, Float32Array>();
const mnKernelRows = new Map(mnCases.map((c) => [c.name, row(c.name, 'mobilenet kernel', c.n, c.flops)]));
/** A whole network against a peer that runs it: one attack iteration and the forward pass at
 *  each batch, mislead's on the attacks' tape, checked against each backend's before it is timed. */
interface NetworkSection {
  /** As the rows name it. */
  title: string;
  group: Row['group'];
  model: Model;
  batches: {
    n: number;
    /** The pictures in the model's units (mislead's input), in the peer's, and a target each. */
    x: Float32Array;
    peerX: Float32Array;
    targets: number[];
    attack: Row;
    forward: Row;
    /** mislead's logits, and its input gradient in the peer's units. */
    reference: { logits: Float32Array; grad: Float32Array };
    /** The stand-in kernels tfjs-wasm's iteration ran (standins.ts), and their share of its time. */
    standIns?: { names: string[]; share: number };
  }[];
  peer(x: Float32Array, targets: number[]): Promise<NetworkPeer>;
  /** Why a backend does not run a case, if it does not. */
  skipped(backend: Backend, n: number, what: 'forward' | 'iteration'): string | null;
  /** A backend's known error in this network's gradient, shown and not held to the tolerance. */
  gradientExcuse?: Partial<Record<Backend, string>>;
}

/** The section's batches: rows, and n pictures each with a target, drawn one a seed from
 *  `seed(n)` on and given in the peer's units, which are the model's input units unless `pixels`
 *  (0..255; the model's units are then its mean offset and scale's). Pictures whose gradient is
 *  not steady (see steadyGradient) are skipped. */
function networkBatches(
  title: string, group: Row['group'], model: Model, sizes: number[], seed: (n: number) => number,
  draw: (seed: number) => { peerX: Float32Array; target: number }, pixels = false,
): NetworkSection['batches'] {
  const flops = networkConvs(model.architecture).flops;
  const { offset, scale } = inputUnits(model.architecture);
  const toModel = (peerX: Float32Array) => (pixels ? peerX.map((v) => (v - offset) / scale) : peerX);
  return sizes.map((n) => {
    const pictures: { peerX: Float32Array; target: number }[] = [];
    const first = seed(n);
    for (let s = first; pictures.length < n; s++) {
      if (s > first + 4 * n) throw new Error(`${title}: fewer than ${n} of ${4 * n} pictures have a steady gradient`);
      const p = draw(s);
      if (steadyGradient(engine, model, toModel(p.peerX), p.target)) pictures.push(p);
    }
    const peerX = new Float32Array(pictures.reduce((size, p) => size + p.peerX.length, 0));
    pictures.forEach((p, i) => peerX.set(p.peerX, i * p.peerX.length));
    return {
      n, peerX, targets: pictures.map((p) => p.target),
      x: toModel(peerX),
      attack: row(`${title} attack iteration b${n}`, group, n, 2 * n * flops),
      forward: row(`${title} forward b${n}`, group, n, n * flops),
      reference: { logits: new Float32Array(), grad: new Float32Array() },
    };
  });
}

/** mislead's side of a network section: its references, then its timings, each batch on a fresh engine. */
async function networkMislead(net: NetworkSection): Promise<void> {
  const { scale } = inputUnits(net.model.architecture);
  for (const b of net.batches) {
    const a = new MisleadNetworkAttack(await loadEngine(), net.model, b.x, b.targets);
    const { logits, grad } = a.result();
    // The peer's gradient is to its own units: pixels, when the model's input units are not.
    b.reference = { logits, grad: b.x === b.peerX ? grad : grad.map((v) => v / scale) };
    // Seven samples at least: at batch 32 a call takes most of a second, and three of them
    // spread by ±34 % on this machine.
    time(b.attack, 'mislead', () => void a.iteration(), 1, quick ? {} : { minSamples: 7 });
    time(b.forward, 'mislead', () => void a.forward(), 1, quick ? {} : { minSamples: 7 });
    a.dispose();
  }
}

/** A backend's side of a network section, on the current backend: logits (≤ TOLERANCE) and input
 *  gradients (≤ GRADIENT_TOLERANCE) checked, then timed. */
async function networkPeer(net: NetworkSection, backend: Backend): Promise<void> {
  for (const b of net.batches) {
    const skipForward = net.skipped(backend, b.n, 'forward'), skipAttack = net.skipped(backend, b.n, 'iteration');
    const forwardName = `${net.title} forward b${b.n}`, attackName = `${net.title} attack b${b.n}`;
    if (skipForward) notAvailable(b.forward, forwardName, backend, new NotAvailable(skipForward));
    if (skipAttack) notAvailable(b.attack, attackName, backend, new NotAvailable(skipAttack));
    if (skipForward && skipAttack) continue;
    const a = await net.peer(b.peerX, b.targets);
    try {
      if (!skipForward) tfjsCase(b.forward, forwardName, backend, () => checkAndTime(b.forward, backend, () => a.logits(), (y) => check(b.forward, `${net.title} b${b.n}: logits`, backend, y, b.reference.logits), () => a.forward()));
      if (!skipAttack) {
        // tfjs-wasm takes these gradients only with the kernels it lacks, stood in for by its own ops.
        const standIns = backend === 'tfjs-wasm' ? new StandIns() : undefined;
        try {
          tfjsCase(b.attack, attackName, backend, () => checkAndTime(b.attack, backend, () => a.gradient(), (g) => check(b.attack, `${net.title} b${b.n}: d loss / d x`, backend, g, b.reference.grad, { tolerance: GRADIENT_TOLERANCE, excuse: net.gradientExcuse?.[backend] }), () => a.iteration()));
          if (standIns && isTiming(b.attack.results[backend])) {
            b.standIns = { names: [...standIns.used], share: standIns.share(() => a.iteration(), quick || b.n > 1 ? 1 : 3) };
          }
        } finally {
          standIns?.remove();
        }
      }
    } finally {
      a.dispose();
    }
  }
}

const mobileNetSection: NetworkSection = {
  title: 'MobileNet',
  group: 'mobilenet',
  model: mobilenet,
  batches: networkBatches('MobileNet', 'mobilenet', mobilenet, [1, mnBig], (n) => 41 + 100 * n, (seed) => {
    const { x, targets } = mobileNetImages(1, seed);
    return { peerX: x, target: targets[0] };
  }),
  peer: (x, targets) => TfjsNetworkAttack.load(saved.artifacts, x, targets),
  skipped: mnSkipped,
};
const mnBatches = mobileNetSection.batches;

/** Why tfjs-cpu does not run a MobileNet case, if it does not. Its filter gradients take seconds
 *  a call at batch 1, and an iteration through tfjs-layers takes every filter's (see the text):
 *  those run at batch 1 only, and not at all under --quick, which runs batch 1 only. */
function mnSkipped(backend: Backend, n: number, what: 'kernel' | 'filter gradient' | 'forward' | 'iteration'): string | null {
  if (backend !== 'tfjs-cpu') return null;
  if (quick && (n > 1 || what === 'filter gradient' || what === 'iteration')) return 'not run under --quick: tfjs-cpu runs MobileNet at batch 1 only, and no filter gradient';
  if (n > 1 && (what === 'filter gradient' || what === 'iteration')) return `not run at batch ${n}: tfjs-cpu's filter gradients take seconds at batch 1, and its iteration through tfjs-layers takes every filter's`;
  return null;
}

/** Runs `call` once for its result, which `checkResult` checks, then times `timed`: with
 *  benchmark.js, or for calls over SLOW_MS by hand, that first call and (full run) two more. */
function checkAndTime<T>(r: Row, engineName: EngineName, call: () => T, checkResult: (result: T) => void, timed: () => void): void {
  const start = performance.now();
  const result = call();
  const first = performance.now() - start;
  checkResult(result);
  if (first < SLOW_MS) return time(r, engineName, timed);
  const samples = [first];
  aroundPeak(r, engineName, () => {
    for (let i = 0; i < (quick ? 0 : 2); i++) {
      const s = performance.now();
      timed();
      samples.push(performance.now() - s);
    }
  });
  const t = (r.results[engineName] = fromSamples(samples));
  progress(`  ${engineName.padEnd(9)} ${r.name.padEnd(26)} ${formatMs(t.medianMs).padStart(9)} ms (median of ${samples.length} calls)`);
}

/** A convolution that does little arithmetic per byte is bound by memory when its data does not
 *  fit the caches (batch 32): its least traffic (convTraffic), streamed by the peak_stream kernel
 *  right after a call of the case (the median of 15 such streams, so that the stream finds the
 *  caches as the case's next call would: repeated on its own, it kept more of its data in the
 *  third-level cache than the kernel did), gives the highest share of the peak it could reach,
 *  its memory ceiling. The buffers are as large as the largest case's. */
const roundUp16 = (floats: number) => Math.ceil(floats / 16) * 16;
const mnTraffic = new Map(mnCases.map((c) => [c.name, convTraffic(c)]));
const streamSource = engine.alloc(roundUp16(Math.max(...[...mnTraffic.values()].map((t) => t.reads))));
const streamTarget = engine.alloc(roundUp16(Math.max(...[...mnTraffic.values()].map((t) => t.writes))));
function streamAfter(r: Row, { reads, writes }: { reads: number; writes: number }, runCase: () => void): void {
  const call = () => (sink += engine.kernels.peak_stream(streamSource, roundUp16(reads), streamTarget, roundUp16(writes)));
  call();
  const samples = Array.from({ length: 15 }, () => {
    runCase();
    const start = performance.now();
    call();
    return performance.now() - start;
  }).sort((a, b) => a - b);
  r.stream = { ms: samples[7], gbps: (4 * (reads + writes)) / (samples[7] * 1e6) };
}

for (const c of mnCases) {
  const runner = misleadKernel(engine, c, mnData.get(c.name)!);
  const r = mnKernelRows.get(c.name)!;
  checkAndTime(r, 'mislead', () => runner.result(), (y) => mnReference.set(c.name, y), runner.run);
  streamAfter(r, mnTraffic.get(c.name)!, runner.run);
  runner.dispose();
}
await networkMislead(mobileNetSection);
section('MobileNet mislead');

for (const backend of BACKENDS) {
  await useBackend(backend);
  for (const c of mnCases) {
    const r = mnKernelRows.get(c.name)!;
    const skip = mnSkipped(backend, c.n, c.kind.endsWith('bwd-filter') ? 'filter gradient' : 'kernel');
    if (skip) {
      notAvailable(r, c.name, backend, new NotAvailable(skip));
      continue;
    }
    const runner = tfjsKernel(c, mnData.get(c.name)!);
    tfjsCase(r, c.name, backend, () => checkAndTime(r, backend, () => runner.result(), (y) => check(r, c.name, backend, y, mnReference.get(c.name)!), runner.run));
    runner.dispose();
  }
  await networkPeer(mobileNetSection, backend);
  section(`MobileNet ${backend}`);
}

// ---- face-api ------------------------------------------------------------------------------

// face-api's age and gender network (imported from the weights its package ships) against face-api
// itself: its gender logits (runNet) under tf.grad, and its own forward pass (forwardInput). On
// seeded noise pictures of whole grey levels. --quick: batch 1 only.
const FACEAPI_BATCH = 32;
const faceApiNet = faceApiModel();
const faceApi: NetworkSection = {
  title: 'face-api',
  group: 'faceapi',
  model: faceApiNet,
  batches: networkBatches('face-api', 'faceapi', faceApiNet, quick ? [1] : [1, FACEAPI_BATCH], (n) => 61 + 100 * n, (seed) => {
    const { pixels, targets } = faceApiImages(1, seed);
    return { peerX: pixels, target: targets[0] };
  }, true),
  peer: (x, targets) => FaceApiAttack.load(x, targets),
  skipped: (backend, n, what) => (backend === 'tfjs-cpu' && what === 'iteration' && n > 1 ? `not run at batch ${n}: tfjs-cpu's iteration takes seconds at batch 1, and n times that at batch n` : null),
  gradientExcuse: {
    'tfjs-wasm':
      "tfjs-wasm's MaxPoolGrad sends the gradient of a window whose values are all negative to the wrong cell (max-pool 2×2 of -[5 2 3 4; 1 6 7 8; 9 10 16 12; 13 14 15 11], dy [1 2; 3 4]: tfjs-wasm's dx holds 1 at the first cell and nothing else, tfjs-cpu's 1, 2, 3, 4 at each window's maximum), and face-api's max-pools take the separable convolutions' outputs before any ReLU",
  },
};
await networkMislead(faceApi);
section('face-api mislead');
for (const backend of BACKENDS) {
  await useBackend(backend);
  await networkPeer(faceApi, backend);
  section(`face-api ${backend}`);
}

// ---- whole runs: the command line, and both cores --------------------------------------------

// `mislead attack --json` on the shipped sample face and default model, in a process of its own:
// the report's `ms` (the optimisation's wall time), against the same loop of SGD steps in tfjs.
const wholeIterations = quick ? 50 : 1000;
const shipped = loadModel(undefined).model;
const sampleInput = readModelInput(SAMPLE_FACE, shipped.architecture);
const cliRow = row(`attack --json, ${wholeIterations} its`, 'whole runs', 1, wholeIterations * flops1.attack);
const reports = Array.from({ length: quick ? 1 : 5 }, () => JSON.parse(runCli(['attack', SAMPLE_FACE, '--json', '--iters', String(wholeIterations)]).stdout));
const cliTiming = fromSamples(reports.map((r) => r.ms));
cliRow.results.mislead = cliTiming;
progress(`  mislead   ${cliRow.name.padEnd(26)} ${formatMs(cliTiming.medianMs).padStart(9)} ms (median of ${reports.length} processes)`);
const cliTarget: number = reports[0].after.index;
const sampleGrad = (() => {
  const a = misleadAttack(engine, shipped, sampleInput, cliTarget);
  a.run({ lr: ATTACK.lr, beta: 0, iterations: 1 });
  return a.dx.grad!.toArray();
})();
// A real face has max-pool windows of equal values (zeros after ReLU), where tfjs-wasm's
// MaxPoolGrad does not send the gradient to the first maximum as TensorFlow's CPU kernels (and
// tfjs-cpu, and this engine) do: its gradients, hence its trajectory, differ (shown, not failed).
const tiedWindows = (backend: Backend) => (backend === 'tfjs-wasm' ? "tfjs-wasm's MaxPoolGrad routes tied windows (equal maxima) otherwise than TensorFlow's CPU kernels" : undefined);
/** A thousand SGD steps amplify float32 rounding (summation order differs between engines). */
const TRAJECTORY_TOLERANCE = 1e-3;
for (const backend of BACKENDS) {
  await useBackend(backend);
  tfjsCase(cliRow, `attack ${wholeIterations} its`, backend, () => {
    const runs = backend === 'tfjs-wasm' && !quick ? 3 : 1;
    const ms: number[] = [];
    for (let run = 0; run < runs; run++) {
      const a = new TfjsAttack(shipped, sampleInput, [cliTarget], ATTACK.lr, 0);
      try {
        if (run === 0) check(cliRow, 'sample face: d loss / d DX', backend, a.gradient().grad, sampleGrad, { excuse: tiedWindows(backend) });
        const start = performance.now();
        for (let i = 0; i < wholeIterations; i++) a.step();
        ms.push(performance.now() - start);
        if (run === 0) check(cliRow, `attack ${wholeIterations} its: final logits`, backend, a.logits(), reports[0].after.logits, { tolerance: TRAJECTORY_TOLERANCE, excuse: tiedWindows(backend) });
      } finally {
        a.dispose();
      }
    }
    const timing = fromSamples(ms);
    cliRow.results[backend] = timing;
    progress(`  ${backend.padEnd(9)} ${cliRow.name.padEnd(26)} ${formatMs(timing.medianMs).padStart(9)} ms (median of ${runs})`);
  });
}

// `mislead tutorial`: a whole process, from its start to its exit with the files written.
// Its flops are not counted: the time is mostly Node starting and the files being written.
const tutorialRow = row('tutorial, whole process', 'whole runs', 1, 0);
const tutorialTiming = fromSamples(Array.from({ length: quick ? 1 : 5 }, () => runCli(['tutorial', '--quiet']).ms));
tutorialRow.results.mislead = tutorialTiming;
progress(`  mislead   ${tutorialRow.name.padEnd(26)} ${formatMs(tutorialTiming.medianMs).padStart(9)} ms (median of ${tutorialTiming.samples} processes)`);
section('whole runs');

// Both cores: the same batch work on this thread and over a pool of one worker per core.
interface Scaling {
  name: string;
  /** Images attacked or trained on. */
  items: number;
  oneThread: Timing;
  workers: number;
  pool: Timing;
}
const scalings: Scaling[] = [];
let poolStart: Timing | undefined;
const cores = availableParallelism();
/** Times work on one thread and on the pool, alternately; `timeWith` returns the time in ms of
 *  each of the `parts` (the whole run, or also a part of it). */
async function scaling(parts: { name: string; items: number }[], timeWith: (workers: number) => Promise<number[]>): Promise<void> {
  const runs = quick ? 1 : 3;
  const one: number[][] = [], many: number[][] = [];
  for (let run = 0; run < runs; run++) {
    one.push(await timeWith(1));
    many.push(await timeWith(cores));
  }
  parts.forEach(({ name, items }, i) => {
    const s = { name, items, oneThread: fromSamples(one.map((t) => t[i])), workers: cores, pool: fromSamples(many.map((t) => t[i])) };
    scalings.push(s);
    progress(`  ${name}: ${formatMs(s.oneThread.medianMs)} ms on one thread, ${formatMs(s.pool.medianMs)} ms on ${cores} workers (${(s.oneThread.medianMs / s.pool.medianMs).toFixed(2)}×)`);
  });
}
if (cores > 1) {
  // Noise images at ε 1 grey level: almost none is fooled early, so every image takes all 40 steps.
  const attacked = quick ? 8 : 512;
  const noise = Array.from({ length: attacked }, (_, i) => images(1, 100 + i).x);
  await scaling([{ name: `PGD (ε 1, 40 steps), ${attacked} images`, items: attacked }], async (workers) => [await timeAttack(shipped, noise, { method: 'pgd', eps: 1 }, workers)]);
  // Training as `mislead train` runs it, for two epochs: the whole run (pool start, data shared
  // with the workers, their first batches while they warm up) and its second epoch alone, the
  // rate of a long training.
  const trained = quick ? 128 : 8192, batchSize = quick ? 32 : 64;
  const set = images(trained, 31);
  const data = { inputs: set.x, labels: Uint8Array.from(set.labels) };
  await scaling(
    [{ name: `training, 2 epochs of ${trained} images`, items: 2 * trained }, { name: 'training, its 2nd epoch', items: trained }],
    async (workers) => {
      const { ms, epochs } = await timeTraining(randomModel(), data, { epochs: 2, batch: batchSize, lr: 1e-3, seed: 1 }, workers);
      return [ms, 1000 * epochs[1].seconds];
    },
  );
  const starts: number[] = [];
  for (let run = 0; run < (quick ? 1 : 3); run++) starts.push(await timeAttack(shipped, noise.slice(0, cores), { method: 'fgsm' }, cores));
  poolStart = fromSamples(starts);
  progress(`  a pool's start and one FGSM per worker: ${formatMs(poolStart.medianMs)} ms`);
}
section('both cores');

measurePeak();
peakRow.results.mislead = firstPeak;
const peakGflops = Math.max(...peakSamples);
progress(`  SIMD peak at the end: ${peakSamples[1].toFixed(1)} GFLOP/s; used: ${peakGflops.toFixed(1)}`);
section('peak again');

// ---- report ---------------------------------------------------------------------------------


/** The convolutions of an attack iteration (forward, gradient to the input) and of a training
 *  step (the same but cv1's input gradient, plus every filter gradient), as the sums of their
 *  kernel cases: the share of the conv layers in the end-to-end rows. */
function convLayerRows(n: number): void {
  const convCase = (kind: string) => cases.filter((c) => c.n === n && c.kind === kind);
  const attack = [...convCase('conv.fwd'), ...convCase('conv.bwd-input')];
  const train = [...convCase('conv.fwd'), ...convCase('conv.bwd-input').slice(1), ...convCase('conv.bwd-filter')];
  for (const [name, parts] of [[`conv layers, attack b${n}`, attack], [`conv layers, train b${n}`, train]] as const) {
    const r = row(name, 'conv layers', n, parts.reduce((s, c) => s + c.flops, 0));
    // Against the peak around each part, weighted by the part's time.
    const partRows = parts.map((c) => kernelRows.get(c.name)!), partMs = partRows.map((p) => (isTiming(p.results.mislead) ? p.results.mislead.medianMs : 0));
    if (partRows.every((p) => p.peak !== undefined)) r.peak = partRows.reduce((s, p, i) => s + p.peak! * partMs[i], 0) / partMs.reduce((a, b) => a + b, 0);
    for (const e of ENGINES) {
      const timings = parts.map((c) => kernelRows.get(c.name)!.results[e]);
      if (timings.every(isTiming)) r.results[e] = sumTimings(timings);
      else if (timings.some((t) => t !== undefined)) r.results[e] = { na: 'a part is n/a' };
    }
    for (const b of BACKENDS) {
      const errors = parts.map((c) => kernelRows.get(c.name)!.agreement[b]).filter((x): x is number => typeof x === 'number');
      if (errors.length) r.agreement[b] = Math.max(...errors);
    }
  }
}
convLayerRows(1);
convLayerRows(big);

const seconds = (performance.now() - started) / 1e3;
const gflops = (r: Row, engineName: EngineName): number | null => {
  const t = r.results[engineName];
  return isTiming(t) && r.flops > 0 ? r.flops / (t.medianMs * 1e6) : null;
};
/** mislead's share of the peak measured around its timing of the row, in %. */
const percentOfPeak = (r: Row): number | null => {
  const g = gflops(r, 'mislead');
  return g === null || r.peak === undefined ? null : (100 * g) / r.peak;
};

function formatMs(ms: number): string {
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  if (ms >= 1) return ms.toFixed(2);
  if (ms >= 0.01) return ms.toFixed(3);
  return ms.toPrecision(2);
}

/** The highest share of the peak the row's memory traffic allows (see streamAfter), in %. */
const memoryCeiling = (r: Row): number | null => (r.stream === undefined || r.peak === undefined ? null : (100 * r.flops) / (r.stream.ms * 1e6) / r.peak);

/** Whether the row meets its share of the peak, or why not: a memory ceiling below the target is a bound no kernel can pass. */
function verdict(r: Row): string {
  const target = peakTarget(r), share = percentOfPeak(r), ceiling = memoryCeiling(r);
  if (target === null || share === null) return '';
  if (share >= target) return `≥ ${target} %: met`;
  return ceiling !== null && ceiling < target ? `≥ ${target} %: bound by memory` : `≥ ${target} %: not met`;
}

/** The targets for MobileNet's convolutions, in % of the peak. */
const PEAK_TARGETS: Record<string, number> = { pw: 70, dw: 40 };
const peakTarget = (r: Row): number | null => (r.group === 'mobilenet kernel' ? PEAK_TARGETS[r.name.split('.')[0]] ?? null : null);

/** The table of `shown`; with `targets`, two last columns: each row's memory ceiling, and its
 *  % of peak target with whether the row meets it (see verdict). */
function table(shown: Row[], targets = false): string {
  const header = ['case', 'mislead ms', '±%', 'tfjs-wasm ms', 'tfjs-cpu ms', 'wasm/ml', 'cpu/ml', 'GFLOP/s', '% peak', 'max rel err', ...(targets ? ['memory ≤ %', 'target'] : [])];
  const body = shown.map((r) => {
    const m = r.results.mislead;
    const cell = (b: Backend) => {
      const t = r.results[b];
      return isTiming(t) ? formatMs(t.medianMs) : t ? 'n/a' : '';
    };
    const ratio = (b: Backend) => {
      const t = r.results[b];
      return isTiming(t) && isTiming(m) ? `${(t.medianMs / m.medianMs).toFixed(t.medianMs / m.medianMs < 10 ? 2 : 1)}×` : t ? 'n/a' : '';
    };
    const g = gflops(r, 'mislead');
    const errors = BACKENDS.map((b) => r.agreement[b]).filter((e): e is number => typeof e === 'number');
    return [
      r.name,
      isTiming(m) ? formatMs(m.medianMs) : '',
      isTiming(m) && m.samples > 1 ? m.rmePct.toFixed(1) : '',
      cell('tfjs-wasm'),
      cell('tfjs-cpu'),
      ratio('tfjs-wasm'),
      ratio('tfjs-cpu'),
      g === null ? '' : g >= 10 ? g.toFixed(1) : g.toFixed(2),
      percentOfPeak(r)?.toFixed(1) ?? '',
      errors.length ? Math.max(...errors).toExponential(1) : '',
      ...(targets ? [memoryCeiling(r)?.toFixed(0) ?? '', verdict(r)] : []),
    ];
  });
  return formatTable(header, body);
}

/** Columns padded to their widest cell: the first left-aligned, the others right-aligned. */
function formatTable(header: string[], body: string[][]): string {
  const widths = header.map((hd, i) => Math.max(hd.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((wd) => '-'.repeat(wd)).join('  '), ...body.map(line)].join('\n');
}

/** Both cores: one thread against a pool of one worker per core, on the same work. */
function scalingTable(): string[] {
  if (scalings.length === 0) return [`Both cores: not measured (${cores} core).`, ''];
  const header = ['work', '1 thread ms', '±%', `${cores} workers ms`, '±%', 'speed-up', 'efficiency', `images/s on ${cores}`];
  const body = scalings.map((s) => {
    const speedup = s.oneThread.medianMs / s.pool.medianMs;
    return [s.name, formatMs(s.oneThread.medianMs), s.oneThread.rmePct.toFixed(1), formatMs(s.pool.medianMs), s.pool.rmePct.toFixed(1), `${speedup.toFixed(2)}×`, `${((100 * speedup) / s.workers).toFixed(0)} %`, `${Math.round((1000 * s.items) / s.pool.medianMs)}`];
  });
  return [
    'Both cores (worker threads, one engine each; a whole run includes the pool\'s start and close; medians):',
    formatTable(header, body),
    `A pool's start (threads, modules, engine, model) and one FGSM per worker: ${formatMs(poolStart!.medianMs)} ms.`,
    '',
  ];
}

const ms = (r: Row, e: EngineName) => (isTiming(r.results[e]) ? (r.results[e] as Timing).medianMs : null);

/** What tfjs-wasm's iterations owe to the stand-ins for the gradient kernels it lacks: which ran,
 *  their share of its time, and its ratio to mislead's iteration without them (a lower bound). */
function standInNote(net: NetworkSection): string[] {
  const measured = net.batches.filter((b) => b.standIns && ms(b.attack, 'tfjs-wasm') !== null && ms(b.attack, 'mislead') !== null);
  if (measured.length === 0) return [];
  const names = [...new Set(measured.flatMap((b) => b.standIns!.names))];
  return [
    `tfjs-wasm has no ${names.join(' or ')}, which ${net.title}'s input gradient takes${names.includes('Conv2DBackpropFilter') ? " (tfjs-layers' Conv2D runs tf.fused.conv2d,\nwhose gradient takes the filter's along with the input's)" : ''}. Its iteration runs with stand-ins built from its own ops (bench/standins.ts:`,
    `${names.map(standInHow).join('; ')}), checked with the whole gradient against tfjs-cpu above. Their share of tfjs-wasm's`,
    `iteration, and tfjs-wasm / mislead without their time:`,
    ...measured.map((b) => {
      const { share } = b.standIns!;
      return `  batch ${b.n}: ${(100 * share).toFixed(0)} % of ${formatMs(ms(b.attack, 'tfjs-wasm')!)} ms; without it, ${((ms(b.attack, 'tfjs-wasm')! * (1 - share)) / ms(b.attack, 'mislead')!).toFixed(1)}×`;
    }),
  ];
}

/** What a big-batch depthwise call is made of: its time against that many batch-1 calls (whose
 *  data stays in the core's second-level cache) and against the stream of its bytes alone. */
function depthwiseBatchLines(): string[] {
  const lines = rows
    .filter((r) => r.group === 'mobilenet kernel' && r.name.startsWith('dw.') && r.batch === mnBig)
    .flatMap((r) => {
      const one = rows.find((o) => o.name === r.name.replace(new RegExp(`b${mnBig}$`), 'b1')), big = ms(r, 'mislead');
      const single = one ? ms(one, 'mislead') : null;
      if (big === null || single === null || r.stream === undefined) return [];
      const name = r.name.replace(new RegExp(` b${mnBig}$`), '');
      const traffic = mnTraffic.get(r.name)!, megabytes = (4 * (traffic.reads + traffic.writes)) / 1e6, calls = mnBig * single;
      return [`  ${name.padEnd(30)} ${formatMs(big).padStart(6)} ms = ${mnBig} × ${formatMs(single)} (${formatMs(calls)}) ${big >= calls ? '+' : '−'} ${formatMs(Math.abs(big - calls))};  its ${megabytes.toFixed(1)} MB streamed alone: ${formatMs(r.stream.ms)} ms`];
    });
  return lines.length === 0
    ? []
    : [`Depthwise at batch ${mnBig}: a call's median against ${mnBig} batch-1 calls (data in the second-level cache) and the stream of its bytes:`, ...lines];
}

/** MobileNet's table, what tfjs-wasm can be compared on (it cannot take the gradient), and what
 *  tfjs-cpu's iteration is made of. */
function mobileNetReport(): string[] {
  const cpuIteration = ms(mnBatches[0].attack, 'tfjs-cpu');
  return [
    `MobileNet v1, α ${MOBILENET.alpha}, ${MOBILENET.input.join('×')}, ${MOBILENET.classes} classes, seeded random weights and batch-norm statistics: built with tfjs-layers,`,
    `saved through an IO handler, imported with importTfjs (batch norm folded into the convolutions, ReLU6 after them). ${(mnFlops / 1e6).toFixed(1)} MFLOP`,
    `an image forward; an attack iteration (forward, gradient of the cross-entropy toward a target to the input, on the attacks' tape,`,
    `recorded once and replayed) twice that; tfjs runs model.apply inside tf.valueAndGrad. Kernel rows: dw depthwise 3×3, pw pointwise`,
    `1×1 (a matrix product), conv the first layer (3×3, stride 2), at batch 1 and ${mnBig}. Calls of over a second are timed by hand (${quick ? 'the check\'s call' : '3 calls'}).`,
    '',
    table(rows.filter((r) => r.group.startsWith('mobilenet')), true),
    '',
    ...standInNote(mobileNetSection),
    ...(cpuIteration === null
      ? []
      : [`tfjs-cpu's iteration (${formatMs(cpuIteration)} ms at batch 1) is mostly filter gradients that an attack does not need: tfjs-layers' Conv2D gradient takes`, `the filter's too, and tfjs-cpu's Conv2DBackpropFilter is slow (pw.bwd-filter rows).`]),
    'memory ≤ %: the share of the peak a row could reach if it did nothing but read its operands and write its result once, at the rate',
    'the peak_stream kernel moves that many bytes right after a call of the row (median of 15). "bound by memory": that ceiling is',
    'below the target, so no kernel can meet it on this machine at that moment.',
    'Depthwise does little arithmetic per byte: every channel has its own 9 weights and no sum over channels reuses a loaded vector',
    '(2.25 flops a byte of input and output at stride 1, 0.9 at stride 2). At batch 1 its data stays in the core\'s second-level cache',
    'and loads bound it: about one vector load a mul-add (a row tile of 4 cells at stride 1: 9 loads for 12 mul-adds; see',
    'assembly/depthwise.ts), where the peak kernel loads nothing and a matrix product loads once for several mul-adds. At batch 32',
    '(6.4 MB an operand) its data outgrows the core\'s caches and comes from the shared third-level cache or memory, as fast as they',
    'serve it at that moment (they are the host\'s, shared with whatever else it runs).',
    ...depthwiseBatchLines(),
    '',
  ];
}

/** face-api's table: its network against face-api itself, and what tfjs-wasm is compared on. */
function faceApiReport(): string[] {
  const cpuIteration = ms(faceApi.batches[0].attack, 'tfjs-cpu'), iteration = ms(faceApi.batches[0].attack, 'mislead');
  return [
    `face-api's age and gender network (TinyXception, 112×112×3, its gender head), imported from the weights @vladmandic/face-api ships,`,
    `against face-api itself on the same TensorFlow.js: ${(networkConvs(faceApiNet.architecture).flops / 1e6).toFixed(1)} MFLOP an image forward. An attack iteration: mislead on the`,
    `attacks' tape; tfjs: tf.grad of the cross-entropy of face-api's gender logits (runNet) toward a target, to the pixels. Forward:`,
    `face-api's own forward pass (forwardInput, its softmax included). Seeded noise pictures, whole grey levels.`,
    '',
    table(rows.filter((r) => r.group === 'faceapi')),
    '',
    ...standInNote(faceApi),
    ...(cpuIteration === null || iteration === null ? [] : [`Per attack iteration at batch 1, tfjs-cpu takes ${(cpuIteration / iteration).toFixed(0)}× mislead's time.`]),
    '',
  ];
}

const failed = checks.filter((c) => !c.ok);
/** The worst check held to a tolerance (the excused ones are listed with their reason). */
const worst = (backend: Backend) => checks.filter((c) => c.backend === backend && c.relError !== null && !c.note).reduce((a, c) => (c.relError! > a.relError! ? c : a));
const na = [...new Set(checks.filter((c) => c.note).map((c) => `${c.backend}: ${c.note}`))];
const tf = backendInfo();

const lines = [
  '',
  `mislead vs TensorFlow.js ${tf.tfjs} (wasm: SIMD ${tf.wasmSimd ? 'on' : 'off'}, threads ${tf.wasmThreads ? 'on' : 'off'}; cpu: plain JS), ${quick ? 'QUICK (timings rough)' : 'full'} run`,
  `${info.cpu}, ${info.cores} cores, Node ${info.node}, ${new Date().toISOString()}`,
  `SIMD peak (wasm f32x4 mul + add, 1 thread; fastest sample at the start or end of the run): ${peakGflops.toFixed(1)} GFLOP/s. Times are medians per operation;`,
  `±% is the 95 % margin of error of the mean (means, minima and sample counts in the JSON); ratios are tfjs time / mislead time`,
  `(> 1: mislead faster); GFLOP/s and % of peak are mislead's, the latter against the peak timed just before and after the case`,
  `(the median of 25 short calls each: this machine's speed drifts within a run). "attack --json" is the command line's own report of its optimisation`,
  `(a process per sample), against the same SGD loop in tfjs; "tutorial" is the whole process, start to exit.`,
  '',
  table(rows.filter((r) => !r.group.startsWith('mobilenet') && r.group !== 'faceapi')),
  '',
  ...mobileNetReport(),
  ...faceApiReport(),
  ...scalingTable(),
  `Agreement (max |tfjs − mislead| / max |mislead|, tolerance ${TOLERANCE}, ${TRAJECTORY_TOLERANCE} after ${wholeIterations} SGD steps, ${GRADIENT_TOLERANCE} for MobileNet's and face-api's input gradients): ${checks.length - failed.length}/${checks.length} checks pass` +
    BACKENDS.map((b) => `; worst ${b}: ${worst(b).relError!.toExponential(1)} (${worst(b).name})`).join(''),
  ...checks.filter((c) => !c.name.match(/^(conv|pool|dense|log-softmax|dw\.|pw\.)/)).map((c) => `  ${c.backend.padEnd(9)} ${c.name.padEnd(38)} ${c.relError === null ? 'n/a' : c.relError.toExponential(1)}${c.ok ? '' : '  MISMATCH'}`),
  ...na.map((n) => `  ${n}`),
  ...failed.map((c) => `  MISMATCH ${c.backend} ${c.name}: ${c.relError}`),
  '',
  `${quick ? 'Quick' : 'Full'} run: ${seconds.toFixed(1)} s after the build and imports (${Object.entries(sections).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}). Results: ${outPath}`,
];
process.stdout.write(lines.join('\n') + '\n');

writeFileSync(
  outPath,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      mode: quick ? 'quick' : 'full',
      seconds: Number(seconds.toFixed(1)),
      sections,
      machine: { ...info, tfjs: tf.tfjs, tfjsWasmSimd: tf.wasmSimd, tfjsWasmThreads: tf.wasmThreads },
      peak: { gflops: peakGflops, startAndEnd: peakSamples, what: 'wasm SIMD: 10 independent accumulators, acc += x·w (f32x4.mul + f32x4.add, 8 flops each), one thread; the fastest sample' },
      network: { input: ARCH.input, layers: ARCH.layers, weights: 'N(0, 0.1²), seeded', batches: [1, big], imageSeeds: { b1: one.seed, [`b${big}`]: batch.seed } },
      mobilenet: {
        ...MOBILENET,
        batches: [1, mnBig],
        layers: mobilenet.architecture.layers.length,
        forwardFlopsPerImage: mnFlops,
        weights: 'tfjs-layers model; kernels uniform with variance 2/fan-in, batch norm γ and moving variance in [0.5, 1.5), β and moving mean in [−0.5, 0.5), seeded',
        peakTargetsPercent: PEAK_TARGETS,
      },
      faceapi: {
        model: '@vladmandic/face-api age_gender_model, its gender head, imported with importFaceApi',
        input: faceApiNet.architecture.input,
        batches: faceApi.batches.map((b) => b.n),
        forwardFlopsPerImage: networkConvs(faceApiNet.architecture).flops,
        pictures: 'seeded uniform noise, whole grey levels 0..255',
      },
      tolerance: TOLERANCE,
      gradientTolerance: GRADIENT_TOLERANCE,
      agreement: checks,
      bothCores: { work: scalings.map((s) => ({ ...s, speedup: s.oneThread.medianMs / s.pool.medianMs })), poolStart },
      cases: rows.map((r) => ({
        name: r.name,
        group: r.group,
        batch: r.batch,
        flops: r.flops,
        ...Object.fromEntries(ENGINES.map((e) => [e, r.results[e] ?? null])),
        gflops: Object.fromEntries(ENGINES.map((e) => [e, gflops(r, e)])),
        misleadPercentOfPeak: percentOfPeak(r),
        peakAround: r.peak ?? null,
        ...(r.stream ? { memoryStream: r.stream, memoryCeilingPercentOfPeak: memoryCeiling(r) } : {}),
        maxRelError: r.agreement,
      })),
      sink,
    },
    null,
    2,
  ) + '\n',
);
// Two charts of the run: the times of whole iterations and runs against the peers (log scale),
// and every convolution's share of the SIMD peak.
const chartPath = (name: string) => fileURLToPath(new URL(quick ? `./${name}.quick.png` : `./${name}.png`, import.meta.url));
// A --quick chart (one sample per timing, batch 4, often on a busy machine) must not pass for results.
const watermark = quick ? 'SMOKE RUN (--quick), NOT RESULTS' : undefined;
const timeRows = [
  ...rows.filter((r) => r.group === 'end-to-end' || (r.group === 'whole runs' && r.name.startsWith('attack')) || (r.group === 'conv layers' && r.batch === 1)),
  ...rows.filter((r) => r.group === 'mobilenet' || r.group === 'faceapi'),
];
writeFileSync(chartPath('speed'), svgToPng(barChartSvg({
  watermark,
  title: `mislead and TensorFlow.js, ${info.cpu}, one core (median ms; × = how much longer tfjs takes)`,
  axis: 'milliseconds (log scale)',
  series: ENGINES.map((e) => (e === 'mislead' ? 'mislead' : `TensorFlow.js ${e.slice(5).toUpperCase()}`)),
  log: true,
  rows: timeRows.map((r) => {
    const m = r.results.mislead;
    const values = ENGINES.map((e) => (isTiming(r.results[e]) ? (r.results[e] as Timing).medianMs : null));
    const notes = values.map((v, i) => (v === null ? undefined : `${formatMs(v)} ms${i > 0 && isTiming(m) ? ` (${(v / m.medianMs).toFixed(v / m.medianMs < 100 ? 1 : 0)}×)` : ''}`));
    return { label: r.name, values, notes };
  }),
})));
// The tutorial's convolutions (batch 1 and `big`), then MobileNet's (batch 1 and mnBig).
const convRows = rows.filter((r) => ((r.group === 'kernel' && r.name.startsWith('conv')) || r.group === 'mobilenet kernel') && r.batch === 1);
writeFileSync(chartPath('peak'), svgToPng(barChartSvg({
  watermark,
  title: 'Share of the SIMD peak, measured around each case',
  axis: '% of peak',
  series: ['batch 1', `batch ${big}${mnBig === big ? '' : ` (MobileNet: ${mnBig})`}`],
  log: false,
  // Past 100 % when the host's load moved between a case and the peak around it.
  max: Math.max(100, ...rows.map((r) => Math.ceil(((percentOfPeak(r) ?? 0) + 5) / 10) * 10)),
  mark: { at: 65, label: 'target 65 % (tutorial)' },
  rows: convRows.map((r) => {
    const bigName = r.name.replace(/b1$/, `b${r.group === 'kernel' ? big : mnBig}`);
    const values = [r, rows.find((o) => o.name === bigName)].map((o) => (o ? percentOfPeak(o) : null));
    const target = peakTarget(r);
    return { label: `${r.name.replace(/ b1$/, '')}${target === null ? '' : ` (target ${target} %)`}`, values, notes: values.map((v) => (v === null ? undefined : `${v.toFixed(0)} %`)) };
  }),
})));
progress(`Charts: ${chartPath('speed')}, ${chartPath('peak')}`);
if (failed.length > 0) process.exitCode = 1;
