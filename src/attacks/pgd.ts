// PGD, projected gradient descent (Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards Deep
// Learning Models Resistant to Adversarial Attacks", ICLR 2018, §2): BIM from a uniformly random
// point of the eps ball, restarted from another random point while it fails.
import { gradientSteps } from './gradient.js';
import { budget, crossEntropyLoss, earlyStop, eps, iterations, norm, step, type Method } from './method.js';
import type { Norm } from './batch.js';

export interface PgdOptions {
  method: 'pgd';
  norm?: Norm;
  /** Budget and step in grey levels: eps 8 (L∞) or 128 (L2), step eps/8. */
  eps?: number;
  step?: number;
  /** Default 40. */
  iterations?: number;
  earlyStop?: boolean;
  /** Default 1. */
  restarts?: number;
  /** Default true. */
  randomStart?: boolean;
  /** Seed of the random starts (default 0): image k of the inputs starts from a stream seeded
   *  by seed + k, so a run is reproducible whatever the batch size. */
  seed?: number;
}

export const pgd: Method<Required<PgdOptions>> = {
  id: 'pgd',
  name: 'PGD',
  summary: 'Projected gradient descent: BIM from a random point of the eps ball, restarted from another one if it fails.',
  paper: 'Madry, Makelov, Schmidt, Tsipras & Vladu, Towards Deep Learning Models Resistant to Adversarial Attacks, ICLR 2018',
  target: 'optional',
  parameters: [
    norm, eps, step('eps/8'), iterations(40), earlyStop,
    { key: 'restarts', flag: 'restarts', label: 'Restarts', kind: 'int', default: 1, min: 1, max: 1000, hint: 'Random starts tried until one succeeds.' },
    { key: 'randomStart', flag: 'no-random-start', label: 'Random start', kind: 'boolean', default: true, hint: 'Start from a random point of the ball (false: from the original).' },
    { key: 'seed', flag: 'seed', label: 'Seed', kind: 'int', default: 0, min: 0, max: 0xffffffff, hint: 'Seed of the random starts.' },
  ],
  resolve: (values) => ({
    method: 'pgd', ...budget(values, (e) => e / 8),
    restarts: values.restarts as number, randomStart: values.randomStart as boolean, seed: values.seed as number,
  }),
  planned: (o) => o.iterations * o.restarts,
  ball: (o) => ({ norm: o.norm, eps: o.eps }),
  rounds: (o) => ({ count: o.restarts, name: 'restart' }),
  start: (run, o) => gradientSteps(run, o, { restarts: o.restarts, randomStart: o.randomStart, seed: o.seed }),
  loss: crossEntropyLoss,
};
