// FGSM, the fast gradient sign method (Goodfellow, Shlens & Szegedy, "Explaining and Harnessing
// Adversarial Examples", ICLR 2015, §4): one step of size eps along the sign of the loss
// gradient (L∞), or along the gradient scaled to length eps (L2).
import { gradientSteps } from './gradient.js';
import { budget, crossEntropyLoss, eps, norm, type Method } from './method.js';
import type { Norm } from './batch.js';

export interface FgsmOptions {
  method: 'fgsm';
  /** Default 'linf'. */
  norm?: Norm;
  /** Budget in grey levels: default 8 for L∞, 128 for L2. */
  eps?: number;
}

export const fgsm: Method<Required<FgsmOptions>> = {
  id: 'fgsm',
  name: 'FGSM',
  summary: 'Fast gradient sign method: one step of size eps along the sign of the loss gradient (L∞) or along the gradient (L2).',
  paper: 'Goodfellow, Shlens & Szegedy, Explaining and Harnessing Adversarial Examples, ICLR 2015',
  target: 'optional',
  parameters: [norm, eps],
  resolve(values) {
    const { norm, eps } = budget({ ...values, iterations: 1 }, (e) => e);
    return { method: 'fgsm', norm, eps };
  },
  planned: () => 1,
  ball: (o) => ({ norm: o.norm, eps: o.eps }),
  start: (run, o) => gradientSteps(run, o),
  loss: crossEntropyLoss,
};
