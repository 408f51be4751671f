// The checksums against their published check values and two independent implementations.
import { crc32c as awsCrc32c } from '@aws-crypto/crc32c';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32, crc32c } from '../src/formats/crc.js';
import { random } from '../src/core/random.js';

describe('CRC-32 and CRC-32C', () => {
  it('give the check values of "123456789", and agree with zlib and another CRC-32C on random data', () => {
    const check = new TextEncoder().encode('123456789');
    expect(crc32(check)).toBe(0xcbf43926);
    expect(crc32c(check)).toBe(0xe3069283);
    expect(crc32(new Uint8Array())).toBe(0);
    const rand = random(7);
    for (let n = 0; n < 200; n++) {
      const bytes = Uint8Array.from({ length: Math.floor(rand() * 3000) }, () => Math.floor(rand() * 256));
      expect(crc32(bytes)).toBe(zlibCrc32(bytes));
      expect(crc32c(bytes)).toBe(awsCrc32c(bytes));
    }
  });
});
