// The machine's SIMD peak as reachable from this module, the yardstick of the benchmark (bench/).
// Its loop has the shape of the conv kernels' register tiles: two input vectors times five
// broadcast weights into ten independent accumulators, acc += x·w. The multiply is off the
// dependency chain, so only the add's latency has to be hidden, and ten accumulators leave room
// for the operands in the sixteen SIMD registers (twelve spill). A chain kernel (acc = acc·m + a)
// would measure the mul-then-add latency instead: 15 % lower on a current x86 core.
// WebAssembly SIMD has no fused multiply-add: one mul-add is an f32x4.mul and an f32x4.add, so a
// round is 10 · 8 = 80 flops.
import { sumLanes } from './common';

/** Runs `count` rounds on the operands at `p`: two vectors, then five weights (13 floats; the
 *  caller's buffer rather than a constant address, which V8 compiles into a slower loop). Returns
 *  the sum of every lane, so that nothing is dead code. */
export function peak_madd(count: i32, p: usize): f32 {
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0;
  for (let i = 0; i < count; i++) {
    const x0 = v128.load(p), x1 = v128.load(p, 16);
    let w = v128.load32_splat(p, 32);
    a0 = f32x4.add(a0, f32x4.mul(x0, w));
    a1 = f32x4.add(a1, f32x4.mul(x1, w));
    w = v128.load32_splat(p, 36);
    a2 = f32x4.add(a2, f32x4.mul(x0, w));
    a3 = f32x4.add(a3, f32x4.mul(x1, w));
    w = v128.load32_splat(p, 40);
    a4 = f32x4.add(a4, f32x4.mul(x0, w));
    a5 = f32x4.add(a5, f32x4.mul(x1, w));
    w = v128.load32_splat(p, 44);
    a6 = f32x4.add(a6, f32x4.mul(x0, w));
    a7 = f32x4.add(a7, f32x4.mul(x1, w));
    w = v128.load32_splat(p, 48);
    a8 = f32x4.add(a8, f32x4.mul(x0, w));
    a9 = f32x4.add(a9, f32x4.mul(x1, w));
  }
  const s = f32x4.add(
    f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7))),
    f32x4.add(a8, a9),
  );
  return sumLanes(s);
}

/** Reads `reads` floats from `src` and writes `writes` floats to `dst` (both multiples of 16), in
 *  one pass of 64-byte lines, the reads and writes interleaved in proportion: the least time a
 *  kernel that reads and writes as much can take, the yardstick of kernels bound by memory.
 *  Returns the sum of what it read, so that nothing is dead code. */
export function peak_stream(src: usize, reads: i32, dst: usize, writes: i32): f32 {
  const readLines = reads >> 4, writeLines = writes >> 4, lines = readLines > writeLines ? readLines : writeLines;
  const value = f32x4.splat(1);
  let sum = f32x4.splat(0), r = 0, w = 0; // Bresenham's counters: a line read (written) each time r (w) passes `lines`
  for (let i = 0; i < lines; i++) {
    r += readLines;
    if (r >= lines) {
      r -= lines;
      sum = f32x4.add(sum, f32x4.add(f32x4.add(v128.load(src), v128.load(src, 16)), f32x4.add(v128.load(src, 32), v128.load(src, 48))));
      src += 64;
    }
    w += writeLines;
    if (w >= lines) {
      w -= lines;
      v128.store(dst, value);
      v128.store(dst, value, 16);
      v128.store(dst, value, 32);
      v128.store(dst, value, 48);
      dst += 64;
    }
  }
  return sumLanes(sum);
}
