// A small TensorFlow.js Layers model as model.save() writes it (Keras 2 topology, one weight file),
// written by hand so that the command-line tests need not load TensorFlow.js: a 3×3 convolution
// with ReLU on 8×8 RGB, a global average pool and a dense softmax over two classes.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TfjsFiles {
  json: { modelTopology: { class_name: string; config: { name: string; layers: Record<string, unknown>[] } }; weightsManifest: { paths: unknown[]; weights: Record<string, unknown>[] }[] };
  weights: Uint8Array;
}

export function tfjsFiles(): TfjsFiles {
  const specs = [
    { name: 'conv/kernel', shape: [3, 3, 3, 2], dtype: 'float32' },
    { name: 'conv/bias', shape: [2], dtype: 'float32' },
    { name: 'out/kernel', shape: [2, 2], dtype: 'float32' },
    { name: 'out/bias', shape: [2], dtype: 'float32' },
  ];
  const count = specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  const values = Float32Array.from({ length: count }, (_, i) => Math.sin(i) / 4);
  return {
    json: {
      modelTopology: {
        class_name: 'Sequential',
        config: {
          name: 'small',
          layers: [
            { class_name: 'Conv2D', config: { name: 'conv', batch_input_shape: [null, 8, 8, 3], filters: 2, kernel_size: [3, 3], strides: [1, 1], padding: 'valid', activation: 'relu', use_bias: true } },
            { class_name: 'GlobalAveragePooling2D', config: { name: 'gap' } },
            { class_name: 'Dense', config: { name: 'out', units: 2, activation: 'softmax' } },
          ],
        },
      },
      weightsManifest: [{ paths: ['weights.bin'], weights: specs }],
    },
    weights: new Uint8Array(values.buffer),
  };
}

/** Writes model.json and weights.bin into `dir` (made if needed), after `edit`; returns model.json's path. */
export function writeTfjsModel(dir: string, edit?: (files: TfjsFiles) => void): string {
  const files = tfjsFiles();
  edit?.(files);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.json'), JSON.stringify(files.json));
  writeFileSync(join(dir, 'weights.bin'), files.weights);
  return join(dir, 'model.json');
}
