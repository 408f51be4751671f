// What several test files need: random models and the error measure of a tensor against its reference.
import { expect } from 'vitest';
import type { AttackResult } from '../src/attacks/index.js';
import { predictLogits, type Net } from '../src/core/net.js';
import { inputUnits, parameterShapes, type Architecture, type Model } from '../src/formats/model.js';
import { random } from '../src/core/random.js';

/** max |a − b| / max |b|: the error relative to the tensor's scale (the difference itself when b is 0). */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`${actual.length} values, expected ${expected.length}`);
  let diff = 0, scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

/** Half-widths of uniform weights of variance amp²/fan-in (He-like for amp 2), biases smaller. */
export const heRange = (amp: number) => (key: string, shape: readonly number[]): number => {
  const bias = key.endsWith('.b');
  const fan = bias ? 1 : shape.slice(0, -1).reduce((a, b) => a * b, 1);
  return amp * Math.sqrt(3 / fan) * (bias ? 0.3 : 1);
};

/** Weights uniform in ±range (by default ±0.2, the scale of a trained network of this size),
 *  drawn from a seed or a generator, tensor by tensor in the architecture's order. */
export function randomModel(architecture: Architecture, source: number | (() => number), range: number | ((key: string, shape: readonly number[]) => number) = 0.2): Model {
  const rand = typeof source === 'number' ? random(source) : source;
  const weights = new Map<string, Float32Array>();
  for (const [key, shape] of parameterShapes(architecture)) {
    const r = typeof range === 'number' ? range : range(key, shape);
    weights.set(key, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (rand() * 2 - 1) * r));
  }
  return { architecture, weights };
}

/** Random 8-bit images as model inputs; one pixel in ten is black or white, so the box binds. */
export function randomImages(arch: Architecture, count: number, seed: number): Float32Array[] {
  const rand = random(seed);
  const size = arch.input[0] * arch.input[1] * arch.input[2];
  const { offset, scale: s } = inputUnits(arch);
  return Array.from({ length: count }, () =>
    Float32Array.from({ length: size }, () => {
      const u = rand();
      const p = u < 0.05 ? 0 : u < 0.1 ? 255 : Math.floor(rand() * 256);
      return (p - offset) / s;
    }),
  );
}

/** An attack's saved images: on the 8-bit grid, in the pixel box and within `eps` (grey levels)
 *  of the originals `xs`, and classified as reported. */
export function checkSaved(net: Net, xs: Float32Array[], results: AttackResult[], norm: 'linf' | 'l2', eps: number): void {
  const { offset, scale } = inputUnits(net.architecture);
  const logits = predictLogits(net, results.map((r) => r.adversarial));
  results.forEach((r, i) => {
    const p = Array.from(r.adversarial, (v) => v * scale + offset), p0 = Array.from(xs[i], (v) => v * scale + offset);
    expect(p.every((v) => Math.abs(v - Math.round(v)) < 1e-3 && v > -1e-3 && v < 255.001)).toBe(true);
    const d = p.map((v, j) => v - p0[j]);
    expect(norm === 'linf' ? Math.max(...d.map(Math.abs)) : Math.hypot(...d)).toBeLessThanOrEqual(eps + 1e-3);
    expect(Array.from(logits[i])).toEqual(r.after.logits);
  });
}

/** A JSON report read without its wall times (`ms_per_image`), which no two runs share. */
export const withoutTimes = (json: string) => JSON.parse(json, (key, value) => (key === 'ms_per_image' ? undefined : value));
