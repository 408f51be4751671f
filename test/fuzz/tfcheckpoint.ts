// Fuzz target: readTfCheckpoint (the .index SSTable, its BundleEntryProtos and the .data file), then
// readFloat32 of every tensor and the import of the tutorial's network. Seeds: a small bundle and one
// holding the tutorial's 8 weight tensors, written here as test/tfcheckpoint.test.ts writes them.
// Format-aware mutations act before the CRCs are computed, so that the damage reaches the parsers:
// entry fields (dtype, shape, shard, offset, size as huge or negative varints), keys, the header
// entry, block contents (restart counts, key lengths), block handles and the footer.
import { crc32c } from '@aws-crypto/crc32c';
import { modelFromTutorialCheckpoint, TUTORIAL_ARCHITECTURE } from '../../src/formats/importtf.js';
import { parameterShapes } from '../../src/formats/model.js';
import { random } from '../../src/core/random.js';
import { readTfCheckpoint } from '../../src/formats/tfcheckpoint.js';
import { InputError } from '../../src/errors.js';
import { Invalid, type Target } from './harness.js';
import { below, chance, concat, interestingBig, mutateBytes, pick, streamOf, type Rand } from './mutate.js';

const MAGIC = Uint8Array.of(0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb);
const mask = (c: number) => ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
const u32le = (n: number) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n >>> 0, true); return b; };
const utf8 = (s: string) => new TextEncoder().encode(s);

/** A protobuf varint of a 64-bit value (negative values as their two's complement, 10 bytes). */
function varint(value: bigint | number): Uint8Array {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  do {
    const byte = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v ? byte | 0x80 : byte);
  } while (v);
  return Uint8Array.from(out);
}
const field = (tag: number, value: bigint | number) => concat(varint(tag), varint(value));
const bytesField = (tag: number, value: Uint8Array) => concat(varint(tag), varint(value.length), value);

/** A BundleEntryProto, its fields as numbers that mutations may set to anything. */
interface Entry { dtype: bigint; shape: bigint[]; shard: bigint; offset: bigint; size: bigint; crc: number; unknownRank?: boolean; extra?: Uint8Array }

function encodeEntry(e: Entry): Uint8Array {
  const dims = e.shape.map((d) => bytesField(18, field(8, d)));
  const shape = concat(...dims, e.unknownRank ? field(24, 1) : new Uint8Array());
  const crc = new Uint8Array(5);
  crc[0] = 53;
  crc.set(u32le(e.crc), 1);
  return concat(field(8, e.dtype), bytesField(18, shape), field(24, e.shard), field(32, e.offset), field(40, e.size), crc, e.extra ?? new Uint8Array());
}

const headerValue = (shards: bigint | number = 1, endianness: bigint | number = 0) =>
  concat(field(8, shards), field(16, endianness), bytesField(26, field(8, 1)));

/** One SSTable block: prefix-compressed keys, `restarts` restart points (only the first is real). */
function block(entries: [Uint8Array, Uint8Array][]): Uint8Array {
  const parts: Uint8Array[] = [];
  let prev: Uint8Array = new Uint8Array();
  for (const [k, v] of entries) {
    let s = 0;
    while (s < prev.length && s < k.length && prev[s] === k[s]) s++;
    parts.push(varint(s), varint(k.length - s), varint(v.length), k.subarray(s), v);
    prev = k;
  }
  return concat(...parts, u32le(0), u32le(1));
}

/** A bundle before it is written: every part that a mutation may change on the way. */
interface Plan {
  header: Uint8Array | undefined;
  entries: { key: Uint8Array; entry: Entry | Uint8Array }[];
  data: Uint8Array;
  perBlock: number;
  /** Applied to data block `i`'s contents before its CRC (and to the index block as i = -1). */
  blockEdits: ((contents: Uint8Array, i: number) => Uint8Array)[];
  handleEdits: ((handles: [bigint, bigint][]) => void)[];
  /** Applied to the 40 bytes of footer handles. */
  footerEdits: ((footer: Uint8Array) => Uint8Array)[];
  /** Applied to the finished files (after every CRC). */
  indexEdits: ((index: Uint8Array) => Uint8Array)[];
  dataEdits: ((data: Uint8Array) => Uint8Array)[];
}

function write(plan: Plan): { index: Uint8Array; data: Uint8Array } {
  const out: Uint8Array[] = [];
  let size = 0;
  const put = (contents: Uint8Array): [bigint, bigint] => {
    const typed = concat(contents, Uint8Array.of(0));
    out.push(typed, u32le(mask(crc32c(typed))));
    const handle: [bigint, bigint] = [BigInt(size), BigInt(contents.length)];
    size += typed.length + 4;
    return handle;
  };
  const edit = (contents: Uint8Array, i: number) => plan.blockEdits.reduce((c, f) => f(c, i), contents);
  const all: [Uint8Array, Uint8Array][] = [
    ...(plan.header ? [[new Uint8Array(), plan.header] as [Uint8Array, Uint8Array]] : []),
    ...plan.entries.map(({ key, entry }) => [key, entry instanceof Uint8Array ? entry : encodeEntry(entry)] as [Uint8Array, Uint8Array]),
  ];
  const lastKeys: Uint8Array[] = [], handles: [bigint, bigint][] = [];
  for (let i = 0, b = 0; i < all.length; i += plan.perBlock, b++) {
    const chunk = all.slice(i, i + plan.perBlock);
    lastKeys.push(chunk[chunk.length - 1][0]);
    handles.push(put(edit(block(chunk), b)));
  }
  for (const f of plan.handleEdits) f(handles);
  const indexBlock = block(handles.map((h, i) => [lastKeys[i] ?? new Uint8Array(), concat(varint(h[0]), varint(h[1]))]));
  const meta = put(block([]));
  const top = put(edit(indexBlock, -1));
  let footer: Uint8Array = new Uint8Array(40);
  footer.set(concat(varint(meta[0]), varint(meta[1]), varint(top[0]), varint(top[1])).subarray(0, 40));
  footer = plan.footerEdits.reduce((f, e) => e(f), footer);
  const index = plan.indexEdits.reduce((x, e) => e(x), concat(...out, footer, MAGIC));
  return { index, data: plan.dataEdits.reduce((x, e) => e(x), plan.data) };
}

interface Tensor { name: string; dtype: number; shape: number[]; values: number[] }

function plan(tensors: Tensor[], perBlock: number): Plan {
  const data: Uint8Array[] = [];
  const entries: Plan['entries'] = [];
  let offset = 0;
  for (const t of [...tensors].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const bytes = new Uint8Array((t.dtype === 1 ? Float32Array : Int32Array).from(t.values).buffer);
    data.push(Uint8Array.of(0xee), bytes); // one byte of padding: offsets are unaligned
    offset += 1;
    entries.push({ key: utf8(t.name), entry: { dtype: BigInt(t.dtype), shape: t.shape.map(BigInt), shard: 0n, offset: BigInt(offset), size: BigInt(bytes.length), crc: mask(crc32c(bytes)) } });
    offset += bytes.length;
  }
  return { header: headerValue(), entries, data: concat(...data), perBlock, blockEdits: [], handleEdits: [], footerEdits: [], indexEdits: [], dataEdits: [] };
}

/** The tutorial's 8 weight tensors, named as its tf.Module saves them, and a save counter. */
const TUTORIAL_TENSORS: Tensor[] = (() => {
  const r = random(0x5446);
  const tensors = [...parameterShapes(TUTORIAL_ARCHITECTURE)].map(([key, shape]) => ({
    name: `net/${key.replace('.', '/')}/.ATTRIBUTES/VARIABLE_VALUE`, dtype: 1, shape,
    values: Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r() - 0.5),
  }));
  return [...tensors, { name: 'save_counter/.ATTRIBUTES/VARIABLE_VALUE', dtype: 9, shape: [], values: [1, 0] }];
})();

const SEEDS: { name: string; plan: Plan }[] = [
  {
    name: 'tf-small',
    plan: plan([
      { name: 'net/a/w', dtype: 1, shape: [2, 3], values: [1.5, -2.25, 3, 0, 1e-3, -7] },
      { name: 'net/a/b', dtype: 1, shape: [3], values: [0.5, 0.25, -0.125] },
      { name: 'net/b/w', dtype: 1, shape: [], values: [42] },
      { name: 'step', dtype: 3, shape: [], values: [1234] },
    ], 2),
  },
  { name: 'tf-tutorial', plan: plan(TUTORIAL_TENSORS, 3) },
];

// ---- mutations of a plan ----

const DTYPES = [0n, 1n, 2n, 3n, 9n, 19n, 101n, -1n, 2n ** 31n, 2n ** 63n];
/** An offset or size: interesting 64-bit values, or small shifts of `near`. */
const bigValue = (r: Rand, near: bigint) => (chance(r, 0.3) ? near + BigInt(pick(r, [-4, -1, 1, 4, 1000])) : chance(r, 0.2) ? -BigInt(1 + below(r, 9)) : interestingBig(r, Number(near)));

type Edit = (p: Plan, r: Rand) => string;

const entryEdit: Edit = (p, r) => {
  const items = p.entries.filter((e) => !(e.entry instanceof Uint8Array));
  if (items.length === 0) return 'none';
  const item = pick(r, items), e = { ...(item.entry as Entry) };
  item.entry = e;
  const name = new TextDecoder().decode(item.key).split('/.')[0];
  switch (below(r, 8)) {
    case 0: e.dtype = pick(r, DTYPES); return `${name}.dtype=${e.dtype}`;
    case 1: {
      const shape = e.shape.slice(), kind = below(r, 4);
      if (kind === 0 && shape.length > 0) shape[below(r, shape.length)] = bigValue(r, shape[0]);
      else if (kind === 1) shape.push(pick(r, [0n, 1n, 2n, 2n ** 31n, 2n ** 62n, -1n]));
      else if (kind === 2) shape.splice(0, 1);
      else shape.push(...Array<bigint>(pick(r, [10, 100, 2000])).fill(pick(r, [1n, 2n])));
      e.shape = shape;
      return `${name}.shape=[${shape.length > 8 ? `${shape.length} dims` : shape}]`;
    }
    case 2: e.shard = pick(r, [1n, -1n, 2n ** 40n]); return `${name}.shard=${e.shard}`;
    case 3: e.offset = bigValue(r, e.offset); return `${name}.offset=${e.offset}`;
    case 4: e.size = bigValue(r, e.size); return `${name}.size=${e.size}`;
    case 5: e.crc = below(r, 2 ** 32); return `${name}.crc`;
    case 6: e.unknownRank = true; return `${name}.unknown_rank`;
    default: {
      // raw bytes of the encoded entry (wire types, truncated varints, lengths past the end)
      const [bytes, what] = mutateBytes(encodeEntry(e), r, []);
      item.entry = bytes;
      return `${name}.bytes:${what}`;
    }
  }
};

const EDITS: Edit[] = [
  entryEdit,
  entryEdit,
  (p, r) => {
    const kind = below(r, 4);
    if (kind === 0) { p.header = undefined; return 'header-removed'; }
    if (kind === 1) { p.header = headerValue(pick(r, [0n, 2n, -1n, 2n ** 32n]), 0n); return 'header-shards'; }
    if (kind === 2) { p.header = headerValue(1n, pick(r, [1n, 2n, -1n])); return 'header-endianness'; }
    p.header = mutateBytes(p.header ?? headerValue(), r, [])[0];
    return 'header-bytes';
  },
  (p, r) => {
    // keys and the order of entries: duplicates, a second empty key, unsorted, non-UTF-8
    const i = below(r, p.entries.length), kind = below(r, 5);
    if (p.entries.length === 0) return 'none';
    if (kind === 0) { p.entries.splice(i, 1); return `entry${i}-removed`; }
    if (kind === 1) { p.entries.splice(below(r, p.entries.length), 0, { ...p.entries[i] }); return `entry${i}-duplicated`; }
    if (kind === 2) { p.entries.reverse(); return 'entries-reversed'; }
    const key = kind === 3 ? new Uint8Array() : mutateBytes(p.entries[i].key, r, [])[0];
    p.entries[i] = { ...p.entries[i], key };
    return `key${i}=${kind === 3 ? 'empty' : 'mutated'}`;
  },
  (p, r) => {
    p.perBlock = 1 + below(r, 6);
    return `per-block=${p.perBlock}`;
  },
  (p, r) => {
    // a block's contents, damaged before its CRC: restart count, key lengths, varints
    const target = chance(r, 0.3) ? -1 : below(r, 4);
    const kind = below(r, 3);
    p.blockEdits.push((c, i) => {
      if (i !== target) return c;
      if (kind === 0 && c.length >= 4) { const out = c.slice(); new DataView(out.buffer).setUint32(out.length - 4, Number(BigInt.asUintN(32, interestingBig(r, c.length))), true); return out; }
      if (kind === 1) return concat(varint(pick(r, [0, 1, 200, 2 ** 31])), varint(pick(r, [0, 1, 2 ** 31, 2 ** 32 - 1])), varint(pick(r, [0, 5, 2 ** 32 - 1])), c);
      return mutateBytes(c, r, [])[0];
    });
    return `block${target}:${['restarts', 'bad-first-entry', 'bytes'][kind]}`;
  },
  (p, r) => {
    p.handleEdits.push((handles) => {
      if (handles.length === 0) return;
      const h = handles[below(r, handles.length)];
      h[below(r, 2)] = bigValue(r, h[1]);
    });
    return 'block-handle';
  },
  (p, r) => {
    p.footerEdits.push((f) => {
      if (chance(r, 0.5)) return mutateBytes(f, r, [])[0].subarray(0, 40);
      const out = new Uint8Array(40);
      out.set(concat(varint(bigValue(r, 0n)), varint(bigValue(r, 100n)), varint(bigValue(r, 0n)), varint(bigValue(r, 100n))).subarray(0, 40));
      return out;
    });
    return 'footer';
  },
  (p, r) => {
    p.indexEdits.push((x) => mutateBytes(x, r, [])[0]);
    return 'index-bytes';
  },
  (p, r) => {
    p.dataEdits.push((x) => mutateBytes(x, r, [])[0]);
    return 'data-bytes';
  },
];

export const tfTarget: Target = {
  name: 'tfcheckpoint',
  parser: 'readTfCheckpoint + readFloat32 + import-tf',
  make(index) {
    const r = streamOf('tfcheckpoint', index);
    const seed = pick(r, SEEDS);
    // edits replace entries and arrays, never change them in place: a shallow copy is enough
    const p: Plan = { ...seed.plan, entries: seed.plan.entries.map((e) => ({ ...e })), blockEdits: [], handleEdits: [], footerEdits: [], indexEdits: [], dataEdits: [] };
    const ops: string[] = [];
    for (let k = pick(r, [1, 1, 1, 2, 2, 3]); k > 0; k--) ops.push(pick(r, EDITS)(p, r));
    const files = write(p);
    return { seed: seed.name, ops, size: files.index.length + files.data.length, files: { 'fuzz.index': files.index, 'fuzz.data-00000-of-00001': files.data }, run: () => readAll(files.index, files.data) };
  },
};

/** Everything the command line does with a bundle; per-tensor refusals are fine, as long as they are InputErrors. */
function readAll(index: Uint8Array, data: Uint8Array): void {
  const c = readTfCheckpoint(index, data);
  for (const t of c.tensors.values()) {
    if (!(t.offset >= 0 && t.size >= 0 && t.offset + t.size <= data.length)) throw new Invalid(`tensor ${t.name} at ${t.offset}+${t.size} of ${data.length} bytes`);
    let values: Float32Array;
    try {
      values = c.readFloat32(t.name);
    } catch (e) {
      if (e instanceof InputError) continue;
      throw e;
    }
    if (values.length !== t.shape.reduce((a, b) => a * b, 1)) throw new Invalid(`tensor ${t.name} of shape [${t.shape}] read as ${values.length} values`);
  }
  try {
    modelFromTutorialCheckpoint(c, 'fuzz');
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
  }
}
