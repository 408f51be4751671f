// MI-FGSM, momentum iterative FGSM (Dong, Liao, Pang, Su, Zhu, Hu & Li, "Boosting Adversarial
// Attacks with Momentum", CVPR 2018, Algorithm 1): BIM along a momentum g ← μ·g + ∇/‖∇‖₁.
import { gradientSteps } from './gradient.js';
import { budget, crossEntropyLoss, earlyStop, eps, iterations, norm, step, type Method } from './method.js';
import type { Norm } from './batch.js';

export interface MiFgsmOptions {
  method: 'mifgsm';
  norm?: Norm;
  /** Budget and step in grey levels: eps 8 (L∞) or 128 (L2), step eps/iterations. */
  eps?: number;
  step?: number;
  /** Default 10. */
  iterations?: number;
  earlyStop?: boolean;
  /** The momentum's decay μ: default 1.0, the paper's. */
  decay?: number;
}

export const mifgsm: Method<Required<MiFgsmOptions>> = {
  id: 'mifgsm',
  name: 'MI-FGSM (momentum)',
  summary: 'BIM along a momentum of the L1-normalised gradients, which steadies the direction of the steps.',
  paper: 'Dong, Liao, Pang, Su, Zhu, Hu & Li, Boosting Adversarial Attacks with Momentum, CVPR 2018',
  target: 'optional',
  parameters: [
    norm, eps, step('eps/iterations'), iterations(10), earlyStop,
    { key: 'decay', flag: 'decay', label: 'Decay μ', kind: 'float', default: 1, min: 0, max: 100, hint: "The momentum's decay: 1 as in the paper, 0 is BIM." },
  ],
  resolve: (values) => ({ method: 'mifgsm', ...budget(values, (e, n) => e / n), decay: values.decay as number }),
  planned: (o) => o.iterations,
  ball: (o) => ({ norm: o.norm, eps: o.eps }),
  start: (run, o) => gradientSteps(run, o, { decay: o.decay }),
  loss: crossEntropyLoss,
};
