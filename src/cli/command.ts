// What every command shares: its shape, the options several take, and reading them.
import type { ParseArgsConfig } from 'node:util';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { InputError } from '../errors.js';
import type { Crop } from '../node/files.js';
import { globSync, isDynamicPattern } from 'tinyglobby';

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, unknown>;

/** A command of the command line: its usage line, summary, help, options and what it does. */
export interface Command {
  usage: string;
  summary: string;
  help: string;
  options: Options;
  run(positionals: string[], values: Values): Promise<void>;
}

export const modelOption = { model: { type: 'string' } } as const;
export const cropOption = { crop: { type: 'string' } } as const;
export const outputOptions = { out: { type: 'string' }, force: { type: 'boolean' }, json: { type: 'boolean' }, quiet: { type: 'boolean' } } as const;

export function outputFlags(values: Values) {
  return { out: (values.out as string | undefined) ?? 'out', force: Boolean(values.force), json: Boolean(values.json), quiet: Boolean(values.quiet), crop: cropOf(values) };
}

export function cropOf(values: Values): Crop | undefined {
  const text = values.crop as string | undefined;
  if (text === undefined) return undefined;
  const parts = text.split(',').map((p) => Number(p.trim()));
  if (parts.length !== 4 || !parts.every((v) => Number.isSafeInteger(v) && v >= 0) || parts[2] === 0 || parts[3] === 0) {
    throw new InputError(`--crop ${text}: expected X,Y,W,H in pixels (whole numbers, width and height > 0)`);
  }
  return parts as unknown as Crop;
}

export function expandImages(args: string[]): string[] {
  return expandGlobs(args).flatMap((p) => {
    if (!existsSync(p) || !statSync(p).isDirectory()) return [p];
    const found = readdirSync(p).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort().map((f) => join(p, f));
    if (found.length === 0) throw new InputError(`${p}: a folder with no PNG or JPEG image`);
    return found;
  });
}

export function expandGlobs(patterns: string[]): string[] {
  return patterns.flatMap((p) => {
    if (existsSync(p) || !isDynamicPattern(p)) return [p];
    const found = globSync(p, { onlyFiles: true, expandDirectories: false, absolute: isAbsolute(p) }).sort();
    if (found.length === 0) throw new InputError(`${p}: no file matches`);
    return found;
  });
}

export function intOption(values: Values, name: string, fallback: number, min: number, max: number): number {
  const text = values[name] as string | undefined;
  if (text === undefined) return fallback;
  const v = Number(text);
  if (!/^\s*[+-]?\d+(\.0*)?(e\+?\d+)?\s*$/i.test(text) || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new InputError(`--${name} ${text}: expected a whole number from ${min} to ${max}`);
  }
  return v;
}

export function numberOption(values: Values, name: string, fallback: number, range: { min: number; exclusiveMin?: boolean }): number {
  const text = values[name] as string | undefined;
  if (text === undefined) return fallback;
  const v = Number(text);
  const low = range.exclusiveMin ? v <= range.min : v < range.min;
  if (text.trim() === '' || !Number.isFinite(v) || low || v > 1e6) {
    throw new InputError(`--${name} ${text}: expected a number ${range.exclusiveMin ? '>' : '≥'} ${range.min} and at most 1e6`);
  }
  return v;
}

/** The keys of `o` in the style of every JSON document the command line writes (SPEC §1's
 *  `success_saved`): `earlyStop` becomes `early_stop`. Shallow: values keep their own keys. */
export function snakeKeys(o: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), v]));
}

export function print(line: string): void {
  process.stdout.write(line + '\n');
}

