/** A small seeded PRNG (mulberry32), so that tests are deterministic. Values in [0, 1). */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A sample of N(0, σ²) redrawn until it lies within 2σ, as TensorFlow's truncated_normal. */
export function truncatedNormal(rand: () => number, sigma: number): number {
  for (;;) {
    const z = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    if (Math.abs(z) <= 2) return z * sigma;
  }
}

/** Shuffles `a` in place (Fisher–Yates). */
export function shuffle<T>(a: { length: number; [i: number]: T }, rand: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}
