// What an attack method is. Each method is one module (fgsm.ts, pgd.ts, cw.ts, …) exporting a
// Method: what it is (name, summary, paper), its parameters (from which the command line builds
// its flags, help and checks and the page its form), how its defaults follow from the values
// given, and how it starts on a batch. registry.ts lists them; readOptions is the one validator.
import { InputError } from '../errors.js';
import type { Ball, BatchRun, Norm } from './batch.js';

/** A method's run on one batch: `step()` does one iteration and returns false once the batch is
 *  over, its results recorded in the BatchRun. */
export interface Stepper {
  step(): boolean;
  /** Frees what the stepper holds beyond the batch's workspace, for a run stopped early. */
  dispose?(): void;
}

export type Value = number | string | boolean;

export interface Parameter {
  /** The option's key in the library's options. */
  key: string;
  /** The command-line flag, without "--" (absent: the library's only). A boolean's flag turns
   *  its default around. */
  flag?: string;
  /** The page's label. */
  label: string;
  /** A 'list' is comma-separated values among the choices, in any order. */
  kind: 'int' | 'float' | 'choice' | 'list' | 'boolean';
  /** The default; absent when it follows from other values (`derived` says how). */
  default?: Value;
  derived?: string;
  /** Bounds of a number; `above` makes the lower bound exclusive. */
  min?: number;
  max?: number;
  above?: boolean;
  choices?: readonly { value: string; label: string }[];
  /** 'grey levels' for sizes on the 0..255 scale. */
  unit?: string;
  /** One line of help. */
  hint: string;
}

export interface Method<O extends { method: string } = { method: string }> {
  id: O['method'];
  name: string;
  summary: string;
  paper: string;
  /** Whether the method can run without a target ('optional'), or always has one: the filter
   *  learns toward a label (by default the first one that is not the image's class). */
  target: 'optional' | 'required';
  parameters: readonly Parameter[];
  /** The options with every default filled in, from the values readOptions checked (and the
   *  options as given, for what is not a parameter, such as the filter's starting DX). */
  resolve(values: Readonly<Record<string, Value | undefined>>, given: Readonly<Record<string, unknown>>): O;
  /** Iterations planned per batch (progress and a live loss curve's x axis). */
  planned(o: O): number;
  /** What the saved image must stay within (null: only the pixel box). */
  ball(o: O): Ball | null;
  /** Why the method cannot attack a model of `classes` classes (toward a target if `targeted`),
   *  or null when it can: a loss that needs more classes than the model has. */
  refuses?(classes: number, targeted: boolean): string | null;
  /** What a report should say about running `o` on a model of `classes` classes (parts left
   *  out, settings that change nothing on this engine). */
  notes?(o: O, classes: number): string[];
  /** What a round is called when there are several (PGD's restarts, C&W's binary-search steps). */
  rounds?(o: O): { count: number; name: string };
  start(run: BatchRun, o: O): Stepper;
  /** What the loss of progress reports is. */
  loss: { scale: 'log' | 'linear'; about(targeted: boolean): string };
}

const MAX_SIZE = 1e6;

/** How a parameter is named in messages: its key for the library, its flag on the command line. */
export type Subject = (p: Parameter) => string;

/** Checks each given value of `parameters` (a method's, or the options every method has), and
 *  fills in fixed defaults. */
export function readOptions(method: string, parameters: readonly Parameter[], given: Readonly<Record<string, unknown>>, subject: Subject = (p) => p.key): Record<string, Value | undefined> {
  const values: Record<string, Value | undefined> = {};
  for (const p of parameters) values[p.key] = checkValue(`${method}: ${subject(p)}`, p, given[p.key] ?? p.default);
  return values;
}

function checkValue(what: string, p: Parameter, v: unknown): Value | undefined {
  if (v === undefined) return undefined;
  const fail = (why: string): never => {
    throw new InputError(`${what} must be ${why}, got ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`);
  };
  switch (p.kind) {
    case 'boolean':
      return typeof v === 'boolean' ? v : fail('true or false');
    case 'choice':
      return p.choices!.some((c) => c.value === v) ? (v as string) : fail(p.choices!.map((c) => JSON.stringify(c.value)).join(' or '));
    case 'list': {
      const items = typeof v === 'string' ? v.split(',').map((s) => s.trim()) : [];
      const ok = items.length > 0 && items.every((s) => p.choices!.some((c) => c.value === s));
      return ok ? items.join(',') : fail(`a comma-separated list of ${p.choices!.map((c) => c.value).join(', ')}`);
    }
    case 'int':
      return Number.isSafeInteger(v) && (v as number) >= p.min! && (v as number) <= p.max! ? (v as number) : fail(`an integer from ${p.min} to ${p.max}`);
    case 'float': {
      const ok = typeof v === 'number' && Number.isFinite(v) && (p.above ? v > p.min! : v >= p.min!) && v <= p.max!;
      return ok ? (v as number) : fail(`a number ${p.above ? '>' : '≥'} ${p.min} and at most ${p.max}`);
    }
  }
}

/** The batch size for inputs of `size` values when none is given. Batching amortises each pass's
 *  fixed costs over small images; on a large one the kernels are busy on one image alone, and a
 *  batch only carries its images that already succeeded along until its last one is done. */
export const defaultBatchSize = (size: number) => Math.max(1, Math.min(32, Math.floor((32 * 48 * 48) / size)));

/** The options every method has besides its own parameters. */
export const COMMON: readonly Parameter[] = [
  {
    key: 'batchSize', flag: 'batch', label: 'Batch size', kind: 'int', min: 1, max: 65536, hint: 'Images per pass through the engine.',
    derived: '32 for the 48×48 grey faces; for larger inputs as many as make 73,728 input values (1 from 224×224×1 or 157×157×3 up)',
  },
  { key: 'quantize', label: 'Judge as saved', kind: 'boolean', default: true, hint: 'Round to the 8-bit grid and judge success on that image.' },
];

// Parameters that several methods share.

export const norm: Parameter = {
  key: 'norm', flag: 'norm', label: 'Norm', kind: 'choice', default: 'linf',
  choices: [{ value: 'linf', label: 'L∞ (per pixel)' }, { value: 'l2', label: 'L2 (whole change)' }],
  hint: 'How eps and the step are measured.',
};

/** The default budget of each norm, in grey levels: 8 of 255 for L∞, 128 (0.5 on the 0..1 scale) for L2. */
export const DEFAULT_EPS: Readonly<Record<Norm, number>> = { linf: 8, l2: 128 };

export const eps: Parameter = {
  key: 'eps', flag: 'eps', label: 'eps (grey levels)', kind: 'float', derived: '8 for L∞, 128 for L2', min: 0, max: MAX_SIZE, unit: 'grey levels',
  hint: 'The budget: how far the image may move from the original.',
};

export const step = (rule: string): Parameter => ({
  key: 'step', flag: 'step', label: 'Step (grey levels)', kind: 'float', derived: rule, min: 0, max: MAX_SIZE, unit: 'grey levels',
  hint: 'Size of each step (L∞: per pixel; L2: of the whole step).',
});

export const iterations = (fallback: number): Parameter => ({
  key: 'iterations', flag: 'iters', label: 'Iterations', kind: 'int', default: fallback, min: 1, max: 10_000_000,
  hint: 'At most: it stops once the saved image is adversarial.',
});

export const earlyStop: Parameter = {
  key: 'earlyStop', flag: 'no-early-stop', label: 'Stop early', kind: 'boolean', default: true,
  hint: 'Stop an image as soon as its saved form is adversarial.',
};

/** The budget ball and step of the gradient methods, with their defaults. */
export function budget(values: Readonly<Record<string, Value | undefined>>, stepOf: (eps: number, iterations: number) => number) {
  const n = values.norm as Norm;
  const e = (values.eps as number | undefined) ?? DEFAULT_EPS[n];
  const iters = values.iterations as number;
  return { norm: n, eps: e, iterations: iters, step: (values.step as number | undefined) ?? stepOf(e, iters), earlyStop: values.earlyStop as boolean };
}

export const crossEntropyLoss = {
  scale: 'log' as const,
  about: (targeted: boolean) =>
    targeted ? 'Cross-entropy of the target label (the attack lowers it).' : 'Cross-entropy of the original label (the attack raises it).',
};
