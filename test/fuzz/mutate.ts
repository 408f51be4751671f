// The mutation engine of the fuzz suite (test/fuzz.test.ts and `npm run fuzz`): format-blind byte
// mutations, shared helpers for the format-aware ones (test/fuzz/targets.ts), and the derivation of
// each input from (target, index) alone, so that any input can be rebuilt from its index.
import { random } from '../../src/core/random.js';

export type Rand = () => number;

/** An integer in [0, n). */
export const below = (r: Rand, n: number): number => Math.floor(r() * n);
export const pick = <T>(r: Rand, items: readonly T[]): T => items[below(r, items.length)];
export const chance = (r: Rand, p: number): boolean => r() < p;

/** A 32-bit hash of two words (murmur3's finaliser), to give every (target, index) its own stream. */
export function mix(a: number, b: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ b;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A 32-bit hash of a string (FNV-1a). */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The random stream of input `index` of target `name`. */
export function streamOf(name: string, index: number): Rand {
  return random(mix(hashString(name), index));
}

// ---- interesting values ----

export const BYTES = [0x00, 0x01, 0x02, 0x07, 0x08, 0x10, 0x20, 0x3f, 0x40, 0x7e, 0x7f, 0x80, 0x81, 0xc0, 0xfe, 0xff];

/** Integer values that break size arithmetic: 0, 1, sign and width boundaries, and sizes near `length`. */
export function interestingInt(r: Rand, length = 0): number {
  const base = pick(r, [
    0, 1, 2, 3, 4, 7, 8, 13, 16, 255, 256, 4096, 4097, 10_000, 10_001, 65_535, 65_536, 7071, 7072,
    2 ** 24, 2 ** 26, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, length, length - 1, length + 1, length * 2, length - 8,
  ]);
  return Math.max(0, base);
}

/** Values for 64-bit fields, as BigInt: 2^32, 2^53 ± 1, 2^63 and 2^64 − 1 on top of the 32-bit ones. */
export function interestingBig(r: Rand, length = 0): bigint {
  if (chance(r, 0.6)) return BigInt(interestingInt(r, length));
  return pick(r, [2n ** 32n, 2n ** 32n + 4n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 62n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n]);
}

/** Numbers as they may be written in a text header (JSON, Python literals): huge, negative, fractional, odd. */
export const NUMBER_TEXTS = [
  '0', '1', '-1', '2', '3', '7', '255', '256', '4096', '4097', '10000', '65536', '2147483647', '2147483648',
  '4294967295', '4294967296', '9007199254740991', '9007199254740993', '18446744073709551616', '1e9', '1e308',
  '1e309', '-0', '0.5', '1.0', '-2147483648', '00', '0x10', '9'.repeat(40), '1' + '0'.repeat(400), 'NaN', 'Infinity',
];

// ---- byte-level mutations ----

/** One mutation: returns the new bytes and a short description of what it did. */
export type Mutation = (bytes: Uint8Array, r: Rand, others: readonly Uint8Array[]) => [Uint8Array, string];

const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
};
export { concat };

/** Random bytes; mostly small ones or 0xff, which reach more code than uniform noise. */
export function randomBytes(r: Rand, n: number): Uint8Array {
  const out = new Uint8Array(n);
  const mode = below(r, 3);
  for (let i = 0; i < n; i++) out[i] = mode === 0 ? below(r, 256) : mode === 1 ? pick(r, BYTES) : 0;
  return out;
}

/** A position, biased to the start of the file, where headers are. */
function position(r: Rand, length: number): number {
  if (length === 0) return 0;
  return chance(r, 0.5) ? below(r, Math.min(length, 64)) : below(r, length);
}

function writeInt(bytes: Uint8Array, at: number, value: bigint, width: number, littleEndian: boolean): void {
  for (let i = 0; i < width && at + i < bytes.length; i++) {
    const byte = Number((value >> BigInt(8 * i)) & 0xffn);
    bytes[littleEndian ? at + i : at + width - 1 - i] = byte;
  }
}

export const byteMutations: Record<string, Mutation> = {
  flip(b, r) {
    const out = b.slice();
    const n = 1 + below(r, 4), at: number[] = [];
    for (let k = 0; k < n && out.length > 0; k++) {
      const p = position(r, out.length);
      out[p] ^= 1 << below(r, 8);
      at.push(p);
    }
    return [out, `flip@${at.join(',')}`];
  },
  byte(b, r) {
    const out = b.slice();
    const p = position(r, out.length), v = chance(r, 0.7) ? pick(r, BYTES) : below(r, 256);
    if (out.length > 0) out[p] = v;
    return [out, `byte@${p}=${v}`];
  },
  int(b, r) {
    const out = b.slice();
    const width = pick(r, [2, 4, 8]), le = chance(r, 0.5), p = position(r, out.length);
    const v = chance(r, 0.2) ? -BigInt(1 + below(r, 256)) : interestingBig(r, b.length);
    writeInt(out, p, BigInt.asUintN(64, v), width, le);
    return [out, `int${width * 8}${le ? 'le' : 'be'}@${p}=${v}`];
  },
  truncate(b, r) {
    const n = chance(r, 0.5) ? below(r, b.length + 1) : Math.max(0, b.length - 1 - below(r, 16));
    return [b.subarray(0, n).slice(), `truncate@${n}`];
  },
  extend(b, r) {
    const n = pick(r, [1, 2, 4, 16, 100, 4096]);
    const tail = chance(r, 0.5) ? randomBytes(r, n) : b.subarray(Math.max(0, b.length - n)).slice();
    return [concat(b, tail), `extend+${tail.length}`];
  },
  remove(b, r) {
    const p = below(r, b.length + 1), n = 1 + below(r, chance(r, 0.7) ? 8 : 256);
    return [concat(b.subarray(0, p), b.subarray(p + n)), `remove@${p}+${n}`];
  },
  insert(b, r) {
    const p = position(r, b.length), n = 1 + below(r, chance(r, 0.7) ? 8 : 512);
    return [concat(b.subarray(0, p), randomBytes(r, n), b.subarray(p)), `insert@${p}+${n}`];
  },
  duplicate(b, r) {
    const from = below(r, b.length + 1), n = 1 + below(r, 64), to = below(r, b.length + 1);
    return [concat(b.subarray(0, to), b.subarray(from, from + n), b.subarray(to)), `dup@${from}+${n}->${to}`];
  },
  copy(b, r) {
    const out = b.slice();
    const from = below(r, b.length + 1), to = below(r, b.length + 1), n = 1 + below(r, 32);
    out.set(b.subarray(from, from + Math.min(n, b.length - to)), to);
    return [out, `copy@${from}+${n}->${to}`];
  },
  splice(b, r, others) {
    const other = others.length > 0 ? pick(r, others) : b;
    const cut = below(r, b.length + 1), cutOther = below(r, other.length + 1);
    return [concat(b.subarray(0, cut), other.subarray(cutOther)), `splice@${cut}+other@${cutOther}`];
  },
  number(b, r, others) {
    // A run of ASCII digits (a length or shape in a text header) replaced by an interesting number.
    const text = new TextDecoder('latin1').decode(b.subarray(0, Math.min(b.length, 8192)));
    const runs = [...text.matchAll(/\d+/g)];
    if (runs.length === 0) return byteMutations.byte(b, r, others);
    const m = pick(r, runs), v = pick(r, NUMBER_TEXTS);
    const bytes = Uint8Array.from(v, (c) => c.charCodeAt(0));
    return [concat(b.subarray(0, m.index!), bytes, b.subarray(m.index! + m[0].length)), `number@${m.index}=${v.length > 24 ? v.slice(0, 8) + '…' : v}`];
  },
};

const BYTE_MUTATIONS = Object.entries(byteMutations);
/** Byte mutations for files with no text in them. */
const BINARY_MUTATIONS = BYTE_MUTATIONS.filter(([name]) => name !== 'number');

/** One byte-level mutation picked at random. */
export function mutateBytes(b: Uint8Array, r: Rand, others: readonly Uint8Array[], text = false): [Uint8Array, string] {
  const [name, m] = pick(r, text ? BYTE_MUTATIONS : BINARY_MUTATIONS);
  const [out, what] = m(b, r, others);
  return [out, what.startsWith(name) ? what : `${name}:${what}`];
}

/**
 * Applies 1 to 4 mutations (mostly 1 or 2) to `seed`: each is one of the format-aware `structural`
 * ones with probability `structuralShare`, otherwise a byte-level one.
 */
export function mutate(
  seed: Uint8Array,
  r: Rand,
  options: { structural?: readonly Mutation[]; structuralShare?: number; others?: readonly Uint8Array[]; text?: boolean } = {},
): { bytes: Uint8Array; ops: string[] } {
  const structural = options.structural ?? [];
  const share = structural.length > 0 ? (options.structuralShare ?? 0.5) : 0;
  const count = pick(r, [1, 1, 1, 2, 2, 3, 4]);
  let bytes = seed;
  const ops: string[] = [];
  for (let k = 0; k < count; k++) {
    const [out, what] = chance(r, share) ? pick(r, structural)(bytes, r, options.others ?? []) : mutateBytes(bytes, r, options.others ?? [], options.text);
    bytes = out;
    ops.push(what);
  }
  return { bytes, ops };
}
