// The page: picks a picture, a model and an attack, sends them to the worker that owns the engine,
// and shows the attack as it goes. Pictures become model inputs here with the same code as the
// command line (decodeImage in the worker, then crop and imageToInput), so the numbers are the same.
import './style.css';
import FACEAPI from 'virtual:faceapi-model';
import { crop as cropImage, type Image } from '../../src/formats/image.js';
import { methodById as libraryMethod, nothingToDo, plannedIterations, type AttackOptions } from '../../src/attacks/index.js';
import { endsInSoftmax, inputUnits, type Architecture } from '../../src/formats/model.js';
import { argmax, softmax } from '../../src/core/net.js';
import { resultFiles } from '../../src/formats/results.js';
import { filterImage, imageToInput, inputToImage } from '../../src/formats/preprocess.js';
import { CropBox, type Rect } from './crop.js';
import { METHODS, TUTORIAL, attackOptions, checkOptions, defaultParams, fieldOfMessage, methodById, resolved, sampleOrder, type MethodSpec, type Params, type TutorialStep } from './methods.js';
import type { Progress, Request, Response, Result } from './protocol.js';
import { formatLoss, paintBars, paintImage, paintLoss, paintPreview, percent, type Curve } from './render.js';

// ---------------------------------------------------------------------------------------------
// What the build found in weights/ (see vite.config.ts): empty when the files were missing.

const DEFAULT_MODEL = Object.values(
  import.meta.glob('@weights/default.safetensors', { query: '?url', import: 'default', eager: true }) as Record<string, string>,
)[0] as string | undefined;
const SAMPLES = Object.entries(import.meta.glob('@weights/samples/*.png', { query: '?url', import: 'default', eager: true }) as Record<string, string>)
  .map(([path, url]) => ({ name: path.split('/').pop()!, url }))
  .sort((a, b) => sampleOrder(a.name, b.name));
/** The name of face-api.js's gender network as the build converted it (FACEAPI: vite.config.ts). */
const FACEAPI_NAME = 'faceapi-gender.safetensors';

/** The attack offered for a model that reads face boxes as face-api does (its 112×112 RGB network):
 *  PGD, and an L∞ budget of 2 grey levels for every method, leave the face looking the same (PSNR
 *  ≈ 47 dB) and fool it on the sample faces in a step or two. The page's other defaults do not
 *  suit it: the L∞ budget of 8 gives ≈ 35 dB, and the filter takes its 1000 iterations at some 20
 *  a second on a network of this size. */
const FACE_BOX_ATTACK = { method: 'pgd', linfEps: 2 };

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
  modelFaceapi: $<HTMLInputElement>('model-faceapi'),
  modelFaceapiNote: $('model-faceapi-note'),
  viewNote: $('view-note'),
  downloadNote: $('download-note'),
  modelFile: $<HTMLInputElement>('model-file'),
  modelInfo: $('model-info'),
  method: $<HTMLSelectElement>('method'),
  methodSummary: $('method-summary'),
  methodPaper: $('method-paper'),
  target: $<HTMLSelectElement>('target'),
  params: $('params'),
  run: $<HTMLButtonElement>('run'),
  tutorial: $<HTMLButtonElement>('tutorial'),
  stop: $<HTMLButtonElement>('stop'),
  status: $('status'),
  error: $('error'),
  pictureError: $('picture-error'),
  modelError: $('model-error'),
  targetError: $('target-error'),
  results: $('results'),
  stage: $('stage'),
  original: $<HTMLCanvasElement>('original'),
  filter: $<HTMLCanvasElement>('filter'),
  adversarial: $<HTMLCanvasElement>('adversarial'),
  originalCaption: $('original-caption'),
  filterCaption: $('filter-caption'),
  adversarialCaption: $('adversarial-caption'),
  adversarialTitle: $('adversarial-title'),
  stepPanels: [...document.querySelectorAll<HTMLElement>('.panel.step')],
  step1Filter: $<HTMLCanvasElement>('step1-filter'),
  step1Adversarial: $<HTMLCanvasElement>('step1-adversarial'),
  step1FilterCaption: $('step1-filter-caption'),
  step1AdversarialCaption: $('step1-adversarial-caption'),
  lossSection: $('loss-section'),
  oneStep: $('one-step'),
  statRateTitle: $('stat-rate-title'),
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

const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'mislead-engine' });
let nextId = 1;
const pending = new Map<number, { resolve: (r: Response) => void; reject: (e: Error) => void; progress?: (p: Progress) => void }>();
let engineReady = false;

class WorkerError extends Error {
  constructor(message: string, readonly input: boolean) {
    super(message);
  }
}

worker.onmessage = (e: MessageEvent<Response>) => {
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
worker.onerror = (e) => showError(`The engine's worker failed: ${e.message || 'unknown error'}`);

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
  architecture: Architecture;
  parameters: number;
}

const state = {
  image: undefined as Image | undefined,
  imageName: '',
  model: undefined as LoadedModel | undefined,
  defaultBytes: undefined as Uint8Array | undefined,
  ownModel: undefined as { bytes: Uint8Array; name: string } | undefined,
  faceapiBytes: undefined as Uint8Array | undefined,
  /** The choice of the model in use. */
  modelRadio: undefined as HTMLInputElement | undefined,
  /** The model input of the picture as cropped, and the model's logits for it. */
  input: undefined as Float32Array | undefined,
  before: undefined as number[] | undefined,
  targetChosen: false,
  running: false,
  busy: 0,
  /** The tutorial's steps while it runs (none for a method), and how many of them have ended. */
  steps: [] as TutorialStep[],
  stepsEnded: 0,
  curve: { values: new Float32Array(1024), count: 0, marks: [], planned: 0, scale: 'log' } as Curve,
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

/** An error is shown next to what caused it (`where`: the picture's, the model's, the target's
 *  box, or the one above Run), and brought into view. */
function showError(text: string, where = el.error): void {
  where.textContent = text;
  where.hidden = false;
  where.scrollIntoView({ block: 'nearest' });
}

function clearError(): void {
  for (const box of [el.error, el.pictureError, el.modelError, el.targetError]) {
    box.hidden = true;
    box.textContent = '';
  }
}

function failed(what: string, e: unknown, where = el.error): void {
  const message = e instanceof Error ? e.message : String(e);
  showError(`${what}: ${message}`, where);
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
    failed(`Could not read ${name}`, e, el.pictureError);
    setStatus(`${name} was not loaded${state.image ? `: still using ${state.imageName}` : ''}. See the message under the picture.`);
  }
}

/** The crop box's proportions: the model input's, or any (null) when the model pads the box to a
 *  square itself, as face-api's does: the box is then the face's. */
function aspect(): number | null {
  if (readsFaceBox()) return null;
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
  el.filterTitle.textContent = el.method.value === TUTORIAL.method ? 'Noise filter' : 'Perturbation';
  el.adversarialTitle.textContent = 'Adversarial';
  for (const panel of el.stepPanels) panel.hidden = true;
  el.lossSection.hidden = false;
  el.oneStep.hidden = true;
  el.statRateTitle.textContent = 'Speed';
  el.stage.textContent = '';
  el.saved.textContent = '';
  el.downloads.hidden = true;
  el.downloadNote.hidden = true;
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
      const wasFaceBox = readsFaceBox();
      state.model = { name, architecture: r.architecture, parameters: r.parameters };
      const faceBox = readsFaceBox();
      if (faceBox && !wasFaceBox) setMethod(FACE_BOX_ATTACK.method);
      else if (faceBox !== wasFaceBox) buildParams();
      const { input, labels } = r.architecture;
      const softmaxNote = endsInSoftmax(r.architecture) ? ' Its final softmax is left out: attacks work on the logits before it.' : '';
      el.modelInfo.textContent = `${name}: labels ${labels.join(', ')}; input ${input.join('×')} (${input[2] === 1 ? 'grey' : 'colour'}); ${r.parameters.toLocaleString('en')} weights.${softmaxNote}`;
      el.viewNote.hidden = !faceBox;
      el.viewNote.textContent = faceBox
        ? `The pictures are the box as this network reads it: padded with black to a square, then resized to ${input[0]}×${input[1]}. That is what the attack changes.`
        : '';
      state.targetChosen = false;
      buildTargets();
      if (state.image) crop.setAspect(aspect());
      setStatus(state.image ? `Model ${name} loaded.` : `Model ${name} loaded. Now pick or upload a picture.`);
      scheduleInput();
      return true;
    });
  } catch (e) {
    failed(`Could not use the model ${name}`, e, el.modelError);
    setStatus(`${name} was not loaded${state.model ? `: still using ${state.model.name}` : ''}. See the message under the model.`);
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
    return failed('Could not download the default model', e, el.modelError);
  }
  if (await useModel(state.defaultBytes, 'default.safetensors')) state.modelRadio = el.modelDefault;
}

/** Offers face-api's network when the build converted it, with where it came from. */
function offerFaceApi(): void {
  if (!FACEAPI) return;
  const { name, version, license } = FACEAPI.source;
  el.modelFaceapi.closest('label')!.hidden = false;
  el.modelFaceapiNote.hidden = false;
  el.modelFaceapiNote.textContent = `face-api.js's gender classifier (man or woman for a face box), converted when this page was built from ${name} ${version} (${license} licence).`;
}

async function useFaceApi(): Promise<boolean> {
  try {
    if (!state.faceapiBytes) {
      const r = await fetch(FACEAPI!.url);
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      state.faceapiBytes = new Uint8Array(await r.arrayBuffer());
    }
  } catch (e) {
    failed('Could not download the face-api.js model', e, el.modelError);
    return false;
  }
  return useModel(state.faceapiBytes, FACEAPI_NAME);
}

/** Whether the model in use reads the crop box as a face box, as face-api does. */
function readsFaceBox(): boolean {
  return state.model?.architecture.preprocess.resize === 'face-api';
}

/** The form's defaults for the model in use: the page's, with the L∞ budget for face boxes. */
function formDefaults(method: MethodSpec, given: Params = {}): Params {
  const defaults = defaultParams(method, given);
  if (readsFaceBox() && 'eps' in defaults && (given.norm ?? defaults.norm) !== 'l2') defaults.eps = FACE_BOX_ATTACK.linfEps;
  return defaults;
}

// ---------------------------------------------------------------------------------------------
// Methods and their parameters, from METHODS (the library's registry)

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

/** Untargeted when the method can be (the library's default); else the first label that is not the
 *  picture's class, as on the command line. */
function defaultTarget(): string {
  if (methodById(el.method.value).untargeted) return '-1';
  const best = state.before ? argmax(state.before) : 0;
  return String(best === 0 ? 1 : 0);
}

const fieldOf = (key: string) => document.getElementById(`param-${key}`) as HTMLInputElement | HTMLSelectElement;

/** The defaults the fields were last given: a field still showing its default follows the choices
 *  (eps follows the norm), one the user changed is kept. */
let shownDefaults: Params = {};

/** The method's fields, from its parameters: a number field (blank: the library's value), a
 *  choice, or a checkbox; bounds and defaults are the parameter's. */
function buildParams(): void {
  const method = methodById(el.method.value);
  el.methodSummary.textContent = method.summary;
  el.methodPaper.textContent = method.paper;
  shownDefaults = formDefaults(method);
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
        input.value = String(shownDefaults[p.key]);
        input.addEventListener('change', () => followDefaults(method));
      } else if (p.kind === 'list') {
        input = document.createElement('input');
        input.type = 'text';
        input.value = String(shownDefaults[p.key]);
        input.addEventListener('input', () => (input as HTMLInputElement).setCustomValidity(''));
      } else if (p.kind === 'boolean') {
        input = document.createElement('input');
        input.type = 'checkbox';
        input.checked = shownDefaults[p.key] === true;
        wrap.classList.add('check');
      } else {
        input = document.createElement('input');
        input.type = 'number';
        input.min = String(p.min);
        input.max = String(p.max);
        input.step = p.kind === 'int' ? '1' : 'any';
        input.inputMode = p.kind === 'int' ? 'numeric' : 'decimal';
        input.value = method.auto.has(p.key) ? '' : String(shownDefaults[p.key]);
        input.addEventListener('input', () => {
          (input as HTMLInputElement).setCustomValidity('');
          showAuto(method);
        });
      }
      input.id = id;
      input.name = p.key;
      const hint = document.createElement('span');
      hint.className = 'hint';
      hint.id = `${id}-hint`;
      hint.textContent = method.auto.has(p.key) ? `${p.hint} Blank: ${p.derived}.` : p.hint;
      input.setAttribute('aria-describedby', hint.id);
      if (p.kind === 'boolean') {
        label.prepend(input);
        wrap.append(label, hint);
      } else wrap.append(label, input, hint);
      return wrap;
    }),
  );
  showAuto(method);
  refreshButtons();
}

/** The choices made in the form. */
function choices(method: MethodSpec): Params {
  const out: Params = {};
  for (const p of method.params) if (p.kind === 'choice') out[p.key] = fieldOf(p.key).value;
  return out;
}

/** A choice changed: the fields still at their default take the new default. */
function followDefaults(method: MethodSpec): void {
  const next = formDefaults(method, choices(method));
  for (const p of method.params) {
    if (p.kind === 'choice' || p.kind === 'boolean' || method.auto.has(p.key)) continue;
    const input = fieldOf(p.key);
    const unchanged = p.kind === 'list' ? input.value === shownDefaults[p.key] : Number(input.value) === Number(shownDefaults[p.key]);
    if (unchanged) input.value = String(next[p.key]);
  }
  shownDefaults = next;
  showAuto(method);
}

/** Number fields left blank show the value the library will take, given the others. */
function showAuto(method: MethodSpec): void {
  let values: Record<string, unknown> | undefined;
  try {
    values = resolved(method.id, readParams(method) ?? choices(method));
  } catch {
    values = undefined;
  }
  for (const p of method.params) {
    if (p.kind !== 'int' && p.kind !== 'float') continue;
    const v = values?.[p.key];
    const auto = method.auto.has(p.key);
    (fieldOf(p.key) as HTMLInputElement).placeholder = typeof v === 'number' ? (auto ? `auto: ${+v.toPrecision(4)}` : String(v)) : auto ? 'auto' : '';
  }
}

/** The fields' values (blank number fields left out), or undefined when one is not a number. */
function readParams(method: MethodSpec): Params | undefined {
  const params: Params = {};
  for (const p of method.params) {
    const input = fieldOf(p.key);
    if (p.kind === 'choice' || p.kind === 'list') params[p.key] = input.value;
    else if (p.kind === 'boolean') params[p.key] = (input as HTMLInputElement).checked;
    else if ((input as HTMLInputElement).validity.badInput) return undefined;
    else if (input.value !== '') params[p.key] = Number(input.value);
  }
  return params;
}

/** The form's options for the library, checked by its validator; a bad value is reported at its
 *  field. */
function readOptions(method: MethodSpec, target: number | null): { options: AttackOptions; planned: number } | undefined {
  const params = readParams(method);
  if (!params) {
    const bad = method.params.find((p) => (fieldOf(p.key) as HTMLInputElement).validity?.badInput)!;
    fieldOf(bad.key).reportValidity();
    fieldOf(bad.key).focus();
    return undefined;
  }
  const options = attackOptions(method, target, params);
  try {
    return { options, planned: plannedIterations(checkOptions(options, state.model!.architecture.labels.length)) };
  } catch (e) {
    const text = e instanceof Error ? e.message : String(e);
    const p = fieldOfMessage(method, text);
    showError(`${method.name} cannot run with these numbers: ${text}`);
    if (p) {
      const input = fieldOf(p.key) as HTMLInputElement;
      input.setCustomValidity(text);
      input.reportValidity();
      input.focus();
    }
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Running an attack

/** What the page runs: a method with the form's options, or the tutorial's steps. */
interface Run {
  method: MethodSpec;
  /** null: untargeted (any label but the original's). */
  target: number | null;
  planned: number;
  request: { type: 'attack'; options: AttackOptions } | { type: 'tutorial'; target: number; steps: TutorialStep[] };
}

/** Runs it, showing its progress, then its end (its result, or where it was stopped): the one
 *  way a run ends. */
async function start(run: Run): Promise<void> {
  const model = state.model, x = state.input;
  if (!model || !x || state.running) return;
  const { method, target } = run;
  const labels = model.architecture.labels;
  resetResults();
  const original = state.before ? argmax(state.before) : -1;
  if (state.before) el.originalCaption.textContent = `${labels[original]} (${percent(softmax(state.before)[original])})`;
  const curve = state.curve;
  curve.planned = run.planned;
  curve.scale = method.loss.scale;
  const about = method.loss.about(target !== null);
  el.lossAbout.textContent = about;
  el.lossAbout.hidden = !about;
  el.lossScale.textContent = `(${method.loss.scale} scale)`;
  // A method of one step (FGSM) has no curve to draw, nor a speed to speak of.
  const oneStep = run.planned <= 1;
  el.lossSection.hidden = oneStep;
  el.oneStep.hidden = !oneStep;
  el.oneStep.textContent = oneStep ? `${method.name} takes a single step: there is no loss curve to draw.` : '';
  el.statRateTitle.textContent = oneStep ? 'Time' : 'Speed';
  state.steps = run.request.type === 'tutorial' ? run.request.steps : [];
  state.stepsEnded = 0;
  if (state.steps.length > 0) stepTitles(state.steps[0]);
  el.results.dataset.method = method.id;
  el.results.dataset.state = 'running';
  state.running = true;
  refreshButtons();
  const aim = target === null ? `anything but “${labels[original]}”` : `“${labels[target]}”`;
  // What the method says of this model (AutoAttack's parts it skips).
  const notes = run.request.type === 'attack' ? (libraryMethod(method.id).notes?.(checkOptions(run.request.options, labels.length), labels.length) ?? []) : [];
  setStatus(`Running ${method.name}: making the network say ${aim}…${notes.map((n) => ` Note: ${n}.`).join('')}`);
  el.stop.focus({ preventScroll: true });
  // The pictures are at the top of the results card, which may have been scrolled to its downloads.
  el.results.scrollTop = 0;
  // One column (phones): the results are under the controls; bring them into view.
  if (window.matchMedia('(max-width: 820px)').matches) el.results.scrollIntoView({ behavior: 'smooth', block: 'start' });

  try {
    const end = await call<'done'>({ ...run.request, input: x } as Req, [], (p) => show(method, x, p));
    show(method, x, end);
    await ended(method, x, original, target, end);
  } catch (e) {
    el.results.dataset.state = 'error';
    failed('The attack failed', e);
    setStatus('The run failed: see the message above.');
  } finally {
    state.running = false;
    refreshButtons();
  }
}

/** A report of a run under way: the current image, its class bars, the loss curve and the stats. */
function show(method: MethodSpec, x: Float32Array, p: Progress): void {
  const arch = state.model!.architecture;
  const [h, w, c] = arch.input;
  const labels = arch.labels;
  const curve = state.curve;
  if (curve.count + p.losses.length > curve.values.length) {
    const grown = new Float32Array(Math.max(curve.values.length * 2, curve.count + p.losses.length));
    grown.set(curve.values.subarray(0, curve.count));
    curve.values = grown;
  }
  curve.values.set(p.losses, curve.count);
  curve.count += p.losses.length;
  curve.marks.push(...p.marks);
  curve.planned = Math.max(p.planned, curve.count);
  const dx = p.x.map((v, i) => v - x[i]);
  paintImage(el.filter, filterImage(dx, h, w, c as 1 | 3));
  paintImage(el.adversarial, inputToImage(p.x, arch));
  const best = argmax(p.logits);
  el.adversarialCaption.textContent = `${labels[best]} (${percent(softmax(p.logits)[best])})`;
  paintBars(el.bars, labels, p.logits, +el.target.value);
  paintLoss(el.loss, curve);
  const phase = p.phase ? `${p.phase[0].toUpperCase()}${p.phase.slice(1)} · ` : '';
  el.stage.textContent = `${phase}iteration ${p.done.toLocaleString('en')} of ${p.planned.toLocaleString('en')}`;
  el.statIterations.textContent = `${p.done.toLocaleString('en')} of ${p.planned.toLocaleString('en')}`;
  const lastLoss = curve.count > 0 ? curve.values[curve.count - 1] : NaN;
  el.statLoss.textContent = formatLoss(lastLoss);
  const rate = p.done / (p.elapsed / 1000);
  el.statRate.textContent = p.planned <= 1 ? `${Math.round(p.elapsed).toLocaleString('en')} ms` : `${Math.round(rate).toLocaleString('en')} it/s`;
  for (const end of p.finished) stepEnded(x, end);
  el.results.dataset.rate = String(rate);
  el.results.dataset.busyRate = String(p.done / (p.busy / 1000));
  // Live, of the current (float) image; at the end, those of the result.
  let linf = 0, sq = 0;
  for (const v of dx) {
    linf = Math.max(linf, Math.abs(v));
    sq += v * v;
  }
  const grey = Math.abs(inputUnits(arch).scale);
  el.statLinf.textContent = `${(linf * grey).toFixed(1)} grey levels`;
  el.statL2.textContent = `${(Math.sqrt(sq) * grey).toFixed(1)} grey levels`;
  el.filterCaption.textContent = `±${(linf * grey).toFixed(1)} grey levels`;
  el.loss.setAttribute('aria-label', `Loss curve, ${method.loss.scale} scale: ${curve.count} iterations, last loss ${el.statLoss.textContent}`);
  const zero = method.loss.scale === 'log' ? curve.values.subarray(0, curve.count).findIndex((v) => v <= 0) : -1;
  el.lossNote.hidden = zero < 0;
  el.lossNote.textContent =
    zero < 0 ? '' : `The loss is exactly 0 at iteration ${(zero + 1).toLocaleString('en')}, where float32 rounds a probability to 1: drawn on the line marked 0.`;
}

/** The main panels show this step of the tutorial. */
function stepTitles(step: TutorialStep): void {
  el.filterTitle.textContent = `Noise filter, β = ${step.beta}`;
  el.adversarialTitle.textContent = `Adversarial, β = ${step.beta}`;
}

/** A step of the tutorial ended (its image `end.x`): it stays on screen beside the next one,
 *  which the main panels show from now on. */
function stepEnded(x: Float32Array, end: Progress['finished'][number]): void {
  const arch = state.model!.architecture;
  const [h, w, c] = arch.input;
  const k = state.stepsEnded++;
  // The page keeps the first step beside the second, as the tutorial's figure does.
  if (k !== 0) return;
  const dx = end.x.map((v, i) => v - x[i]);
  paintImage(el.step1Filter, filterImage(dx, h, w, c as 1 | 3));
  paintImage(el.step1Adversarial, inputToImage(end.x, arch));
  const linf = dx.reduce((m, v) => Math.max(m, Math.abs(v)), 0) * Math.abs(inputUnits(arch).scale);
  const best = argmax(end.logits);
  el.step1FilterCaption.textContent = `±${linf.toFixed(1)} grey levels`;
  el.step1AdversarialCaption.textContent = `${arch.labels[best]} (${percent(softmax(end.logits)[best])})`;
  const [filterTitle, adversarialTitle] = el.stepPanels.map((p) => p.querySelector('strong')!);
  filterTitle.textContent = `Noise filter, β = ${state.steps[0].beta}`;
  adversarialTitle.textContent = `Adversarial, β = ${state.steps[0].beta}`;
  for (const panel of el.stepPanels) panel.hidden = false;
  stepTitles(state.steps[1]);
}

/** The end of a run: its result, as the library judged it; or, stopped, the image it had got to. */
async function ended(method: MethodSpec, x: Float32Array, original: number, target: number | null, end: Progress & { stopped: boolean; result?: Result }): Promise<void> {
  const arch = state.model!.architecture;
  const labels = arch.labels;
  const d = el.results.dataset;
  const r = end.result;
  const logits = r ? r.logits : end.logits;
  const best = argmax(logits);
  const succeeded = (k: number) => (target === null ? k !== original : k === target);
  d.logits = JSON.stringify(logits);
  d.label = labels[best];
  d.iterations = String(r ? r.iterations : end.done);
  el.finalLogits.textContent = JSON.stringify(logits);
  const seconds = `${(end.elapsed / 1000).toFixed(2)} s`;
  const aim = target === null ? `any label but “${labels[original]}”` : `“${labels[target]}”`;
  if (!r) {
    d.state = 'stopped';
    const n = end.done.toLocaleString('en');
    const says = `The network says “${labels[best]}” for the picture as it was then${succeeded(best) ? ': it has been misled' : ''}.`;
    setStatus(`Stopped after ${n} iterations in ${seconds}. ${says}`);
    el.stage.textContent = `Stopped after ${n} iterations: the picture is where ${method.name} had got to, not its result. ${says}`;
    await offerDownloads(end.x, end.x.map((v, i) => v - x[i]), succeeded);
    return;
  }
  d.state = 'done';
  d.success = String(r.success);
  d.l2 = String(r.l2);
  d.linf = String(r.linf);
  d.psnr = String(r.psnr);
  d.ssim = String(r.ssim);
  // At the end the x axis ends where the run did (most stop once the image is adversarial).
  state.curve.planned = state.curve.count;
  paintLoss(el.loss, state.curve);
  const [h, w, c] = arch.input;
  paintImage(el.filter, filterImage(r.perturbation, h, w, c as 1 | 3));
  paintImage(el.adversarial, inputToImage(r.adversarial, arch));
  el.adversarialCaption.textContent = `${labels[best]} (${percent(softmax(logits)[best])})`;
  paintBars(el.bars, labels, logits, target ?? -1);
  // Gradients are told apart only when they are not one per iteration (DeepFool: one per class).
  el.statIterations.textContent =
    r.gradients === r.iterations ? r.iterations.toLocaleString('en') : `${r.iterations.toLocaleString('en')} (${r.gradients.toLocaleString('en')} gradient${r.gradients === 1 ? '' : 's'})`;
  const grey = (v: number, digits: number) => `${v.toFixed(digits)} grey level${v === 1 ? '' : 's'}`;
  const whole = (v: number) => (Number.isInteger(v) ? 0 : 2);
  el.statLinf.textContent = grey(r.linf, whole(r.linf));
  el.statL2.textContent = grey(r.l2, 1);
  el.statPsnr.textContent = Number.isFinite(r.psnr) ? `${r.psnr.toFixed(2)} dB` : '∞ (no change)';
  el.statSsim.textContent = r.ssim.toFixed(4);
  el.filterCaption.textContent = `±${r.linf.toFixed(whole(r.linf))} grey levels, L2 ${r.l2.toFixed(1)}`;
  const verdict = r.success
    ? `The network now says “${labels[best]}”: it has been misled${r.brokenBy ? ` (by ${r.brokenBy})` : ''}.`
    : `The network still says “${labels[best]}”: ${method.name} did not reach ${aim}.`;
  const iterations = `${r.iterations.toLocaleString('en')} iteration${r.iterations === 1 ? '' : 's'}`;
  setStatus(`Done: ${iterations} in ${seconds}. ${verdict}`);
  el.stage.textContent = `Done after ${iterations}. ${verdict} L∞ ${el.statLinf.textContent}, L2 ${el.statL2.textContent}, PSNR ${el.statPsnr.textContent}, SSIM ${el.statSsim.textContent}.`;
  await offerDownloads(r.adversarial, r.perturbation, succeeded, r.success);
}

/** The files the command line writes, made here: adversarial.png, perturbation.npy and filter.png;
 *  and the network's answer for the picture as saved (8 bits per pixel). `success`: whether the
 *  run's own result was adversarial, to tell when rounding undid it. */
async function offerDownloads(adversarial: Float32Array, perturbation: Float32Array, succeeded: (label: number) => boolean, success?: boolean): Promise<void> {
  for (const u of state.urls) URL.revokeObjectURL(u);
  const arch = state.model!.architecture;
  const image = inputToImage(adversarial, arch);
  const files = resultFiles(adversarial, perturbation, arch);
  const blobs: [HTMLAnchorElement, Uint8Array, string][] = [
    [el.downloadPng, files['adversarial.png'], 'image/png'],
    [el.downloadNpy, files['perturbation.npy'], 'application/octet-stream'],
    [el.downloadFilter, files['filter.png'], 'image/png'],
  ];
  state.urls = blobs.map(([a, bytes, type]) => (a.href = URL.createObjectURL(new Blob([bytes as BlobPart], { type }))));
  el.downloads.hidden = false;
  // As `mislead attack --crop` saves it: what was attacked and judged, not the photo.
  const [h, w] = arch.input;
  const r = crop.value, photo = state.image;
  el.downloadNote.hidden = !photo || (r.w === photo.width && r.h === photo.height && r.w === w && r.h === h);
  el.downloadNote.textContent = photo
    ? `adversarial.png is the picture the network read, ${w}×${h} as shown above, made from the box ${r.w}×${r.h} at (${r.x}, ${r.y}) of ${state.imageName} (${photo.width}×${photo.height}), as “mislead attack --crop” saves it; the photo itself is not changed.`
    : '';
  try {
    const { logits } = await call<'predicted'>({ type: 'predict', inputs: [imageToInput(image, arch)] });
    const labels = arch.labels;
    const best = argmax(logits[0]);
    const said = `As saved (8-bit adversarial.png), the network says ${labels[best]} (${percent(softmax(logits[0])[best])})`;
    el.saved.textContent =
      said + (succeeded(best) ? ': misled.' : success ? ': rounding to whole grey levels undid the attack; try more iterations.' : '.');
    el.results.dataset.savedLabel = labels[best];
  } catch (e) {
    failed('Could not classify the saved image', e);
  }
}

// ---------------------------------------------------------------------------------------------
// Wiring

buildMethods();
buildSamples();
offerFaceApi();
paintLoss(el.loss, state.curve);

/** Refuses a target the network already gives the picture: there is nothing to do. */
function alreadyTarget(target: number | null): boolean {
  if (target === null || !state.before || argmax(state.before) !== target) return false;
  const label = state.model!.architecture.labels[target];
  showError(`${capitalise(nothingToDo(`“${label}”`))}. The network already says so for this picture: choose another target.`, el.targetError);
  setStatus(`Not run: the picture is already “${label}”.`);
  el.target.focus({ preventScroll: true });
  return true;
}

const capitalise = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

el.run.addEventListener('click', () => {
  if (!state.model || state.running) return;
  clearError();
  const method = methodById(el.method.value);
  const chosen = Number(el.target.value);
  const target = chosen < 0 ? null : chosen;
  if (alreadyTarget(target)) return;
  const checked = readOptions(method, target);
  if (checked) void start({ method, target, planned: checked.planned, request: { type: 'attack', options: checked.options } });
});
el.tutorial.addEventListener('click', () => {
  if (!state.model || state.running) return;
  clearError();
  if (el.method.value !== TUTORIAL.method) setMethod(TUTORIAL.method);
  // The filter always has a target: the form offers only labels.
  const target = Number(el.target.value);
  if (alreadyTarget(target)) return;
  const planned = TUTORIAL.steps.reduce((n, s) => n + s.iterations, 0);
  void start({ method: methodById(TUTORIAL.method), target, planned, request: { type: 'tutorial', target, steps: TUTORIAL.steps } });
});
el.stop.addEventListener('click', () => {
  if (!state.running) return;
  worker.postMessage({ type: 'stop' } satisfies Request);
  setStatus('Stopping…');
});
el.target.addEventListener('change', () => {
  state.targetChosen = true;
  el.targetError.hidden = true;
  if (state.model) paintBars(el.bars, state.model.architecture.labels, state.before, +el.target.value);
});
el.photo.addEventListener('change', () => {
  void pickFile(el.photo.files?.[0]);
  el.photo.value = '';
});
el.cropReset.addEventListener('click', () => {
  if (state.image) crop.reset(state.image.width, state.image.height, aspect());
});
el.modelFile.addEventListener('change', () => {
  const file = el.modelFile.files?.[0];
  el.modelFile.value = '';
  if (file) void pickModelFile(file);
});

async function pickModelFile(file: File): Promise<void> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  if (await useModel(bytes, file.name)) {
    state.ownModel = { bytes, name: file.name };
    el.modelOwn.disabled = false;
    el.modelOwn.checked = true;
    el.modelOwnLabel.textContent = `Your model: ${file.name}`;
    state.modelRadio = el.modelOwn;
  } else if (state.modelRadio) {
    // The previous model is still the one in use.
    state.modelRadio.checked = true;
  }
}
for (const radio of [el.modelDefault, el.modelOwn, el.modelFaceapi]) {
  radio.addEventListener('change', async () => {
    if (!radio.checked) return;
    const source = radio === el.modelOwn ? state.ownModel : state.defaultBytes && { bytes: state.defaultBytes, name: 'default.safetensors' };
    const used = radio === el.modelFaceapi ? await useFaceApi() : source ? await useModel(source.bytes, source.name) : false;
    if (used) state.modelRadio = radio;
    else if (state.modelRadio) state.modelRadio.checked = true;
  });
}

// A file dropped anywhere on the page is taken here (the browser would otherwise open it in
// place of the page): a .safetensors file as the model, anything else as the picture; during a
// run, it is refused.
for (const type of ['dragenter', 'dragover'] as const) {
  window.addEventListener(type, (e) => {
    if (!e.dataTransfer?.types.includes('Files')) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = state.running ? 'none' : 'copy';
    el.dropzone.classList.toggle('is-over', !state.running);
  });
}
window.addEventListener('dragleave', (e) => {
  if (e.relatedTarget === null) el.dropzone.classList.remove('is-over');
});
window.addEventListener('drop', (e) => {
  if (!e.dataTransfer?.types.includes('Files')) return;
  e.preventDefault();
  el.dropzone.classList.remove('is-over');
  const file = e.dataTransfer.files[0];
  if (!file) return;
  if (state.running) return setStatus(`${file.name} was not taken: a run is under way. Stop it first, or drop the file again when it ends.`);
  if (/\.safetensors$/i.test(file.name)) void pickModelFile(file);
  else void pickFile(file);
});

new ResizeObserver(() => paintLoss(el.loss, state.curve)).observe(el.loss);

// Start: the default model, then the first sample face.
void (async () => {
  setStatus(DEFAULT_MODEL ? 'Loading the default model…' : 'Upload a model to begin.');
  await loadDefaultModel();
  if (SAMPLES.length > 0) await pickSample(0);
  else if (state.model) setStatus('Upload a photo to begin.');
})();
