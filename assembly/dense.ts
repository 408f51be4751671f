// Matrix products: a fully connected layer y = x·w + b with x [n, in], w [in, out] (TensorFlow's
// layout), y [n, out], and its gradients; the pointwise and the strided convolutions are the same
// products (see conv.ts).
//
// C [m, n] = A [m, depth] · B [depth, n] (+ bias, then ReLU), or C += A·B, is computed the usual
// way for caches: the depth in blocks of DEPTH_BLOCK, each cut into blocks of rows of A. A block
// of A is packed into panels of 4 rows laid out k-major ([k][4]), and B into panels of 8 columns
// ([k][8]), so that the innermost loop walks just two pointers. That loop keeps a tile of 4 rows ×
// 8 columns in eight accumulators: per step, two vectors of B and four broadcast values of A, 64
// flops. V8 loads all four values of A before their products, so with ten accumulators (5 rows,
// the peak kernel's shape) it runs out of registers and spills two of them: 1.7× slower, measured;
// nine (3 rows × 12 columns, three vectors of B) spill too: 1.6× slower.
// Missing rows of a panel are zeros and missing columns are never stored. The sum of each entry
// runs through the depth in order from the bias (or from 0, then added to C), one rounding per
// step, as the plain loops did.
import { storeLanes, madd, fusedRelu, f, imin, imax } from './common';

/** The depth of a block: a panel of B, DEPTH_BLOCK × 8 floats (8 KiB), stays in the level-1 cache
 *  while the tiles of a block of A pass over it. */
const DEPTH_BLOCK: i32 = 256;
/** Floats of a packed block of A (128 KiB, in the level-2 cache): as many rows as fit. */
const A_BLOCK: i32 = 32768;

/** y = x·w + b, then the fused ReLU `relu` (its ceiling, 0: none; see fusedRelu); `wp` is w packed by pack_panels(w, out, 1, in, out). */
export function dense_forward(x: usize, wp: usize, b: usize, y: usize, relu: f32, work: usize, n: i32, inputs: i32, outputs: i32): void {
  product(x, inputs, 1, wp, 0, 0, true, b, y, outputs, false, relu, work, n, inputs, outputs);
}

/** dx += dy·wᵀ, or dx = dy·wᵀ when not `accumulate`; `wtp` is wᵀ packed by pack_panels(w, 1, out, out, in). */
export function dense_backward_input(dy: usize, wtp: usize, dx: usize, accumulate: bool, work: usize, n: i32, inputs: i32, outputs: i32): void {
  product(dy, outputs, 1, wtp, 0, 0, true, 0, dx, inputs, accumulate, 0, work, n, outputs, inputs);
}

/** dw += xᵀ·dy. */
export function dense_backward_weights(x: usize, dy: usize, dw: usize, work: usize, n: i32, inputs: i32, outputs: i32): void {
  product(x, 1, inputs, dy, outputs, 1, false, 0, dw, outputs, true, false, work, inputs, n, outputs);
}

/** Floats of `work` a product with `n` columns needs. */
export function matmul_work(n: i32): i32 {
  return A_BLOCK + DEPTH_BLOCK * panelFloats(n);
}

/** Floats of B [depth, n] packed by pack_panels. */
export function panels_size(depth: i32, n: i32): i32 {
  return depth * panelFloats(n);
}

@inline function panelFloats(n: i32): i32 {
  return (n + 7) & ~7;
}

/** bp[q, k, j] = B[k, 8q + j] = b[k·rowStride + (8q + j)·colStride], 0 past the last column.
 *  Rows of B contiguous in memory (colStride 1) are read whole, row after row: panel by panel,
 *  their 32-byte pieces would be read a row apart, which the memory system streams far worse
 *  when B comes from beyond the core's caches. */
export function pack_panels(b: usize, rowStride: i32, colStride: i32, depth: i32, n: i32, bp: usize): void {
  const whole = colStride == 1 ? n & ~7 : 0, panelBytes = f(depth * 8);
  for (let k = 0; k < depth; k++) {
    let src = b + f(k * rowStride), dst = bp + f(k * 8);
    for (let j0 = 0; j0 < whole; j0 += 8, src += 32, dst += panelBytes) {
      v128.store(dst, v128.load(src));
      v128.store(dst, v128.load(src, 16), 16);
    }
  }
  for (let j0 = whole; j0 < n; j0 += 8) {
    const cols = imin(8, n - j0);
    let dst = bp + f(j0 * depth);
    let src = b + f(j0 * colStride);
    for (let k = 0; k < depth; k++, dst += 32, src += f(rowStride)) {
      for (let j = 0; j < 8; j++) store<f32>(dst + f(j), j < cols ? load<f32>(src + f(j * colStride)) : 0);
    }
  }
}

/** C [m, n] (row i at c + i·cRow floats) = A·B + bias (0: none), then the fused ReLU `relu` (its ceiling, 0: none); or, when
 *  `accumulate`, C += A·B. A[i, k] = a[i·aRow + k·aDepth]. B is either packed whole by
 *  pack_panels (`packed`, at `b`) or B[k, j] = b[k·bRow + j·bCol], packed here block by block.
 *  `work` holds matmul_work(n) floats. */
@inline export function product(
  a: usize, aRow: i32, aDepth: i32, b: usize, bRow: i32, bCol: i32, packed: bool,
  bias: usize, c: usize, cRow: i32, accumulate: bool, relu: f32, work: usize,
  m: i32, depth: i32, n: i32,
): void {
  const ap = work, bBlock = work + f(A_BLOCK);
  // Blocks of equal depth: a short last block would load and store C for few steps.
  const blocks = (depth + DEPTH_BLOCK - 1) / DEPTH_BLOCK, blockDepth = (depth + blocks - 1) / blocks;
  for (let k0 = 0; k0 < depth; k0 += blockDepth) {
    const kc = imin(blockDepth, depth - k0);
    const first = k0 == 0, last = k0 + kc == depth;
    let panels = b + f(k0 * 8), panelBytes = f(depth * 8);
    if (!packed) {
      pack_panels(b + f(k0 * bRow), bRow, bCol, kc, n, bBlock);
      panels = bBlock;
      panelBytes = f(kc * 8);
    }
    const aPanel = aPanelFloats(aRow, kc), blockRows = imax(4, A_BLOCK / aPanel * 4);
    // A used by a single panel of B is read in place: packing it would cost more than it saves
    // (3× slower for a dense layer of 2 outputs, on one row). Packed, the panels' constant
    // offsets make a faster loop (10 %).
    const direct = aDepth == 1 && n <= 8, rowBytes = f(aRow);
    for (let i0 = 0; i0 < m; i0 += blockRows) {
      const rows = imin(blockRows, m - i0);
      const block = a + f(i0 * aRow + k0 * aDepth);
      if (!direct && rows > 1) packRows(block, aRow, aDepth, rows, kc, ap);
      // One row (a batch of one) has no rows to share a tile with: four panels at a time.
      const width = rows == 1 ? 32 : 8;
      for (let j0 = 0; j0 < n; j0 += width) {
        const bp = panels + <usize>(j0 >> 3) * panelBytes;
        const cols = imin(8, n - j0);
        // The first depth block starts from the bias (or from 0, added to C at the end when
        // accumulating); the others from C.
        const from = first && !accumulate && bias != 0 ? bias + f(j0) : 0;
        if (rows == 1) {
          rowTile(block, f(aDepth), bp, panelBytes, kc, c + f(i0 * cRow + j0), n - j0, !first, from, first && accumulate, last ? relu : 0);
          continue;
        }
        for (let r = 0; r < rows; r += 4) {
          const count = imin(4, rows - r), out = c + f((i0 + r) * cRow + j0);
          if (direct) {
            tileInPlace(block + <usize>r * rowBytes, rowBytes, bp, kc, out, f(cRow), count, cols, !first, from, first && accumulate, last ? relu : 0);
          } else {
            tile(ap + f((r >> 2) * aPanel), 16, 4, 8, 12, bp, kc, out, f(cRow), count, cols, !first, from, first && accumulate, last ? relu : 0);
          }
        }
      }
    }
  }
}

/** Panels of 4 rows of A [rows, depth] (A[i, k] = a[i·aRow + k·aDepth]) as [k][4], aPanelFloats
 *  apart, 0 past the last row. Rows contiguous along the depth go through 4×4 transposes. Columns
 *  contiguous (aRow 1: A is the transpose of what is in memory, as in a filter gradient) are
 *  read a whole step k of A at a time, in address order (see pack_panels), each 4 values a
 *  vector into its panel: those panels are padded by a line, else the stores of a step, 4 KB
 *  apart at a depth of 256, would all fall into one set of the first-level cache. */
function packRows(a: usize, aRow: i32, aDepth: i32, rows: i32, depth: i32, ap: usize): void {
  const rowBytes = f(aRow), panelBytes = f(aPanelFloats(aRow, depth));
  const whole = aRow == 1 ? rows & ~3 : 0;
  if (whole > 0) {
    for (let k = 0; k < depth; k++) {
      let src = a + f(k * aDepth), dst = ap + f(k * 4);
      for (let r0 = 0; r0 < whole; r0 += 4, src += 16, dst += panelBytes) v128.store(dst, v128.load(src));
    }
  }
  for (let r0 = whole; r0 < rows; r0 += 4) {
    const src = a + <usize>r0 * rowBytes, dst = ap + <usize>(r0 >> 2) * panelBytes;
    const count = imin(4, rows - r0);
    let k = 0;
    if (count == 4 && aDepth == 1) {
      for (; k + 4 <= depth; k += 4) {
        const p = src + f(k), d = dst + f(k * 4);
        const v0 = v128.load(p), v1 = v128.load(p + rowBytes), v2 = v128.load(p + 2 * rowBytes), v3 = v128.load(p + 3 * rowBytes);
        const t0 = v128.shuffle<f32>(v0, v1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(v0, v1, 2, 6, 3, 7);
        const t2 = v128.shuffle<f32>(v2, v3, 0, 4, 1, 5), t3 = v128.shuffle<f32>(v2, v3, 2, 6, 3, 7);
        v128.store(d, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
        v128.store(d, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), 16);
        v128.store(d, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), 32);
        v128.store(d, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), 48);
      }
    }
    for (; k < depth; k++) {
      for (let r = 0; r < 4; r++) store<f32>(dst + f(k * 4 + r), r < count ? load<f32>(src + f(r * aRow + k * aDepth)) : 0);
    }
  }
}

/** Floats from one packed panel of A to the next (see packRows): a transposed A's (aRow 1) padded by a line. */
@inline function aPanelFloats(aRow: i32, depth: i32): i32 {
  return 4 * depth + (aRow == 1 ? 16 : 0);
}

/** One tile: rows × cols (≤ 4 × 8) of C at `c` (rows `ldc` bytes apart) from a panel of A (row
 *  r of step k at ap + k·aStep + o_r, o_0 = 0) and one of B, `depth` steps. It starts from C
 *  (`fromC`), or from the bias at `bias` (0: from 0); then adds C (`addC`), applies ReLU
 *  (`relu`) and stores. */
@inline function tile(
  ap: usize, aStep: usize, o1: usize, o2: usize, o3: usize, bp: usize, depth: i32, c: usize, ldc: usize, rows: i32, cols: i32,
  fromC: bool, bias: usize, addC: bool, relu: f32,
): void {
  const zero = f32x4.splat(0);
  const wide = cols > 4;
  let c00 = zero, c01 = zero, c10 = zero, c11 = zero, c20 = zero, c21 = zero, c30 = zero, c31 = zero;
  if (fromC) {
    c00 = v128.load(c);
    if (wide) c01 = v128.load(c, 16);
    if (rows > 1) { c10 = v128.load(c + ldc); if (wide) c11 = v128.load(c + ldc, 16); }
    if (rows > 2) { c20 = v128.load(c + 2 * ldc); if (wide) c21 = v128.load(c + 2 * ldc, 16); }
    if (rows > 3) { c30 = v128.load(c + 3 * ldc); if (wide) c31 = v128.load(c + 3 * ldc, 16); }
  } else if (bias != 0) {
    c00 = c10 = c20 = c30 = v128.load(bias);
    if (wide) c01 = c11 = c21 = c31 = v128.load(bias, 16);
  }
  for (const end = bp + f(depth * 8); bp < end; bp += 32, ap += aStep) {
    const b0 = v128.load(bp), b1 = v128.load(bp, 16);
    let x = v128.load32_splat(ap);
    c00 = madd(c00, x, b0); c01 = madd(c01, x, b1);
    x = v128.load32_splat(ap + o1);
    c10 = madd(c10, x, b0); c11 = madd(c11, x, b1);
    x = v128.load32_splat(ap + o2);
    c20 = madd(c20, x, b0); c21 = madd(c21, x, b1);
    x = v128.load32_splat(ap + o3);
    c30 = madd(c30, x, b0); c31 = madd(c31, x, b1);
  }
  storeRow(c, c00, c01, cols, addC, relu);
  if (rows > 1) storeRow(c + ldc, c10, c11, cols, addC, relu);
  if (rows > 2) storeRow(c + 2 * ldc, c20, c21, cols, addC, relu);
  if (rows > 3) storeRow(c + 3 * ldc, c30, c31, cols, addC, relu);
}

/** A tile whose rows of A are read in place, `rowBytes` apart; rows past the last repeat it. A
 *  function of its own, so that `product` holds a single copy of the tile's loop (with four
 *  copies, V8 compiled each of them 1.2–2× slower, measured). */
function tileInPlace(
  a: usize, rowBytes: usize, bp: usize, depth: i32, c: usize, ldc: usize, rows: i32, cols: i32,
  fromC: bool, bias: usize, addC: bool, relu: f32,
): void {
  const o1 = <usize>imin(1, rows - 1) * rowBytes, o2 = <usize>imin(2, rows - 1) * rowBytes, o3 = <usize>imin(3, rows - 1) * rowBytes;
  tile(a, 4, o1, o2, o3, bp, depth, c, ldc, rows, cols, fromC, bias, addC, relu);
}

/** A tile of one row × `cols` (≤ 32: four panels of B, `panelBytes` apart) of C at `c`, row
 *  of A read in place (step k at a + k·aStep): eight accumulators, like a 4 × 8 tile, without
 *  computing three rows for nothing (batch 1: 2× faster from 128 outputs; 2.5× for 2 outputs,
 *  which take a loop of one panel). Panels past the last repeat it; flags as in `tile`. */
function rowTile(
  a: usize, aStep: usize, bp: usize, panelBytes: usize, depth: i32, c: usize, cols: i32,
  fromC: bool, bias: usize, addC: bool, relu: f32,
): void {
  const panels = imin(4, (cols + 7) >> 3);
  const p1 = <usize>imin(1, panels - 1) * panelBytes, p2 = <usize>imin(2, panels - 1) * panelBytes, p3 = <usize>imin(3, panels - 1) * panelBytes;
  const zero = f32x4.splat(0);
  let c00 = zero, c01 = zero, c10 = zero, c11 = zero, c20 = zero, c21 = zero, c30 = zero, c31 = zero;
  const from = fromC ? c : bias;
  if (from != 0) {
    c00 = v128.load(from);
    if (cols > 4) c01 = v128.load(from, 16);
    if (cols > 8) c10 = v128.load(from, 32);
    if (cols > 12) c11 = v128.load(from, 48);
    if (cols > 16) c20 = v128.load(from, 64);
    if (cols > 20) c21 = v128.load(from, 80);
    if (cols > 24) c30 = v128.load(from, 96);
    if (cols > 28) c31 = v128.load(from, 112);
  }
  const end = bp + f(depth * 8);
  if (panels == 1) {
    for (; bp < end; bp += 32, a += aStep) {
      const x = v128.load32_splat(a);
      c00 = madd(c00, x, v128.load(bp)); c01 = madd(c01, x, v128.load(bp, 16));
    }
  }
  for (; bp < end; bp += 32, a += aStep) {
    const x = v128.load32_splat(a);
    c00 = madd(c00, x, v128.load(bp)); c01 = madd(c01, x, v128.load(bp, 16));
    c10 = madd(c10, x, v128.load(bp + p1)); c11 = madd(c11, x, v128.load(bp + p1, 16));
    c20 = madd(c20, x, v128.load(bp + p2)); c21 = madd(c21, x, v128.load(bp + p2, 16));
    c30 = madd(c30, x, v128.load(bp + p3)); c31 = madd(c31, x, v128.load(bp + p3, 16));
  }
  storeRow(c, c00, c01, imin(8, cols), addC, relu);
  if (cols > 8) storeRow(c + 32, c10, c11, imin(8, cols - 8), addC, relu);
  if (cols > 16) storeRow(c + 64, c20, c21, imin(8, cols - 16), addC, relu);
  if (cols > 24) storeRow(c + 96, c30, c31, imin(8, cols - 24), addC, relu);
}

/** Stores the first `cols` (1..8) values of v0, v1 at `p`, after adding what is there (`addC`)
 *  and the fused ReLU (`relu`, see fusedRelu). */
@inline function storeRow(p: usize, v0: v128, v1: v128, cols: i32, addC: bool, relu: f32): void {
  if (addC) v0 = f32x4.add(v128.load(p), v0);
  v0 = fusedRelu(v0, relu);
  storeLanes(p, v0, cols);
  if (cols > 4) {
    if (addC) v1 = f32x4.add(v128.load(p, 16), v1);
    v1 = fusedRelu(v1, relu);
    storeLanes(p + 16, v1, cols - 4);
  }
}
