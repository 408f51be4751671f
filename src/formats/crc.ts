// The two checksums the file formats use, from one table-driven routine: CRC-32 (PNG chunks) and
// CRC-32C (TensorFlow's checkpoint blocks and tensors) differ only in their reflected polynomial.
function table(polynomial: number): Uint32Array {
  return Uint32Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? polynomial ^ (c >>> 1) : c >>> 1;
    return c;
  });
}

function checksum(t: Uint32Array, bytes: Uint8Array): number {
  let c = ~0;
  for (let i = 0; i < bytes.length; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

const CRC32 = table(0xedb88320);
const CRC32C = table(0x82f63b78);

/** CRC-32 (ISO-HDLC, as zlib and PNG), unsigned. */
export const crc32 = (bytes: Uint8Array): number => checksum(CRC32, bytes);

/** CRC-32C (Castagnoli), unsigned. */
export const crc32c = (bytes: Uint8Array): number => checksum(CRC32C, bytes);
