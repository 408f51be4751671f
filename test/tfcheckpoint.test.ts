import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { crc32c } from '@aws-crypto/crc32c';
import pb from 'protobufjs/minimal.js';
import { InputError } from '../src/errors.js';
import { loadTfCheckpoint, readTfCheckpoint } from '../src/formats/tfcheckpoint.js';

const shared = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../shared/tutorial');
const prefix = path.join(shared, 'saved_model-1');
const exists = fs.existsSync(`${prefix}.index`) && fs.existsSync(`${prefix}.data-00000-of-00001`);
if (!exists) console.log(`tfcheckpoint.test: ${shared} is absent, skipping the tests on the tutorial's checkpoint`);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfcheckpoint-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Expects fn to throw a one-line InputError whose message matches. */
function refuses(fn: () => unknown, message: RegExp): void {
  let err: unknown;
  try { fn(); } catch (e) { err = e; }
  expect(err).toBeInstanceOf(InputError);
  expect((err as Error).message).toMatch(message);
  expect((err as Error).message).not.toContain('\n');
}

/** Parsing may succeed or throw a one-line InputError, nothing else (no RangeError/TypeError from malformed bytes). */
function onlyInputErrors(index: Uint8Array, data: Uint8Array): void {
  const check = (e: unknown) => { if (!(e instanceof InputError) || e.message.includes('\n')) throw e; };
  try {
    const c = readTfCheckpoint(index, data);
    for (const name of c.tensors.keys()) try { c.readFloat32(name); } catch (e) { check(e); }
  } catch (e) {
    check(e);
  }
}

// ---- a tiny tensor-bundle writer, so the reader is also tested without the shared folder ----

const MAGIC = [0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb];
const mask = (c: number) => ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
const varints = (...ns: number[]) => { const w = pb.Writer.create(); for (const n of ns) w.uint32(n); return w.finish(); };

/** One SSTable block with prefix-compressed keys and a single restart point. */
function block(entries: [string, Uint8Array][]): Uint8Array {
  const parts: Uint8Array[] = [];
  let prev = '';
  for (const [k, v] of entries) {
    let s = 0;
    while (s < prev.length && s < k.length && prev[s] === k[s]) s++;
    parts.push(varints(s, k.length - s, v.length), Buffer.from(k.slice(s)), v);
    prev = k;
  }
  return Buffer.concat([...parts, u32(0), u32(1)]);
}

interface TableOptions { perBlock?: number; compression?: number; corrupt?: (dataBlock: Uint8Array) => void }
function sstable(entries: [string, Uint8Array][], opts: TableOptions = {}): Uint8Array {
  const out: Uint8Array[] = [];
  let size = 0;
  const put = (contents: Uint8Array, type = 0) => {
    const typed = Buffer.concat([contents, Uint8Array.of(type)]);
    out.push(typed, u32(mask(crc32c(typed))));
    const handle = varints(size, contents.length);
    size += typed.length + 4;
    return handle;
  };
  const index: [string, Uint8Array][] = [];
  const per = opts.perBlock ?? 2;
  for (let i = 0; i < entries.length; i += per) {
    const chunk = entries.slice(i, i + per), b = block(chunk);
    opts.corrupt?.(b); // before the CRC, so that the entry parser itself sees the damage
    index.push([chunk[chunk.length - 1][0], put(b, opts.compression)]);
  }
  const footer = new Uint8Array(48);
  footer.set(Buffer.concat([put(block([])), put(block(index))]));
  footer.set(MAGIC, 40);
  return Buffer.concat([...out, footer]);
}

const header = (shards = 1, endianness = 0) =>
  pb.Writer.create().uint32(8).int32(shards).uint32(16).int32(endianness).uint32(26).fork().uint32(8).int32(1).ldelim().finish();

interface Tensor { name: string; dtype: number; shape: number[]; values: number[] }
/** Index and data bytes of a bundle; each tensor is preceded by one padding byte so offsets are unaligned. */
function bundle(tensors: Tensor[], opts: TableOptions & { header?: Uint8Array } = {}) {
  const data: Uint8Array[] = [];
  const entries: [string, Uint8Array][] = [['', opts.header ?? header()]];
  let offset = 0;
  for (const t of [...tensors].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const bytes = Buffer.from((t.dtype === 1 ? Float32Array : Int32Array).from(t.values).buffer);
    data.push(Uint8Array.of(0xee), bytes);
    offset += 1;
    const w = pb.Writer.create().uint32(8).int32(t.dtype).uint32(18).fork();
    for (const d of t.shape) w.uint32(18).fork().uint32(8).int64(d).ldelim();
    w.ldelim().uint32(24).int32(0).uint32(32).int64(offset).uint32(40).int64(bytes.length).uint32(53).fixed32(mask(crc32c(bytes)));
    entries.push([t.name, w.finish()]);
    offset += bytes.length;
  }
  return { index: sstable(entries, opts), data: Buffer.concat(data) };
}

const small: Tensor[] = [
  { name: 'net/a/w', dtype: 1, shape: [2, 3], values: [1.5, -2.25, 3, 0, 1e-3, -7] },
  { name: 'net/a/b', dtype: 1, shape: [3], values: [0.5, 0.25, -0.125] },
  { name: 'net/b/w', dtype: 1, shape: [], values: [42] },
  { name: 'step', dtype: 3, shape: [], values: [1234] },
];

describe('readTfCheckpoint on a synthetic bundle', () => {
  const { index, data } = bundle(small);

  it('reads names, dtypes, shapes and values across several data blocks', () => {
    const c = readTfCheckpoint(index, data);
    expect([...c.tensors.keys()]).toEqual(['net/a/b', 'net/a/w', 'net/b/w', 'step']);
    for (const t of small) {
      expect(c.tensors.get(t.name)).toMatchObject({ name: t.name, dtype: t.dtype, shape: t.shape });
      if (t.dtype === 1) expect([...c.readFloat32(t.name)]).toEqual([...Float32Array.from(t.values)]);
    }
    expect(c.tensors.get('net/a/b')).toEqual({ name: 'net/a/b', dtype: 1, shape: [3], offset: 1, size: 12 });
  });

  it('refuses bad inputs with one-line InputErrors', () => {
    const c = readTfCheckpoint(index, data);
    refuses(() => c.readFloat32('step'), /"step" has dtype 3, not DT_FLOAT/);
    refuses(() => c.readFloat32('nope'), /no tensor named "nope"/);
    const flipped = Buffer.from(data); flipped[2] ^= 1;
    refuses(() => readTfCheckpoint(index, flipped).readFloat32('net/a/b'), /"net\/a\/b" fails its CRC32C/);
    refuses(() => readTfCheckpoint(index, data.subarray(0, data.length - 1)), /"step" .* extends past the end/);
    refuses(() => readTfCheckpoint(bundle(small, { header: header(2) }).index, data), /2 shards/);
    refuses(() => readTfCheckpoint(bundle(small, { header: header(1, 1) }).index, data), /big-endian/);
    refuses(() => readTfCheckpoint(bundle(small, { compression: 1 }).index, data), /compressed \(type 1\)/);
    refuses(() => readTfCheckpoint(sstable([['x', header()]]), data), /no bundle header/);
    refuses(() => readTfCheckpoint(index.subarray(0, 47), data), /too short/);
    refuses(() => readTfCheckpoint(index.subarray(0, index.length - 1), data), /bad magic/);
    const badBlock = Buffer.from(index); badBlock[5] ^= 0x10;
    refuses(() => readTfCheckpoint(badBlock, data), /block at offset 0 fails its CRC32C/);
  });

  it('quotes tensor names in messages: escaped, and cut when long', () => {
    const name = `\u001b[31m${'n'.repeat(10_000)}`;
    const hostile = bundle([{ name, dtype: 3, shape: [], values: [1] }]);
    const c = readTfCheckpoint(hostile.index, hostile.data);
    refuses(() => c.readFloat32(name), /tensor "\\u001b\[31mnnn+…" \(10005 characters\) has dtype 3, not DT_FLOAT/);
    refuses(() => readTfCheckpoint(hostile.index, hostile.data.subarray(0, 2)), /checkpoint data: tensor "\\u001b\[31mn+…" \(10005 characters\) \(bytes 1\.\.5\) extends past the end/);
    for (const fn of [() => c.readFloat32(name), () => readTfCheckpoint(hostile.index, hostile.data.subarray(0, 2))]) {
      try { fn(); } catch (e) {
        expect((e as Error).message).not.toContain('\u001b');
        expect((e as Error).message.length).toBeLessThan(250);
      }
    }
  });

  it('throws nothing but InputError on truncated, flipped or garbled (CRC-valid) bytes', () => {
    for (let n = 0; n < index.length; n++) onlyInputErrors(index.subarray(0, n), data);
    for (let i = 0; i < index.length; i++) {
      for (const x of [0x01, 0x80, 0xff]) {
        const bad = Buffer.from(index); bad[i] ^= x;
        onlyInputErrors(bad, data);
        // the same damage inside the data blocks but with a matching CRC reaches the entry parser
        onlyInputErrors(bundle(small, { corrupt: (b) => { if (i < b.length) b[i] ^= x; } }).index, data);
      }
    }
  });
});

const weights: [string, number[]][] = [
  ['net/cv1/w', [5, 5, 1, 3]], ['net/cv1/b', [3]], ['net/cv2/w', [5, 5, 3, 6]], ['net/cv2/b', [6]],
  ['net/cv3/w', [5, 5, 6, 12]], ['net/cv3/b', [12]], ['net/fc/w', [432, 2]], ['net/fc/b', [2]],
];
const key = (n: string) => `${n}/.ATTRIBUTES/VARIABLE_VALUE`;

describe.skipIf(!exists)("loadTfCheckpoint on the tutorial's checkpoint", () => {
  const read = (suffix: string) => fs.readFileSync(prefix + suffix);
  /** Writes a (possibly damaged) copy of the bundle under the temporary folder and returns its prefix. */
  function copy(name: string, index: Uint8Array | null, data: Uint8Array): string {
    const p = path.join(tmp, name);
    if (index) fs.writeFileSync(`${p}.index`, index);
    fs.writeFileSync(`${p}.data-00000-of-00001`, data);
    return p;
  }

  it('has the 8 weight tensors with the right dtypes and shapes, and plausible values', () => {
    const c = loadTfCheckpoint(prefix);
    for (const [name, shape] of weights) {
      expect(c.tensors.get(key(name))).toMatchObject({ name: key(name), dtype: 1, shape });
      const w = c.readFloat32(key(name));
      expect(w.length).toBe(shape.reduce((a, b) => a * b, 1));
      expect(w.every((v) => Number.isFinite(v) && Math.abs(v) < 5)).toBe(true);
      expect(w.some((v) => v !== 0)).toBe(true);
    }
    expect(c.readFloat32(key('net/cv1/w'))[0]).toBeCloseTo(-0.1250899, 6);
    const fcb = c.readFloat32(key('net/fc/b'));
    expect(fcb[0]).toBeCloseTo(0.0547447, 6);
    expect(fcb[0] + fcb[1]).toBeCloseTo(0, 6); // two-class softmax trained from zero biases: gradients are opposite
  });

  it('agrees with a raw little-endian read at the entry offsets, and the entries tile the data file', () => {
    const c = loadTfCheckpoint(prefix), raw = read('.data-00000-of-00001');
    const t = c.tensors.get(key('net/fc/w'))!;
    const view = new DataView(raw.buffer, raw.byteOffset, raw.length);
    const w = c.readFloat32(t.name);
    expect(w[0]).toBe(view.getFloat32(t.offset, true));
    expect(w[863]).toBe(view.getFloat32(t.offset + 4 * 863, true));
    const spans = [...c.tensors.values()].sort((a, b) => a.offset - b.offset);
    let end = 0;
    for (const s of spans) { expect(s.offset).toBe(end); end = s.offset + s.size; }
    expect(end).toBe(raw.length);
  });

  it('refuses a flipped byte in the data file by CRC, and still reads the other tensors', () => {
    const data = Buffer.from(read('.data-00000-of-00001'));
    const t = loadTfCheckpoint(prefix).tensors.get(key('net/cv2/w'))!;
    data[t.offset + 100] ^= 0x04;
    const c = loadTfCheckpoint(copy('flipped-data', read('.index'), data));
    refuses(() => c.readFloat32(t.name), /flipped-data\.data-00000-of-00001: tensor "net\/cv2\/w.*" fails its CRC32C/);
    expect(c.readFloat32(key('net/cv2/b')).length).toBe(6);
  });

  it('refuses a flipped byte in the index, a truncated index and a missing prefix or data file', () => {
    const index = Buffer.from(read('.index')), data = read('.data-00000-of-00001');
    index[200] ^= 0x01;
    refuses(() => loadTfCheckpoint(copy('flipped-index', index, data)), /flipped-index\.index: block at offset \d+ fails its CRC32C/);
    refuses(() => loadTfCheckpoint(copy('truncated', read('.index').subarray(0, 1500), data)), /truncated\.index: bad magic/);
    refuses(() => loadTfCheckpoint(copy('tiny', read('.index').subarray(0, 20), data)), /tiny\.index: 20 bytes is too short/);
    refuses(() => loadTfCheckpoint(path.join(tmp, 'absent')), /absent\.index: cannot read a TensorFlow checkpoint index \(no such file or directory\)/);
    fs.copyFileSync(`${prefix}.index`, path.join(tmp, 'nodata.index'));
    refuses(() => loadTfCheckpoint(path.join(tmp, 'nodata')), /nodata\.data-00000-of-00001: cannot read TensorFlow checkpoint data \(no such file or directory\)/);
  });
});
