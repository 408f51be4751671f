// Between pictures and model inputs: x = (p − offset) / scale after grayscale (for 1-channel
// models; a gray picture takes all three channels of an RGB model) and resizing to the model's
// input, and back: p = clip(round(x·scale + offset)), in the input units of model.ts (one offset
// and scale for every channel). The model says how it is resized (its preprocess "resize"):
// OpenCV's INTER_LINEAR by default, or face-api.js's way (padded to a centred square with zeros,
// then TensorFlow 1's bilinear resize, not rounded to 8 bits).
import { decodeResized, decodeResizedTf1, resize, resizeTf1, toGray, toRgb, type Image, type Sampling } from './image.js';
import { inputUnits, type Architecture } from './model.js';

export function imageToInput(img: Image, arch: Architecture): Float32Array {
  const [h, w, c] = arch.input;
  let p = img.channels === c ? img : c === 1 ? toGray(img) : toRgb(img);
  if (arch.preprocess.resize === 'face-api') return toUnits(resizeTf1(p, w, h, 'square').data, arch);
  if (p.width !== w || p.height !== h) p = resize(p, w, h);
  return toUnits(p.data, arch);
}

/**
 * An image file (PNG or JPEG bytes) as model input, cropped first to `crop` if given: the same
 * numbers as `imageToInput(crop(decodeImage(bytes, name), ...crop), arch)`, without ever holding
 * the whole image (see decodeResized).
 */
export function fileToInput(bytes: Uint8Array, name: string, arch: Architecture, crop?: Sampling['crop']): Float32Array {
  const [height, width, channels] = arch.input;
  const to = { width, height, channels: channels as 1 | 3, crop };
  return toUnits((arch.preprocess.resize === 'face-api' ? decodeResizedTf1(bytes, name, to, 'square') : decodeResized(bytes, name, to)).data, arch);
}

function toUnits(pixels: Uint8Array | Float32Array, arch: Architecture): Float32Array {
  const { offset, scale } = inputUnits(arch);
  return Float32Array.from(pixels, (v) => (v - offset) / scale);
}

/** The pixel box [0, 255] in model units, [lo, hi] (scale may be negative). */
export function pixelBox(arch: Architecture): [number, number] {
  const { offset, scale } = inputUnits(arch);
  const a = (0 - offset) / scale, b = (255 - offset) / scale;
  return [Math.min(a, b), Math.max(a, b)];
}

export function inputToImage(x: Float32Array, arch: Architecture): Image {
  const [height, width, channels] = arch.input;
  const { offset, scale } = inputUnits(arch);
  const data = Uint8Array.from(x, (v) => Math.min(255, Math.max(0, Math.round(v * scale + offset))));
  return { width, height, channels: channels as 1 | 3, data };
}

/** DX made visible on a symmetric scale around 0, as the tutorial's plot: 0 → mid grey (128), ±max|DX| → 0/255 (for 3-channel DX, per channel with the common max). */
export function filterImage(dx: Float32Array, height: number, width: number, channels: 1 | 3): Image {
  if (dx.length !== height * width * channels) {
    throw new RangeError(`filterImage: ${dx.length} values for ${height}×${width}×${channels}`);
  }
  let max = 0;
  for (const v of dx) max = Math.max(max, Math.abs(v));
  // 128 ± 127.5·|v|/max, rounded away from 128 alike on both sides: f(-v) = 256 - f(v), and +max
  // (256) is clipped to 255. An all-zero DX is all mid grey.
  const data = Uint8Array.from(dx, (v) => (max > 0 ? Math.min(255, 128 + Math.sign(v) * Math.round((127.5 * Math.abs(v)) / max)) : 128));
  return { width, height, channels, data };
}
