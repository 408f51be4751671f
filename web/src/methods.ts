// The attack methods the page offers, as data: the form is built from these specs, and the worker
// looks the method up by id (see ATTACKS in worker.ts). A new method adds an entry here and a
// runner there; nothing else in the page needs to change.

export interface ParamSpec {
  /** Key in the params object sent to the worker. */
  key: string;
  label: string;
  /** Integers are entered with step 1; `float` accepts any number. */
  kind: 'int' | 'float';
  default: number;
  min: number;
  max: number;
  /** One line under the field. */
  hint: string;
}

export interface MethodSpec {
  id: string;
  name: string;
  /** What it does, in a sentence or two, shown under the method picker. */
  summary: string;
  params: ParamSpec[];
}

/** Every method has an iteration count; the worker runs it in chunks so that it can report and stop. */
export const ITERATIONS: ParamSpec = {
  key: 'iterations',
  label: 'Iterations',
  kind: 'int',
  default: 1000,
  min: 1,
  max: 1_000_000,
  hint: 'Gradient steps on the noise filter.',
};

export const METHODS: MethodSpec[] = [
  {
    id: 'filter',
    name: 'Noise filter (the tutorial)',
    summary:
      'Learns a noise filter DX, starting from zero, by plain gradient descent on ' +
      'loss = −log p(target | X + DX) + β·ΣDX²/2. No clipping while it learns; the saved image is rounded to 8 bits.',
    params: [
      ITERATIONS,
      { key: 'lr', label: 'Learning rate', kind: 'float', default: 0.1, min: 1e-6, max: 1000, hint: 'Step size of each update of DX.' },
      { key: 'beta', label: 'β (L2 weight)', kind: 'float', default: 0, min: 0, max: 1000, hint: '0 = any noise goes; larger keeps the noise smaller.' },
    ],
  },
];

export interface Step {
  /** Shown while the step runs, e.g. "Step 1 of 2: β = 0". */
  title: string;
  params: Record<string, number>;
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

/** Sample faces in the order the page shows them (man.png, man-2.png, woman.png, …): by name
 *  without the extension, numbers in numeric order. */
export function sampleOrder(a: string, b: string): number {
  const stem = (s: string) => s.replace(/\.png$/i, '');
  return stem(a).localeCompare(stem(b), 'en', { numeric: true });
}
