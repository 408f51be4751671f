// What the engine cannot hold is refused by name, before any memory changes: sizes are computed
// without 32-bit wrap-around, a tensor is at most 2 GiB and the module's memory at most 4 GiB.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { EngineMemoryError, type Engine } from '../src/core/engine.js';
import { InputError } from '../src/errors.js';
import { checkArchitecture, writeModel, type Model } from '../src/formats/model.js';
import { Net } from '../src/core/net.js';
import { loadEngine } from '../src/node/engine.js';
import { Tape } from '../src/core/tape.js';

const root = resolve(import.meta.dirname, '..');
let engine: Engine;
beforeAll(async () => {
  engine = await loadEngine();
});

// 127×127 pixels through 4096 1×1 filters: 66 million floats (252 MiB) an image, legal; a batch
// of nine needs one tensor of 2.2 GiB, which wrapped to a small size in 32-bit arithmetic.
const wide: Model = {
  architecture: checkArchitecture({
    input: [127, 127, 1], labels: ['a', 'b'],
    layers: [
      { type: 'conv2d', name: 'wide', filters: 4096, kernel: 1, activation: 'relu' },
      { type: 'maxpool', size: 127, stride: 127 },
      { type: 'flatten' },
      { type: 'dense', name: 'out', units: 2 },
    ],
  }),
  weights: new Map([
    ['wide.w', new Float32Array(4096).fill(0.01)], ['wide.b', new Float32Array(4096)],
    ['out.w', Float32Array.from({ length: 8192 }, (_, i) => (i % 2 ? 0.01 : -0.01))], ['out.b', new Float32Array(2)],
  ]),
};

describe('the engine memory', () => {
  it('refuses a tensor over 2 GiB, or past 4 GiB in all, and stays usable', () => {
    const mark = engine.mark(), before = engine.used, bytes = engine.kernels.memory.buffer.byteLength;
    expect(() => engine.alloc(2 ** 29 + 1)).toThrow(EngineMemoryError);
    expect(() => engine.alloc(2 ** 29 + 1)).toThrow(/larger than the engine's limit of 2\.00 GiB per tensor/);
    expect(() => engine.alloc(2 ** 31)).toThrow(InputError);
    expect(engine.used).toBe(before);
    expect(engine.kernels.memory.buffer.byteLength).toBe(bytes);
    const t = engine.tensor([3], [1, 2, 3]);
    expect(Array.from(t.toArray())).toEqual([1, 2, 3]);
    engine.release(mark);
  });

  it('a batch too large for the engine names the layer and its size', () => {
    const net = new Net(engine, wide);
    const tape = new Tape(engine);
    const x = engine.tensor([9, 127, 127, 1]);
    expect(() => net.forward(tape, x)).toThrow(/^the model's layer 0 "wide" \(conv2d\) on a batch of 9: a tensor of 594579456 floats \(2\.21 GiB\) is larger than the engine's limit/);
    tape.dispose();
  });

  it('from the command line: exit 2 and one line for nine images; one image runs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mislead-memory-'));
    const model = join(dir, 'wide.safetensors');
    writeFileSync(model, writeModel(wide));
    const faces = Array.from({ length: 9 }, (_, i) => {
      const path = join(dir, `face${i}.png`);
      copyFileSync(join(root, 'weights/samples/woman.png'), path);
      return path;
    });
    const run = (images: string[]) => spawnSync('node', [join(root, 'dist/cli/main.js'), 'predict', ...images, '--model', model], { encoding: 'utf8', timeout: 60_000 });
    const nine = run(faces);
    expect(nine.status).toBe(2);
    expect(nine.stderr.trim().split('\n')).toHaveLength(1);
    expect(nine.stderr).toMatch(/^mislead: the model's layer 0 "wide" \(conv2d\) on a batch of 9: a tensor of 594579456 floats/);
    const one = run(faces.slice(0, 1));
    expect(one.stderr).toBe('');
    expect(one.status).toBe(0);
  }, 60_000);
});
