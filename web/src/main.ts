// The page: picks a picture, a model and an attack, sends them to the worker that owns the engine,
// and shows the attack as it goes. Pictures become model inputs here with the same code as the
// command line (decodeImage in the worker, then crop and imageToInput), so the numbers are the same.
import './style.css';
import { crop as cropImage, encodePng, type Image } from '../../src/image.js';
import { plannedIterations, type AttackMethod } from '../../src/attacks/index.js';
import { argmax, softmax, type Architecture } from '../../src/model.js';
import { writeNpy } from '../../src/npy.js';
import { filterImage, imageToInput, inputToImage } from '../../src/preprocess.js';
import { CropBox, type Rect } from './crop.js';
import { METHODS, TUTORIAL, defaultParams, methodById, sampleOrder, suiteOptions, type MethodSpec, type ParamSpec, type Params, type Step } from './methods.js';
import type { Progress, Request, Response, SuiteResult } from './protocol.js';
import { formatLoss, paintBars, paintImage, paintLoss, paintPreview, percent, type Curve } from './render.js';

// ---------------------------------------------------------------------------------------------
// What the build found in weights/ (see vite.config.ts): empty when the files were missing.

const DEFAULT_MODEL = Object.values(
  import.meta.glob('@weights/default.safetensors', { query: '?url', import: 'default', eager: true }) as Record<string, string>,
)[0] as string | undefined;
const SAMPLES = Object.entries(import.meta.glob('@weights/samples/*.png', { query: '?url', import: 'default', eager: true }) as Record<string, string>)
  .map(([path, url]) => ({ name: path.split('/').pop()!, url }))
  .sort((a, b) => sampleOrder(a.name, b.name));

// ---------------------------------------------------------------------------------------------
// Elements

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const el = {
  samples: $('samples'),
  samplesMissing: $('samples-missing'),
  pictureSet: $<HTMLFieldSetElement>('picture-set'),
  modelSet: $<HTMLFieldSetElement>('model-set'),
  attackSet: $<HTMLFieldSetElement>('attack-set'),
  photo: $<HTMLInputElement>('photo'),
  dropzone: $('dropzone'),
  cropper: $('cropper'),
  picture: $<HTMLCanvasElement>('picture'),
  pictureName: $('picture-name'),
  cropReset: $<HTMLButtonElement>('crop-reset'),
  modelDefault: $<HTMLInputElement>('model-default'),
  modelOwn: $<HTMLInputElement>('model-own'),
  modelOwnLabel: $('model-own-label'),
  modelFile: $<HTMLInputElement>('model-file'),
  modelInfo: $('model-info'),
  method: $<HTMLSelectElement>('method'),
  methodSummary: $('method-summary'),
  target: $<HTMLSelectElement>('target'),
  params: $('params'),
  run: $<HTMLButtonElement>('run'),
  tutorial: $<HTMLButtonElement>('tutorial'),
  stop: $<HTMLButtonElement>('stop'),
  status: $('status'),
  error: $('error'),
  results: $('results'),
  stage: $('stage'),
  original: $<HTMLCanvasElement>('original'),
  filter: $<HTMLCanvasElement>('filter'),
  adversarial: $<HTMLCanvasElement>('adversarial'),
  originalCaption: $('original-caption'),
  filterCaption: $('filter-caption'),
  adversarialCaption: $('adversarial-caption'),
  bars: $('bars'),
  loss: $<HTMLCanvasElement>('loss'),
  lossNote: $('loss-note'),
  lossScale: $('loss-scale'),
  lossAbout: $('loss-about'),
  filterTitle: $('filter-title'),
  statIterations: $('stat-iterations'),
  statLoss: $('stat-loss'),
  statRate: $('stat-rate'),
  statLinf: $('stat-linf'),
  statL2: $('stat-l2'),
  statPsnr: $('stat-psnr'),
  statSsim: $('stat-ssim'),
  /** The stats only suite methods have (L2, PSNR, SSIM of the saved image). */
  suiteStats: [...document.querySelectorAll<HTMLElement>('.suite-only')],
  saved: $('saved'),
  downloads: $('downloads'),
  downloadPng: $<HTMLAnchorElement>('download-png'),
  downloadNpy: $<HTMLAnchorElement>('download-npy'),
  downloadFilter: $<HTMLAnchorElement>('download-filter'),
  finalLogits: $<HTMLOutputElement>('final-logits'),
  engineInfo: $('engine-info'),
};

// ---------------------------------------------------------------------------------------------
// The worker, as promises

// The worker is replaced by a fresh one to stop a suite method (runAttack cannot see a Stop
// message while it runs): `worker` is the current one, and messages from an old one are ignored.
let worker: Worker;
let nextId = 1;
const pending = new Map<number, { resolve: (r: Response) => void; reject: (e: Error) => void; progress?: (p: Progress) => void }>();
let engineReady = false;

class WorkerError extends Error {
  constructor(message: string, readonly input: boolean) {
    super(message);
  }
}

/** What the requests of a terminated worker are rejected with. */
class StoppedError extends Error {}

function startWorker(): void {
  const w = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'mislead-engine' });
  worker = w;
  w.onmessage = (e: MessageEvent<Response>) => {
    if (w !== worker) return;
    const r = e.data;
    if (r.type === 'ready') {
      engineReady = true;
      el.engineInfo.textContent = `Kernels compiled in ${Math.round(r.ms)} ms.`;
      refreshButtons();
      return;
    }
    if (r.type === 'error' && r.id === 0) {
      showError(r.message);
      setStatus('The engine could not start.');
      return;
    }
    const waiting = pending.get(r.id);
    if (!waiting) return;
    if (r.type === 'progress') return waiting.progress?.(r);
    pending.delete(r.id);
    if (r.type === 'error') waiting.reject(new WorkerError(r.message, r.input));
    else waiting.resolve(r);
  };
  w.onerror = (e) => {
    if (w !== worker) return;
    showError(`The engine's worker failed: ${e.message || 'unknown error'}`);
  };
}

/** Ends the current worker and whatever it is doing (its requests fail with a StoppedError), and
 *  starts a fresh one with the current model; the picture's input is classified again with it. */
async function restartWorker(): Promise<void> {
  worker.terminate();
  engineReady = false;
  const dropped = [...pending.values()];
  pending.clear();
  startWorker();
  for (const p of dropped) p.reject(new StoppedError('stopped'));
  const model = state.model, input = state.input;
  try {
    await busy(async () => {
      if (!model) return;
      const copy = model.bytes.slice();
      await call<'model'>({ type: 'model', bytes: copy, name: model.name }, [copy.buffer]);
      if (input) await call<'predicted'>({ type: 'predict', inputs: [input] });
    });
  } catch (e) {
    failed('The engine could not be restarted', e);
  }
}

startWorker();

type Req = Request extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

function call<T extends Response['type']>(req: Req, transfer: Transferable[] = [], progress?: (p: Progress) => void): Promise<Extract<Response, { type: T }>> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve: resolve as (r: Response) => void, reject, progress });
    worker.postMessage({ ...req, id } as Request, transfer);
  });
}

// ---------------------------------------------------------------------------------------------
// State

interface LoadedModel {
  name: string;
  /** The file, to load it again into a fresh worker. */
  bytes: Uint8Array;
  architecture: Architecture;
  parameters: number;
}

const state = {
  image: undefined as Image | undefined,
  imageName: '',
  model: undefined as LoadedModel | undefined,
  defaultBytes: undefined as Uint8Array | undefined,
  ownModel: undefined as { bytes: Uint8Array; name: string } | undefined,
  /** The model input of the picture as cropped, and the model's logits for it. */
  input: undefined as Float32Array | undefined,
  before: undefined as number[] | undefined,
  targetChosen: false,
  running: false,
  /** How the current run stops: 'filter' asks the worker, 'suite' restarts it. */
  runEngine: 'filter' as MethodSpec['engine'],
  busy: 0,
  curve: { values: new Float32Array(1024), count: 0, marks: [], planned: 0, scale: 'log' } as Curve,
  dx: undefined as Float32Array | undefined,
  urls: [] as string[],
};

const crop = new CropBox(
  { frame: $('frame'), box: $('crop-box'), handle: $('crop-handle'), x: $('crop-x'), y: $('crop-y'), w: $('crop-w'), h: $('crop-h') },
  () => scheduleInput(),
);

// ---------------------------------------------------------------------------------------------
// Messages

function setStatus(text: string): void {
  el.status.textContent = text;
}

function showError(text: string): void {
  el.error.textContent = text;
  el.error.hidden = false;
}

function clearError(): void {
  el.error.hidden = true;
  el.error.textContent = '';
}

function failed(what: string, e: unknown): void {
  const message = e instanceof Error ? e.message : String(e);
  showError(`${what}: ${message}`);
}

/** Busy work (loading a file, say) disables Run until it is over. */
async function busy<T>(work: () => Promise<T>): Promise<T> {
  state.busy++;
  refreshButtons();
  try {
    return await work();
  } finally {
    state.busy--;
    refreshButtons();
  }
}

function refreshButtons(): void {
  const ready = engineReady && !state.running && state.busy === 0 && !!state.model && !!state.input;
  el.run.disabled = !ready;
  el.tutorial.disabled = !ready;
  el.stop.disabled = !state.running;
  for (const set of [el.pictureSet, el.modelSet, el.attackSet]) set.disabled = state.running;
  el.results.setAttribute('aria-busy', String(state.running));
}

// ---------------------------------------------------------------------------------------------
// Pictures

function buildSamples(): void {
  if (SAMPLES.length === 0) {
    el.samplesMissing.hidden = false;
    el.samplesMissing.textContent =
      'No sample faces in this build (weights/samples/*.png was missing when the page was built). Upload a photo instead.';
    el.samples.hidden = true;
    return;
  }
  el.samples.replaceChildren(
    ...SAMPLES.map((s, i) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'sample';
      b.setAttribute('aria-pressed', 'false');
      b.setAttribute('aria-label', `Sample face ${i + 1} (${s.name})`);
      b.title = s.name;
      b.dataset.name = s.name;
      const img = document.createElement('img');
      img.src = s.url;
      img.alt = '';
      img.width = 48;
      img.height = 48;
      b.append(img);
      b.addEventListener('click', () => void pickSample(i));
      return b;
    }),
  );
}

async function pickSample(i: number): Promise<void> {
  const s = SAMPLES[i];
  for (const [j, b] of [...el.samples.children].entries()) b.setAttribute('aria-pressed', String(i === j));
  await loadPicture(s.name, async () => new Uint8Array(await (await fetch(s.url)).arrayBuffer()));
}

async function loadPicture(name: string, read: () => Promise<Uint8Array>): Promise<void> {
  clearError();
  try {
    await busy(async () => {
      setStatus(`Reading ${name}…`);
      const bytes = await read();
      const { image } = await call<'decoded'>({ type: 'decode', bytes, name }, [bytes.buffer]);
      state.image = image;
      state.imageName = name;
      el.cropper.hidden = false;
      paintPreview(el.picture, image);
      // Small pictures are drawn larger with visible pixels; large ones are shrunk smoothly.
      el.picture.classList.toggle('pixelated', image.width < 320);
      el.pictureName.textContent = `${name}: ${image.width}×${image.height} pixels`;
      crop.reset(image.width, image.height, aspect());
      setStatus(`${name} loaded.`);
    });
  } catch (e) {
    failed(`Could not read ${name}`, e);
    setStatus('');
  }
}

function aspect(): number {
  const input = state.model?.architecture.input ?? [1, 1];
  return input[0] / input[1];
}

async function pickFile(file: File | undefined): Promise<void> {
  if (!file) return;
  for (const b of el.samples.children) b.setAttribute('aria-pressed', 'false');
  await loadPicture(file.name, async () => new Uint8Array(await file.arrayBuffer()));
}

// ---------------------------------------------------------------------------------------------
// The model input and the model's answer for it

let inputTimer = 0;
let inputSeq = 0;

/** The picture, the crop or the model changed: the model input is out of date until updateInput. */
function scheduleInput(): void {
  state.input = undefined;
  state.before = undefined;
  for (const key of ['before', 'crop']) delete el.results.dataset[key];
  refreshButtons();
  clearTimeout(inputTimer);
  inputTimer = window.setTimeout(() => void updateInput(), 30);
}

async function updateInput(): Promise<void> {
  const image = state.image, model = state.model;
  if (!image || !model) return;
  const seq = ++inputSeq;
  const r: Rect = crop.value;
  let x: Float32Array;
  try {
    x = imageToInput(cropImage(image, r.x, r.y, r.w, r.h), model.architecture);
  } catch (e) {
    return failed('Could not crop the picture', e);
  }
  state.input = x;
  resetResults();
  try {
    const { logits } = await busy(() => call<'predicted'>({ type: 'predict', inputs: [x] }));
    if (seq !== inputSeq) return;
    state.before = logits[0];
    el.results.dataset.before = JSON.stringify(state.before);
    el.results.dataset.crop = [r.x, r.y, r.w, r.h].join(',');
    const labels = model.architecture.labels;
    const best = argmax(state.before);
    if (!state.targetChosen) el.target.value = defaultTarget();
    el.originalCaption.textContent = `${labels[best]} (${percent(softmax(state.before)[best])})`;
    el.adversarialCaption.textContent = 'not run yet';
    paintBars(el.bars, labels, state.before, +el.target.value);
    setStatus(`The network says ${labels[best]}. Choose a target and press Run.`);
  } catch (e) {
    failed('Could not classify the picture', e);
  }
}

/** The result panels for a new input: the original, a zero filter and no run. */
function resetResults(): void {
  const model = state.model!, x = state.input!;
  const arch = model.architecture;
  const [h, w, c] = arch.input;
  paintImage(el.original, inputToImage(x, arch));
  paintImage(el.filter, filterImage(new Float32Array(x.length), h, w, c as 1 | 3));
  paintImage(el.adversarial, inputToImage(x, arch));
  el.originalCaption.textContent = '';
  el.adversarialCaption.textContent = '';
  el.filterCaption.textContent = 'grey = no change';
  const suite = methodById(el.method.value).engine === 'suite';
  el.filterTitle.textContent = suite ? 'Perturbation' : 'Noise filter';
  for (const d of el.suiteStats) d.hidden = !suite;
  el.stage.textContent = '';
  el.saved.textContent = '';
  el.downloads.hidden = true;
  state.curve.count = 0;
  state.curve.marks = [];
  state.curve.planned = 0;
  paintLoss(el.loss, state.curve);
  el.loss.setAttribute('aria-label', 'Loss curve: no run yet');
  el.lossNote.hidden = true;
  for (const d of [el.statIterations, el.statLoss, el.statRate, el.statLinf, el.statL2, el.statPsnr, el.statSsim]) d.textContent = '–';
  el.results.dataset.state = 'idle';
  for (const key of ['logits', 'label', 'savedLabel', 'iterations', 'rate', 'busyRate', 'method', 'success', 'l2', 'linf', 'psnr', 'ssim']) delete el.results.dataset[key];
  el.finalLogits.textContent = '';
  paintBars(el.bars, arch.labels, undefined, +el.target.value);
}

// ---------------------------------------------------------------------------------------------
// Models

async function useModel(bytes: Uint8Array, name: string): Promise<boolean> {
  clearError();
  try {
    return await busy(async () => {
      setStatus(`Loading the model ${name}…`);
      // The worker keeps its own copy: ours stays usable for switching back.
      const copy = bytes.slice();
      const r = await call<'model'>({ type: 'model', bytes: copy, name }, [copy.buffer]);
      state.model = { name, bytes, architecture: r.architecture, parameters: r.parameters };
      const { input, labels } = r.architecture;
      el.modelInfo.textContent = `${name}: labels ${labels.join(', ')}; input ${input.join('×')} (${input[2] === 1 ? 'grey' : 'colour'}); ${r.parameters.toLocaleString('en')} weights.`;
      state.targetChosen = false;
      buildTargets();
      if (state.image) crop.setAspect(aspect());
      setStatus(state.image ? `Model ${name} loaded.` : `Model ${name} loaded. Now pick or upload a picture.`);
      scheduleInput();
      return true;
    });
  } catch (e) {
    failed(`Could not use the model ${name}`, e);
    setStatus('');
    return false;
  }
}

async function loadDefaultModel(): Promise<void> {
  if (!DEFAULT_MODEL) {
    el.modelDefault.disabled = true;
    el.modelDefault.checked = false;
    el.modelDefault.parentElement!.append(' (missing from this build)');
    el.modelInfo.textContent =
      'No default model in this build: weights/default.safetensors was missing when the page was built. ' +
      'Upload a .safetensors model, for example one made with “mislead import-tf” or “mislead train”.';
    return;
  }
  try {
    const r = await fetch(DEFAULT_MODEL);
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    state.defaultBytes = new Uint8Array(await r.arrayBuffer());
  } catch (e) {
    return failed('Could not download the default model', e);
  }
  await useModel(state.defaultBytes, 'default.safetensors');
}

// ---------------------------------------------------------------------------------------------
// Methods and their parameters, from METHODS

function buildMethods(): void {
  const groups = new Map<string, HTMLOptGroupElement>();
  for (const m of METHODS) {
    let group = groups.get(m.group);
    if (!group) {
      group = document.createElement('optgroup');
      group.label = m.group;
      groups.set(m.group, group);
    }
    group.append(new Option(m.name, m.id));
  }
  el.method.replaceChildren(...groups.values());
  el.method.addEventListener('change', () => setMethod(el.method.value));
  buildParams();
}

function setMethod(id: string): void {
  el.method.value = id;
  buildParams();
  buildTargets();
}

/** The target choices: the model's labels, and "any other label" for methods that can be untargeted.
 *  A target the user chose is kept when the new method offers it. */
function buildTargets(): void {
  const model = state.model;
  if (!model) return;
  const labels = model.architecture.labels;
  const previous = el.target.value;
  const options = labels.map((l, i) => new Option(l, String(i)));
  if (methodById(el.method.value).untargeted) options.unshift(new Option('Any other label (untargeted)', '-1'));
  el.target.replaceChildren(...options);
  if (state.targetChosen && options.some((o) => o.value === previous)) el.target.value = previous;
  else {
    state.targetChosen = false;
    el.target.value = defaultTarget();
  }
  if (state.before?.length === labels.length) paintBars(el.bars, labels, state.before, +el.target.value);
}

/** Untargeted when the method can be (runAttack's default); else the first label that is not the
 *  picture's class, as on the command line. */
function defaultTarget(): string {
  if (methodById(el.method.value).untargeted) return '-1';
  const best = state.before ? argmax(state.before) : 0;
  return String(best === 0 ? 1 : 0);
}

const fieldOf = (p: ParamSpec) => document.getElementById(`param-${p.key}`) as HTMLInputElement | HTMLSelectElement;

/** The defaults the fields were last given: a field still showing its default follows the choices
 *  (eps follows the norm), one the user changed is kept. */
let shownDefaults: Params = {};

function buildParams(): void {
  const method = methodById(el.method.value);
  el.methodSummary.textContent = method.summary;
  shownDefaults = defaultParams(method);
  el.params.replaceChildren(
    ...method.params.map((p) => {
      const id = `param-${p.key}`;
      const wrap = document.createElement('div');
      wrap.className = 'field';
      const label = document.createElement('label');
      label.htmlFor = id;
      label.textContent = p.label;
      let input: HTMLInputElement | HTMLSelectElement;
      if (p.kind === 'choice') {
        input = document.createElement('select');
        input.append(...p.choices!.map((c) => new Option(c.label, c.value)));
        input.value = String(p.default);
        input.addEventListener('change', () => followDefaults(method));
      } else {
        input = document.createElement('input');
        input.type = 'number';
        input.required = !p.optional;
        input.min = String(p.min);
        input.max = String(p.max);
        input.step = p.kind === 'int' ? '1' : 'any';
        input.inputMode = p.kind === 'int' ? 'numeric' : 'decimal';
        input.value = String(shownDefaults[p.key] ?? p.default);
        input.addEventListener('input', () => showAuto(method));
      }
      input.id = id;
      input.name = p.key;
      const hint = document.createElement('span');
      hint.className = 'hint';
      hint.id = `${id}-hint`;
      hint.textContent = p.hint;
      input.setAttribute('aria-describedby', hint.id);
      wrap.append(label, input, hint);
      return wrap;
    }),
  );
  showAuto(method);
  refreshButtons();
}

/** A choice changed: the fields still at their default take the new default. */
function followDefaults(method: MethodSpec): void {
  const choices: Params = {};
  for (const p of method.params) if (p.kind === 'choice') choices[p.key] = fieldOf(p).value;
  const next = defaultParams(method, choices);
  for (const p of method.params) {
    if (p.kind === 'choice' || p.optional) continue;
    const input = fieldOf(p);
    if (Number(input.value) === Number(shownDefaults[p.key])) input.value = String(next[p.key]);
  }
  shownDefaults = next;
  showAuto(method);
}

/** Optional fields left blank show the value the library will take, from the others. */
function showAuto(method: MethodSpec): void {
  if (method.engine !== 'suite') return;
  const given: Params = {};
  for (const p of method.params) {
    const input = fieldOf(p);
    if (p.kind === 'choice') given[p.key] = input.value;
    else if (!p.optional && input.value !== '' && input.checkValidity()) given[p.key] = Number(input.value);
  }
  let resolved: Record<string, unknown> | undefined;
  try {
    resolved = suiteOptions(method.id as AttackMethod, given) as unknown as Record<string, unknown>;
  } catch {
    resolved = undefined;
  }
  for (const p of method.params) {
    if (!p.optional) continue;
    const v = resolved?.[p.key];
    (fieldOf(p) as HTMLInputElement).placeholder = typeof v === 'number' ? `auto: ${+v.toPrecision(4)}` : 'auto';
  }
}

function readParams(): Params | undefined {
  const params: Params = {};
  for (const p of methodById(el.method.value).params) {
    const input = fieldOf(p);
    if (p.kind === 'choice') {
      params[p.key] = input.value;
      continue;
    }
    if (!input.checkValidity()) {
      input.reportValidity();
      input.focus();
      return undefined;
    }
    if (p.optional && input.value === '') continue;
    params[p.key] = Number(input.value);
  }
  return params;
}

// ---------------------------------------------------------------------------------------------
// Running an attack

async function start(method: string, steps: Step[]): Promise<void> {
  const model = state.model, x = state.input;
  if (!model || !x || state.running) return;
  clearError();
  const spec = methodById(method);
  const suite = spec.engine === 'suite';
  const arch = model.architecture;
  const [h, w, c] = arch.input;
  const labels = arch.labels;
  const chosen = Number(el.target.value);
  /** null: untargeted (any label but the original's). */
  const target = chosen < 0 ? null : chosen;
  let planned: number;
  try {
    planned = suite ? plannedIterations(suiteOptions(method as AttackMethod, steps[0].params)) : steps.reduce((n, s) => n + Number(s.params.iterations), 0);
  } catch (e) {
    return failed(`${spec.name} cannot run with these numbers`, e);
  }
  resetResults();
  const original = state.before ? argmax(state.before) : -1;
  if (state.before) el.originalCaption.textContent = `${labels[original]} (${percent(softmax(state.before)[original])})`;
  const curve = state.curve;
  curve.count = 0;
  curve.planned = planned;
  curve.marks = [];
  curve.scale = spec.loss.scale;
  steps.reduce((at, s, i) => {
    if (i > 0) curve.marks.push({ at, label: `step ${i + 1}: β = ${s.params.beta ?? ''}` });
    return at + Number(s.params.iterations);
  }, 0);
  const about = spec.loss.about(target !== null);
  el.lossAbout.textContent = about;
  el.lossAbout.hidden = !about;
  el.lossScale.textContent = `(${spec.loss.scale} scale)`;
  el.filterTitle.textContent = suite ? 'Perturbation' : 'Noise filter';
  for (const d of el.suiteStats) d.hidden = !suite;
  el.results.dataset.method = method;
  state.running = true;
  state.runEngine = spec.engine;
  el.results.dataset.state = 'running';
  refreshButtons();
  const aim = target === null ? `anything but “${labels[original]}”` : `“${labels[target]}”`;
  setStatus(suite ? `Running ${spec.name}: making the network say ${aim}…` : `Running: making the network say “${labels[target!]}”…`);
  el.stop.focus({ preventScroll: true });
  // One column (phones): the results are under the controls; bring them into view.
  if (window.matchMedia('(max-width: 820px)').matches) el.results.scrollIntoView({ behavior: 'smooth', block: 'start' });

  let last: Progress | undefined;
  const show = (p: Progress, final: boolean) => {
    last = p;
    if (curve.count + p.losses.length > curve.values.length) {
      const grown = new Float32Array(Math.max(curve.values.length * 2, curve.count + p.losses.length));
      grown.set(curve.values.subarray(0, curve.count));
      curve.values = grown;
    }
    curve.values.set(p.losses, curve.count);
    curve.count += p.losses.length;
    if (suite) {
      curve.marks.push(...p.marks);
      // At the end the x axis ends where the run did (they stop once the saved image is adversarial).
      curve.planned = final ? curve.count : p.planned;
    }
    state.dx = p.dx;
    const adv = inputToImage(x.map((v, i) => v + p.dx[i]), arch);
    paintImage(el.filter, filterImage(p.dx, h, w, c as 1 | 3));
    paintImage(el.adversarial, adv);
    const best = argmax(p.logits);
    const probs = softmax(p.logits);
    el.adversarialCaption.textContent = `${labels[best]} (${percent(probs[best])})`;
    paintBars(el.bars, labels, p.logits, target ?? -1);
    paintLoss(el.loss, curve);
    if (suite) {
      el.stage.textContent = `${p.phase ? `${p.phase[0].toUpperCase()}${p.phase.slice(1)} · ` : ''}iteration ${p.total.toLocaleString('en')} of at most ${p.planned.toLocaleString('en')}`;
      el.statIterations.textContent = `${p.total.toLocaleString('en')} of ${p.planned.toLocaleString('en')}`;
    } else {
      const step = steps[p.step];
      const stepText = steps.length > 1 ? `${step.title} · ` : '';
      el.stage.textContent = `${stepText}iteration ${p.iteration.toLocaleString('en')} of ${Number(step.params.iterations).toLocaleString('en')}`;
      el.statIterations.textContent = `${p.total.toLocaleString('en')} of ${planned.toLocaleString('en')}`;
    }
    const lastLoss = curve.count > 0 ? curve.values[curve.count - 1] : NaN;
    el.statLoss.textContent = formatLoss(lastLoss);
    const rate = p.total / (p.elapsed / 1000);
    el.statRate.textContent = `${Math.round(rate).toLocaleString('en')} it/s`;
    el.results.dataset.rate = String(rate);
    el.results.dataset.busyRate = String(p.total / (p.busy / 1000));
    let linf = 0, sq = 0;
    for (const v of p.dx) {
      linf = Math.max(linf, Math.abs(v));
      sq += v * v;
    }
    el.statLinf.textContent = `${(linf * Math.abs(arch.preprocess.scale)).toFixed(1)} grey levels`;
    // Live, of the current (float) image; the final numbers are those of the saved one.
    if (suite) el.statL2.textContent = `${(Math.sqrt(sq) * Math.abs(arch.preprocess.scale)).toFixed(1)} grey levels`;
    el.filterCaption.textContent = `±${(linf * Math.abs(arch.preprocess.scale)).toFixed(1)} grey levels`;
    el.loss.setAttribute('aria-label', `Loss curve, ${spec.loss.scale} scale: ${curve.count} iterations, last loss ${el.statLoss.textContent}`);
    const zero = spec.loss.scale === 'log' ? curve.values.subarray(0, curve.count).findIndex((v) => v <= 0) : -1;
    el.lossNote.hidden = zero < 0;
    el.lossNote.textContent =
      zero < 0
        ? ''
        : suite
          ? `The loss is exactly 0 at iteration ${(zero + 1).toLocaleString('en')}, where float32 rounds a probability to 1: drawn on the line marked 0.`
          : `The loss is exactly 0 from iteration ${(zero + 1).toLocaleString('en')} on, where float32 rounds the target's probability to 1: drawn on the line marked 0.`;
    if (final) el.results.dataset.iterations = String(p.total);
  };

  try {
    const done = await call<'done'>({ type: 'run', method, input: x, target, steps }, [], (p) => show(p, false));
    if (done.result) {
      show(done, true);
      await finishSuite(spec, x, arch, original, target, done.result, done.elapsed);
      return;
    }
    show(done, true);
    const best = argmax(done.logits);
    const fooled = best === target;
    el.results.dataset.logits = JSON.stringify(done.logits);
    el.results.dataset.label = labels[best];
    el.finalLogits.textContent = JSON.stringify(done.logits);
    el.results.dataset.state = done.stopped ? 'stopped' : 'done';
    const ms = done.elapsed;
    const how = `${done.total.toLocaleString('en')} iterations in ${(ms / 1000).toFixed(2)} s`;
    const verdict = fooled ? `The network now says “${labels[best]}”: it has been misled.` : `The network still says “${labels[best]}”.`;
    setStatus((done.stopped ? `Stopped after ${how}. ` : `Done: ${how}. `) + verdict);
    el.stage.textContent = `${done.stopped ? 'Stopped' : 'Done'} after ${done.total.toLocaleString('en')} iterations. ${verdict}`;
    await offerDownloads(x, done.dx, arch, target!);
  } catch (e) {
    if (e instanceof StoppedError) {
      const n = (last?.total ?? 0).toLocaleString('en');
      el.results.dataset.state = 'stopped';
      el.results.dataset.iterations = String(last?.total ?? 0);
      setStatus(
        `Stopped ${spec.name} after ${n} iterations. It cannot pause, so the engine was restarted to stop it: ` +
          'the picture shown is where it had got to, not a result, and there is nothing to download.',
      );
      el.stage.textContent = `Stopped after ${n} iterations: the run was ended by restarting the engine.`;
      return;
    }
    el.results.dataset.state = 'error';
    failed('The attack failed', e);
    setStatus('');
  } finally {
    state.running = false;
    refreshButtons();
  }
}

/** The end of a suite run: its result as runAttack judged it, on the image as saved. */
async function finishSuite(spec: MethodSpec, x: Float32Array, arch: Architecture, original: number, target: number | null, r: SuiteResult, ms: number): Promise<void> {
  const labels = arch.labels;
  const best = argmax(r.logits);
  const d = el.results.dataset;
  d.logits = JSON.stringify(r.logits);
  d.label = labels[best];
  d.iterations = String(r.iterations);
  d.success = String(r.success);
  d.l2 = String(r.l2);
  d.linf = String(r.linf);
  d.psnr = String(r.psnr);
  d.ssim = String(r.ssim);
  el.finalLogits.textContent = JSON.stringify(r.logits);
  d.state = 'done';
  el.statIterations.textContent = `${r.iterations.toLocaleString('en')} (${r.gradients.toLocaleString('en')} gradients)`;
  const grey = (v: number, digits: number) => `${v.toFixed(digits)} grey level${v === 1 ? '' : 's'}`;
  el.statLinf.textContent = grey(r.linf, r.linf % 1 ? 2 : 0);
  el.statL2.textContent = grey(r.l2, 1);
  el.statPsnr.textContent = Number.isFinite(r.psnr) ? `${r.psnr.toFixed(2)} dB` : '∞ (no change)';
  el.statSsim.textContent = r.ssim.toFixed(4);
  el.filterCaption.textContent = `±${r.linf.toFixed(r.linf % 1 ? 2 : 0)} grey levels, L2 ${r.l2.toFixed(1)}`;
  const aim = target === null ? `any label but “${labels[original]}”` : `“${labels[target]}”`;
  const verdict =
    target === original
      ? `The network says “${labels[best]}”, the target: it already did for the original.`
      : r.success
        ? `The network now says “${labels[best]}”: it has been misled.`
        : `The network still says “${labels[best]}”: ${spec.name} did not reach ${aim}.`;
  const iterations = `${r.iterations.toLocaleString('en')} iteration${r.iterations === 1 ? '' : 's'}`;
  setStatus(`Done: ${iterations} in ${(ms / 1000).toFixed(2)} s. ${verdict}`);
  el.stage.textContent = `Done after ${iterations}. ${verdict} L∞ ${el.statLinf.textContent}, L2 ${el.statL2.textContent}, PSNR ${el.statPsnr.textContent}, SSIM ${el.statSsim.textContent}.`;
  const succeeded = (k: number) => (target === null ? k !== original : k === target);
  await offerDownloads(x, r.perturbation, arch, target ?? -1, { adversarial: r.adversarial, succeeded });
}

/** The files the command line writes, made here: adversarial.png, perturbation.npy and filter.png;
 *  and the network's answer for the picture as saved (8 bits per pixel). A suite result gives its
 *  adversarial (already on the 8-bit grid) and how it judges success. */
async function offerDownloads(
  x: Float32Array,
  dx: Float32Array,
  arch: Architecture,
  target: number,
  suite?: { adversarial: Float32Array; succeeded: (label: number) => boolean },
): Promise<void> {
  for (const u of state.urls) URL.revokeObjectURL(u);
  const [h, w, c] = arch.input;
  const adversarial = inputToImage(suite ? suite.adversarial : x.map((v, i) => v + dx[i]), arch);
  const blobs: [HTMLAnchorElement, Uint8Array, string][] = [
    [el.downloadPng, encodePng(adversarial), 'image/png'],
    [el.downloadNpy, writeNpy(dx, [h, w, c]), 'application/octet-stream'],
    [el.downloadFilter, encodePng(filterImage(dx, h, w, c as 1 | 3)), 'image/png'],
  ];
  state.urls = blobs.map(([a, bytes, type]) => (a.href = URL.createObjectURL(new Blob([bytes as BlobPart], { type }))));
  el.downloads.hidden = false;
  try {
    const { logits } = await call<'predicted'>({ type: 'predict', inputs: [imageToInput(adversarial, arch)] });
    const labels = arch.labels;
    const best = argmax(logits[0]);
    const said = `As saved (8-bit adversarial.png), the network says ${labels[best]} (${percent(softmax(logits[0])[best])})`;
    el.saved.textContent = suite
      ? said + (suite.succeeded(best) ? ': misled.' : '.')
      : said + (best === target ? ': still misled.' : ': rounding to whole grey levels undid the attack; try more iterations.');
    el.results.dataset.savedLabel = labels[best];
  } catch (e) {
    if (!(e instanceof StoppedError)) failed('Could not classify the saved image', e);
  }
}

// ---------------------------------------------------------------------------------------------
// Wiring

buildMethods();
buildSamples();
paintLoss(el.loss, state.curve);

el.run.addEventListener('click', () => {
  const params = readParams();
  if (!params) return;
  const method = el.method.value;
  void start(method, [{ title: 'Run', params }]);
});
el.tutorial.addEventListener('click', () => {
  if (el.method.value !== TUTORIAL.method) setMethod(TUTORIAL.method);
  void start(TUTORIAL.method, TUTORIAL.steps);
});
el.stop.addEventListener('click', () => {
  if (!state.running) return;
  if (state.runEngine === 'suite') {
    // runAttack is one synchronous call: the worker cannot read a message until it returns.
    setStatus('Stopping: restarting the engine…');
    void restartWorker();
    return;
  }
  worker.postMessage({ type: 'stop' } satisfies Request);
  setStatus('Stopping…');
});
el.target.addEventListener('change', () => {
  state.targetChosen = true;
  if (state.model) paintBars(el.bars, state.model.architecture.labels, state.before, +el.target.value);
});
el.photo.addEventListener('change', () => {
  void pickFile(el.photo.files?.[0]);
  el.photo.value = '';
});
el.cropReset.addEventListener('click', () => {
  if (state.image) crop.reset(state.image.width, state.image.height, aspect());
});
el.modelFile.addEventListener('change', async () => {
  const file = el.modelFile.files?.[0];
  el.modelFile.value = '';
  if (!file) return;
  const bytes = new Uint8Array(await file.arrayBuffer());
  if (await useModel(bytes, file.name)) {
    state.ownModel = { bytes, name: file.name };
    el.modelOwn.disabled = false;
    el.modelOwn.checked = true;
    el.modelOwnLabel.textContent = `Your model: ${file.name}`;
  } else {
    // The previous model is still the one in use.
    (state.model?.name === state.ownModel?.name && state.ownModel ? el.modelOwn : el.modelDefault).checked = !!state.model;
  }
});
for (const radio of [el.modelDefault, el.modelOwn]) {
  radio.addEventListener('change', () => {
    if (!radio.checked) return;
    const source = radio === el.modelOwn ? state.ownModel : state.defaultBytes && { bytes: state.defaultBytes, name: 'default.safetensors' };
    if (source) void useModel(source.bytes, source.name);
  });
}

// Drop a picture anywhere on the picture's fieldset.
for (const type of ['dragenter', 'dragover'] as const) {
  el.pictureSet.addEventListener(type, (e) => {
    if (state.running || !e.dataTransfer?.types.includes('Files')) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    el.dropzone.classList.add('is-over');
  });
}
el.pictureSet.addEventListener('dragleave', (e) => {
  if (!el.pictureSet.contains(e.relatedTarget as Node | null)) el.dropzone.classList.remove('is-over');
});
el.pictureSet.addEventListener('drop', (e) => {
  el.dropzone.classList.remove('is-over');
  if (state.running) return;
  e.preventDefault();
  void pickFile(e.dataTransfer?.files[0]);
});

new ResizeObserver(() => paintLoss(el.loss, state.curve)).observe(el.loss);

// Start: the default model, then the first sample face.
void (async () => {
  setStatus(DEFAULT_MODEL ? 'Loading the default model…' : 'Upload a model to begin.');
  await loadDefaultModel();
  if (SAMPLES.length > 0) await pickSample(0);
  else if (state.model) setStatus('Upload a photo to begin.');
})();
