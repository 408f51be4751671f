// The attack methods the page offers: the library's registry (src/attacks/registry.ts), each with
// its name, summary, paper, parameters, bounds and defaults as the library has them, and
// resolveOptions as the one check of the values. What is the page's own is here: the heading each
// method is listed under, which options a form for one picture leaves out, the filter's result
// kept as the float X + DX (as the tutorial shows it), and the tutorial's two steps. A method
// added to the registry appears in the page with no change here.
import { COMMON, METHODS as LIBRARY, resolveOptions, type AttackOptions, type Method, type Parameter, type ResolvedOptions, type Value } from '../../src/attacks/index.js';

/** Field values by parameter key; a number field left blank is absent (the library's value). */
export type Params = Record<string, Value>;

export interface MethodSpec {
  id: string;
  name: string;
  summary: string;
  /** Where the method comes from, shown as a citation under the summary. */
  paper: string;
  /** The heading it is listed under in the method picker. */
  group: string;
  /** Whether the target may be "any other label" (untargeted). */
  untargeted: boolean;
  /** What the loss curve shows (untargeted or not), and on which scale. */
  loss: Method['loss'];
  /** The fields: the method's parameters, then the options of every method that matter for one picture. */
  params: readonly Parameter[];
  /** The page's default where it is not the library's. */
  defaults: Params;
  /** Number fields whose default follows other numbers (the step follows eps): left blank, the
   *  library's value shown as a placeholder. Other derived defaults (eps follows the norm) are
   *  filled in, and follow the choices while left unchanged. */
  auto: ReadonlySet<string>;
}

/** The method of the tutorial: listed on its own, with the Tutorial button's two steps. */
const TUTORIAL_METHOD = 'filter';

/** Options a form for one picture has no use for. */
const LEFT_OUT = new Set(['batchSize']);

/** The page's defaults where they differ from the library's: the tutorial's filter ends with the
 *  float X + DX as learned (its logits are the tutorial's); the page then tells what the 8-bit
 *  file makes of it. Its β is 0.5, the tutorial's second step: the page promises a change a
 *  person does not see, and with β = 0 the filter moves pixels by 100 grey levels and more (the
 *  Tutorial button still shows that first step, then this one). */
const PAGE_DEFAULTS: Record<string, Params> = { filter: { quantize: false, beta: 0.5 } };

export const METHODS: readonly MethodSpec[] = LIBRARY.map((m) => spec(m as unknown as Method));

function spec(m: Method): MethodSpec {
  // The registry's order, the switches (checkboxes) after the numbers and choices.
  const all = [...m.parameters, ...COMMON.filter((p) => !LEFT_OUT.has(p.key))];
  const params = [...all.filter((p) => p.kind !== 'boolean'), ...all.filter((p) => p.kind === 'boolean')];
  return {
    id: m.id,
    name: m.name,
    summary: m.summary,
    paper: m.paper,
    group: m.id === TUTORIAL_METHOD ? 'The tutorial' : 'Attack suite',
    untargeted: m.target === 'optional',
    loss: m.loss,
    params,
    defaults: PAGE_DEFAULTS[m.id] ?? {},
    auto: new Set(params.filter((p) => p.derived !== undefined && followsNumbers(m.id, params, p)).map((p) => p.key)),
  };
}

function isNumber(p: Parameter): boolean {
  return p.kind === 'int' || p.kind === 'float';
}

/** Whether the library's value of the derived `p` changes when another number does. */
function followsNumbers(method: string, params: readonly Parameter[], p: Parameter): boolean {
  const base = resolved(method);
  return params.some((q) => {
    if (q === p || !isNumber(q)) return false;
    const v = base[q.key] as number;
    const other = q.kind === 'int' ? (v + 1 <= q.max! ? v + 1 : v - 1) : v === 0 ? Math.min(1, q.max!) : v * 2 <= q.max! ? v * 2 : v / 2;
    return resolved(method, { [q.key]: other })[p.key] !== base[p.key];
  });
}

/** The library's options for `method` with every default filled in, given some values.
 *  Throws an InputError for a bad value. */
export function resolved(method: string, given: Params = {}): Record<string, unknown> {
  // The target and the number of classes change no default: any count a method takes will do.
  return resolveOptions({ ...given, method } as unknown as AttackOptions, 1000) as unknown as Record<string, unknown>;
}

/** Each field's default, given the values chosen so far (the norm sets eps): the page's, the
 *  parameter's, or the library's resolved value of a derived one. Auto fields are left out. */
export function defaultParams(method: MethodSpec, given: Params = {}): Params {
  const values = resolved(method.id, given);
  const out: Params = {};
  for (const p of method.params) {
    if (method.auto.has(p.key)) continue;
    out[p.key] = method.defaults[p.key] ?? p.default ?? (values[p.key] as Value);
  }
  return out;
}

/** The library's options for a run of `method` on the picture: the fields' values, and the target
 *  (null: untargeted). */
export function attackOptions(method: MethodSpec, target: number | null, params: Params): AttackOptions {
  return { ...params, method: method.id, ...(target === null ? {} : { target }) } as unknown as AttackOptions;
}

/** Checks options with the library's validator, naming a bad value by its field's label. */
export function checkOptions(options: AttackOptions, classes: number): ResolvedOptions {
  return resolveOptions(options, classes, (p) => p.label);
}

/** The field a validator's message is about, if any. */
export function fieldOfMessage(method: MethodSpec, message: string): Parameter | undefined {
  return method.params.find((p) => message.startsWith(`${method.id}: ${p.label} `));
}

/** One step of the tutorial: the filter's options, continuing from the last step's DX. */
export interface TutorialStep {
  /** Shown while the step runs, e.g. "Step 1 of 2: β = 0". */
  title: string;
  /** The loss curve's mark where it starts. */
  mark: string;
  iterations: number;
  lr: number;
  beta: number;
}

/** The tutorial's two steps for the filter method: the second continues from the first's DX. */
export const TUTORIAL: { method: string; steps: TutorialStep[] } = {
  method: TUTORIAL_METHOD,
  steps: [
    { title: 'Step 1 of 2: 1000 iterations, β = 0', mark: 'step 1: β = 0', iterations: 1000, lr: 0.1, beta: 0 },
    { title: 'Step 2 of 2: 1000 more, β = 0.5', mark: 'step 2: β = 0.5', iterations: 1000, lr: 0.1, beta: 0.5 },
  ],
};

export function methodById(id: string): MethodSpec {
  const m = METHODS.find((m) => m.id === id);
  if (!m) throw new Error(`unknown method ${JSON.stringify(id)}`);
  return m;
}

/** Sample faces in the order the page shows them (man.png, man-2.png, woman.png, …): by name
 *  without the extension, numbers in numeric order. */
export function sampleOrder(a: string, b: string): number {
  const stem = (s: string) => s.replace(/\.png$/i, '');
  return stem(a).localeCompare(stem(b), 'en', { numeric: true });
}
