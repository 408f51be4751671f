/**
 * NumPy `.npy` files (format 1.0 written; 1.0, 2.0 and 3.0 read) for float arrays in C order.
 * Works on Uint8Arrays so that it also runs in the browser.
 */
import { InputError, quote } from '../errors.js';

const MAGIC = '\x93NUMPY';

/** Python's repr of a shape tuple: (), (5,), (48, 48, 1). */
function shapeRepr(shape: number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

/** shapeRepr of a shape read from a file, cut for a message. */
function shownShape(shape: number[]): string {
  const repr = shapeRepr(shape);
  return repr.length <= 100 ? repr : `${repr.slice(0, 100)}… (${shape.length} dimensions)`;
}

/**
 * What `np.save` writes for a little-endian float32 array: magic, version 1.0, a little-endian u16
 * header length, then the header dict padded with spaces and ended by '\n' so that the data starts at
 * a multiple of 64 bytes. As current NumPy does (checked with 1.24 and 2.4), the dict is first followed
 * by 21 − len(str(shape[0])) spaces (room to grow the first axis in place), which can move the end of
 * the header to the next multiple of 64.
 */
export function writeNpy(data: Float32Array, shape: number[]): Uint8Array {
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new InputError(`writeNpy: invalid shape ${shapeRepr(shape)}`);
  const size = shape.reduce((a, b) => a * b, 1);
  if (size !== data.length) throw new InputError(`writeNpy: shape ${shapeRepr(shape)} holds ${size} values, got ${data.length}`);
  let dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeRepr(shape)}, }`;
  if (shape.length > 0) dict += ' '.repeat(Math.max(0, 21 - String(shape[0]).length));
  const headerLength = Math.ceil((10 + dict.length + 1) / 64) * 64 - 10;
  const header = dict.padEnd(headerLength - 1) + '\n';

  const out = new Uint8Array(10 + headerLength + 4 * size);
  const view = new DataView(out.buffer);
  for (let i = 0; i < 6; i++) out[i] = MAGIC.charCodeAt(i);
  out[6] = 1; // version 1.0
  view.setUint16(8, headerLength, true);
  for (let i = 0; i < headerLength; i++) out[10 + i] = header.charCodeAt(i);
  for (let i = 0; i < size; i++) view.setFloat32(10 + headerLength + 4 * i, data[i], true);
  return out;
}

/** Reads a C-order '<f4' or '<f8' array (float64 values are rounded to float32). */
export function readNpy(bytes: Uint8Array, name: string): { data: Float32Array; shape: number[] } {
  const fail = (what: string) => new InputError(`${name}: ${what}`);
  if (bytes.length < 10 || String.fromCharCode(...bytes.subarray(0, 6)) !== MAGIC) {
    throw fail('not a NumPy .npy file (bad magic)');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  if (major < 1 || major > 3) throw fail(`unsupported .npy format version ${major}.${bytes[7]}`);
  // Version 1.0 has a 2-byte header length, 2.0 and 3.0 a 4-byte one.
  const start = major === 1 ? 10 : 12;
  if (bytes.length < start) throw fail('truncated .npy header');
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (start + headerLength > bytes.length) throw fail('truncated .npy header');
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLength));

  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw fail(`unsupported .npy header ${quote(header.trim())}`);
  }
  if (descr === '>f4' || descr === '>f8') throw fail(`big-endian data (${descr}) is not supported, save it as '<${descr.slice(1)}'`);
  if (descr !== '<f4' && descr !== '<f8') throw fail(`unsupported dtype ${quote(descr)} (expected '<f4' or '<f8')`);
  if (fortran === 'True') throw fail('Fortran-order arrays are not supported (save a C-order array)');
  const dims = shapeText.split(',').map((d) => d.trim()).filter((d) => d !== '');
  // NumPy allows 64 dimensions at most; a dimension must be an exact number.
  if (dims.length > 64 || !dims.every((d) => /^\d+$/.test(d) && Number.isSafeInteger(Number(d)))) throw fail(`invalid shape ${quote(`(${shapeText})`)}`);
  const shape = dims.map(Number);

  const itemSize = descr === '<f4' ? 4 : 8;
  const size = shape.reduce((a, b) => a * b, 1);
  const dataStart = start + headerLength;
  const available = bytes.length - dataStart;
  if (available < size * itemSize) {
    throw fail(`truncated data: shape ${shownShape(shape)} needs ${size * itemSize} bytes, the file has ${available}`);
  }
  if (available > size * itemSize) {
    throw fail(`size does not match shape ${shownShape(shape)}: ${available} bytes of data for ${size * itemSize}`);
  }
  const data = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    data[i] = itemSize === 4 ? view.getFloat32(dataStart + 4 * i, true) : view.getFloat64(dataStart + 8 * i, true);
  }
  return { data, shape };
}
