// The attack library: the methods (registry.ts, one module each), running them on images in
// batches (run.ts) and the measures of a result (metrics.ts).
export { AttackRun, fromImage, nothingToDo, plannedIterations, resolveOptions, roundName, runAttack, startAttack, summarize } from './run.js';
export type { AttackOptions, AttackResult, AttackSummary, CommonOptions, Prediction, ResolvedOptions } from './run.js';
export { METHODS, methodById, type AttackMethod } from './registry.js';
export { COMMON, DEFAULT_EPS, readOptions, type Method, type Parameter, type Stepper, type Subject, type Value } from './method.js';
export { FilterAttack, filterLoss, type FilterStep } from './filter.js';
export { isSuccess, type Hooks, type Norm, type ProgressInfo } from './batch.js';
export { distances, norms, psnr, ssim } from './metrics.js';
