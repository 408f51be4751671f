// `mislead import-faceapi`: face-api.js's age and gender network (its maintained fork ships the
// same weights) as a model file: its gender head, man and woman in face-api's order. face-api's
// weights manifest has no topology: the network is in its source (xception/TinyXception.ts,
// ageGenderNet/AgeGenderNet.ts), written out below as our layers, ReLUs where face-api puts them.
// Its 7×7 average pool of 7×7 features is a global one; its final softmax is recorded. A separable
// convolution's bias follows its pointwise step, so its depthwise step has a bias of zeros.
import { InputError, quote } from '../errors.js';
import { assembleModel, checkArchitecture, INPUT, type Layer, type Model } from './model.js';
import { readWeights, type ShardReader } from './tfjs.js';

/** The manifest of the age and gender network in face-api's model folder, beside its weights. */
export const FACEAPI_MANIFEST = 'age_gender_model-weights_manifest.json';
/** face-api's input: its faces are padded to a square, resized to this side. */
export const FACEAPI_SIDE = 112;
/** face-api's normalisation of 0..255 RGB (TinyXception.forwardInput): minus its mean, over 255;
 *  and its reading of a face: padded to a centred square, TensorFlow 1's bilinear resize. */
export const FACEAPI_PREPROCESS = { offset: [122.782, 117.001, 104.298], scale: 255, resize: 'face-api' as const };
/** Gender logits in face-api's order (index 0: male). */
export const FACEAPI_LABELS = ['man', 'woman'];
/** TinyXception's main blocks in face-api's AgeGenderNet. */
const MAIN_BLOCKS = 2;

type Weight = { shape: number[]; data: Float32Array };

/**
 * Converts face-api's age and gender network: `manifest` is its weights manifest parsed,
 * `readShard` returns the bytes of a weight file it lists.
 */
export function importFaceApi(manifest: unknown, readShard: ShardReader, name: string): Model {
  const fail = (why: string): never => {
    throw new InputError(`${name}: ${why}`);
  };
  const stored = readWeights(manifest, readShard, fail);
  const layers: Layer[] = [];
  const weights = new Map<string, Weight>();
  const weight = (key: string): Weight => stored.get(key) ?? fail(`not face-api's age and gender model: no weight ${quote(key)}`);
  /** Adds a layer reading `inputs` (always named: blocks branch), with its weights; returns its name. */
  const emit = (layer: Layer & { name: string }, inputs: string[], tensors?: [Weight, Weight]): string => {
    layers.push({ ...layer, inputs });
    if (tensors) {
      weights.set(`${layer.name}.w`, tensors[0]);
      weights.set(`${layer.name}.b`, tensors[1]);
    }
    return layer.name;
  };
  const relu = (prefix: string, x: string) => emit({ type: 'activation', name: `${prefix}/relu`, activation: 'relu' }, [x]);
  /** tf.separableConv2d, 3×3 "same", and its bias: a depthwise step, then a 1×1 convolution. */
  const separable = (prefix: string, x: string, activation: 'relu' | 'none'): string => {
    const depthwise = weight(`${prefix}/depthwise_filter`), pointwise = weight(`${prefix}/pointwise_filter`);
    const channels = depthwise.shape[2] ?? 0;
    const zeros = { shape: [channels], data: new Float32Array(channels) };
    const step = emit({ type: 'depthwise_conv2d', name: `${prefix}/depthwise`, multiplier: 1, kernel: 3, stride: 1, dilation: 1, padding: 'same', activation: 'none' }, [x], [depthwise, zeros]);
    return emit({ type: 'conv2d', name: prefix, filters: pointwise.shape[3] ?? 0, kernel: 1, stride: 1, dilation: 1, padding: 'same', activation }, [step], [pointwise, weight(`${prefix}/bias`)]);
  };
  const conv = (prefix: string, x: string, kernel: number, activation: 'relu' | 'none'): string => {
    const filters = weight(`${prefix}/filters`);
    return emit({ type: 'conv2d', name: prefix, filters: filters.shape[3] ?? 0, kernel, stride: 2, dilation: 1, padding: 'same', activation }, [x], [filters, weight(`${prefix}/bias`)]);
  };
  const reductionBlock = (prefix: string, x: string, activateInput: boolean): string => {
    let out = separable(`${prefix}/separable_conv0`, activateInput ? relu(prefix, x) : x, 'relu');
    out = separable(`${prefix}/separable_conv1`, out, 'none');
    out = emit({ type: 'maxpool', name: `${prefix}/maxpool`, size: 3, stride: 2, padding: 'same' }, [out]);
    return emit({ type: 'add', name: prefix }, [out, conv(`${prefix}/expansion_conv`, x, 1, 'none')]);
  };
  const mainBlock = (prefix: string, x: string): string => {
    let out = separable(`${prefix}/separable_conv0`, relu(prefix, x), 'relu');
    out = separable(`${prefix}/separable_conv1`, out, 'relu');
    out = separable(`${prefix}/separable_conv2`, out, 'none');
    return emit({ type: 'add', name: prefix }, [out, x]);
  };

  let x = conv('entry_flow/conv_in', INPUT, 3, 'relu');
  x = reductionBlock('entry_flow/reduction_block_0', x, false);
  x = reductionBlock('entry_flow/reduction_block_1', x, true);
  for (let i = 0; i < MAIN_BLOCKS; i++) x = mainBlock(`middle_flow/main_block_${i}`, x);
  x = reductionBlock('exit_flow/reduction_block', x, true);
  x = separable('exit_flow/separable_conv', x, 'relu');
  x = emit({ type: 'global_avgpool', name: 'avgpool' }, [x]);
  const gender = weight('fc/gender/weights');
  emit({ type: 'dense', name: 'fc/gender', units: gender.shape[1] ?? 0, activation: 'softmax' }, [x], [gender, weight('fc/gender/bias')]);

  const architecture = { input: [FACEAPI_SIDE, FACEAPI_SIDE, 3], labels: [...FACEAPI_LABELS], preprocess: { ...FACEAPI_PREPROCESS, offset: [...FACEAPI_PREPROCESS.offset] }, layers };
  // Shapes that differ from face-api's network are refused here, naming the tensor.
  try {
    return assembleModel(checkArchitecture(architecture), name, (key) => weights.get(key));
  } catch (e) {
    if (e instanceof InputError && !e.message.startsWith(name)) fail(e.message);
    throw e;
  }
}
