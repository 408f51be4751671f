// Helpers shared by the kernel families. Every tensor buffer is followed by at least 16 bytes of
// padding (the TypeScript allocator guarantees it), so a v128 load may run past the last element
// of a row: the extra lanes are never stored.

/** Stores the first `lanes` (1..4) lanes of `v` at `p`, leaving the memory after them untouched. */
@inline export function storeLanes(p: usize, v: v128, lanes: i32): void {
  if (lanes >= 4) {
    v128.store(p, v);
    return;
  }
  store<f32>(p, f32x4.extract_lane(v, 0));
  if (lanes > 1) store<f32>(p, f32x4.extract_lane(v, 1), 4);
  if (lanes > 2) store<f32>(p, f32x4.extract_lane(v, 2), 8);
}

/** `*p += v` on the first `lanes` lanes. */
@inline export function addLanes(p: usize, v: v128, lanes: i32): void {
  storeLanes(p, f32x4.add(v128.load(p), v), lanes);
}

/** The sum of the four lanes of `v`, pairwise. */
@inline export function sumLanes(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/** A ReLU fused into a layer's store: `relu` is its ceiling (Infinity: plain ReLU, 6: ReLU6), or 0
 *  for none. pmax and pmin: one instruction each, unlike max and min. */
@inline export function fusedRelu(v: v128, relu: f32): v128 {
  return relu == 0 ? v : f32x4.pmin(f32x4.pmax(v, f32x4.splat(0)), f32x4.splat(relu));
}

/** `acc + a * b`, one mul-add step of every inner loop. */
@inline export function madd(acc: v128, a: v128, b: v128): v128 {
  return f32x4.add(acc, f32x4.mul(a, b));
}

/** Byte offset of float number `i`. */
@inline export function f(i: i32): usize {
  return <usize>i << 2;
}

@inline export function imin(a: i32, b: i32): i32 {
  return a < b ? a : b;
}

@inline export function imax(a: i32, b: i32): i32 {
  return a > b ? a : b;
}

