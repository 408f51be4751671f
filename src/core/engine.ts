// The engine: one instance of the kernel module, its linear memory, and tensors living in it.
// Memory is a stack: `mark()` then `release(mark)` frees everything allocated in between, so a
// tape built for an attack can be dropped as a whole, while nothing is allocated per iteration.

import type { instantiate } from '../../build/mislead.js';
import { InputError } from '../errors.js';

type Ptr = number;

/** The narrow interface to the kernels in assembly/: pointers into memory, and shapes. The
 *  type is the one the AssemblyScript compiler declares for the module it built (with the
 *  kernels' own parameter names, in their order), so it cannot drift from the exports. */
export type Kernels = Awaited<ReturnType<typeof instantiate>>;

const PAGE = 65536;
/** Bytes left after every buffer, so that a SIMD load of a row's last block stays in bounds. */
const SLACK = 16;
/** A 32-bit module addresses 4 GiB; the kernels index one tensor with 32-bit signed counts. */
const MAX_MEMORY = 65536 * PAGE;
const MAX_TENSOR = 2 ** 31;

/** A tensor the engine cannot hold: too large for one buffer, or for the memory left. A bad
 *  input (a model or batch too large), so it is an InputError; ops that know which tensor it
 *  was say so (see Net.forward). */
export class EngineMemoryError extends InputError {
  override name = 'EngineMemoryError';
}

export class Engine {
  private top: Ptr;
  private view: Float32Array;

  private constructor(readonly kernels: Kernels) {
    this.top = kernels.heap_base();
    this.view = new Float32Array(kernels.memory.buffer);
  }

  /** Instantiates the kernel module from its bytes (Node: see `loadEngine` in node.ts). */
  static async create(wasm: BufferSource | WebAssembly.Module): Promise<Engine> {
    const module = wasm instanceof WebAssembly.Module ? wasm : await WebAssembly.compile(wasm);
    const instance = await WebAssembly.instantiate(module, { env: { abort: kernelAbort } });
    return new Engine(instance.exports as unknown as Kernels);
  }

  /** A zero-filled buffer of `count` floats; returns its byte address. Sizes are computed in
   *  doubles (never wrapped to 32 bits), and what cannot fit is refused before memory changes. */
  alloc(count: number): Ptr {
    const ptr = this.top;
    const bytes = Math.ceil((count * 4 + SLACK) / 16) * 16;
    const end = ptr + bytes;
    if (!(count >= 0) || bytes > MAX_TENSOR) throw new EngineMemoryError(`a tensor of ${count} floats (${gigabytes(bytes)}) is larger than the engine's limit of ${gigabytes(MAX_TENSOR)} per tensor`);
    if (end > MAX_MEMORY) throw new EngineMemoryError(`a tensor of ${count} floats (${gigabytes(bytes)}) does not fit in the engine's ${gigabytes(MAX_MEMORY)} of memory (${gigabytes(ptr)} in use)`);
    const memory = this.kernels.memory;
    if (end > memory.buffer.byteLength) {
      try {
        memory.grow(Math.ceil((end - memory.buffer.byteLength) / PAGE));
      } catch {
        throw new EngineMemoryError(`a tensor of ${count} floats (${gigabytes(bytes)}) does not fit: the engine's memory cannot grow past ${gigabytes(memory.buffer.byteLength)}`);
      }
    }
    this.top = end;
    this.kernels.fill(ptr, 0, (end - ptr) / 4);
    return ptr;
  }

  mark(): Ptr {
    return this.top;
  }

  release(mark: Ptr): void {
    this.top = mark;
  }

  /** Bytes of memory in use by tensors. */
  get used(): number {
    return this.top - this.kernels.heap_base();
  }

  /** A view of `count` floats at `ptr` (valid until memory grows: copy it if kept). */
  floats(ptr: Ptr, count: number): Float32Array {
    if (this.view.buffer !== this.kernels.memory.buffer) this.view = new Float32Array(this.kernels.memory.buffer);
    return this.view.subarray(ptr >>> 2, (ptr >>> 2) + count);
  }

  /** The float at `ptr`, without creating a view. */
  read(ptr: Ptr): number {
    if (this.view.buffer !== this.kernels.memory.buffer) this.view = new Float32Array(this.kernels.memory.buffer);
    return this.view[ptr >>> 2];
  }

  tensor(shape: readonly number[], values?: ArrayLike<number>): Tensor {
    const t = new Tensor(this, shape, this.alloc(sizeOf(shape)));
    if (values) t.write(values);
    return t;
  }
}

const gigabytes = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;

function kernelAbort(): never {
  throw new Error('kernel aborted');
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A float32 tensor in the engine's memory; `grad`, when present, is its gradient buffer. */
export class Tensor {
  readonly size: number;
  grad: Tensor | null = null;
  /** Counts the writes through `write()`: ops that keep a derived copy of a constant (a packed
   *  filter) make it again when this changes. */
  version = 0;

  constructor(readonly engine: Engine, readonly shape: readonly number[], readonly ptr: Ptr) {
    this.size = sizeOf(shape);
  }

  /** Gives this tensor a gradient buffer, so that backward passes compute its gradient. */
  requireGrad(): this {
    this.grad ??= new Tensor(this.engine, this.shape, this.engine.alloc(this.size));
    return this;
  }

  /** A copy of the values. */
  toArray(): Float32Array {
    return this.engine.floats(this.ptr, this.size).slice();
  }

  write(values: ArrayLike<number>): void {
    if (values.length !== this.size) throw new Error(`expected ${this.size} values, got ${values.length}`);
    this.engine.floats(this.ptr, this.size).set(values);
    this.version++;
  }

  /** The value of a one-element tensor. */
  item(): number {
    return this.engine.read(this.ptr);
  }

  /** The same memory seen with another shape of the same size (as flatten does). */
  reshape(shape: readonly number[]): Tensor {
    if (sizeOf(shape) !== this.size) throw new Error(`cannot reshape [${this.shape}] to [${shape}]`);
    const t = new Tensor(this.engine, shape, this.ptr);
    if (this.grad) t.grad = new Tensor(this.engine, shape, this.grad.ptr);
    return t;
  }
}
