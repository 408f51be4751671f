import { describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { readNpy, writeNpy } from '../src/formats/npy.js';

const ascii = (bytes: Uint8Array) => String.fromCharCode(...bytes);

/** A .npy file as NumPy would lay it out, for any descr / fortran_order / data bytes. */
function npy(dict: string, data: Uint8Array, version = 1): Uint8Array {
  const prefix = version === 1 ? 10 : 12;
  const headerLength = Math.ceil((prefix + dict.length + 1) / 64) * 64 - prefix;
  const out = new Uint8Array(prefix + headerLength + data.length);
  out.set([0x93, ...Array.from('NUMPY', (c) => c.charCodeAt(0)), version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, headerLength, true);
  else view.setUint32(8, headerLength, true);
  out.set(Array.from(dict.padEnd(headerLength - 1) + '\n', (c) => c.charCodeAt(0)), prefix);
  out.set(data, prefix + headerLength);
  return out;
}

function float64Bytes(values: number[]): Uint8Array {
  return new Uint8Array(Float64Array.from(values).buffer); // little-endian on every platform we run on
}

describe('writeNpy', () => {
  it("writes the header NumPy writes for shape (48, 48, 1), byte for byte", () => {
    const bytes = writeNpy(new Float32Array(48 * 48), [48, 48, 1]);
    // np.save(f, np.zeros((48, 48, 1), np.float32)) with NumPy 2.4: 128-byte header, version 1.0
    const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (48, 48, 1), }";
    const expected = '\x93NUMPY\x01\x00\x76\x00' + dict + ' '.repeat(128 - 10 - dict.length - 1) + '\n';
    expect(ascii(bytes.subarray(0, 128))).toBe(expected);
    expect(bytes.length).toBe(128 + 4 * 48 * 48);
  });

  it('pads like current NumPy: 21 − len(str(shape[0])) spaces of growth room before the alignment', () => {
    // np.save of np.zeros((0,) + (1,) * 14, np.float32) is 192 bytes (it would be 128 without that room)
    const bytes = writeNpy(new Float32Array(0), [0, ...Array<number>(14).fill(1)]);
    expect(bytes.length).toBe(192);
    const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), }";
    expect(ascii(bytes.subarray(8, 10))).toBe('\xb6\x00'); // header length 182
    expect(ascii(bytes.subarray(10, 191))).toBe(dict + ' '.repeat(181 - dict.length));
    expect(bytes[191]).toBe(0x0a);
    // 1-D and 0-D shapes use Python's tuple syntax
    expect(ascii(writeNpy(new Float32Array(5), [5]))).toContain("'shape': (5,), }");
    expect(ascii(writeNpy(new Float32Array(1), []))).toContain("'shape': (), }");
  });

  it('stores little-endian float32 in C order and round-trips through readNpy', () => {
    const data = Float32Array.from([1.5, -2.25, 0, Math.PI, -0, 3.4e38]);
    const bytes = writeNpy(data, [2, 3]);
    expect(Array.from(bytes.subarray(128, 132))).toEqual([0, 0, 0xc0, 0x3f]); // 1.5f
    const back = readNpy(bytes, 'x.npy');
    expect(back.shape).toEqual([2, 3]);
    expect(back.data).toEqual(data);
    expect(readNpy(writeNpy(new Float32Array([7]), []), 's.npy')).toEqual({ data: new Float32Array([7]), shape: [] });
  });

  it('refuses a shape that does not hold the data', () => {
    expect(() => writeNpy(new Float32Array(5), [2, 3])).toThrow(InputError);
    expect(() => writeNpy(new Float32Array(0), [-1])).toThrow(/invalid shape/);
  });
});

describe('readNpy', () => {
  it("reads '<f8' (rounded to float32) and versions 2.0 headers", () => {
    const values = [1.5, -2.25, 1e-3, 0.1];
    const f8 = npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", float64Bytes(values));
    const { data, shape } = readNpy(f8, 'f8.npy');
    expect(shape).toEqual([2, 2]);
    expect(data).toEqual(Float32Array.from(values));
    const v2 = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(new Float32Array([9]).buffer), 2);
    expect(readNpy(v2, 'v2.npy')).toEqual({ data: new Float32Array([9]), shape: [1] });
  });

  const f4 = (shape: string, n: number) => npy(`{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`, new Uint8Array(4 * n));
  const cases: [string, Uint8Array, RegExp][] = [
    ['bad magic', new TextEncoder().encode('just some text, not numpy'), /^bad\.npy: not a NumPy \.npy file \(bad magic\)$/],
    ['empty file', new Uint8Array(), /not a NumPy \.npy file/],
    ['big-endian float32', npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", new Uint8Array(8)), /big-endian data \(>f4\) is not supported/],
    ['big-endian float64', npy("{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", new Uint8Array(16)), /big-endian data \(>f8\)/],
    ['Fortran order', npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", new Uint8Array(24)), /Fortran-order arrays are not supported/],
    ['int32', npy("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", new Uint8Array(8)), /unsupported dtype "<i4"/],
    ['uint8', npy("{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", new Uint8Array(2)), /unsupported dtype "\|u1"/],
    ['float16', npy("{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", new Uint8Array(4)), /unsupported dtype "<f2"/],
    ['structured dtype', npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", new Uint8Array(8)), /unsupported \.npy header/],
    ['truncated data', f4('(4, 4)', 4 * 4).subarray(0, 128 + 60), /truncated data: shape \(4, 4\) needs 64 bytes, the file has 60/],
    ['more data than the shape', npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", new Uint8Array(16)), /size does not match shape \(3,\): 16 bytes of data for 12/],
    ['truncated header', f4('(2,)', 2).subarray(0, 50), /truncated \.npy header/],
    ['bad shape', npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1), }", new Uint8Array(8)), /invalid shape/],
    ['unknown version', (() => { const b = f4('(1,)', 1); b[6] = 9; return b; })(), /unsupported \.npy format version 9\.0/],
  ];
  it.each(cases)('refuses %s with a one-line InputError', (_what, bytes, pattern) => {
    let error: unknown;
    try {
      readNpy(bytes, 'bad.npy');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toMatch(pattern);
    expect((error as Error).message.startsWith('bad.npy: ')).toBe(true);
    expect((error as Error).message).not.toContain('\n');
  });
});
