// How far an adversarial image is from its original, on 0..255 pixel values: L2 and L∞
// norms, PSNR and SSIM. Images are HWC, one value per pixel and channel.

/** ‖a − b‖₂ and ‖a − b‖∞. */
export function distances(a: ArrayLike<number>, b: ArrayLike<number>): { l2: number; linf: number } {
  let sq = 0, max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    sq += d * d;
    if (d > max) max = d;
  }
  return { l2: Math.sqrt(sq), linf: max };
}

/** The size of a change measured in grey levels, also in model units (`unit` of them per grey
 *  level), as reports give it (SPEC §4). */
export function norms(pixels: { l2: number; linf: number }, unit: number) {
  return { l2: pixels.l2 * unit, linf: pixels.linf * unit, l2_pixels: pixels.l2, linf_pixels: pixels.linf };
}

/** Peak signal-to-noise ratio in dB for a peak of 255: 10·log10(255² / MSE); Infinity for
 *  identical images. */
export function psnr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sq = 0;
  for (let i = 0; i < a.length; i++) sq += (a[i] - b[i]) ** 2;
  return sq === 0 ? Infinity : 10 * Math.log10((255 * 255 * a.length) / sq);
}

const SSIM_WINDOW = 11, SSIM_SIGMA = 1.5, C1 = (0.01 * 255) ** 2, C2 = (0.03 * 255) ** 2;

/**
 * Structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004) as their reference `ssim.m`:
 * an 11×11 Gaussian window of σ 1.5, K1 0.01, K2 0.03, L 255, the SSIM map over the positions
 * where the window fits entirely ("valid"), averaged; for several channels, the mean over
 * channels. An image narrower or shorter than 11 pixels uses a window as large as it allows,
 * still with σ 1.5 and normalised to sum 1.
 */
export function ssim(a: ArrayLike<number>, b: ArrayLike<number>, height: number, width: number, channels: number): number {
  const k = Math.min(SSIM_WINDOW, height, width);
  const kernel = new Float64Array(k);
  for (let i = 0; i < k; i++) kernel[i] = Math.exp(-((i - (k - 1) / 2) ** 2) / (2 * SSIM_SIGMA ** 2));
  const total = kernel.reduce((s, v) => s + v, 0);
  for (let i = 0; i < k; i++) kernel[i] /= total;
  const oh = height - k + 1, ow = width - k + 1;
  const plane = (src: ArrayLike<number>, c: number, f: (x: number) => number, other?: ArrayLike<number>) => {
    const out = new Float64Array(height * width);
    for (let i = 0; i < height * width; i++) out[i] = other ? src[i * channels + c] * other[i * channels + c] : f(src[i * channels + c]);
    return filter(out, height, width, kernel, oh, ow);
  };
  let sum = 0;
  for (let c = 0; c < channels; c++) {
    const muA = plane(a, c, (v) => v), muB = plane(b, c, (v) => v);
    const aa = plane(a, c, (v) => v * v), bb = plane(b, c, (v) => v * v), ab = plane(a, c, (v) => v, b);
    let s = 0;
    for (let i = 0; i < oh * ow; i++) {
      const ma = muA[i], mb = muB[i];
      const va = aa[i] - ma * ma, vb = bb[i] - mb * mb, cov = ab[i] - ma * mb;
      s += ((2 * ma * mb + C1) * (2 * cov + C2)) / ((ma * ma + mb * mb + C1) * (va + vb + C2));
    }
    sum += s / (oh * ow);
  }
  return sum / channels;
}

/** A separable "valid" filtering of an h×w plane by kernel ⊗ kernel. */
function filter(src: Float64Array, h: number, w: number, kernel: Float64Array, oh: number, ow: number): Float64Array {
  const k = kernel.length;
  const rows = new Float64Array(h * ow);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let i = 0; i < k; i++) s += kernel[i] * src[y * w + x + i];
      rows[y * ow + x] = s;
    }
  }
  const out = new Float64Array(oh * ow);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let i = 0; i < k; i++) s += kernel[i] * rows[(y + i) * ow + x];
      out[y * ow + x] = s;
    }
  }
  return out;
}
