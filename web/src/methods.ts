// The attack methods the page offers, as data: the form is built from these specs, and the worker
// looks the method up by id. A method of the tutorial's kind (`engine: 'filter'`) has a runner in
// the worker (ATTACKS in worker.ts); a method of the attack suite (`engine: 'suite'`, src/attacks.ts)
// needs none: its id is runAttack's method and its parameter keys are runAttack's options, whose
// defaults come from the library's resolveOptions. Nothing else in the page needs to change.
import { resolveOptions, type AttackMethod, type AttackOptions, type ResolvedOptions } from '../../src/attacks/index.js';

export type ParamValue = number | string;
/** Parameter values by key; an optional parameter left blank is absent. */
export type Params = Record<string, ParamValue>;

export interface ParamSpec {
  /** Key in the params object sent to the worker (for the suite: the option of runAttack). */
  key: string;
  label: string;
  /** Integers are entered with step 1; `float` accepts any number; `choice` is one of `choices`. */
  kind: 'int' | 'float' | 'choice';
  default: ParamValue;
  /** Bounds of a number. */
  min?: number;
  max?: number;
  choices?: { value: string; label: string }[];
  /** May be left blank: the library then picks the value (shown as the field's placeholder). */
  optional?: boolean;
  /** One line under the field. */
  hint: string;
}

export interface MethodSpec {
  id: string;
  name: string;
  /** The heading it is listed under in the method picker. */
  group: string;
  /** What it does, in a sentence or two, shown under the method picker. */
  summary: string;
  /** 'filter': a runner of the worker's (ATTACKS), run in chunks, that can pause for Stop;
   *  'suite': src/attacks.ts's runAttack, synchronous: Stop restarts the worker. */
  engine: 'filter' | 'suite';
  /** Whether the target may be "any other label" (untargeted). */
  untargeted: boolean;
  /** What the loss curve shows (untargeted or not), and on which scale. */
  loss: { scale: 'log' | 'linear'; about(targeted: boolean): string };
  params: ParamSpec[];
}

/** Every filter method has an iteration count; the worker runs it in chunks so that it can report and stop. */
export const ITERATIONS: ParamSpec = {
  key: 'iterations',
  label: 'Iterations',
  kind: 'int',
  default: 1000,
  min: 1,
  max: 1_000_000,
  hint: 'Gradient steps on the noise filter.',
};

/** The library's options for `method` with the defaults filled in, given some of them (the norm
 *  sets eps's default, eps and the iterations set the step's). Throws an InputError for a bad value. */
export function suiteOptions(method: AttackMethod, given: Params = {}): ResolvedOptions {
  // The target does not change any default: any class count will do.
  return resolveOptions({ ...given, method } as AttackOptions, 2);
}

function suiteDefault(method: AttackMethod, key: string): ParamValue {
  return (suiteOptions(method) as unknown as Record<string, ParamValue>)[key];
}

// The parameters of the suite, in grey levels (0..255) where they are sizes.
const norm = (): ParamSpec => ({
  key: 'norm',
  label: 'Norm',
  kind: 'choice',
  default: 'linf',
  choices: [
    { value: 'linf', label: 'L∞ (per pixel)' },
    { value: 'l2', label: 'L2 (whole change)' },
  ],
  hint: 'How eps and the step are measured.',
});
const eps = (m: AttackMethod): ParamSpec => ({
  key: 'eps',
  label: 'eps (grey levels)',
  kind: 'float',
  default: suiteDefault(m, 'eps'),
  min: 0,
  max: 20_000,
  hint: 'The budget: 8 for L∞, 128 for L2 unless changed.',
});
const step = (rule: string): ParamSpec => ({
  key: 'step',
  label: 'Step (grey levels)',
  kind: 'float',
  default: '',
  optional: true,
  min: 0,
  max: 20_000,
  hint: `Per iteration; blank: ${rule}.`,
});
const iterations = (m: AttackMethod): ParamSpec => ({
  key: 'iterations',
  label: 'Iterations',
  kind: 'int',
  default: suiteDefault(m, 'iterations'),
  min: 1,
  max: 100_000,
  hint: 'At most: it stops once the saved image is adversarial.',
});

const crossEntropy = (targeted: boolean) =>
  targeted ? 'Cross-entropy of the target label (the attack lowers it).' : 'Cross-entropy of the original label (the attack raises it).';

const SUITE = 'Attack suite (src/attacks.ts)';

export const METHODS: MethodSpec[] = [
  {
    id: 'filter',
    name: 'Noise filter (the tutorial)',
    group: 'The tutorial',
    summary:
      'Learns a noise filter DX, starting from zero, by plain gradient descent on ' +
      'loss = −log p(target | X + DX) + β·ΣDX²/2. No clipping while it learns; the saved image is rounded to 8 bits.',
    engine: 'filter',
    untargeted: false,
    loss: { scale: 'log', about: () => '' },
    params: [
      ITERATIONS,
      { key: 'lr', label: 'Learning rate', kind: 'float', default: 0.1, min: 1e-6, max: 1000, hint: 'Step size of each update of DX.' },
      { key: 'beta', label: 'β (L2 weight)', kind: 'float', default: 0, min: 0, max: 1000, hint: '0 = any noise goes; larger keeps the noise smaller.' },
    ],
  },
  {
    id: 'fgsm',
    name: 'FGSM',
    group: SUITE,
    summary: 'Fast gradient sign method: one step of size eps along the sign of the loss gradient (L∞) or along the gradient (L2). Goodfellow et al. 2015.',
    engine: 'suite',
    untargeted: true,
    loss: { scale: 'log', about: crossEntropy },
    params: [norm(), eps('fgsm')],
  },
  {
    id: 'bim',
    name: 'BIM (iterative FGSM)',
    group: SUITE,
    summary: 'FGSM in small steps from the original, each projected back into the eps ball around it. Kurakin et al. 2017.',
    engine: 'suite',
    untargeted: true,
    loss: { scale: 'log', about: crossEntropy },
    params: [norm(), eps('bim'), step('eps/8'), iterations('bim')],
  },
  {
    id: 'pgd',
    name: 'PGD',
    group: SUITE,
    summary: 'Projected gradient descent: BIM from a random point of the eps ball, restarted from another one if it fails. Madry et al. 2018.',
    engine: 'suite',
    untargeted: true,
    loss: { scale: 'log', about: crossEntropy },
    params: [
      norm(),
      eps('pgd'),
      step('eps/8'),
      iterations('pgd'),
      { key: 'restarts', label: 'Restarts', kind: 'int', default: suiteDefault('pgd', 'restarts'), min: 1, max: 1000, hint: 'Random starts tried until one succeeds.' },
    ],
  },
  {
    id: 'mifgsm',
    name: 'MI-FGSM (momentum)',
    group: SUITE,
    summary: 'BIM along a momentum of the L1-normalised gradients, which steadies the direction of the steps. Dong et al. 2018.',
    engine: 'suite',
    untargeted: true,
    loss: { scale: 'log', about: crossEntropy },
    params: [
      norm(),
      eps('mifgsm'),
      step('eps/iterations'),
      iterations('mifgsm'),
      { key: 'decay', label: 'Decay μ', kind: 'float', default: suiteDefault('mifgsm', 'decay'), min: 0, max: 100, hint: "The momentum's decay: 1 as in the paper, 0 is BIM." },
    ],
  },
  {
    id: 'cw',
    name: 'Carlini–Wagner L2',
    group: SUITE,
    summary:
      'Adam minimises distance² + c·margin over an image kept in range by tanh, with a binary search on c: no budget, the smallest change it finds. Carlini & Wagner 2017.',
    engine: 'suite',
    untargeted: true,
    loss: { scale: 'linear', about: () => '‖δ‖² (pixels / 255) + c·max(margin, −κ) of the current binary-search step.' },
    params: [
      { key: 'steps', label: 'Steps', kind: 'int', default: suiteDefault('cw', 'steps'), min: 1, max: 1_000_000, hint: 'Adam steps per binary-search step (fewer if the loss stalls).' },
      { key: 'lr', label: 'Learning rate', kind: 'float', default: suiteDefault('cw', 'lr'), min: 1e-6, max: 100, hint: "Adam's step size on the tanh variable." },
      { key: 'binarySteps', label: 'Binary steps', kind: 'int', default: suiteDefault('cw', 'binarySteps'), min: 1, max: 100, hint: 'Searches for the smallest c that still succeeds.' },
      { key: 'confidence', label: 'Confidence κ', kind: 'float', default: suiteDefault('cw', 'confidence'), min: 0, max: 1000, hint: 'The logit margin the result must have.' },
    ],
  },
  {
    id: 'deepfool',
    name: 'DeepFool',
    group: SUITE,
    summary: 'Linearises the network and steps to the nearest class boundary, again until it is crossed: close to the smallest L2 change. Moosavi-Dezfooli et al. 2016.',
    engine: 'suite',
    untargeted: true,
    loss: { scale: 'linear', about: () => 'The logit margin left to cross (below 0: crossed).' },
    params: [
      { key: 'steps', label: 'Steps', kind: 'int', default: suiteDefault('deepfool', 'steps'), min: 1, max: 100_000, hint: 'Linearise-and-cross steps at most.' },
      { key: 'overshoot', label: 'Overshoot', kind: 'float', default: suiteDefault('deepfool', 'overshoot'), min: 0, max: 10, hint: 'The total step is scaled by 1 + overshoot.' },
    ],
  },
];

export interface Step {
  /** Shown while the step runs, e.g. "Step 1 of 2: β = 0". */
  title: string;
  params: Params;
}

/** The tutorial's two steps for the filter method: the second continues from the first's DX. */
export const TUTORIAL: { method: string; steps: Step[] } = {
  method: 'filter',
  steps: [
    { title: 'Step 1 of 2: 1000 iterations, β = 0', params: { iterations: 1000, lr: 0.1, beta: 0 } },
    { title: 'Step 2 of 2: 1000 more, β = 0.5', params: { iterations: 1000, lr: 0.1, beta: 0.5 } },
  ],
};

export function methodById(id: string): MethodSpec {
  const m = METHODS.find((m) => m.id === id);
  if (!m) throw new Error(`unknown method ${JSON.stringify(id)}`);
  return m;
}

/** Why `params` are not a valid set for `method`, or undefined when they are. */
export function checkParams(method: MethodSpec, params: Params): string | undefined {
  for (const p of method.params) {
    const v = params[p.key];
    if (v === undefined && p.optional) continue;
    if (p.kind === 'choice') {
      if (!p.choices!.some((c) => c.value === v)) return `${p.label} must be one of ${p.choices!.map((c) => c.value).join(', ')}, got ${String(v)}`;
      continue;
    }
    if (typeof v !== 'number' || !Number.isFinite(v) || v < p.min! || v > p.max! || (p.kind === 'int' && !Number.isInteger(v))) {
      return `${p.label} must be ${p.kind === 'int' ? 'a whole number' : 'a number'} from ${p.min} to ${p.max}, got ${String(v)}`;
    }
  }
  return undefined;
}

/** The page's defaults of `method`'s parameters, given the choices made (the norm sets eps). */
export function defaultParams(method: MethodSpec, given: Params = {}): Params {
  const out: Params = {};
  if (method.engine === 'suite') {
    const choices: Params = {};
    for (const p of method.params) if (p.kind === 'choice' && given[p.key] !== undefined) choices[p.key] = given[p.key];
    const resolved = suiteOptions(method.id as AttackMethod, choices) as unknown as Params;
    for (const p of method.params) if (!p.optional) out[p.key] = resolved[p.key];
    return out;
  }
  for (const p of method.params) if (!p.optional) out[p.key] = p.default;
  return out;
}

/** runAttack's options for a suite method: the parameters, and the target (null: untargeted). */
export function attackOptions(method: MethodSpec, target: number | null, params: Params): AttackOptions {
  const options: Record<string, ParamValue> = { method: method.id };
  for (const p of method.params) if (params[p.key] !== undefined) options[p.key] = params[p.key];
  if (target !== null) options.target = target;
  return options as unknown as AttackOptions;
}

/** The name of a round of a suite run (PGD's restarts, C&W's binary-search steps), or '' when it has one. */
export function roundName(o: ResolvedOptions, round: number): string {
  if (o.method === 'pgd' && o.restarts > 1) return `restart ${round + 1} of ${o.restarts}`;
  if (o.method === 'cw' && o.binarySteps > 1) return `binary-search step ${round + 1} of ${o.binarySteps}`;
  return '';
}

/** Sample faces in the order the page shows them (man.png, man-2.png, woman.png, …): by name
 *  without the extension, numbers in numeric order. */
export function sampleOrder(a: string, b: string): number {
  const stem = (s: string) => s.replace(/\.png$/i, '');
  return stem(a).localeCompare(stem(b), 'en', { numeric: true });
}
