// Every attack method, in the order the command line's help and the page list them. Adding a
// method is adding its module and one line here.
import { InputError } from '../errors.js';
import { apgdCe, apgdDlr, apgdT } from './apgd.js';
import { autoattack } from './autoattack.js';
import { bim } from './bim.js';
import { cw } from './cw.js';
import { deepfool } from './deepfool.js';
import { fgsm } from './fgsm.js';
import { filter } from './filter.js';
import { mifgsm } from './mifgsm.js';
import { pgd } from './pgd.js';
import { square } from './square.js';
import type { Method } from './method.js';

export const METHODS = [filter, fgsm, bim, pgd, mifgsm, cw, deepfool, apgdCe, apgdDlr, apgdT, square, autoattack] as const;

export type AttackMethod = (typeof METHODS)[number]['id'];

export function methodById(id: unknown): Method {
  const method = METHODS.find((m) => m.id === id);
  if (!method) throw new InputError(`unknown attack method ${JSON.stringify(id)} (methods: ${METHODS.map((m) => m.id).join(', ')})`);
  return method as unknown as Method;
}
