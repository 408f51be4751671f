// The architecture as a graph (SPEC §2, extended): what it accepts, the one line it gives for what
// it does not, and that files of the chain format read as before.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { channelCorrection, checkArchitecture, inputUnits, layerGraph, parameterShapes } from '../src/formats/model.js';
import { TUTORIAL_ARCHITECTURE } from '../src/formats/importtf.js';

const base = { input: [16, 16, 3], labels: ['a', 'b'] };
const refused = (layers: unknown[], pattern: RegExp, extra: Record<string, unknown> = {}) => {
  expect(() => checkArchitecture({ ...base, ...extra, layers })).toThrow(pattern);
};

describe('graph architectures', () => {
  it('a residual block reads named layers; shapes and weights follow the graph', () => {
    const arch = checkArchitecture({
      ...base,
      layers: [
        { type: 'conv2d', name: 'stem', filters: 8, kernel: 3, stride: 2, padding: 'same', activation: 'relu6' },
        { type: 'depthwise_conv2d', name: 'dw', kernel: 3, multiplier: 2, padding: 'same' },
        { type: 'conv2d', name: 'pw', filters: 8, kernel: 1, activation: 'leaky_relu', alpha: 0.1 },
        { type: 'add', name: 'sum', inputs: ['stem', 'pw'] },
        { type: 'concat', inputs: ['sum', 'stem'] },
        { type: 'affine', name: 'bn' },
        { type: 'pad', pad: [1, 0, 0, 1] },
        { type: 'avgpool', size: 3, stride: 2, padding: 'same' },
        { type: 'global_maxpool' },
        { type: 'dense', name: 'fc', units: 2, activation: 'softmax' },
      ],
    });
    const { nodes } = layerGraph(arch);
    expect(nodes.map((n) => n.shape)).toEqual([[8, 8, 8], [8, 8, 16], [8, 8, 8], [8, 8, 8], [8, 8, 16], [8, 8, 16], [9, 9, 16], [5, 5, 16], [16], [2]]);
    expect(nodes.map((n) => n.inputs)).toEqual([[-1], [0], [1], [0, 2], [3, 0], [4], [5], [6], [7], [8]]);
    expect(Object.fromEntries(parameterShapes(arch))).toEqual({
      'stem.w': [3, 3, 3, 8], 'stem.b': [8], 'dw.w': [3, 3, 8, 2], 'dw.b': [16], 'pw.w': [1, 1, 16, 8], 'pw.b': [8], 'bn.w': [16], 'bn.b': [16], 'fc.w': [16, 2], 'fc.b': [2],
    });
    expect(arch.layers[2]).toMatchObject({ activation: 'leaky_relu', alpha: 0.1, stride: 1, dilation: 1, padding: 'valid' });
  });

  it('one clear line for an unknown input, a cycle, a shape mismatch, an unsupported option, a dead branch', () => {
    const fc = { type: 'dense', name: 'fc', units: 2 };
    refused([{ type: 'conv2d', name: 'a', filters: 2, kernel: 3 }, { type: 'add', inputs: ['a', 'nope'] }, { type: 'flatten' }, fc], /layer 1 \(add\) reads "nope", which no layer is named/);
    refused([{ type: 'conv2d', name: 'a', filters: 2, kernel: 3, inputs: ['b'] }, { type: 'conv2d', name: 'b', filters: 2, kernel: 1 }, { type: 'flatten' }, fc], /layer 0 "a" \(conv2d\) reads "b", which comes after it: .* a graph cannot have a cycle/);
    refused([{ type: 'conv2d', name: 'a', filters: 2, kernel: 3, inputs: ['a'] }, { type: 'flatten' }, fc], /reads its own output/);
    refused([{ type: 'conv2d', name: 'a', filters: 2, kernel: 3 }, { type: 'add', inputs: ['a', 'input'] }, { type: 'flatten' }, fc], /layer 1 \(add\) adds inputs of different shapes: \[14,14,2\], \[16,16,3\]/);
    refused([{ type: 'conv2d', name: 'a', filters: 2, kernel: 3, activation: 'relu', alpha: 0.2 }, { type: 'flatten' }, fc], /layer 0 \(conv2d\): "alpha" is an option of leaky_relu and elu only/);
    refused([{ type: 'conv2d', name: 'a', filters: 2, kernel: 3, activation: 'gelu' }, { type: 'flatten' }, fc], /activation must be one of none, relu, relu6, leaky_relu, elu, sigmoid, tanh, softmax, not "gelu"/);
    refused([{ type: 'conv2d', name: 'a', filters: 2, kernel: 3, stride: 2, dilation: 2 }, { type: 'flatten' }, fc], /stride and dilation cannot both be above 1/);
    refused([{ type: 'conv2d', name: 'a', filters: 2, kernel: 3 }, { type: 'conv2d', name: 'b', filters: 2, kernel: 3, inputs: ['input'] }, { type: 'flatten' }, fc], /layer 0 "a" \(conv2d\) feeds nothing/);
    refused([{ type: 'conv2d', name: 'a', filters: 2, kernel: 3, activation: 'softmax' }, { type: 'flatten' }, fc], /softmax may only end the network/);
    refused([{ type: 'add', inputs: ['input'] }, { type: 'flatten' }, fc], /layer 0 \(add\) needs at least two inputs/);
    refused([{ type: 'conv2d', name: 'input', filters: 2, kernel: 3 }, { type: 'flatten' }, fc], /the name "input" is the model input's/);
    refused([{ type: 'global_avgpool' }, { type: 'dense', name: 'fc', units: 3 }], /the network ends in shape \[3\], expected \[2\]/);
    refused([{ type: 'global_avgpool' }, fc], /"preprocess" must be \{offset, scale\}, each a number or a list of 3/, { preprocess: { offset: [1, 2], scale: 1 } });
  });

  it('files of the chain format read unchanged', () => {
    const json = JSON.parse(JSON.stringify(TUTORIAL_ARCHITECTURE));
    for (const l of json.layers) delete l.dilation;
    expect(checkArchitecture(json)).toEqual(TUTORIAL_ARCHITECTURE);
    const shipped = readFileSync(resolve(import.meta.dirname, '../weights/default.safetensors'));
    const header = JSON.parse(new TextDecoder().decode(shipped.subarray(8, 8 + Number(shipped.readBigUInt64LE(0)))));
    expect(() => checkArchitecture(JSON.parse(header.__metadata__['mislead.architecture']))).not.toThrow();
  });

  it('per-channel preprocessing: input units are the channels\' means, the rest a correction per channel', () => {
    const arch = checkArchitecture({ ...base, preprocess: { offset: [120, 110, 100], scale: [60, 50, 40] }, layers: [{ type: 'global_avgpool' }, { type: 'dense', name: 'fc', units: 2 }] });
    expect(inputUnits(arch)).toEqual({ offset: 110, scale: 50 });
    const c = channelCorrection(arch)!;
    // x_c = x·scale_c + shift_c must equal (p − offset_c) / scale_c for every pixel p.
    for (const p of [0, 77, 255]) {
      const x = (p - 110) / 50;
      [[120, 60], [110, 50], [100, 40]].forEach(([o, s], ch) => expect(x * c.scale[ch] + c.shift[ch]).toBeCloseTo((p - o) / s, 12));
    }
    expect(channelCorrection(checkArchitecture({ ...base, preprocess: { offset: [5, 5, 5], scale: 2 }, layers: [{ type: 'global_avgpool' }, { type: 'dense', name: 'fc', units: 2 }] }))).toBeNull();
  });

  it('the README\'s example architecture is valid', () => {
    const readme = readFileSync(resolve(import.meta.dirname, '../README.md'), 'utf8');
    const example = readme.match(/```json\n(\{"input": \[32, 32, 3\][\s\S]*?)```/)![1];
    const arch = checkArchitecture(JSON.parse(example));
    expect(layerGraph(arch).nodes.at(-1)!.shape).toEqual([2]);
  });
});
