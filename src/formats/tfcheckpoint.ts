/**
 * Reader for TensorFlow 2 tensor bundles (checkpoints): `PREFIX.index` is a LevelDB-format SSTable
 * mapping tensor names to serialized `BundleEntryProto`s, `PREFIX.data-00000-of-00001` holds the raw
 * little-endian tensor bytes. Formats: leveldb/doc/table_format.md and
 * tensorflow/core/util/tensor_bundle/tensor_bundle.{proto,cc}.
 */
import pb from 'protobufjs/minimal.js';
import type { Long, Reader } from 'protobufjs/minimal.js';
import { InputError, quote } from '../errors.js';
import { crc32c } from './crc.js';
import { INPUT_LIMITS, readInputFile } from '../node/input.js';

export interface CheckpointTensor { name: string; dtype: number /* TF DataType enum */; shape: number[]; offset: number; size: number; }
export interface Checkpoint {
  tensors: Map<string, CheckpointTensor>;
  /** float32 contents of a DT_FLOAT tensor, CRC-checked; throws InputError otherwise */
  readFloat32(name: string): Float32Array;
}

const DT_FLOAT = 1;
const utf8 = new TextDecoder();
const FOOTER = 48; // metaindex handle + index handle (varints, zero-padded to 40 bytes) + 8-byte magic
const MAGIC = [0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb]; // 0xdb4775248b80fb57, little-endian

/** LevelDB and TF both store CRC32Cs "masked" (rotated and offset) so that CRCs of data holding CRCs stay strong. */
function unmask(masked: number): number {
  const rot = (masked - 0xa282ead8) >>> 0;
  return ((rot >>> 17) | (rot << 15)) >>> 0;
}

/** protobufjs throws RangeError/Error on malformed bytes: turn those into one-line InputErrors. */
function guard<T>(where: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`${where} is malformed (${(e as Error).message})`);
  }
}

/** int64/uint64 fields come back as Long (low/high 32-bit halves); offsets and sizes must be exact, non-negative numbers. */
function count(v: Long | number, where: string): number {
  const n = typeof v === 'number' ? v : (v.unsigned ? v.high >>> 0 : v.high) * 2 ** 32 + (v.low >>> 0);
  if (!Number.isSafeInteger(n) || n < 0) throw new InputError(`${where}: value ${n} is out of range`);
  return n;
}

type Handle = { offset: number; size: number };
const readHandle = (r: Reader, where: string): Handle =>
  ({ offset: count(r.uint64(), where), size: count(r.uint64(), where) });

/** A block's contents, after checking its 5-byte trailer (compression type + masked CRC of contents and type). */
function readBlock(file: Uint8Array, h: Handle, name: string): Uint8Array {
  const end = h.offset + h.size;
  if (end + 5 > file.length) throw new InputError(`${name}: block at offset ${h.offset} (${h.size} bytes) runs past the end of the file`);
  if (file[end] !== 0) throw new InputError(`${name}: block at offset ${h.offset} is compressed (type ${file[end]}); only uncompressed tables are supported`);
  const stored = new DataView(file.buffer, file.byteOffset + end + 1, 4).getUint32(0, true);
  if (unmask(stored) !== crc32c(file.subarray(h.offset, end + 1))) throw new InputError(`${name}: block at offset ${h.offset} fails its CRC32C check`);
  return file.subarray(h.offset, end);
}

/** Key/value pairs of a block; keys are prefix-compressed against the previous key. */
function blockEntries(block: Uint8Array, where: string): [string, Uint8Array][] {
  return guard(where, () => {
    if (block.length < 4) throw new InputError(`${where}: block of ${block.length} bytes is too short`);
    const restarts = new DataView(block.buffer, block.byteOffset + block.length - 4).getUint32(0, true);
    const end = block.length - 4 - 4 * restarts; // the entries stop where the restart array starts
    if (end < 0) throw new InputError(`${where}: block claims ${restarts} restart points, more than fit`);
    const r = new pb.Reader(block.subarray(0, end));
    const out: [string, Uint8Array][] = [];
    let key = new Uint8Array(0);
    while (r.pos < r.len) {
      const shared = r.uint32(), own = r.uint32(), valueLen = r.uint32();
      if (shared > key.length || own + valueLen > r.len - r.pos) throw new InputError(`${where}: block entry at byte ${r.pos} is inconsistent`);
      const next = new Uint8Array(shared + own);
      next.set(key.subarray(0, shared));
      next.set(r.buf.subarray(r.pos, r.pos + own), shared);
      key = next;
      r.pos += own;
      out.push([utf8.decode(key), r.buf.subarray(r.pos, r.pos + valueLen)]);
      r.pos += valueLen;
    }
    return out;
  });
}

/** BundleHeaderProto: 1 num_shards, 2 endianness (0 = little). */
function checkHeader(value: Uint8Array, name: string): void {
  let shards = 0, endianness = 0;
  guard(`${name}: header entry`, () => {
    const r = new pb.Reader(value);
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag === 8) shards = r.int32();
      else if (tag === 16) endianness = r.int32();
      else r.skipType(tag & 7);
    }
  });
  if (shards !== 1) throw new InputError(`${name}: bundle has ${shards} shards; only single-shard bundles are supported`);
  if (endianness !== 0) throw new InputError(`${name}: bundle is big-endian; only little-endian bundles are supported`);
}

type Entry = CheckpointTensor & { crc: number };

/** BundleEntryProto: 1 dtype, 2 shape, 3 shard_id, 4 offset, 5 size, 6 crc32c (7 slices: such entries have size 0). */
function parseEntry(name: string, value: Uint8Array, where: string): Entry {
  const e: Entry = { name, dtype: 0, shape: [], offset: 0, size: 0, crc: 0 };
  return guard(where, () => {
    const r = new pb.Reader(value);
    while (r.pos < r.len) {
      const tag = r.uint32(); // field number << 3 | wire type: matching whole tags also checks the wire type
      switch (tag) {
        case 8: e.dtype = r.int32(); break;
        case 18: e.shape = parseShape(r.bytes(), where); break;
        case 24: if (r.int32() !== 0) throw new InputError(`${where}: tensor is in another shard; only single-shard bundles are supported`); break;
        case 32: e.offset = count(r.int64(), where); break;
        case 40: e.size = count(r.int64(), where); break;
        case 53: e.crc = r.fixed32(); break;
        default: r.skipType(tag & 7);
      }
    }
    return e;
  });
}

/** TensorShapeProto: 2 repeated Dim {1: size}, 3 unknown_rank. */
function parseShape(bytes: Uint8Array, where: string): number[] {
  const shape: number[] = [];
  const r = new pb.Reader(bytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === 18) {
      const d = new pb.Reader(r.bytes());
      let size = 0;
      while (d.pos < d.len) { const t = d.uint32(); if (t === 8) size = count(d.int64(), `${where}: shape`); else d.skipType(t & 7); }
      shape.push(size);
    } else if (tag === 24) {
      if (r.bool()) throw new InputError(`${where}: shape has unknown rank`);
    } else r.skipType(tag & 7);
  }
  return shape;
}

function parse(index: Uint8Array, data: Uint8Array, indexName: string, dataName: string): Checkpoint {
  if (index.length < FOOTER) throw new InputError(`${indexName}: ${index.length} bytes is too short for an SSTable (truncated?)`);
  if (MAGIC.some((b, i) => index[index.length - 8 + i] !== b)) throw new InputError(`${indexName}: bad magic number (not a TensorFlow checkpoint index, or truncated)`);
  const indexHandle = guard(`${indexName}: footer`, () => {
    const r = new pb.Reader(index.subarray(index.length - FOOTER, index.length - 8));
    readHandle(r, `${indexName}: footer`); // metaindex: TF writes no filters, nothing to read there
    return readHandle(r, `${indexName}: footer`);
  });
  const entries = new Map<string, Entry>();
  let header = false;
  for (const [, handle] of blockEntries(readBlock(index, indexHandle, indexName), `${indexName}: index block`)) {
    const h = guard(`${indexName}: index block handle`, () => readHandle(new pb.Reader(handle), `${indexName}: index block handle`));
    for (const [key, value] of blockEntries(readBlock(index, h, indexName), `${indexName}: data block`)) {
      if (key === '') { checkHeader(value, indexName); header = true; continue; }
      const e = parseEntry(key, value, `${indexName}: entry ${quote(key)}`);
      if (e.offset + e.size > data.length) throw new InputError(`${dataName}: tensor ${quote(key)} (bytes ${e.offset}..${e.offset + e.size}) extends past the end of the ${data.length}-byte data file`);
      entries.set(key, e);
    }
  }
  if (!header) throw new InputError(`${indexName}: no bundle header entry`);

  const tensors = new Map([...entries].map(([k, { name, dtype, shape, offset, size }]) => [k, { name, dtype, shape, offset, size }]));
  return {
    tensors,
    readFloat32(name: string): Float32Array {
      const e = entries.get(name);
      if (!e) throw new InputError(`${indexName}: no tensor named ${quote(name)}`);
      if (e.dtype !== DT_FLOAT) throw new InputError(`${indexName}: tensor ${quote(name)} has dtype ${e.dtype}, not DT_FLOAT (1)`);
      const n = e.shape.reduce((a, b) => a * b, 1);
      if (e.size !== 4 * n) throw new InputError(`${indexName}: tensor ${quote(name)} has ${e.size} bytes, expected ${4 * n} for shape ${quote(e.shape)}`);
      const bytes = data.subarray(e.offset, e.offset + e.size);
      if (crc32c(bytes) !== unmask(e.crc)) throw new InputError(`${dataName}: tensor ${quote(name)} fails its CRC32C check (corrupt data file)`);
      // DataView: offsets need not be 4-aligned, and the file is little-endian whatever the host is.
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
      return Float32Array.from({ length: n }, (_, i) => view.getFloat32(4 * i, true));
    },
  };
}

/** Parses a bundle from the bytes of its `.index` and single `.data-00000-of-00001` file. */
export function readTfCheckpoint(index: Uint8Array, data: Uint8Array): Checkpoint {
  return parse(index, data, 'checkpoint index', 'checkpoint data');
}

/** Reads PREFIX.index and PREFIX.data-00000-of-00001 (single-shard bundles only). */
export function loadTfCheckpoint(prefix: string): Checkpoint {
  const indexName = `${prefix}.index`, dataName = `${prefix}.data-00000-of-00001`;
  return parse(
    readInputFile(indexName, 'a TensorFlow checkpoint index', INPUT_LIMITS.checkpointIndex),
    readInputFile(dataName, 'TensorFlow checkpoint data', INPUT_LIMITS.checkpointData),
    indexName,
    dataName,
  );
}
