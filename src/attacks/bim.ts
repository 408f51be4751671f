// BIM, the basic iterative method or iterative FGSM (Kurakin, Goodfellow & Bengio, "Adversarial
// Examples in the Physical World", ICLR 2017 workshop, §2.1): steps of size `step` from the
// original, each projected back into the eps ball around it and into the pixel box.
import { gradientSteps } from './gradient.js';
import { budget, crossEntropyLoss, earlyStop, eps, iterations, norm, step, type Method } from './method.js';
import type { Norm } from './batch.js';

export interface BimOptions {
  method: 'bim';
  norm?: Norm;
  /** Budget and step in grey levels: eps 8 (L∞) or 128 (L2), step eps/8. */
  eps?: number;
  step?: number;
  /** Default 20. */
  iterations?: number;
  /** Stop an image as soon as its saved form is adversarial (default true). */
  earlyStop?: boolean;
}

export const bim: Method<Required<BimOptions>> = {
  id: 'bim',
  name: 'BIM (iterative FGSM)',
  summary: 'FGSM in small steps from the original, each projected back into the eps ball around it.',
  paper: 'Kurakin, Goodfellow & Bengio, Adversarial Examples in the Physical World, ICLR 2017 workshop',
  target: 'optional',
  parameters: [norm, eps, step('eps/8'), iterations(20), earlyStop],
  resolve: (values) => ({ method: 'bim', ...budget(values, (e) => e / 8) }),
  planned: (o) => o.iterations,
  ball: (o) => ({ norm: o.norm, eps: o.eps }),
  start: (run, o) => gradientSteps(run, o),
  loss: crossEntropyLoss,
};
