// Every bad input a user may hand the command line: one line on stderr starting "mislead: ",
// exit code 2, no stack trace, no file left behind, and no hang or huge allocation.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { TUTORIAL_ARCHITECTURE } from '../src/formats/importtf.js';
import { ARCHITECTURE_KEY, parameterShapes, writeModel } from '../src/formats/model.js';
import { serializeSafetensors } from '../src/formats/safetensors.js';
import { initialModel } from '../src/train/train.js';
import { writeTfjsModel } from './support/tfjs.js';

const root = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'mislead-bad-'));
const file = (name: string, data: Uint8Array | string) => {
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
};

// A good model and image, and broken variants of each.
const model = initialModel(TUTORIAL_ARCHITECTURE, 1);
const goodModel = file('good.safetensors', writeModel(model));
const face = new PNG({ width: 48, height: 48 });
face.data.fill(128);
const goodPng = PNG.sync.write(face);
const goodImage = file('face.png', goodPng);

function tensorsOf(edit?: (key: string, t: { shape: number[]; data: Float32Array }) => { shape: number[]; data: Float32Array } | undefined) {
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [key, shape] of parameterShapes(TUTORIAL_ARCHITECTURE)) {
    const t = { shape, data: model.weights.get(key)! };
    const edited = edit ? edit(key, t) : t;
    if (edited) tensors.set(key, edited);
  }
  return tensors;
}
const metadata = (architecture: unknown) => ({ [ARCHITECTURE_KEY]: typeof architecture === 'string' ? architecture : JSON.stringify(architecture) });
const goodMeta = metadata(TUTORIAL_ARCHITECTURE);

/** A PNG whose IHDR declares width × height (with a valid CRC) and tiny, meaningless data. */
function pngDeclaring(width: number, height: number): Uint8Array {
  const bytes = Buffer.from(goodPng);
  bytes.writeUInt32BE(width, 16);
  bytes.writeUInt32BE(height, 20);
  const crc = crc32(bytes.subarray(12, 29));
  bytes.writeUInt32BE(crc, 29);
  return bytes;
}

function crc32(data: Uint8Array): number {
  // zlib's crc32 through a gzip trailer would be indirect; a table-free bitwise CRC is enough here.
  let c = 0xffffffff;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

const withDtype = () => {
  const bytes = serializeSafetensors(tensorsOf(), goodMeta);
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)).replace('"dtype":"F32"', '"dtype":"F16"');
  const out = new Uint8Array(bytes);
  out.set(new TextEncoder().encode(header), 8);
  return out;
};
const headerTooLong = () => {
  const bytes = new Uint8Array(serializeSafetensors(tensorsOf(), goodMeta));
  new DataView(bytes.buffer).setBigUint64(0, BigInt(bytes.length * 10), true);
  return bytes;
};

const badImages: [string, string, RegExp][] = [
  ['missing file', join(dir, 'nowhere.png'), /nowhere\.png: cannot read an image \(no such file or directory\)/],
  ['directory given as image (attack reads a folder as a batch: this one holds no image)', mkdtempSync(join(dir, 'empty-')), /a folder with no PNG or JPEG image/],
  ['empty file', file('empty.png', ''), /empty\.png: empty file/],
  ['truncated PNG', file('truncated.png', goodPng.subarray(0, 60)), /truncated\.png: .*(truncated|corrupt)/i],
  ['PNG with a bad CRC', file('badcrc.png', (() => { const b = Buffer.from(goodPng); b[30] ^= 0xff; return b; })()), /badcrc\.png: .*CRC/i],
  ['PNG declaring 100000×100000 pixels', file('huge.png', pngDeclaring(100000, 100000)), /huge\.png: image too large \(100000x100000/],
  ['JPEG garbage', file('garbage.jpg', Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 5, 6, 7, 8, 9])), /garbage\.jpg: .*JPEG/i],
  ['a text file named .png', file('text.png', 'hello, I am not a picture\n'), /text\.png: not a PNG or JPEG image/],
];

const badModels: [string, string, RegExp][] = [
  ['missing model', join(dir, 'nowhere.safetensors'), /nowhere\.safetensors: cannot read a model file \(no such file or directory\)/],
  ['truncated header', file('truncated.safetensors', serializeSafetensors(tensorsOf(), goodMeta).subarray(0, 5)), /too short for a header/],
  ['header length larger than the file', file('long.safetensors', headerTooLong()), /header length \d+ exceeds the file/],
  ['wrong dtype', file('dtype.safetensors', withDtype()), /tensor "cv1\.w" has dtype "F16", expected F32/],
  ['shape mismatch', file('shape.safetensors', serializeSafetensors(tensorsOf((k, t) => (k === 'cv2.w' ? { shape: [5, 5, 6, 3], data: t.data } : t)), goodMeta)), /tensor "cv2\.w" has shape \[5,5,6,3\], the architecture needs \[5,5,3,6\]/],
  ['missing tensor', file('missing.safetensors', serializeSafetensors(tensorsOf((k, t) => (k === 'fc.b' ? undefined : t)), goodMeta)), /missing tensor "fc\.b"/],
  ['NaN weight', file('nan.safetensors', serializeSafetensors(tensorsOf((k, t) => (k === 'cv3.w' ? { shape: t.shape, data: t.data.map((v, i) => (i === 7 ? NaN : v)) } : t)), goodMeta)), /tensor "cv3\.w" holds a non-finite value \(NaN\) at index 7/],
  ['unknown layer type', file('layer.safetensors', serializeSafetensors(tensorsOf(), metadata({ ...TUTORIAL_ARCHITECTURE, layers: [{ type: 'dropout', rate: 0.5 }, ...TUTORIAL_ARCHITECTURE.layers] }))), /unknown layer type "dropout"/],
  ['architecture JSON invalid', file('json.safetensors', serializeSafetensors(tensorsOf(), metadata('{"input": [48, 48, 1], "labels": '))), /the architecture is not valid JSON/],
];

const outFile = file('existing-file', 'precious');
const badFlags: [string, string[], RegExp][] = [
  ['unknown flag', ['attack', goodImage, '--model', goodModel, '--colour', 'red'], /Unknown option '--colour'/],
  ['--iters -5', ['attack', goodImage, '--model', goodModel, '--iters', '-5'], /^mislead: filter: --iters must be an integer from 1 to 10000000, got -5\n$/],
  ['--iters 1e12', ['attack', goodImage, '--model', goodModel, '--iters', '1e12'], /^mislead: filter: --iters must be an integer from 1 to 10000000, got 1000000000000\n$/],
  ['--lr NaN', ['attack', goodImage, '--model', goodModel, '--lr', 'NaN'], /^mislead: filter: --lr must be a number > 0 and at most 1000000, got "NaN"\n$/],
  ['--beta with pgd', ['attack', goodImage, '--model', goodModel, '--method', 'pgd', '--beta', '1'], /^mislead: --beta is not an option of --method pgd \(its options: --norm, --eps, --step, --iters, /],
  ['--eps abc', ['attack', goodImage, '--model', goodModel, '--method', 'fgsm', '--eps', 'abc'], /^mislead: fgsm: --eps must be a number ≥ 0 and at most 1000000, got "abc"\n$/],
  ['--target nobody', ['attack', goodImage, '--model', goodModel, '--target', 'nobody'], /--target nobody: not a label of this model \(labels: man, woman\)/],
  ['--out pointing at an existing file', ['attack', goodImage, '--model', goodModel, '--out', outFile], /--out .*existing-file: exists and is not a directory/],
];

function mislead(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), ...args], { encoding: 'utf8', cwd, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectRefused(args: string[], message: RegExp): void {
  const cwd = mkdtempSync(join(dir, 'run-'));
  const run = mislead(args, cwd);
  expect(run.code, `${args.join(' ')}\n${run.stderr}`).toBe(2);
  expect(run.stderr).toMatch(/^mislead: [^\n]+\n$/);
  expect(run.stderr).toMatch(message);
  expect(run.stderr).not.toMatch(/\bat .*\.js:\d+/); // no stack trace
  expect(readdirSync(cwd)).toEqual([]); // nothing written, not even ./out
}

describe('bad images', () => {
  for (const [what, path, message] of badImages) it(what, () => expectRefused(['attack', path, '--model', goodModel], message));
});

describe('bad models', () => {
  for (const [what, path, message] of badModels) it(what, () => expectRefused(['predict', goodImage, '--model', path], message));
});

describe('a directory where predict wants images', () => {
  // A folder is read as its pictures (the first one here is corrupt); one without any is refused.
  it('is read picture by picture', () => expectRefused(['predict', dir, '--model', goodModel], /badcrc\.png: corrupt PNG/));
  it('holding no picture is refused', () => {
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    expectRefused(['predict', empty, '--model', goodModel], /a folder with no PNG or JPEG image/);
  });
});

describe('bad flags', () => {
  for (const [what, args, message] of badFlags) it(what, () => expectRefused(args, message));

  it('an existing file is never overwritten without --force', () => {
    expectRefused(['import-tf', join(dir, 'nothing'), '--out', outFile], /nothing\.index|cannot read/);
    expect(readFileSync(outFile, 'utf8')).toBe('precious');
  });
});

describe('bad TensorFlow.js models for import-tfjs', () => {
  const tfjs = (name: string, edit?: Parameters<typeof writeTfjsModel>[1]) => writeTfjsModel(join(dir, name), edit);
  const good = tfjs('tfjs-good');
  const refused = (args: string[], message: RegExp) => expectRefused(['import-tfjs', ...args], message);

  it('a directory, a file that is not JSON, a missing weight file', () => {
    refused([join(dir, 'tfjs-good'), '--out', 'm.safetensors'], /tfjs-good: is a directory, expected a model\.json/);
    refused([file('not-json.json', '{"modelTopology": {"class_name": '), '--out', 'm.safetensors'], /not-json\.json: not a JSON file \("/);
    refused([file('binary.json', Uint8Array.of(0x7b, 0xff, 0xfe, 0x7d)), '--out', 'm.safetensors'], /binary\.json: not a JSON file/);
    const missing = tfjs('tfjs-missing', (f) => { f.json.weightsManifest[0].paths = ['group1-shard1of1.bin']; });
    refused([missing, '--out', 'm.safetensors'], /tfjs-missing\/group1-shard1of1\.bin: cannot read a weight file of .*tfjs-missing\/model\.json \(no such file or directory\)/);
  });

  it('an unsupported layer: one line naming it and listing the supported ones', () => {
    const lstm = tfjs('tfjs-lstm', (f) => { f.json.modelTopology.config.layers[1].class_name = 'LSTM'; });
    refused([lstm, '--out', 'm.safetensors'], /model\.json: layer "gap" \("LSTM"\): unsupported layer; supported: InputLayer, Conv2D, DepthwiseConv2D, .*, Rescaling, ZeroPadding2D\n$/);
  });

  it('weights the manifest does not match: too few bytes, too many, a shape that does not fit', () => {
    const short = tfjs('tfjs-short', (f) => { f.weights = f.weights.subarray(0, 220); });
    refused([short, '--out', 'm.safetensors'], /the weight files hold 220 bytes, too few for weight "conv\/bias" of shape \[2\] at byte 216/);
    const long = tfjs('tfjs-long', (f) => { f.weights = Uint8Array.from([...f.weights, 0, 0, 0, 0]); });
    refused([long, '--out', 'm.safetensors'], /tfjs-long\/weights\.bin: 252 bytes is too large for a weight file of .*model\.json \(the limit is 248 bytes\)/);
    const shape = tfjs('tfjs-shape', (f) => { f.json.weightsManifest[0].weights[2].shape = [1, 4]; });
    refused([shape, '--out', 'm.safetensors'], /model\.json: the converted model: tensor "out\.w" has shape \[1,4\], the architecture needs \[2,2\]/);
  });

  it('--out over an existing file without --force: refused before anything is read, the file untouched', () => {
    const existing = file('tfjs-existing.safetensors', 'precious');
    refused([good, '--out', existing], /tfjs-existing\.safetensors: already exists; pass --force/);
    refused([join(dir, 'nowhere.json'), '--out', existing], /already exists/);
    expect(readFileSync(existing, 'utf8')).toBe('precious');
  });

  it('--labels of the wrong count, --offset with two numbers, a malformed --size', () => {
    refused([good, '--out', 'm.safetensors', '--labels', 'cat,dog,bird'], /model\.json: 3 labels given for the model's 2 outputs/);
    refused([good, '--out', 'm.safetensors', '--labels', 'cat,cat'], /"labels" must be at least two distinct/);
    refused([good, '--out', 'm.safetensors', '--offset', '127.5,127.5'], /^mislead: --offset "127\.5,127\.5": expected one number or three \(one per channel\)\n$/);
    refused([good, '--out', 'm.safetensors', '--scale', '1,,2'], /--scale "1,,2": expected one number or three/);
    for (const size of ['224', '0x5', '5x0', 'axb', '99999x1', '5000x5', '1e3x5', ' 5x5']) {
      refused([good, '--out', 'm.safetensors', '--size', size], /--size ".*": expected HxW, each from 1 to 4096, such as 224x224/);
    }
  });

  it('the same model converts, for contrast', () => {
    const cwd = mkdtempSync(join(dir, 'tfjs-run-'));
    const run = mislead(['import-tfjs', good, '--out', 'm.safetensors', '--labels', 'cat,dog'], cwd);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(readdirSync(cwd)).toEqual(['m.safetensors']);
  });
});

describe('a good run, for contrast', () => {
  it('attack writes its files into ./out and nothing else', () => {
    const cwd = mkdtempSync(join(dir, 'good-'));
    mkdirSync(join(cwd, 'sub'));
    const run = mislead(['attack', goodImage, '--model', goodModel, '--iters', '3', '--json'], cwd);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(readdirSync(join(cwd, 'out')).sort()).toEqual(['adversarial.png', 'figure.png', 'filter.png', 'loss.svg', 'perturbation.npy', 'report.json']);
    expect(existsSync(join(cwd, 'sub'))).toBe(true);
  });
});
