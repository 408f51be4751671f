// Fuzzing the parsers of user files (PNG, JPEG, model file, .npy, TensorFlow checkpoint,
// labels.csv, TensorFlow.js model.json and weight files) with mutated valid files: each input must
// be accepted (with a consistent result) or refused with an InputError, nothing else, in little
// time and memory. The inputs are the first one to three thousand of each target's sequence; `npm run fuzz` goes through 20,000 of each, and replays
// any one of them: `npm run fuzz -- --replay TARGET:INDEX`. See test/fuzz/.
import { afterAll, describe, expect, it } from 'vitest';
import { formatFailure, runTarget } from './fuzz/harness.js';
import { removeDatasetFolder } from './fuzz/labels.js';
import { TARGETS } from './fuzz/targets.js';

afterAll(removeDatasetFolder);

describe('fuzzing the parsers: only InputError escapes, in bounded time and memory', () => {
  for (const { target, testInputs } of TARGETS) {
    it(`${target.parser}: ${testInputs} mutated inputs`, async () => {
      await target.prepare?.();
      const stats = runTarget(target, 0, testInputs, { maxFailures: 1 });
      const failures = stats.failures.map(formatFailure);
      expect(failures, failures.join('\n')).toEqual([]);
      // Both outcomes must be common, or the mutations are too mild or too destructive to test much.
      expect(stats.accepted, `${stats.accepted} accepted`).toBeGreaterThan(testInputs * 0.02);
      expect(stats.refused, `${stats.refused} refused`).toBeGreaterThan(testInputs * 0.2);
    }, 120_000);
  }
});
