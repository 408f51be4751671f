// The machine's SIMD peak as reachable from this module: twelve independent f32x4 mul-add
// chains, acc = acc·m + a, so that the latency of each mul then add is hidden behind the others
// (twelve is the most that stays in registers; more spill). WebAssembly SIMD has no fused
// multiply-add, so one mul-add is an f32x4.mul and an f32x4.add: 8 flops. Used by the benchmark
// (bench/) as the yardstick for the other kernels: `count` rounds are 12 · 8 · count flops.

/** Runs `count` rounds of 12 independent f32x4 mul-adds; returns the sum of every lane, so that
 *  nothing is dead code. With |m| < 1 the chains converge to a / (1 − m) (no overflow, no denormals). */
export function peak_madd(count: i32, m: f32, a: f32): f32 {
  const vm = f32x4.splat(m), va = f32x4.splat(a);
  let a0 = f32x4.splat(0), a1 = f32x4.splat(1), a2 = f32x4.splat(2), a3 = f32x4.splat(3);
  let a4 = f32x4.splat(4), a5 = f32x4.splat(5), a6 = f32x4.splat(6), a7 = f32x4.splat(7);
  let a8 = f32x4.splat(8), a9 = f32x4.splat(9), a10 = f32x4.splat(10), a11 = f32x4.splat(11);
  for (let i = 0; i < count; i++) {
    a0 = f32x4.add(f32x4.mul(a0, vm), va);
    a1 = f32x4.add(f32x4.mul(a1, vm), va);
    a2 = f32x4.add(f32x4.mul(a2, vm), va);
    a3 = f32x4.add(f32x4.mul(a3, vm), va);
    a4 = f32x4.add(f32x4.mul(a4, vm), va);
    a5 = f32x4.add(f32x4.mul(a5, vm), va);
    a6 = f32x4.add(f32x4.mul(a6, vm), va);
    a7 = f32x4.add(f32x4.mul(a7, vm), va);
    a8 = f32x4.add(f32x4.mul(a8, vm), va);
    a9 = f32x4.add(f32x4.mul(a9, vm), va);
    a10 = f32x4.add(f32x4.mul(a10, vm), va);
    a11 = f32x4.add(f32x4.mul(a11, vm), va);
  }
  const s = f32x4.add(
    f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7))),
    f32x4.add(f32x4.add(a8, a9), f32x4.add(a10, a11)),
  );
  return (f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1)) + (f32x4.extract_lane(s, 2) + f32x4.extract_lane(s, 3));
}
