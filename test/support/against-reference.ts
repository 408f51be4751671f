// What the op tests share: random tensors, an op run forward and backward on a fresh tape, and a
// record of the worst relative error per quantity, printed after the file's tests.
import { afterAll, expect } from 'vitest';
import type { Engine, Tensor } from '../../src/core/engine.js';
import { dot } from '../../src/core/ops.js';
import { Tape } from '../../src/core/tape.js';
import { relativeError } from '../helpers.js';
import * as ref from '../reference.js';

/** Values uniform in ±scale, rounded to float32 so that the reference sees what the kernels see. */
export const randomTensor = (shape: number[], rand: () => number, scale = 1): ref.Tensor =>
  ref.tensor(shape, Array.from({ length: ref.sizeOf(shape) }, () => Math.fround((rand() * 2 - 1) * scale)));

/** Runs `build` on a fresh tape (inputs with a gradient unless `constant[i]`), backpropagates
 *  Σ y·g for a random g, and returns the output, g and the gradients (null for constants). */
export function runOnTape(engine: Engine, inputs: ref.Tensor[], build: (tape: Tape, xs: Tensor[]) => Tensor, rand: () => number, constant: boolean[] = []) {
  const tape = new Tape(engine);
  const xs = inputs.map((t, i) => {
    const x = engine.tensor(t.shape, t.data);
    return constant[i] ? x : x.requireGrad();
  });
  const y = build(tape, xs);
  const g = randomTensor([...y.shape], rand);
  tape.backward(dot(tape, y, engine.tensor(g.shape, g.data)));
  const result = { y: y.toArray(), shape: [...y.shape], grads: xs.map((x) => x.grad?.toArray() ?? null), g };
  tape.dispose();
  return result;
}

/** `check(what, actual, expected, context)` fails past `tolerance`; it and `note(what, error)`
 *  keep the worst error of each `what`, printed under `title` when the file's tests end. */
export function errorRecord(title: string, tolerance = 1e-4) {
  const worst = new Map<string, number>();
  afterAll(() => {
    const width = Math.max(...[...worst.keys()].map((k) => k.length));
    console.log(`${title}:\n${[...worst].map(([k, v]) => `  ${k.padEnd(width)} ${v.toExponential(2)}`).join('\n')}`);
  });
  const note = (what: string, error: number) => worst.set(what, Math.max(worst.get(what) ?? 0, error));
  const check = (what: string, actual: ArrayLike<number>, expected: ArrayLike<number>, context: string): void => {
    const e = relativeError(actual, expected);
    note(what, e);
    if (!(e <= tolerance)) expect.fail(`${what} ${context}: relative error ${e.toExponential(2)} > ${tolerance}`);
  };
  return { check, note };
}
