// A deterministic generator of labelled 48×48 grayscale faces (man / woman) to train the default
// gender classifier, since no real face dataset is at hand. Faces are cartoons from facesjs (all its
// races and random features), rendered by resvg onto a random grey background with random framing,
// lighting and jersey colours, then turned into model input exactly as a user's picture is: PNG
// bytes → decodeImage → toGray → resize to 48×48.
//
// Variation per face: facesjs's race (white, black, brown, asian) and every feature it draws at
// random; a face region of ±10 % size, shifted by up to 5 % of it, rotated by up to ±8° and mirrored
// half the time; a background grey (half the time a gradient between two greys); random jersey
// colours; and a black or white veil over everything (darker, or paler with less contrast). Blur
// was left out: resvg's feGaussianBlur triples the rendering time.
//
// Determinism: facesjs draws from Math.random, which is swapped for a mulberry32 seeded from
// (seed, index) while it runs, and our own draws come from the same generator, so face i is the
// same whatever the count. The SVG text is identical on any machine; the pixels depend only on the
// resvg version (its own software rasteriser, no system fonts involved).
//
// Speed: about 220 faces per second on one core (SVG building ~1 ms, resvg ~2 ms at 96×96, PNG
// encode + decode ~1 ms), so 20k faces take about a minute and a half.
//
// Gender give-aways removed: facesjs draws women with narrower shoulders (body.size 0.8–0.9 against
// 0.95–1.05), which shows as the width of the jersey at the bottom of the picture; here both draw
// body.size from 0.8–1.05. Its default jersey colours are the same for both, and its accessories
// (headbands, hats, eye black) and glasses are drawn for both with equal odds, so nothing else is
// a non-facial cue. Kept, as they are facial: beards and stubble (men only), eyelashes and female
// eye/eyebrow shapes, blush (women only), long hair (90 % of women, 10 % of men), wider faces
// (fatness 0–1 for men, 0–0.4 for women), bigger noses and ears for men.
import { Resvg } from '@resvg/resvg-js';
import { faceToSvgString, generate, type FaceConfig } from 'facesjs';
import { InputError } from '../errors.js';
import { decodeImage, resize, toGray, type Image } from '../formats/image.js';
import { random } from '../core/random.js';

export const LABELS = ['man', 'woman'] as const;

export interface Face {
  /** Index into LABELS: 0 = man, 1 = woman. */
  label: 0 | 1;
  /** 48×48, 1 channel. */
  image: Image;
}

export const FACE_SIZE = 48;
/** The side of the rendered picture, before it goes through the user-image preprocessing. */
const RENDER_SIZE = 96;
/** The face region of facesjs's 400×600 canvas: eyes at y = 310, mouth at 440, chin near 500. */
const CENTER_X = 200, CENTER_Y = 320, SIDE = 400;

/** A 32-bit hash of two 32-bit words (murmur3's finaliser on a combination of both). */
function mix(a: number, b: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ b;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export function checkSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new InputError(`seed must be a whole number from 0 to ${0xffffffff}, got ${seed}`);
  }
}

export function checkCount(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new InputError(`${what} must be a whole number ≥ 0, got ${n}`);
}

/**
 * The label of face `index`: each pair (2k, 2k+1) holds one man and one woman in an order drawn
 * from the seed, so any even count is exactly balanced and the labels do not simply alternate.
 */
function labelOf(seed: number, index: number): 0 | 1 {
  const pair = Math.floor(index / 2);
  return ((index & 1) ^ (mix(seed ^ 0x5bd1e995, pair ^ Math.floor(pair / 2 ** 32)) & 1)) as 0 | 1;
}

/** Calls `f` with Math.random replaced by `rand`, restoring it afterwards whatever happens. */
function withRandom<T>(rand: () => number, f: () => T): T {
  const saved = Math.random;
  Math.random = rand;
  try {
    return f();
  } finally {
    Math.random = saved;
  }
}

const hex2 = (v: number) => Math.round(v).toString(16).padStart(2, '0');
const grey = (v: number) => `#${hex2(v).repeat(3)}`;
const fixed = (v: number) => Number(v.toFixed(3));

/** The SVG of face `index` of `seed`, framed and lit, and its label. */
export function faceSvg(seed: number, index: number): { label: 0 | 1; svg: string } {
  checkSeed(seed);
  checkCount('face index', index);
  const label = labelOf(seed, index);
  const rand = random(mix(seed, index ^ Math.floor(index / 2 ** 32)));
  const uniform = (a: number, b: number) => a + (b - a) * rand();
  const svg = withRandom(rand, () => {
    const face: FaceConfig = generate(undefined, { gender: label === 0 ? 'male' : 'female' });
    // Jersey colours vary, so that only the face tells the gender; shoulder width is the same for both.
    const colour = () => `#${hex2(rand() * 255)}${hex2(rand() * 255)}${hex2(rand() * 255)}`;
    face.teamColors = [colour(), colour(), colour()];
    face.body.size = Math.round(uniform(0.8, 1.05) * 100) / 100;
    return faceToSvgString(face);
  });
  const inner = svg.slice(svg.indexOf('>', svg.indexOf('<svg')) + 1, svg.lastIndexOf('</svg>'));

  // Framing: ±10 % scale, shifts of up to 5 % of the side, rotation up to ±8°, mirror half the time.
  const side = SIDE * uniform(0.9, 1.1);
  const cx = CENTER_X + side * uniform(-0.05, 0.05), cy = CENTER_Y + side * uniform(-0.05, 0.05);
  const angle = uniform(-8, 8);
  const mirror = rand() < 0.5;
  const x0 = cx - side / 2, y0 = cy - side / 2;
  // Background: a grey level, half the time a gradient to another grey in a random direction.
  const g0 = rand() * 255, g1 = rand() < 0.5 ? g0 : rand() * 255, dir = rand() * 2 * Math.PI;
  const gx = fixed(0.5 + 0.5 * Math.cos(dir)), gy = fixed(0.5 + 0.5 * Math.sin(dir));
  // Lighting: a veil of black (darker) or white (paler, lower contrast) over everything.
  const veil = rand() < 0.5 ? `#000" opacity="${fixed(uniform(0, 0.35))}` : `#fff" opacity="${fixed(uniform(0, 0.25))}`;
  const transform =
    `rotate(${fixed(angle)} ${fixed(cx)} ${fixed(cy)})` +
    (mirror ? ` translate(${fixed(2 * cx)} 0) scale(-1 1)` : '');
  const box = `x="${fixed(x0 - side)}" y="${fixed(y0 - side)}" width="${fixed(3 * side)}" height="${fixed(3 * side)}"`;
  return {
    label,
    svg:
      `<svg xmlns="http://www.w3.org/2000/svg" width="${RENDER_SIZE}" height="${RENDER_SIZE}" ` +
      `viewBox="${fixed(x0)} ${fixed(y0)} ${fixed(side)} ${fixed(side)}">` +
      `<defs><linearGradient id="bg" x1="${fixed(1 - gx)}" y1="${fixed(1 - gy)}" x2="${gx}" y2="${gy}">` +
      `<stop offset="0" stop-color="${grey(g0)}"/><stop offset="1" stop-color="${grey(g1)}"/></linearGradient></defs>` +
      `<rect ${box} fill="url(#bg)"/><g transform="${transform}">${inner}</g><rect ${box} fill="${veil}"/></svg>`,
  };
}

const RESVG_OPTIONS = { font: { loadSystemFonts: false }, logLevel: 'off' } as const;

/** Face `index` of the dataset drawn from `seed`: the same pixels for the same (seed, index). */
export function generateFace(seed: number, index: number): Face {
  const { label, svg } = faceSvg(seed, index);
  const png = new Resvg(svg, RESVG_OPTIONS).render().asPng();
  const rgb = decodeImage(new Uint8Array(png.buffer, png.byteOffset, png.byteLength), `face ${index}`);
  return { label, image: resize(toGray(rgb), FACE_SIZE, FACE_SIZE) };
}

/** Faces from … from+count−1 of `seed`; half men, half women when count and from are even. */
export function generateFaces(count: number, seed: number, onProgress?: (done: number) => void, from = 0): Face[] {
  checkCount('count', count);
  checkSeed(seed);
  const faces: Face[] = [];
  for (let i = 0; i < count; i++) {
    faces.push(generateFace(seed, from + i));
    onProgress?.(i + 1);
  }
  return faces;
}
