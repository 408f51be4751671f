// The safetensors container: 8-byte little-endian header length, a JSON header naming each
// tensor's dtype, shape and byte range, then the raw little-endian data.
import { InputError, quote } from '../errors.js';

export interface SafetensorsFile {
  metadata: Record<string, string>;
  /** Float32 tensors by name; tensors of other dtypes are listed in `otherDtypes`. */
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  otherDtypes: Map<string, string>;
}

const MAX_HEADER = 100 * 1024 * 1024;

export function parseSafetensors(bytes: Uint8Array, name: string): SafetensorsFile {
  const fail = (why: string): never => {
    throw new InputError(`${name}: not a valid safetensors file: ${why}`);
  };
  if (bytes.length < 8) fail(`${bytes.length} bytes, too short for a header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > bytes.length - 8) fail(`header length ${headerLength} exceeds the file (${bytes.length} bytes)`);
  if (headerLength > MAX_HEADER) fail(`header length ${headerLength} is unreasonably large`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch (e) {
    // The parser's message quotes the text around the error: text from the file, so quoted.
    fail(`header is not valid JSON (${quote((e as Error).message)})`);
  }
  if (!isObject(header)) return fail('header is not a JSON object');
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const file: SafetensorsFile = { metadata: {}, tensors: new Map(), otherDtypes: new Map() };
  const float32: { key: string; shape: number[]; begin: number; end: number }[] = [];
  const ranges: { key: string; begin: number; end: number }[] = [];
  for (const [key, entry] of Object.entries(header)) {
    if (key === '__metadata__') {
      if (!isObject(entry) || !Object.values(entry).every((v) => typeof v === 'string')) fail('__metadata__ must map names to strings');
      file.metadata = entry as Record<string, string>;
      continue;
    }
    if (!isObject(entry) || typeof entry.dtype !== 'string' || !isIntArray(entry.shape) || !isIntArray(entry.data_offsets) || entry.data_offsets.length !== 2) {
      return fail(`tensor ${quote(key)} needs dtype, shape and data_offsets`);
    }
    const [begin, end] = entry.data_offsets;
    if (begin > end || end > dataLength) fail(`tensor ${quote(key)} lies outside the data (bytes ${begin}..${end} of ${dataLength})`);
    ranges.push({ key, begin, end });
    if (entry.dtype !== 'F32') {
      file.otherDtypes.set(key, entry.dtype);
      continue;
    }
    const count = entry.shape.reduce((a, b) => a * b, 1);
    if (end - begin !== count * 4) fail(`tensor ${quote(key)} of shape ${quote(entry.shape)} needs ${count * 4} bytes, has ${end - begin}`);
    float32.push({ key, shape: entry.shape, begin, end });
  }
  // Tensors sharing bytes would each be decoded: a small file could ask for any amount of memory.
  ranges.sort((a, b) => a.begin - b.begin || a.end - b.end);
  ranges.forEach((r, i) => {
    const before = ranges[i - 1];
    if (before && r.begin < before.end) fail(`tensors ${quote(before.key)} and ${quote(r.key)} overlap (bytes ${before.begin}..${before.end} and ${r.begin}..${r.end})`);
  });
  for (const { key, shape, begin, end } of float32) {
    const count = (end - begin) / 4;
    const data = new Float32Array(count);
    const src = new DataView(bytes.buffer, bytes.byteOffset + dataStart + begin, end - begin);
    for (let i = 0; i < count; i++) data[i] = src.getFloat32(i * 4, true);
    file.tensors.set(key, { shape, data });
  }
  return file;
}

export function serializeSafetensors(tensors: Map<string, { shape: readonly number[]; data: Float32Array }>, metadata: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [key, t] of tensors) {
    header[key] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.length * 4] };
    offset += t.data.length * 4;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  // Pad with spaces so that the data starts 8-byte aligned, as the reference writer does.
  const headerBytes = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
  headerBytes.set(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const t of tensors.values()) {
    for (let i = 0; i < t.data.length; i++, at += 4) view.setFloat32(at, t.data[i], true);
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isIntArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => Number.isSafeInteger(x) && x >= 0);
}
