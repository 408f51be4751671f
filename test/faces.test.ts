// Faces in photos: a box cut out of the picture, padded to a centred square with zeros and resized
// with TensorFlow 1's bilinear sampling, as face-api.js feeds its networks; checked against a float64
// implementation written here from the definitions and against TensorFlow.js's own resizeBilinear.
// Then the command line: --crop, and labels.csv's face_x,face_y,face_w,face_h, for predict, attack
// and eval, and the refusal of bad boxes.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import jpeg from 'jpeg-js';
import { beforeAll, describe, expect, it } from 'vitest';
import { crop, decodeImage, decodeResizedTf1, resizeTf1, type Image } from '../src/formats/image.js';
import { fileToInput, imageToInput } from '../src/formats/preprocess.js';
import { checkArchitecture, readModel, writeModel, type Architecture } from '../src/formats/model.js';
import { random } from '../src/core/random.js';
import { makePng } from './support/png.js';
import { randomModel } from './helpers.js';
import * as ref from './reference.js';

const require = createRequire(import.meta.url);
const tf: typeof TF = require('@tensorflow/tfjs');
const warn = console.warn;
console.warn = (...args: unknown[]) => {
  if (!String(args[0]).includes('tfjs-node')) warn(...args);
};
beforeAll(async () => {
  await tf.setBackend('cpu');
});

type Box = [x: number, y: number, w: number, h: number];

/** A picture of smooth gradients and noise, so that every sample differs from its neighbours. */
function picture(width: number, height: number, channels: 1 | 3, seed: number): Image {
  const rand = random(seed);
  const data = Uint8Array.from({ length: width * height * channels }, (_, i) => {
    const p = Math.floor(i / channels), x = p % width, y = Math.floor(p / width);
    return Math.max(0, Math.min(255, Math.round(128 + 90 * Math.sin(x / 3 + (i % channels)) * Math.cos(y / 4) + 30 * (rand() - 0.5))));
  });
  return { width, height, channels, data };
}

/**
 * The face as face-api.js reads it, from the definitions, in float64: the box cut out; padded with
 * zeros to a square of the longer side, round(difference / 2) zeros after the picture and the rest
 * before (padToSquare, centred); then out(r, c) = bilinear at (r·side/outH, c·side/outW), between the
 * floor and min(ceil, side − 1) of each coordinate (TensorFlow 1: no half-pixel offset).
 */
function referenceFace(img: Image, [bx, by, bw, bh]: Box, outW: number, outH: number): Float64Array {
  const cn = img.channels, side = Math.max(bw, bh);
  const after = Math.round((side - Math.min(bw, bh)) * 0.5), before = side - Math.min(bw, bh) - after;
  const left = bw < bh ? before : 0, top = bh < bw ? before : 0;
  const padded = (y: number, x: number, k: number) => {
    const px = x - left, py = y - top;
    return px < 0 || py < 0 || px >= bw || py >= bh ? 0 : img.data[((by + py) * img.width + bx + px) * cn + k];
  };
  const out = new Float64Array(outW * outH * cn);
  for (let r = 0; r < outH; r++) {
    const sy = (r * side) / outH, y0 = Math.floor(sy), y1 = Math.min(Math.ceil(sy), side - 1), fy = sy - y0;
    for (let c = 0; c < outW; c++) {
      const sx = (c * side) / outW, x0 = Math.floor(sx), x1 = Math.min(Math.ceil(sx), side - 1), fx = sx - x0;
      for (let k = 0; k < cn; k++) {
        out[(r * outW + c) * cn + k] =
          (1 - fy) * ((1 - fx) * padded(y0, x0, k) + fx * padded(y0, x1, k)) + fy * ((1 - fx) * padded(y1, x0, k) + fx * padded(y1, x1, k));
      }
    }
  }
  return out;
}

/** The same with TensorFlow.js: tf.slice, zeros concatenated as padToSquare does, tf.image.resizeBilinear(…, false, false). */
function tfjsFace(img: Image, [bx, by, bw, bh]: Box, outW: number, outH: number): Float32Array {
  return tf.tidy(() => {
    const whole = tf.tensor3d(img.data, [img.height, img.width, img.channels], 'int32');
    const face = tf.cast(tf.slice3d(whole, [by, bx, 0], [bh, bw, img.channels]), 'float32').expandDims(0) as TF.Tensor4D;
    const diff = Math.abs(bw - bh), after = Math.round(diff * 0.5), axis = bh > bw ? 2 : 1;
    const zeros = (n: number) => {
      const shape = face.shape.slice() as number[];
      shape[axis] = n;
      return tf.fill(shape, 0, 'float32');
    };
    const square = diff === 0 ? face : tf.concat([...(diff - after ? [zeros(diff - after)] : []), face, zeros(after)], axis) as TF.Tensor4D;
    return tf.image.resizeBilinear(square, [outH, outW], false, false).dataSync() as Float32Array;
  });
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe('a face cut out, padded to a centred square and resized as face-api.js does', () => {
  // Wide and tall boxes, odd and even differences, down- and upscaling, square and not, gray and RGB.
  const cases: [w: number, h: number, channels: 1 | 3, box: Box, outW: number, outH: number][] = [
    [224, 224, 3, [83, 59, 85, 90], 112, 112],
    [224, 224, 3, [72, 53, 99, 88], 112, 112],
    [60, 41, 3, [3, 2, 50, 37], 112, 112],
    [41, 60, 1, [5, 1, 30, 57], 48, 48],
    [30, 30, 3, [0, 0, 30, 30], 112, 112],
    [30, 30, 3, [4, 4, 7, 20], 13, 17],
    [200, 120, 3, [10, 7, 181, 64], 29, 29],
    [9, 9, 1, [8, 0, 1, 9], 5, 5],
    [8, 8, 3, [0, 0, 8, 8], 8, 8],
  ];
  let worstReference = 0, worstTfjs = 0;

  it.each(cases)('%i×%i×%i, box %j, to %i×%i', (w, h, channels, box, outW, outH) => {
    const img = picture(w, h, channels, w * 7 + h);
    const face = resizeTf1(crop(img, ...box), outW, outH, 'square');
    expect([face.width, face.height, face.channels]).toEqual([outW, outH, channels]);
    const reference = referenceFace(img, box, outW, outH), tfjs = tfjsFace(img, box, outW, outH);
    worstReference = Math.max(worstReference, maxDiff(face.data, reference));
    worstTfjs = Math.max(worstTfjs, maxDiff(face.data, tfjs));
    expect(maxDiff(face.data, reference)).toBeLessThanOrEqual(1e-5 * 255);
    expect(maxDiff(face.data, tfjs)).toBeLessThanOrEqual(1e-5 * 255);
  });

  it('records the worst differences', () => {
    console.log(`face crop/pad/resize: worst |difference| ${worstReference.toExponential(2)} against float64, ${worstTfjs.toExponential(2)} against TensorFlow.js (grey levels)`);
  });

  it('without padding, resizeTf1 is tf.image.resizeBilinear itself', () => {
    const img = picture(37, 23, 3, 5);
    const mine = resizeTf1(img, 16, 30).data;
    const theirs = tf.tidy(() => tf.image.resizeBilinear(tf.tensor4d(img.data, [1, 23, 37, 3], 'float32'), [30, 16], false, false).dataSync());
    expect(maxDiff(mine, theirs)).toBe(0);
  });

  it('reads a file as it reads the decoded picture: PNG with an EXIF orientation, and JPEG', () => {
    const img = picture(50, 34, 3, 9);
    const rgba = new Uint8Array(50 * 34 * 4);
    img.data.forEach((v, i) => (rgba[Math.floor(i / 3) * 4 + (i % 3)] = v));
    const files = [
      makePng({ width: 50, height: 34, colorType: 2, bitDepth: 8, samples: img.data, orientation: 6 }),
      makePng({ width: 50, height: 34, colorType: 2, bitDepth: 8, samples: img.data, interlace: true }),
      jpeg.encode({ width: 50, height: 34, data: rgba }, 90).data,
    ];
    for (const bytes of files) {
      const whole = decodeImage(bytes, 'f');
      for (const box of [[1, 2, 20, 31], [3, 3, 30, 11], undefined] as (Box | undefined)[]) {
        for (const channels of [1, 3] as const) {
          const region = box ? crop(whole, ...box) : whole;
          const expected = resizeTf1(channels === 1 ? { ...region, channels: 1, data: gray(region) } : region, 24, 24, 'square');
          const got = decodeResizedTf1(bytes, 'f', { width: 24, height: 24, channels, crop: box }, 'square');
          expect(got.data).toEqual(expected.data);
        }
      }
    }
  });

  it('a model whose preprocess says "face-api" reads files and pictures so; others as before', () => {
    const arch = (resize?: string) => checkArchitecture({
      input: [12, 12, 3], labels: ['man', 'woman'], preprocess: { offset: [122.782, 117.001, 104.298], scale: 255, ...(resize ? { resize } : {}) },
      layers: [{ type: 'global_avgpool' }, { type: 'dense', name: 'd', units: 2 }],
    });
    const img = picture(40, 30, 3, 3);
    const bytes = makePng({ width: 40, height: 30, colorType: 2, bitDepth: 8, samples: img.data });
    const faceApi = arch('face-api');
    const box: Box = [5, 4, 20, 25];
    const units = (p: number) => (p - (122.782 + 117.001 + 104.298) / 3) / 255;
    const expected = Float32Array.from(referenceFace(img, box, 12, 12), units);
    expect(maxDiff(fileToInput(bytes, 'f', faceApi, box), expected)).toBeLessThan(1e-6);
    expect(fileToInput(bytes, 'f', faceApi, box)).toEqual(imageToInput(crop(img, ...box), faceApi));
    // The default (and "opencv") still stretches with OpenCV's resize, 8-bit.
    expect(fileToInput(bytes, 'f', arch('opencv'), box)).toEqual(fileToInput(bytes, 'f', arch(), box));
    const pixel = (v: number) => v * 255 + (122.782 + 117.001 + 104.298) / 3;
    expect(fileToInput(bytes, 'f', arch(), box).every((v) => Math.abs(pixel(v) - Math.round(pixel(v))) < 1e-3)).toBe(true);
    // Kept through a model file; anything else refused.
    const model = randomModel(faceApi, 1);
    expect(readModel(writeModel(model), 'm').architecture.preprocess.resize).toBe('face-api');
    expect(() => arch('bicubic')).toThrow(/"resize": "opencv" or "face-api"/);
  });
});

/** OpenCV's BGR2GRAY on RGB, as the project's toGray (here only to feed the comparison above). */
function gray(img: Image): Uint8Array {
  return Uint8Array.from({ length: img.width * img.height }, (_, i) => (9798 * img.data[3 * i] + 19235 * img.data[3 * i + 1] + 3735 * img.data[3 * i + 2] + 16384) >> 15);
}

// ---------------------------------------------------------------------------------------------
// The command line

const root = resolve(import.meta.dirname, '..');
const tmp = () => mkdtempSync(join(tmpdir(), 'mislead-faces-'));
function mislead(...args: string[]) {
  const r = spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), ...args], { encoding: 'utf8', cwd: tmp() });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('face boxes on the command line: --crop and labels.csv', () => {
  const dir = tmp();
  const faces = join(dir, 'faces');
  const architecture: Architecture = checkArchitecture({
    input: [12, 12, 3], labels: ['man', 'woman'], preprocess: { offset: 120, scale: 255, resize: 'face-api' },
    layers: [
      { type: 'conv2d', name: 'a', filters: 4, kernel: 3, stride: 2, padding: 'same', activation: 'relu' },
      { type: 'flatten' },
      { type: 'dense', name: 'b', units: 2 },
    ],
  });
  const model = randomModel(architecture, 7, 0.5);
  const modelPath = join(dir, 'm.safetensors');
  const weights64 = new Map([...model.weights].map(([k, v]) => [k, Float64Array.from(v)]));
  // Three pictures: two with a box, one read whole.
  const pictures: { file: string; img: Image; box?: Box; label: string }[] = [
    { file: 'a.png', img: picture(40, 30, 3, 1), box: [6, 2, 21, 26], label: 'man' },
    { file: 'b.png', img: picture(33, 45, 3, 2), box: [0, 10, 33, 20], label: 'woman' },
    { file: 'c.png', img: picture(20, 26, 3, 3), label: 'woman' },
  ];
  const logitsOf = (img: Image, box: Box) => {
    const x = Array.from(referenceFace(img, box, 12, 12), (p) => (p - 120) / 255);
    return Array.from(ref.networkLogits(architecture, weights64, ref.tensor([1, 12, 12, 3], x)).data);
  };
  const whole = (img: Image): Box => [0, 0, img.width, img.height];
  const expected = pictures.map((p) => logitsOf(p.img, p.box ?? whole(p.img)));
  const labelsCsv = (rows: string[]) => writeFileSync(join(faces, 'labels.csv'), ['file,label,age,face_x,face_y,face_w,face_h', ...rows].join('\n') + '\n');

  beforeAll(() => {
    writeFileSync(modelPath, writeModel(model));
    require('node:fs').mkdirSync(faces);
    for (const p of pictures) writeFileSync(join(faces, p.file), makePng({ width: p.img.width, height: p.img.height, colorType: 2, bitDepth: 8, samples: p.img.data }));
    labelsCsv(pictures.map((p) => `${p.file},${p.label},20-29,${p.box?.join(',') ?? ',,,'}`));
  });

  const close = (got: number[], want: number[]) => got.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThan(1e-4 * Math.max(1, Math.abs(want[i]))));

  it('predict DIR reads each picture from its box (or whole), as face-api.js would feed the model', () => {
    const run = mislead('predict', faces, '--model', modelPath, '--json');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const results = JSON.parse(run.stdout);
    expect(results.map((r: { image: string }) => r.image)).toEqual(pictures.map((p) => join(faces, p.file)));
    results.forEach((r: { logits: number[] }, i: number) => close(r.logits, expected[i]));
  });

  it('predict IMAGE --crop takes that box instead', () => {
    const box: Box = [1, 1, 30, 15];
    const run = mislead('predict', join(faces, 'a.png'), '--crop', box.join(','), '--model', modelPath, '--json');
    expect(run.code).toBe(0);
    close(JSON.parse(run.stdout)[0].logits, logitsOf(pictures[0].img, box));
  });

  it('eval DIR counts the same classes as predict', () => {
    const run = mislead('eval', faces, '--model', modelPath, '--json');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout);
    const predicted = expected.map((l) => (l[0] >= l[1] ? 0 : 1));
    const truth = pictures.map((p) => architecture.labels.indexOf(p.label));
    expect(report.images).toBe(3);
    expect(report.accuracy).toBeCloseTo(predicted.filter((c, i) => c === truth[i]).length / 3, 10);
    expect(report.confusion).toEqual([0, 1].map((t) => [0, 1].map((c) => predicted.filter((p, i) => truth[i] === t && p === c).length)));
  });

  it('attack DIR attacks the faces and saves them at the model size, which reads back as attacked', () => {
    const out = join(dir, 'attacked');
    const run = mislead('attack', faces, '--model', modelPath, '--method', 'fgsm', '--eps', '8', '--out', out, '--json', '--workers', '1');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.images).toBe(3);
    expect(report.success_saved).toBe(report.summary.success);
    const saved = readdirSync(join(out, 'adversarial')).sort();
    expect(saved).toHaveLength(3);
    for (const file of saved) {
      const img = decodeImage(readFileSync(join(out, 'adversarial', file)), file);
      expect([img.width, img.height]).toEqual([12, 12]);
      // A picture of the model's size is read as it is: padding and resizing change nothing.
      expect(Array.from(resizeTf1(img, 12, 12, 'square').data)).toEqual(Array.from(img.data));
    }
  });

  it('attack IMAGE from a folder with labels.csv uses its box; the report starts from the box', () => {
    const out = join(dir, 'one');
    const run = mislead('attack', join(faces, 'b.png'), '--model', modelPath, '--method', 'fgsm', '--eps', '2', '--out', out, '--json');
    expect(run.code).toBe(0);
    close(JSON.parse(run.stdout).before.logits, expected[1]);
  });

  const refused = (args: string[], pattern: RegExp) => {
    const run = mislead(...args);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(pattern);
  };

  it('refuses a --crop that is malformed or not inside the picture, in one line', () => {
    const image = join(faces, 'a.png');
    refused(['predict', image, '--crop', '1,2,3', '--model', modelPath], /--crop 1,2,3: expected X,Y,W,H/);
    refused(['predict', image, '--crop', '1,2,0,5', '--model', modelPath], /--crop 1,2,0,5: expected/);
    refused(['predict', image, '--crop', '-1,2,5,5', '--model', modelPath], /--crop -1,2,5,5: expected/);
    refused(['predict', image, '--crop', '30,0,11,10', '--model', modelPath], /--crop: the box 30,0,11,10 .* not inside the 40x30 picture .*a\.png/);
    refused(['attack', image, '--crop', '0,25,10,10', '--model', modelPath, '--out', join(dir, 'no')], /--crop: the box 0,25,10,10 .* not inside the 40x30 picture/);
    expect(existsSync(join(dir, 'no'))).toBe(false);
  });

  it('refuses a malformed box in labels.csv, naming the file and row, for predict, attack and eval', () => {
    const bad: [row: string, pattern: RegExp][] = [
      ['b.png,woman,20-29,1,2,3,', /labels\.csv:3: the face box of "b\.png" is "1,2,3,"/],
      ['b.png,woman,20-29,1,2,0,4', /labels\.csv:3: the face box of "b\.png" is "1,2,0,4"/],
      ['b.png,woman,20-29,-1,2,3,4', /labels\.csv:3: the face box of "b\.png"/],
      ['b.png,woman,20-29,1.5,2,3,4', /labels\.csv:3: the face box of "b\.png"/],
      ['b.png,woman,20-29,x,2,3,4', /labels\.csv:3: the face box of "b\.png"/],
      ['b.png,woman,20-29,20,40,14,6', /labels\.csv:3: the box 20,40,14,6 .* not inside the 33x45 picture .*b\.png/],
    ];
    try {
      const commands = [['predict', faces], ['eval', faces], ['attack', faces, '--method', 'fgsm', '--out', join(dir, 'no')]];
      bad.forEach(([row, pattern], i) => {
        labelsCsv(['a.png,man,20-29,6,2,21,26', row, 'c.png,woman,20-29,,,,']);
        refused([...commands[i % 3], '--model', modelPath], pattern);
      });
      expect(existsSync(join(dir, 'no'))).toBe(false);
      writeFileSync(join(faces, 'labels.csv'), 'file,label,face_x,face_y\na.png,man,1,2\n');
      refused(['eval', faces, '--model', modelPath], /labels\.csv: a face box needs all four columns face_x, face_y, face_w, face_h/);
    } finally {
      labelsCsv(pictures.map((p) => `${p.file},${p.label},20-29,${p.box?.join(',') ?? ',,,'}`));
    }
  });
});
