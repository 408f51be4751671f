// What the PNG and JPEG targets run on an input: both ways the project reads an image. decodeImage
// (the dataset, the page) and decodeResized (the command line's model input, straight to a small
// size without holding the image), which must agree bit for bit with
// resize(toGray(crop(decodeImage))) whenever both accept the file.
import { InputError } from '../../src/errors.js';
import { crop, decodeImage, decodeResized, MAX_PIXELS, MAX_SIDE, resize, toGray, type Image, type Sampling } from '../../src/formats/image.js';
import { Invalid } from './harness.js';
import { pick, type Rand } from './mutate.js';

/** What an accepted image must be: within the size limits, the right number of bytes. */
export function checkImage(img: Image): void {
  const { width: w, height: h } = img;
  if (!Number.isSafeInteger(w) || !Number.isSafeInteger(h) || w < 1 || h < 1 || w > MAX_SIDE || h > MAX_SIDE || w * h > MAX_PIXELS) {
    throw new Invalid(`image of ${w}x${h} pixels`);
  }
  if (!(img.channels === 3 || img.channels === 1) || !(img.data instanceof Uint8Array) || img.data.length !== w * h * img.channels) {
    throw new Invalid(`${w}x${h}x${img.channels} image with ${img.data?.length} bytes`);
  }
}

/** A model-input size for decodeResized: the tutorial's, an RGB one, and small crops. */
export function sampling(r: Rand): Sampling {
  return pick(r, [
    { width: 48, height: 48, channels: 1 },
    { width: 32, height: 20, channels: 3 },
    { width: 3, height: 5, channels: 1, crop: [1, 0, 2, 3] },
    { width: 7, height: 7, channels: 3, crop: [0, 1, 1, 1] },
  ] satisfies Sampling[]);
}

const describeSampling = (to: Sampling) => `${to.width}x${to.height}x${to.channels}${to.crop ? ` crop ${to.crop}` : ''}`;
export { describeSampling };

/** Reads `bytes` both ways; throws decodeImage's refusal (or an escape, or Invalid when they disagree). */
export function readImage(bytes: Uint8Array, name: string, to: Sampling): void {
  let whole: Image | undefined, refusal: unknown;
  try {
    whole = decodeImage(bytes, name);
    checkImage(whole);
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    refusal = e;
  }
  let small: Image | undefined;
  try {
    small = decodeResized(bytes, name, to);
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
  }
  if (whole && small) {
    let cropped = whole;
    try {
      if (to.crop) cropped = crop(whole, ...to.crop);
    } catch (e) {
      throw new Invalid(`decodeResized accepted a crop that crop() refuses (${(e as Error).message})`);
    }
    const expected = resize(to.channels === 1 ? toGray(cropped) : cropped, to.width, to.height);
    const at = expected.data.findIndex((v, i) => v !== small.data[i]);
    if (at >= 0 || expected.data.length !== small.data.length) {
      throw new Invalid(`decodeResized differs from resize(toGray(decodeImage)) at byte ${at} (${small.data[at]} against ${expected.data[at]})`);
    }
  }
  if (refusal) throw refusal;
}
