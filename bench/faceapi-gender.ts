// `npx vite-node bench/faceapi-gender.ts IMAGE.png...`: face-api.js's own gender for each PNG, by its
// Node build on TensorFlow.js's CPU backend (the development install's @vladmandic/face-api), the
// picture decoded by pngjs rather than by mislead and taken whole as the face: face-api pads it to
// a square and resizes it to 112×112 itself (nothing for a 112×112 adversarial.png).
import { readFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { ageGenderNet, loadFaceApi, manProbability, tf } from '../test/support/faceapi.js';

const files = process.argv.slice(2);
if (files.length === 0) {
  process.stderr.write('usage: npx vite-node bench/faceapi-gender.ts IMAGE.png...\n');
  process.exit(2);
}
await loadFaceApi();
for (const file of files) {
  const { width, height, data } = PNG.sync.read(readFileSync(file));
  const rgb = Float32Array.from({ length: width * height * 3 }, (_, i) => data[Math.floor(i / 3) * 4 + (i % 3)]);
  const face = tf.tensor3d(rgb, [height, width, 3]);
  const [prediction] = await ageGenderNet.predictAgeAndGender([face]);
  face.dispose();
  const man = manProbability(prediction);
  process.stdout.write(`${file}: face-api.js says ${prediction.gender === 'male' ? 'man' : 'woman'} (P(man) ${man.toFixed(6)}, P(woman) ${(1 - man).toFixed(6)})\n`);
}
