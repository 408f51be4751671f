// face-api.js itself, as the tests and bench/faceapi-gender.ts run it: its Node build without
// tfjs-node (face-api.node-wasm.js, on TensorFlow.js 4.22 as its bundle is), on TF.js's CPU
// backend, with its age and gender network loaded from the model folder the package ships.
import type * as tfjs from '@tensorflow/tfjs';
import * as faceapi from '@vladmandic/face-api/dist/face-api.node-wasm.js';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export const MODEL_DIR = join(dirname(createRequire(import.meta.url).resolve('@vladmandic/face-api/package.json')), 'model');

/** The TensorFlow.js face-api runs on (@tensorflow/tfjs, which it requires), typed as that
 *  package: face-api declares tf's types anew, as other types. */
export const tf = faceapi.tf as unknown as typeof tfjs;
export const ageGenderNet = faceapi.nets.ageGenderNet as unknown as {
  loadFromDisk(dir: string): Promise<void>;
  runNet(input: unknown): { gender: tfjs.Tensor2D };
  predictAgeAndGender(faces: tfjs.Tensor3D[]): Promise<faceapi.AgeAndGenderPrediction[]>;
};
export const NetInput = faceapi.NetInput as unknown as new (faces: tfjs.Tensor3D[]) => unknown;

let loaded: Promise<void> | undefined;
/** Selects the CPU backend and loads the network, once. */
export function loadFaceApi(): Promise<void> {
  loaded ??= tf.setBackend('cpu').then(() => ageGenderNet.loadFromDisk(MODEL_DIR));
  return loaded;
}

/** face-api's P(man) of its prediction. */
export const manProbability = (p: faceapi.AgeAndGenderPrediction) => (p.gender === 'male' ? p.genderProbability : 1 - p.genderProbability);
