// Between pictures and model inputs: x = (p − offset) / scale after grayscale (for 1-channel
// models) and resizing to the model's input, and back: p = clip(round(x·scale + offset)).
import { resize, toGray, type Image } from './image.js';
import type { Architecture } from './model.js';

export function imageToInput(img: Image, arch: Architecture): Float32Array {
  const [h, w, c] = arch.input;
  let p = c === 1 && img.channels === 3 ? toGray(img) : img;
  if (p.width !== w || p.height !== h) p = resize(p, w, h);
  const { offset, scale } = arch.preprocess;
  return Float32Array.from(p.data, (v) => (v - offset) / scale);
}

export function inputToImage(x: Float32Array, arch: Architecture): Image {
  const [height, width, channels] = arch.input;
  const { offset, scale } = arch.preprocess;
  const data = Uint8Array.from(x, (v) => Math.min(255, Math.max(0, Math.round(v * scale + offset))));
  return { width, height, channels: channels as 1 | 3, data };
}
