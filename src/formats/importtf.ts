// `mislead import-tf`: the tutorial's TensorFlow 2 checkpoint as a model file. The tutorial's
// tf.Module stores its variables as net/<layer>/<w|b>, in TensorFlow's layouts, which are the
// model file's own, so tensors are copied as they are.
import { InputError } from '../errors.js';
import { assembleModel, checkArchitecture, parameterShapes, type Architecture, type Model } from './model.js';
import type { Checkpoint } from './tfcheckpoint.js';

/** The tutorial's network (its Layers.py), as in SPEC §2. */
export const TUTORIAL_ARCHITECTURE: Architecture = checkArchitecture({
  input: [48, 48, 1],
  labels: ['man', 'woman'],
  preprocess: { offset: 128, scale: 256 },
  layers: [
    { type: 'conv2d', name: 'cv1', filters: 3, kernel: 5, stride: 1, padding: 'same', activation: 'relu' },
    { type: 'maxpool', size: 2, stride: 2, padding: 'same' },
    { type: 'conv2d', name: 'cv2', filters: 6, kernel: 5, stride: 1, padding: 'same', activation: 'relu' },
    { type: 'maxpool', size: 2, stride: 2, padding: 'same' },
    { type: 'conv2d', name: 'cv3', filters: 12, kernel: 5, stride: 1, padding: 'same', activation: 'relu' },
    { type: 'maxpool', size: 2, stride: 2, padding: 'same' },
    { type: 'flatten' },
    { type: 'dense', name: 'fc', units: 2 },
  ],
});

export function modelFromTutorialCheckpoint(checkpoint: Checkpoint, prefix: string): Model {
  const variable = (key: string) => `net/${key.replace('.', '/')}/.ATTRIBUTES/VARIABLE_VALUE`;
  const missing = [...parameterShapes(TUTORIAL_ARCHITECTURE).keys()].map(variable).filter((v) => !checkpoint.tensors.has(v));
  if (missing.length > 0) {
    throw new InputError(`${prefix}: not the tutorial's network: the checkpoint has no variable ${missing.map((m) => m.split('/.')[0]).join(', ')}`);
  }
  return assembleModel(TUTORIAL_ARCHITECTURE, prefix, (key) => {
    const entry = checkpoint.tensors.get(variable(key))!;
    return { shape: entry.shape, data: checkpoint.readFloat32(entry.name) };
  });
}
