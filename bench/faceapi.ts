// face-api's side: its age and gender network as face-api itself runs it (@vladmandic/face-api's
// Node build without tfjs-node, on the project's TensorFlow.js, whichever backend is current), and
// the same network imported into mislead from the same weight files.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import { FACEAPI_MANIFEST, FACEAPI_SIDE, importFaceApi } from '../src/formats/faceapi.js';
import type { Model } from '../src/formats/model.js';
import { available, type NetworkPeer } from './tfjs.js';
import { oneHot, random } from './setup.js';

const require = createRequire(import.meta.url);
/** face-api, typed as far as used here: it declares tf's types anew, as other types. */
interface AgeGenderNet {
  loadFromDisk(dir: string): Promise<void>;
  runNet(input: unknown): { gender: TF.Tensor2D };
  forwardInput(input: unknown): { gender: TF.Tensor2D; age: TF.Tensor1D };
  dispose(): void;
}
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js') as {
  tf: typeof TF;
  AgeGenderNet: new () => AgeGenderNet;
  NetInput: new (faces: TF.Tensor3D[]) => unknown;
};
const tf = faceapi.tf;

/** face-api's model folder, as installed. */
export const FACEAPI_MODEL_DIR = join(dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');

/** The age and gender network imported from face-api's model folder. */
export function faceApiModel(): Model {
  return importFaceApi(JSON.parse(readFileSync(join(FACEAPI_MODEL_DIR, FACEAPI_MANIFEST), 'utf8')), (path) => new Uint8Array(readFileSync(join(FACEAPI_MODEL_DIR, path))), FACEAPI_MANIFEST);
}

/** Pictures as face-api takes them: 112×112 RGB, whole grey levels 0..255, seeded noise; and a
 *  target class (man or woman) each. */
export function faceApiImages(n: number, seed: number): { pixels: Float32Array; targets: number[] } {
  const rand = random(seed);
  const pixels = Float32Array.from({ length: n * FACEAPI_SIDE * FACEAPI_SIDE * 3 }, () => Math.floor(rand() * 256));
  return { pixels, targets: Array.from({ length: n }, () => Math.floor(rand() * 2)) };
}

/** face-api's network on the current backend: its own forward pass (forwardInput on a NetInput, its
 *  softmax included), and an attack iteration as a face-api user writes one: the cross-entropy of
 *  its gender logits (runNet) toward each picture's target, its gradient to the pixels by tf.grad. */
export class FaceApiAttack implements NetworkPeer {
  /** The batch as face-api takes it, a list of pictures (tf.grad through tf.unstack fails at batch 1:
   *  the gradient is taken to each picture, and stacked). */
  private readonly faces: TF.Tensor3D[];

  private constructor(private readonly net: AgeGenderNet, x: TF.Tensor4D, private readonly y: TF.Tensor2D) {
    this.faces = tf.unstack(x) as TF.Tensor3D[];
    x.dispose();
  }

  static async load(pixels: Float32Array, targets: number[]): Promise<FaceApiAttack> {
    const net = new faceapi.AgeGenderNet();
    await net.loadFromDisk(FACEAPI_MODEL_DIR);
    const n = targets.length;
    return new FaceApiAttack(net, tf.tensor4d(pixels, [n, FACEAPI_SIDE, FACEAPI_SIDE, 3]), tf.tensor2d(oneHot(targets, 2), [n, 2]));
  }

  private readonly loss = (...faces: TF.Tensor[]): TF.Scalar => {
    const logits = this.net.runNet(new faceapi.NetInput(faces as TF.Tensor3D[])).gender;
    return tf.neg(tf.sum(tf.mul(this.y, tf.logSoftmax(logits)))) as TF.Scalar;
  };

  forward(): void {
    tf.tidy(() => void this.net.forwardInput(new faceapi.NetInput(this.faces)));
  }

  logits(): Float32Array {
    return tf.tidy(() => this.net.runNet(new faceapi.NetInput(this.faces)).gender.dataSync() as Float32Array).slice();
  }

  iteration(): void {
    available(() => tf.tidy(() => void tf.grads(this.loss)(this.faces)));
  }

  gradient(): Float32Array {
    return available(() => tf.tidy(() => tf.stack(tf.grads(this.loss)(this.faces)).dataSync() as Float32Array)).slice();
  }

  dispose(): void {
    this.net.dispose();
    tf.dispose([...this.faces, this.y]);
  }
}
