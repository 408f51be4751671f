// AutoAttack (Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of
// diverse parameter-free attacks", ICML 2020, §5), as their code (autoattack/autoattack.py) runs
// it: attacks run in turn, each on the images no earlier one broke; an image counts as robust
// only if every one fails. The parts are the registry's own methods, each stepped on the images
// still standing gathered into a workspace of their own (a broken image costs no forward pass of
// the parts after), so that each image meets every part exactly as it would alone (its random
// streams are seeded by its index in the inputs; same settings).
//   standard  APGD-CE (100 iterations, 1 restart), APGD-T (9 target classes, 100 iterations),
//             Square (5000 queries). Their FAB-T, between APGD-T and Square, is not built here.
//   rand      APGD-CE and APGD-DLR, for models with randomness. Their EOT over 20 draws averages
//             20 gradients of the same function on this engine, whose models are deterministic:
//             each gradient is computed once.
//   custom    the parts given, in order.
import { InputError } from '../errors.js';
import { apgdCe, apgdDlr, apgdT } from './apgd.js';
import { bestOther, type BatchRun, type Norm } from './batch.js';
import { bim } from './bim.js';
import { fgsm } from './fgsm.js';
import { eps, norm, readOptions, DEFAULT_EPS, type Method, type Stepper } from './method.js';
import { mifgsm } from './mifgsm.js';
import { pgd } from './pgd.js';
import { square } from './square.js';

export interface AutoAttackOptions {
  method: 'autoattack';
  norm?: Norm;
  /** Budget in grey levels: default 8 (L∞) or 128 (L2). */
  eps?: number;
  /** Default 'standard'. */
  version?: 'standard' | 'rand' | 'custom';
  /** Method ids, comma-separated, run in that order: only with version 'custom' (default: the
   *  standard parts). */
  parts?: string;
  /** Seed of every part's random starts and squares. */
  seed?: number;
}

type AutoAttackParams = Required<AutoAttackOptions>;

/** The methods a custom AutoAttack may run: the budgeted ones that can run untargeted. */
const PARTS: readonly Method[] = [apgdCe, apgdDlr, apgdT, square, fgsm, bim, pgd, mifgsm] as unknown as Method[];

const VERSIONS = { standard: 'apgd-ce,apgd-t,square', rand: 'apgd-ce,apgd-dlr' } as const;

/** The settings of the standard version, pinned whatever the parts' defaults become. */
const STANDARD: Readonly<Record<string, Record<string, number>>> = {
  'apgd-ce': { iterations: 100, restarts: 1 },
  'apgd-dlr': { iterations: 100, restarts: 1 },
  'apgd-t': { iterations: 100, restarts: 1, targetClasses: 9 },
  square: { queries: 5000 },
};

const partOf = (id: string) => PARTS.find((m) => m.id === id)!;

export const autoattack: Method<AutoAttackParams> = {
  id: 'autoattack',
  name: 'AutoAttack',
  summary: 'APGD-CE, APGD-T and Square in turn, each on the images the earlier ones left (FAB-T, in the original between APGD-T and Square, is not built); robust accuracy, and the part that broke each image.',
  paper: 'Croce & Hein, Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free attacks, ICML 2020',
  target: 'optional',
  parameters: [
    norm, eps,
    {
      key: 'version', flag: 'version', label: 'Version', kind: 'choice', default: 'standard',
      choices: [
        { value: 'standard', label: 'standard (APGD-CE, APGD-T, Square)' },
        { value: 'rand', label: 'rand (APGD-CE, APGD-DLR)' },
        { value: 'custom', label: 'custom (the parts listed)' },
      ],
      hint: 'Which attacks run, in turn.',
    },
    {
      key: 'parts', flag: 'parts', label: 'Parts', kind: 'list', derived: "the version's (custom: the standard parts)",
      choices: PARTS.map((m) => ({ value: m.id, label: m.name })),
      hint: 'Method ids, comma-separated, run in that order (version custom).',
    },
    { key: 'seed', flag: 'seed', label: 'Seed', kind: 'int', default: 0, min: 0, max: 0xffffffff, hint: 'Seed of the random starts and squares.' },
  ],
  resolve: (v) => {
    const n = v.norm as Norm, version = v.version as AutoAttackParams['version'];
    const given = v.parts as string | undefined;
    const parts = version === 'custom' ? (given ?? VERSIONS.standard) : VERSIONS[version];
    if (given !== undefined && given !== parts) throw new InputError(`autoattack: parts are chosen with version custom; version ${version} runs ${parts}`);
    return { method: 'autoattack', norm: n, eps: (v.eps as number | undefined) ?? DEFAULT_EPS[n], version, parts, seed: v.seed as number };
  },
  refuses: (_, targeted) =>
    targeted ? 'targeted AutoAttack is not standard (APGD-T already aims at the top other classes in turn): attack toward a target with apgd-ce, apgd-dlr or apgd-t' : null,
  notes: (o, classes) => [
    ...partsOf(o).flatMap(({ method }) => {
      const refusal = method.refuses?.(classes, false);
      return refusal ? [`${method.id} skipped: ${refusal}`] : [];
    }),
    ...(o.version === 'rand' ? ['rand: the models here are deterministic, so EOT over 20 draws would average 20 equal gradients; each gradient is computed once'] : []),
  ],
  planned: (o) => partsOf(o).reduce((sum, { method, options }) => sum + method.planned(options), 0),
  ball: (o) => ({ norm: o.norm, eps: o.eps }),
  start: (run, o) => new AutoAttack(run, partsOf(o)),
  loss: { scale: 'linear', about: () => "The running part's loss: APGD-CE's cross-entropy, the DLR loss of APGD-DLR and APGD-T, Square's logit margin." },
};

interface Part {
  method: Method;
  options: { method: string };
}

/** Each part with its options: the budget and seed of the whole, the standard settings. */
function partsOf(o: AutoAttackParams): Part[] {
  return o.parts.split(',').map((id) => {
    const method = partOf(id);
    const given = { norm: o.norm, eps: o.eps, seed: o.seed, ...STANDARD[id] };
    return { method, options: method.resolve(readOptions(id, method.parameters, given), given) };
  });
}

/** One batch: the parts in turn, each in a run of its own on the images not broken yet. */
class AutoAttack implements Stepper {
  private next = 0;
  /** The running part, its run on the images `which` (positions in the batch), its stepper. */
  private current: { part: Part; which: Int32Array; run: BatchRun; stepper: Stepper } | null = null;
  /** The logit margin of each image's result so far (the worst case kept: the lowest). */
  private readonly margin: Float64Array;

  constructor(private readonly run: BatchRun, private readonly parts: readonly Part[]) {
    const n = run.n;
    run.brokenBy = new Array<string | null>(n).fill(null);
    this.margin = new Float64Array(n).fill(Infinity);
    // Until a part comes closer, an image's result is the original.
    this.keepWorst(Int32Array.from({ length: n }, (_, i) => i), run.x0, run.ws.forward(run.x0));
  }

  step(): boolean {
    const { run } = this;
    run.checkAbort();
    if (!this.current) {
      const part = this.parts[this.next++];
      if (!part || run.active === 0) {
        run.finish(new Float32Array(run.n));
        return false;
      }
      if (!part.method.refuses?.(run.classes, false)) this.open(part);
      return true;
    }
    const { stepper } = this.current;
    let going: boolean;
    try {
      going = stepper.step();
    } catch (e) {
      this.dispose();
      throw e;
    }
    if (!going) this.close();
    return true;
  }

  dispose(): void {
    this.current?.stepper.dispose?.();
    this.current?.run.ws.dispose();
    this.current = null;
  }

  private open(part: Part): void {
    const { run } = this;
    const which = Int32Array.from({ length: run.n }, (_, i) => i).filter((i) => !run.frozen[i]);
    const sub = run.part(which, part.method.id, part.method.ball(part.options), part.method.planned(part.options));
    try {
      this.current = { part, which, run: sub, stepper: part.method.start(sub, part.options) };
    } catch (e) {
      sub.ws.dispose();
      throw e;
    }
  }

  /** The part's counts added to each image it attacked; its successes kept, and its failures
   *  where they come closer to breaking the image than what was kept. */
  private close(): void {
    const { run } = this;
    const { part, which, run: sub } = this.current!;
    which.forEach((i, k) => {
      run.iterations[i] += sub.iterations[k];
      run.gradients[i] += sub.gradients[k];
      run.queries[i] += sub.queries[k];
      if (!sub.success[k]) return;
      run.succeed(i, sub.adversarial, sub.after, k);
      run.brokenBy![i] = part.method.id;
    });
    this.keepWorst(which, sub.adversarial, sub.after);
    this.dispose();
  }

  /** Keeps, for each image `which[k]` still resisting, image k of `x` and its logits (rows of
   *  `z`) if its margin is lower. */
  private keepWorst(which: Int32Array, x: Float32Array, z: Float32Array): void {
    const { run } = this;
    const classes = run.classes;
    which.forEach((i, k) => {
      if (run.frozen[i]) return;
      const own = run.before[i], at = k * classes;
      const m = z[at + own] - z[at + bestOther(z, at, classes, own)];
      if (m < this.margin[i]) {
        this.margin[i] = m;
        run.record(i, x, z, false, k);
      }
    });
  }
}
