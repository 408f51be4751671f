/**
 * JPEG decoding with libjpeg-turbo itself (the library OpenCV's imread links), compiled to
 * WebAssembly: the TurboJPEG build of the `@cwasm/jpeg-turbo` package (libjpeg-turbo 2.0, with
 * arithmetic decoding), driven here through its raw exports (tjDecompress2) rather than its Node-only
 * loader. Decoding is synchronous; so is loading the module in Node (see wasmModule).
 *
 * Output as imread(IMREAD_COLOR) asks libjpeg for it: RGB for 1- and 3-component images (libjpeg's
 * ISLOW IDCT and fancy upsampling, TurboJPEG's defaults, as OpenCV's), CMYK samples for 4-component
 * ones (CMYK or YCCK), which the caller converts as OpenCV does.
 *
 * Errors. The module's longjmp throws (there is no setjmp in it), so a fatal libjpeg error leaves
 * tjDecompress2 as an exception, and the instance, its C stack and heap, are thrown away and a new
 * one made from the compiled module. libjpeg formats every message, error or warning, into
 * TurboJPEG's static errStr buffer (my_output_message) before it longjmps; that buffer, 200 bytes
 * (JMSG_LENGTH_MAX), starts as "No error" and zeros in the module's data, which is how it is found
 * (the string literal "No error" is followed by other strings), and its text is the error's message.
 * Nothing is ever written to stdout or stderr: the module's WASI output calls are stubs that throw.
 * libjpeg's warnings ("Premature end of JPEG file", "Corrupt JPEG data: …") are errors here
 * (TJFLAG_STOPONWARNING): OpenCV prints them and uses the image, grey-filled or damaged where the
 * data was; such a file is refused here, with that message.
 */

const TJPF_RGB = 0;
const TJPF_CMYK = 11;
/** Warnings end decoding as errors do (libjpeg's warnings are corrupt or missing data). */
const TJFLAG_STOPONWARNING = 8192;

interface Exports {
  memory: WebAssembly.Memory;
  malloc(size: number): number;
  free(ptr: number): void;
  tjInitDecompress(): number;
  tjDestroy(handle: number): number;
  tjDecompress2(handle: number, src: number, size: number, dst: number, width: number, pitch: number, height: number, format: number, flags: number): number;
}

/** A decoding failure, with libjpeg's (or TurboJPEG's) own message. */
export class JpegError extends Error {}

const stub = (name: string) => () => {
  throw new JpegError(`libjpeg called ${name}`);
};
const imports = {
  env: {
    setjmp: () => 0,
    longjmp: () => {
      throw new LongJump();
    },
  },
  wasi_snapshot_preview1: {
    environ_sizes_get: () => 0,
    environ_get: stub('environ_get'),
    proc_exit: stub('proc_exit'),
    fd_close: stub('fd_close'),
    fd_seek: stub('fd_seek'),
    fd_write: stub('fd_write'),
  },
};
class LongJump extends Error {}

type NodeProcess = { versions?: { node?: string }; getBuiltinModule?: (id: string) => unknown };

/**
 * The compiled module, copied from the installed package into build/ beside the kernels by the
 * build (so that it ships with them, wherever a package manager puts the dependency). In Node it
 * is read and compiled synchronously when
 * this module loads (Node's built-ins through process.getBuiltinModule, so that nothing here is an
 * import a bundler would follow). In a browser bundle the file is an asset: fetched and compiled in
 * the background from the moment this module loads (no top-level await: a module worker would miss
 * the messages sent to it meanwhile); a worker that needs it before then loads it synchronously,
 * which workers may do, and a page's main thread is told to try again.
 */
let wasmModule: WebAssembly.Module | undefined;
const wasmUrl = new URL('../../build/jpeg-turbo.wasm', import.meta.url);
const proc = (globalThis as { process?: NodeProcess }).process;
if (proc?.versions?.node) {
  if (!proc.getBuiltinModule) throw new Error(`mislead needs Node 20.16 or later (this is ${proc.versions.node})`);
  const { readFileSync } = proc.getBuiltinModule('fs') as { readFileSync(path: URL): Uint8Array<ArrayBuffer> };
  wasmModule = new WebAssembly.Module(readFileSync(wasmUrl));
} else {
  void fetch(wasmUrl)
    .then((r) => (r.ok ? WebAssembly.compileStreaming(r) : Promise.reject(new Error(`HTTP ${r.status}`))))
    .then((m) => (wasmModule ??= m))
    .catch(() => undefined); // reported when a JPEG is decoded
}

function compiled(): WebAssembly.Module {
  if (wasmModule) return wasmModule;
  if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== 'undefined') {
    const xhr = new XMLHttpRequest();
    xhr.open('GET', wasmUrl.href, false);
    xhr.responseType = 'arraybuffer';
    xhr.send();
    if (xhr.status === 200) return (wasmModule = new WebAssembly.Module(xhr.response as ArrayBuffer));
    throw new JpegError(`could not load the JPEG decoder (${wasmUrl}: HTTP ${xhr.status})`);
  }
  throw new JpegError('the JPEG decoder is still loading (or could not be loaded); try again');
}

/** Instances whose memory grew past this are dropped after use (wasm memory never shrinks). */
const KEEP_BYTES = 64 << 20;

interface Decoder {
  x: Exports;
  /** Address of TurboJPEG's errStr. */
  errStr: number;
}

let current: Decoder | undefined;

function decoder(): Decoder {
  if (current) return current;
  const x = new WebAssembly.Instance(compiled(), imports).exports as unknown as Exports;
  const heap = new Uint8Array(x.memory.buffer);
  const errStr = findErrStr(heap);
  if (errStr < 0) throw new Error('JPEG decoder: errStr not found in the module');
  return (current = { x, errStr });
}

const NO_ERROR = Uint8Array.from('No error\0', (c) => c.charCodeAt(0));

function findErrStr(heap: Uint8Array): number {
  for (let i = heap.indexOf(NO_ERROR[0]); i >= 0; i = heap.indexOf(NO_ERROR[0], i + 1)) {
    let k = 1;
    while (k < NO_ERROR.length && heap[i + k] === NO_ERROR[k]) k++;
    while (k < 200 && heap[i + k] === 0) k++;
    if (k === 200) return i;
  }
  return -1;
}

function cString(heap: Uint8Array, at: number): string {
  const end = heap.indexOf(0, at);
  return String.fromCharCode(...heap.subarray(at, end < 0 ? at + 200 : Math.min(end, at + 200)));
}

/**
 * Decodes `bytes` (whose frame is `width`×`height` with `components` components) and hands the
 * decoded samples to `use`, as a view into the decoder's memory that is only valid during the call:
 * `channels` = 3 (RGB) for 1 or 3 components, 4 (CMYK as libjpeg gives it) for 4 components.
 * Returns what `use` returns. Throws a JpegError with libjpeg's message when libjpeg gives up.
 */
export function decodeJpeg<T>(
  bytes: Uint8Array,
  width: number,
  height: number,
  components: number,
  use: (samples: Uint8Array, channels: 3 | 4) => T,
): T {
  const channels = components === 4 ? 4 : 3;
  const d = decoder();
  const { x } = d;
  let src = 0, dst = 0, handle = 0;
  try {
    // A decompressor of its own for each file, as imread makes one: libjpeg keeps the tables of
    // an earlier file in its decompressor (for abbreviated streams), and a file that lacks one
    // would be decoded with another file's.
    handle = x.tjInitDecompress();
    if (!handle) throw new JpegError('could not allocate the decompressor');
    src = x.malloc(bytes.length);
    dst = src && x.malloc(width * height * channels);
    if (!src || !dst) throw new JpegError(`out of memory for a ${width}x${height} image`);
    let heap = new Uint8Array(x.memory.buffer);
    heap.set(bytes, src);
    heap[d.errStr] = 0;
    const format = channels === 4 ? TJPF_CMYK : TJPF_RGB;
    const status = x.tjDecompress2(handle, src, bytes.length, dst, width, width * channels, height, format, TJFLAG_STOPONWARNING);
    heap = new Uint8Array(x.memory.buffer);
    if (status !== 0) throw new JpegError(cString(heap, d.errStr) || 'libjpeg error');
    return use(heap.subarray(dst, dst + width * height * channels), channels);
  } catch (e) {
    if (e instanceof LongJump) {
      const text = cString(new Uint8Array(x.memory.buffer), d.errStr);
      current = undefined; // its stack pointer and heap are left as they were at the error
      throw new JpegError(text || 'libjpeg error');
    }
    if (e instanceof WebAssembly.RuntimeError || e instanceof RangeError) {
      current = undefined;
      throw new JpegError(e.message);
    }
    throw e;
  } finally {
    if (current === d) {
      if (dst) x.free(dst);
      if (src) x.free(src);
      if (handle) x.tjDestroy(handle);
      if (x.memory.buffer.byteLength > KEEP_BYTES) current = undefined;
    }
  }
}
