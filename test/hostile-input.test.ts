// Hostile input on the reading side: files that are not regular files (a FIFO, a link to
// /dev/zero, a socket), empty sets, numbers that are not finite, and file contents crafted to
// flood or drive the terminal. Each ends in one short "mislead: " line and exit code 2, within
// a few seconds, leaving nothing behind.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError, isPrintable, quote } from '../src/errors.js';
import { TUTORIAL_ARCHITECTURE } from '../src/formats/importtf.js';
import { INPUT_LIMITS, readInputFile } from '../src/node/input.js';
import { ARCHITECTURE_KEY, checkArchitecture, parameterShapes, readModel, writeModel, type Model } from '../src/formats/model.js';
import { readNpy, writeNpy } from '../src/formats/npy.js';
import { parseSafetensors, serializeSafetensors } from '../src/formats/safetensors.js';
import { importTfjs } from '../src/formats/tfjs.js';
import { readDataset } from '../src/node/dataset.js';
import { initialModel } from '../src/train/train.js';
import { tfjsFiles, writeTfjsModel, type TfjsFiles } from './support/tfjs.js';

const root = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'mislead-hostile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const file = (name: string, data: Uint8Array | string) => {
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
};
const fifo = (name: string) => {
  const path = join(dir, name);
  const r = spawnSync('mkfifo', [path]);
  if (r.status !== 0) throw new Error(`mkfifo ${path} failed: ${r.stderr}`);
  return path;
};
const zeroLink = (name: string) => {
  const path = join(dir, name);
  symlinkSync('/dev/zero', path);
  return path;
};
const folder = (name: string) => {
  const path = join(dir, name);
  mkdirSync(path);
  return path;
};

// A good model, and a face with some texture (a flat grey face is all zeros in model units,
// which no weights can overflow).
const model = initialModel(TUTORIAL_ARCHITECTURE, 1);
const goodModel = file('good.safetensors', writeModel(model));
const png = new PNG({ width: 48, height: 48 });
for (let i = 0; i < 48 * 48; i++) {
  const v = (i * 37 + (i >> 4) * 11) % 256;
  png.data.set([v, v, v, 255], 4 * i);
}
const facePng = PNG.sync.write(png);
const face = file('face.png', facePng);

/** Finite weights scaled until the network overflows float32 (logits NaN or ±Infinity). */
const huge: Model = { architecture: model.architecture, weights: new Map([...model.weights].map(([k, w]) => [k, w.map((v) => v * 1e30)])) };
const hugeModel = file('huge.safetensors', writeModel(huge));

/** A dataset folder: the given PNGs (name → bytes or a path maker) and labels.csv text. */
function dataset(name: string, labels: string | ((csv: string) => void), images: Record<string, Uint8Array | ((path: string) => void)> = {}): string {
  const d = folder(name);
  for (const [image, content] of Object.entries(images)) {
    if (typeof content === 'function') content(join(d, image));
    else writeFileSync(join(d, image), content);
  }
  const csv = join(d, 'labels.csv');
  if (typeof labels === 'function') labels(csv);
  else writeFileSync(csv, labels);
  return d;
}
const mkfifoAt = (path: string) => void spawnSync('mkfifo', [path]);
const zeroAt = (path: string) => symlinkSync('/dev/zero', path);

function mislead(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), ...args], { encoding: 'utf8', cwd, timeout: 15_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, error: r.error, signal: r.signal };
}

/** Runs the command line in an empty folder and expects one short "mislead: " line matching
 *  `message`, exit code 2, no terminal escape, nothing written. Returns the line. */
function expectRefused(args: string[], message: RegExp, maxLength = 400): string {
  const cwd = mkdtempSync(join(dir, 'run-'));
  const run = mislead(args, cwd);
  expect(run.error, `${args.join(' ')} timed out`).toBeUndefined();
  expect(run.signal).toBeNull();
  expect(run.code, `${args.join(' ')}\n${run.stderr}`).toBe(2);
  expect(run.stderr).toMatch(/^mislead: [^\n]+\n$/);
  expect(run.stderr).toMatch(message);
  expect(run.stderr).not.toContain('\u001b');
  expect(run.stderr.length).toBeLessThan(maxLength);
  expect(readdirSync(cwd)).toEqual([]);
  return run.stderr;
}

describe('files that are not regular files: a FIFO and a link to /dev/zero', () => {
  const kinds = [
    ['a FIFO', fifo, /is not a regular file \(a FIFO\)/],
    ['a link to /dev/zero', zeroLink, /is not a regular file \(a character device, through a symbolic link\)/],
  ] as const;

  for (const [kind, make, says] of kinds) {
    const tag = kind === 'a FIFO' ? 'fifo' : 'zero';
    describe(kind, () => {
      it('as the image', () => {
        const path = make(`${tag}-image.png`);
        expectRefused(['predict', path, '--model', goodModel], new RegExp(`${tag}-image\\.png: ${says.source}, expected an image`));
        expectRefused(['attack', path, '--model', goodModel, '--iters', '1'], says);
        expectRefused(['tutorial', path, '--model', goodModel], says);
      });

      it('as the model', () => {
        const path = make(`${tag}-model.safetensors`);
        expectRefused(['predict', face, '--model', path], new RegExp(`${tag}-model\\.safetensors: ${says.source}, expected a model file`));
      });

      it('as --init', () => {
        const path = make(`${tag}-init.npy`);
        expectRefused(['attack', face, '--model', goodModel, '--init', path, '--iters', '1'], new RegExp(`${tag}-init\\.npy: ${says.source}, expected a \\.npy perturbation`));
      });

      it("as the checkpoint's .index and .data", () => {
        const index = join(dir, `${tag}-index`);
        make(`${tag}-index.index`);
        file(`${tag}-index.data-00000-of-00001`, 'data');
        expectRefused(['import-tf', index, '--out', 'm.safetensors'], new RegExp(`${tag}-index\\.index: ${says.source}, expected a TensorFlow checkpoint index`));
        const data = join(dir, `${tag}-data`);
        file(`${tag}-data.index`, 'not really an index, but a regular file');
        make(`${tag}-data.data-00000-of-00001`);
        expectRefused(['import-tf', data, '--out', 'm.safetensors'], new RegExp(`${tag}-data\\.data-00000-of-00001: ${says.source}, expected TensorFlow checkpoint data`));
      });

      it('as labels.csv, for eval and for an attack on a folder', () => {
        const make = tag === 'fifo' ? mkfifoAt : zeroAt;
        const d = dataset(`${tag}-labels`, make, { 'a.png': facePng, 'b.png': facePng });
        expectRefused(['eval', d, '--model', goodModel], new RegExp(`labels\\.csv: ${says.source}, expected the images' labels`));
        expectRefused(['attack', d, '--model', goodModel, '--method', 'fgsm', '--workers', '1'], new RegExp(`labels\\.csv: ${says.source}`));
      });

      it('as an image listed in labels.csv (eval), or found in the folder (attack)', () => {
        const make = tag === 'fifo' ? mkfifoAt : zeroAt;
        const d = dataset(`${tag}-listed`, 'file,label\na.png,man\nb.png,woman\n', { 'a.png': facePng, 'b.png': make });
        expectRefused(['eval', d, '--model', goodModel], new RegExp(`b\\.png: ${says.source}, expected an image listed in labels\\.csv`));
        expectRefused(['attack', d, '--model', goodModel, '--method', 'fgsm', '--workers', '1'], new RegExp(`b\\.png: ${says.source}, expected an image`));
      });
    });
  }
});

describe('readInputFile', () => {
  let server: Server;
  const socket = join(dir, 'socket');
  beforeAll(() => new Promise<void>((done) => { server = createServer().listen(socket, done); }));
  afterAll(() => new Promise<void>((done) => server.close(() => done())));

  const refuses = (path: string, message: RegExp, max = 1000) => {
    expect(() => readInputFile(path, 'an image', max)).toThrow(InputError);
    expect(() => readInputFile(path, 'an image', max)).toThrow(message);
  };

  it('reads a regular file, and a symbolic link to one', () => {
    const path = file('bytes.bin', Uint8Array.of(1, 2, 3));
    expect([...readInputFile(path, 'an image', 3)]).toEqual([1, 2, 3]);
    symlinkSync(path, join(dir, 'bytes-link'));
    expect([...readInputFile(join(dir, 'bytes-link'), 'an image', 3)]).toEqual([1, 2, 3]);
  });

  it('names what is not a regular file', () => {
    refuses(socket, /socket: is not a regular file \(a socket\), expected an image$/);
    refuses(fifo('unit-fifo'), /unit-fifo: is not a regular file \(a FIFO\), expected an image$/);
    refuses(zeroLink('unit-zero'), /unit-zero: is not a regular file \(a character device, through a symbolic link\), expected an image$/);
    refuses('/dev/null', /^\/dev\/null: is not a regular file \(a character device\), expected an image$/);
    refuses(folder('unit-dir'), /unit-dir: is a directory, expected an image$/);
  });

  it('refuses a missing file, a broken link, an empty file and one over the limit', () => {
    refuses(join(dir, 'absent'), /absent: cannot read an image \(no such file or directory\)$/);
    symlinkSync(join(dir, 'absent'), join(dir, 'broken-link'));
    refuses(join(dir, 'broken-link'), /broken-link: is a symbolic link to a missing file, expected an image$/);
    refuses(file('unit-empty', ''), /unit-empty: empty file, expected an image$/);
    refuses(file('unit-big', new Uint8Array(1001)), /unit-big: 1001 bytes is too large for an image \(the limit is 1000 bytes\)$/);
    expect(INPUT_LIMITS.labels).toBeLessThan(INPUT_LIMITS.image);
  });
});

describe('empty sets', () => {
  const headerOnly = dataset('header-only', 'file,label\n', { 'a.png': facePng });
  const blankRows = dataset('blank-rows', 'file,label\r\n\r\n\n  \n');

  it('eval on a labels.csv listing no image', () => {
    for (const d of [headerOnly, blankRows]) {
      expectRefused(['eval', d, '--model', goodModel], /labels\.csv: lists no image \(it holds only its header line\)/);
      expectRefused(['eval', d, '--model', goodModel, '--json'], /lists no image/);
      expectRefused(['eval', d, '--model', goodModel, '--attack', 'fgsm', '--eps', '0,2'], /lists no image/);
    }
    expect(() => readDataset(headerOnly)).toThrow(/lists no image/);
  });

  it('attack on a folder with labels.csv but no image', () => {
    expectRefused(['attack', dataset('no-images', 'file,label\n'), '--model', goodModel, '--method', 'fgsm'], /a folder with no PNG or JPEG image/);
  });
});

describe('numbers that are not finite', () => {
  const npy = (name: string, edit: (dx: Float32Array) => void) => {
    const dx = new Float32Array(48 * 48);
    edit(dx);
    return file(name, writeNpy(dx, [48, 48, 1]));
  };

  for (const [name, value] of [['NaN', NaN], ['Infinity', Infinity], ['-Infinity', -Infinity]] as const) {
    it(`--init holding ${name}`, () => {
      const path = npy(`init-${name}.npy`, (dx) => { dx[1234] = value; });
      expectRefused(['attack', face, '--model', goodModel, '--init', path, '--iters', '5'], new RegExp(`init-${name}\\.npy: holds a non-finite value \\(${name}\\) at index 1234`));
    });
  }

  it('--init so large that the loss overflows: stopped at the first iteration, never a success', () => {
    const path = npy('init-large.npy', (dx) => dx.fill(1e19));
    for (const beta of ['0', '0.5']) {
      expectRefused(['attack', face, '--model', goodModel, '--init', path, '--beta', beta, '--iters', '50'], /good\.safetensors: the loss is not finite \((NaN|Infinity)\) at iteration 0 of the attack on .*face\.png/);
    }
  });

  const notFinite = /huge\.safetensors: the model's logits are not finite \((NaN|-?Infinity)\) on /;

  it('a model whose finite weights overflow: predict', () => {
    const line = expectRefused(['predict', face, '--model', hugeModel], notFinite);
    expect(line).toMatch(/ on \S*face\.png\n$/);
    expectRefused(['predict', face, '--model', hugeModel, '--json'], notFinite);
  });

  it('… attack with every method, and tutorial', () => {
    expectRefused(['attack', face, '--model', hugeModel, '--iters', '3'], notFinite);
    for (const method of ['fgsm', 'bim', 'pgd', 'mifgsm', 'cw', 'deepfool']) {
      const extra = method === 'cw' ? ['--binary-steps', '1'] : [];
      const iterations = method === 'fgsm' ? [] : ['--iters', '2'];
      expectRefused(['attack', face, '--model', hugeModel, '--method', method, ...iterations, ...extra], notFinite);
    }
    const d = dataset('huge-batch', 'file,label\na.png,man\nb.png,woman\n', { 'a.png': facePng, 'b.png': facePng });
    expectRefused(['attack', d, '--model', hugeModel, '--method', 'fgsm', '--workers', '1'], notFinite);
    expectRefused(['tutorial', face, '--model', hugeModel], notFinite);
  });

  it('… eval, plain and under attack', () => {
    const d = dataset('huge-eval', 'file,label\na.png,man\nb.png,woman\n', { 'a.png': facePng, 'b.png': facePng });
    expectRefused(['eval', d, '--model', hugeModel], new RegExp(`${notFinite.source}.*a\\.png`));
    expectRefused(['eval', d, '--model', hugeModel, '--attack', 'fgsm', '--eps', '0'], notFinite);
    expectRefused(['eval', d, '--model', hugeModel, '--attack', 'fgsm', '--eps', '4', '--workers', '1'], notFinite);
  });
});

describe('file contents in messages: quoted, escaped and cut', () => {
  const ESC = '\u001b[31m';
  const tensors = () => {
    const t = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [key, shape] of parameterShapes(TUTORIAL_ARCHITECTURE)) t.set(key, { shape, data: model.weights.get(key)! });
    return t;
  };
  const withArchitecture = (name: string, architecture: unknown) =>
    file(name, serializeSafetensors(tensors(), { [ARCHITECTURE_KEY]: typeof architecture === 'string' ? architecture : JSON.stringify(architecture) }));
  /** A .npy of format 2.0 (4-byte header length) with the given header text. */
  const npyWithHeader = (header: string) => {
    const text = new TextEncoder().encode(header);
    const out = new Uint8Array(12 + text.length);
    out.set([0x93, ...new TextEncoder().encode('NUMPY'), 2, 0]);
    new DataView(out.buffer).setUint32(8, text.length, true);
    out.set(text, 12);
    return out;
  };

  it('a .npy with a 10 MB header', () => {
    const header = `{'descr': '<f4', 'fortran_order': False, ${ESC}${'x'.repeat(10 * 1024 * 1024)} }`;
    const bytes = npyWithHeader(header);
    const line = expectRefused(['attack', face, '--model', goodModel, '--init', file('huge-header.npy', bytes)], /huge-header\.npy: /);
    expect(line.length).toBeLessThan(300);
    // Read without the size limit of --init, the header itself is what the message quotes.
    let message = '';
    try {
      readNpy(bytes, 'huge-header.npy');
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/^huge-header\.npy: unsupported \.npy header "\{'descr': '<f4', 'fortran_order': False, \\u001b\[31mxxx.*…" \(10485\d\d\d characters\)$/);
    expect(message.length).toBeLessThan(300);
    expect(isPrintable(message)).toBe(true);
  });

  it('a .npy header of escape codes, under the size limit of --init', () => {
    const bytes = npyWithHeader(`{'descr': '${ESC}<f4', 'fortran_order': False, 'shape': (48, 48, 1), }`);
    const line = expectRefused(['attack', face, '--model', goodModel, '--init', file('escape-header.npy', bytes)], /unsupported dtype "\\u001b\[31m<f4"/);
    expect(line).toContain('\\u001b');
  });

  it('a layer type holding a terminal escape, and a long one', () => {
    const layers = (type: string) => ({ ...TUTORIAL_ARCHITECTURE, layers: [{ type }, ...TUTORIAL_ARCHITECTURE.layers] });
    expectRefused(['predict', face, '--model', withArchitecture('escape-layer.safetensors', layers(`${ESC}dropout`))], /unknown layer type "\\u001b\[31mdropout"/);
    const line = expectRefused(['predict', face, '--model', withArchitecture('long-layer.safetensors', layers('y'.repeat(1_000_000)))], /unknown layer type "y+…" \(1000000 characters\)/);
    expect(line.length).toBeLessThan(400); // the type cut, then the 13 supported types
  });

  it('architecture JSON and safetensors header that do not parse, holding escapes', () => {
    expectRefused(['predict', face, '--model', withArchitecture('escape-json.safetensors', `{"input": ${ESC}`)], /the architecture is not valid JSON \(".*\\u001b/);
    const json = new TextEncoder().encode(`{"a": ${ESC}${'z'.repeat(100_000)}}`);
    const bytes = new Uint8Array(8 + json.length);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
    bytes.set(json, 8);
    expectRefused(['predict', face, '--model', file('escape-header.safetensors', bytes)], /header is not valid JSON \(".*\\u001b/);
  });

  /** A model file with its JSON header edited (the data left as it is). */
  const editHeader = (edit: (header: Record<string, Record<string, unknown>>) => void) => {
    const bytes = writeModel(model);
    const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
    edit(header);
    const text = new TextEncoder().encode(JSON.stringify(header));
    const out = new Uint8Array(8 + text.length + bytes.length - 8 - length);
    new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
    out.set(text, 8);
    out.set(bytes.subarray(8 + length), 8 + text.length);
    return out;
  };

  it('tensor names and dtypes from a safetensors header', () => {
    const name = editHeader((h) => { h[`${ESC}w`] = { dtype: 'F32', shape: [1] }; });
    expectRefused(['predict', face, '--model', file('escape-name.safetensors', name)], /tensor "\\u001b\[31mw" needs dtype, shape and data_offsets/);
    const dtype = editHeader((h) => { h['cv1.w'].dtype = `F${ESC}`; });
    expectRefused(['predict', face, '--model', file('escape-dtype.safetensors', dtype)], /tensor "cv1\.w" has dtype "F\\u001b\[31m", expected F32/);
  });

  it('model labels must be printable', () => {
    expectRefused(['predict', face, '--model', withArchitecture('escape-label.safetensors', { ...TUTORIAL_ARCHITECTURE, labels: [`${ESC}man`, 'woman'] })], /"labels" must be .*printable/);
    expectRefused(['predict', face, '--model', withArchitecture('long-label.safetensors', { ...TUTORIAL_ARCHITECTURE, labels: ['m'.repeat(101), 'woman'] })], /"labels" must be/);
  });

  it('labels.csv cells', () => {
    const label = dataset('escape-label', `file,label\na.png,${ESC}man\n`, { 'a.png': facePng });
    expectRefused(['eval', label, '--model', goodModel], /labels\.csv:2: unknown label "\\u001b\[31mman"/);
    const row = dataset('long-row', `file,label\n${'r'.repeat(10_000_000)}\n`);
    const line = expectRefused(['eval', row, '--model', goodModel], /labels\.csv:2: expected "file,label", got "r+…" \(10000000 characters\)/);
    expect(line.length).toBeLessThan(300);
    const name = dataset('escape-name', `file,label\n${ESC}a.png,man\n`);
    expectRefused(['eval', name, '--model', goodModel], /labels\.csv:2: "\\u001b\[31ma\.png" must be a file name in the dataset's directory/);
    const longName = dataset('long-name', `file,label\n${'n'.repeat(300)}.png,man\n`);
    expectRefused(['eval', longName, '--model', goodModel], /labels\.csv:2: "n+…" \(304 characters\) must be a file name/);
  });
});

describe('quote', () => {
  it('puts text in double quotes, escaping as JSON does', () => {
    expect(quote('dropout')).toBe('"dropout"');
    expect(quote('a"b\\c\n\t')).toBe('"a\\"b\\\\c\\n\\t"');
    expect(quote('é日本😀')).toBe('"é日本😀"');
  });

  it('escapes every character a terminal would not show as itself', () => {
    expect(quote('\u001b[31m')).toBe('"\\u001b[31m"');
    expect(quote('\u009b2J\u007f')).toBe('"\\u009b2J\\u007f"'); // C1 CSI, DEL
    expect(quote('a\u202eb\u200bc\u2028')).toBe('"a\\u202eb\\u200bc\\u2028"'); // bidi override, zero width, line separator
    expect(quote('\ud800')).toBe('"\\ud800"'); // a lone surrogate
    expect(isPrintable('man')).toBe(true);
    expect(isPrintable('m\u001ban')).toBe(false);
  });

  it('cuts long text at about 100 characters, saying how long it was', () => {
    const q = quote('x'.repeat(10_000_000));
    expect(q).toBe(`"${'x'.repeat(100)}…" (10000000 characters)`);
    expect(quote('\u001b'.repeat(1000)).length).toBeLessThan(140);
    expect(quote('x'.repeat(100))).toBe(`"${'x'.repeat(100)}"`);
  });

  it('shows other values as JSON, without quotes', () => {
    expect(quote([5, 5, 6, 3])).toBe('[5,5,6,3]');
    expect(quote(42)).toBe('42');
    expect(quote({ a: '\u001b\u009b' })).toBe('{"a":"\\u001b\\u009b"}');
    expect(quote(undefined)).toBe('undefined');
    const ones = Array(100_000).fill(1);
    expect(quote(ones)).toBe(`${JSON.stringify(ones).slice(0, 100)}… (${JSON.stringify(ones).length} characters)`);
  });
});

describe('import-tfjs: hostile model folders', () => {
  const ESC = '\u001b[2J';
  let n = 0;
  const tfjs = (edit?: (f: TfjsFiles) => void) => writeTfjsModel(join(dir, `tfjs-${n++}`), edit);
  const refused = (model: string, message: RegExp, maxLength?: number) => expectRefused(['import-tfjs', model, '--out', 'm.safetensors'], message, maxLength);

  it('model.json or a weight file that is a FIFO or a link to /dev/zero', () => {
    refused(fifo('tfjs-fifo.json'), /tfjs-fifo\.json: is not a regular file \(a FIFO\), expected a model\.json/);
    refused(zeroLink('tfjs-zero.json'), /tfjs-zero\.json: is not a regular file \(a character device, through a symbolic link\), expected a model\.json/);
    const fifoShard = tfjs();
    rmSync(join(fifoShard, '../weights.bin'));
    mkfifoAt(join(fifoShard, '../weights.bin'));
    refused(fifoShard, /weights\.bin: is not a regular file \(a FIFO\), expected a weight file of .*model\.json/);
    const zeroShard = tfjs();
    rmSync(join(zeroShard, '../weights.bin'));
    zeroAt(join(zeroShard, '../weights.bin'));
    refused(zeroShard, /weights\.bin: is not a regular file \(a character device, through a symbolic link\)/);
  });

  it('escape codes in a layer name, a class name, a weight name and a path: quoted', () => {
    refused(tfjs((f) => { f.json.modelTopology.config.layers[0].config = { ...(f.json.modelTopology.config.layers[0].config as object), name: `${ESC}conv` }; }),
      /layer 0: its name "\\u001b\[2Jconv" is not printable text of 1 to 64 characters/);
    refused(tfjs((f) => { f.json.modelTopology.config.layers[1].class_name = `${ESC}Pool`; }), /layer "gap" \("\\u001b\[2JPool"\): unsupported layer; supported: InputLayer, /, 600);
    refused(tfjs((f) => { f.json.weightsManifest[0].weights[0].dtype = `${ESC}f32`; }), /weight "conv\/kernel" has dtype "\\u001b\[2Jf32"/);
    refused(tfjs((f) => { f.json.weightsManifest[0].paths = [`${ESC}.bin`]; }), /weight file "\\u001b\[2J\.bin": only paths inside the model's folder are read/);
    refused(tfjs((f) => { f.json.modelTopology.class_name = `${ESC}${'M'.repeat(10_000)}`; }), /unsupported model class "\\u001b\[2JMMM+…" \(10004 characters\)/);
  });

  it('a weight path outside the model folder is never read, even when the file is there', () => {
    writeFileSync(join(dir, 'secret.bin'), new Uint8Array(248));
    for (const path of ['../secret.bin', 'sub/../../secret.bin', '..\\secret.bin', join(dir, 'secret.bin'), '/etc/passwd', '']) {
      refused(tfjs((f) => { f.json.weightsManifest[0].paths = [path]; }), /weight file ".*": only paths inside the model's folder are read/);
    }
  });

  it('a declared shape too large is refused before any weight file is read, a weight file too large before it is opened', () => {
    const line = refused(tfjs((f) => { f.json.weightsManifest[0].weights[0].shape = [65536, 65536, 3, 2]; }), /weight "conv\/kernel" of shape \[65536,65536,3,2\] takes the weights over 67108864 values, more than a model file holds/);
    expect(line).not.toMatch(/cannot read/);
    const sparse = tfjs();
    truncateSync(join(sparse, '../weights.bin'), 2 ** 30); // a gigabyte, of which nothing is on disk
    refused(sparse, /weights\.bin: 1073741824 bytes is too large for a weight file of .*model\.json \(the limit is 248 bytes\)/);
    refused(tfjs((f) => { f.json.weightsManifest[0].paths = Array(10_000).fill('weights.bin'); }), /weight file "weights\.bin" is listed twice/);
  });

  it('graphs that would exhaust the stack or the time: deep nesting, a chain of 30,000 layers, 10,000 inputs of one layer', () => {
    const functional = (layers: Record<string, unknown>[], output: string) => (f: TfjsFiles) => {
      f.json.modelTopology = { class_name: 'Model', config: { name: 'g', layers, output_layers: [[output, 0, 0]] } } as never;
      f.json.weightsManifest = [{ paths: [], weights: [] }];
    };
    const input = { class_name: 'InputLayer', config: { name: 'image', batch_input_shape: [null, 64, 64, 3] }, inbound_nodes: [] };
    const reads = (name: string) => [[[name, 0, 0, {}]]];
    // nested 100,000 lists deep: written as text, as JSON.stringify cannot nest so deep
    const deep = tfjs(functional([input, { class_name: 'Flatten', config: { name: 'f' }, inbound_nodes: 'DEEP' }], 'f'));
    writeFileSync(deep, readFileSync(deep, 'utf8').replace('"DEEP"', `${'['.repeat(100_000)}"image",0,0${']'.repeat(100_000)}`));
    refused(deep, /layer "f": "inbound_nodes" is nested too deeply/);
    const chain = Array.from({ length: 30_000 }, (_, i) => ({ class_name: 'ReLU', config: { name: `r${i}` }, inbound_nodes: reads(i === 0 ? 'image' : `r${i - 1}`) }));
    refused(tfjs(functional([...chain.reverse(), input], 'r29999')), /layer "r\d+" \(ReLU\): makes the converted model longer than 10000 layers/);
    const fanIn = { class_name: 'Concatenate', config: { name: 'cat' }, inbound_nodes: [Array(10_000).fill(['image', 0, 0, {}])] };
    refused(tfjs(functional([input, fanIn, { class_name: 'GlobalAveragePooling2D', config: { name: 'gap' }, inbound_nodes: reads('cat') }], 'gap')), /layer \d+ "cat" \(concat\) makes the network too large \(over 67108864 activations per image\)/);
    const cycle = [input, { class_name: 'ReLU', config: { name: 'a' }, inbound_nodes: reads('b') }, { class_name: 'ReLU', config: { name: 'b' }, inbound_nodes: reads('a') }];
    refused(tfjs(functional(cycle, 'b')), /the layers form a cycle through "a"/);
  });
});

describe('importTfjs reads only what it needs, and only inside the model folder', () => {
  /** Imports with a reader that records each path asked for. */
  const imported = (edit: (f: TfjsFiles) => void) => {
    const f = tfjsFiles();
    edit(f);
    const asked: { path: string; maxBytes: number }[] = [];
    let error: unknown;
    try {
      importTfjs(JSON.parse(JSON.stringify(f.json)), (path, maxBytes) => {
        asked.push({ path, maxBytes });
        return f.weights;
      }, 'model.json');
    } catch (e) {
      error = e;
    }
    return { asked, error };
  };

  it('paths outside the folder, absolute, empty, not text, or listed twice: refused before any file is read', () => {
    for (const path of ['../w.bin', 'a/../../w.bin', 'a/..', '..\\w.bin', 'a\\..\\..\\w.bin', '/etc/passwd', '\\\\server\\share\\w.bin', 'C:\\w.bin', 'c:w.bin', '', 'w\u0000.bin', 5, null]) {
      const { asked, error } = imported((f) => { f.json.weightsManifest[0].paths = ['weights.bin', path]; });
      expect(error, JSON.stringify(path)).toBeInstanceOf(InputError);
      expect((error as Error).message).toMatch(/only paths inside the model's folder are read/);
      expect(asked).toEqual([]);
    }
    for (const paths of [['weights.bin', 'weights.bin'], ['weights.bin', './weights.bin'], ['a//w.bin', 'a/./w.bin']]) {
      const { asked, error } = imported((f) => { f.json.weightsManifest[0].paths = paths; });
      expect((error as Error).message).toMatch(/is listed twice/);
      expect(asked).toEqual([]);
    }
  });

  it('a huge declared tensor, or many that add up to one, is refused before any file is read', () => {
    for (const shapes of [[[2 ** 31, 2 ** 31]], [[2 ** 26 + 1]], Array(100).fill([2 ** 20])]) {
      const { asked, error } = imported((f) => { f.json.weightsManifest[0].weights = shapes.map((shape, i) => ({ name: `w${i}`, shape, dtype: 'float32' })); });
      expect((error as Error).message).toMatch(/takes the weights over 67108864 values, more than a model file holds/);
      expect(asked).toEqual([]);
    }
  });

  it('a weight file is asked for with the bytes its weights need, and refused when it holds more', () => {
    expect(imported(() => {}).asked).toEqual([{ path: 'weights.bin', maxBytes: 248 }]);
    const { error } = imported((f) => { f.weights = new Uint8Array(4096); });
    expect((error as Error).message).toMatch(/weight file "weights\.bin" holds 4096 bytes, more than the 248 its group's weights have left/);
  });
});

describe('model files asking for huge memory: refused by the checks, before any allocation', () => {
  const base = { input: [64, 64, 3], labels: ['a', 'b'] };
  const fc = [{ type: 'global_avgpool' }, { type: 'dense', name: 'fc', units: 2 }];
  const quick = (architecture: unknown, message: RegExp) => {
    const before = process.memoryUsage();
    const t0 = performance.now();
    expect(() => checkArchitecture(architecture)).toThrow(message);
    expect(performance.now() - t0).toBeLessThan(2000);
    const grown = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers - before.heapUsed - before.arrayBuffers;
    expect(grown).toBeLessThan(64 * 2 ** 20);
  };

  it('a pad of 4096 on every side, 10,000 times; pads that add up', () => {
    quick({ ...base, layers: [...Array(9998).fill({ type: 'pad', pad: [4096, 4096, 4096, 4096] }), ...fc] }, /layer 0 \(pad\) makes a picture over 4096 cells a side/);
    quick({ ...base, input: [1, 1, 3], layers: [...Array(3).fill({ type: 'pad', pad: [1000, 1000, 1000, 1000] }), ...fc] }, /layer 2 \(pad\) makes a picture over 4096 cells a side|too large/);
  });

  it('a concat of one layer 10,000 times, an add of it 10,000 times', () => {
    const conv = { type: 'conv2d', name: 'c', filters: 16, kernel: 1 };
    quick({ ...base, layers: [conv, { type: 'concat', inputs: Array(10_000).fill('c') }, ...fc] }, /layer 1 \(concat\) makes the network too large \(over 67108864 activations per image\)/);
    const line = (() => {
      try {
        checkArchitecture({ ...base, layers: [conv, { type: 'conv2d', name: 'd', filters: 8, kernel: 1, inputs: ['input'] }, { type: 'add', inputs: [...Array(5000).fill('c'), ...Array(5000).fill('d')] }, ...fc] });
      } catch (e) {
        return (e as Error).message;
      }
    })();
    expect(line).toMatch(/layer 2 \(add\) adds inputs of different shapes: \[64,64,16\], \[64,64,8\] \(inputs 0 and 5000\)$/);
  });

  it('a depthwise multiplier of 4096, twice; a 4096-wide kernel; dense layers of 4096 units', () => {
    const dw = (name: string, kernel = 1) => ({ type: 'depthwise_conv2d', name, kernel, multiplier: 4096, padding: 'same' });
    quick({ ...base, layers: [dw('a'), dw('b'), ...fc] }, /layer 1 "b" \(depthwise_conv2d\) makes the network too large \(over 67108864 (weights|activations per image)\)/);
    quick({ ...base, layers: [dw('a', 4096), ...fc] }, /layer 0 "a" \(depthwise_conv2d\) makes the network too large \(over 67108864 weights\)/);
    const dense = (name: string, units: number) => ({ type: 'dense', name, units });
    quick({ ...base, layers: [{ type: 'flatten' }, dense('h0', 4096), dense('h1', 4096), dense('h2', 4096), dense('fc', 2)] }, /layer 2 "h1" \(dense\) makes the network too large \(over 67108864 weights\)/);
  });

  it('on the command line, such a model file is one line', () => {
    const architecture = { ...base, layers: [{ type: 'depthwise_conv2d', name: 'a', kernel: 4096, multiplier: 4096, padding: 'same' }, ...fc] };
    const path = file('huge-weights.safetensors', serializeSafetensors(new Map(), { [ARCHITECTURE_KEY]: JSON.stringify(architecture) }));
    expectRefused(['predict', face, '--model', path], /huge-weights\.safetensors: invalid architecture: layer 0 "a" \(depthwise_conv2d\) makes the network too large \(over 67108864 weights\)/);
  });

  it('tensors sharing their bytes are refused before any is read (10,000 of them on one megabyte)', () => {
    const data = 2 ** 20;
    const header: Record<string, unknown> = { __metadata__: { [ARCHITECTURE_KEY]: JSON.stringify(TUTORIAL_ARCHITECTURE) } };
    for (let i = 0; i < 10_000; i++) header[`t${i}`] = { dtype: 'F32', shape: [data / 4], data_offsets: [0, data] };
    const json = new TextEncoder().encode(JSON.stringify(header));
    const bytes = new Uint8Array(8 + json.length + data);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
    bytes.set(json, 8);
    const before = process.memoryUsage().arrayBuffers;
    expect(() => parseSafetensors(bytes, 'shared.safetensors')).toThrow(/shared\.safetensors: not a valid safetensors file: tensors "t0" and "t1" overlap \(bytes 0\.\.1048576 and 0\.\.1048576\)/);
    expect(() => readModel(bytes, 'shared.safetensors')).toThrow(InputError);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 2 ** 20);
  });
});
