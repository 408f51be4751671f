// Reverse-mode autodiff over a recorded list of steps. Ops run as they are recorded, and the
// same recording can be replayed: `forward()` recomputes every step from the current inputs
// and `backward(loss)` sends d(loss)/d(step output) back through the steps in reverse order.
// Replaying, rather than recording anew, is what keeps an attack's iterations allocation-free.
import { Engine, Tensor } from './engine.js';

/** One recorded op: how to compute its output, and how to add its share to its inputs' gradients. */
export interface Step {
  forward(): void;
  backward(): void;
  /** Inputs whose gradient backward() sets, rather than adds to, when `tape.first(input.grad)`
   *  says that it is the first to write it in the pass. The gradient of a tensor whose last op
   *  (the first to write it, backward) says so is not zeroed before the pass: zeroing the
   *  activations' gradients and adding to them was 5 % of an attack iteration on face-api's network. */
  overwrites?: readonly Tensor[];
}

export class Tape {
  private readonly steps: Step[] = [];
  private readonly outputs: Tensor[] = [];
  /** Every gradient buffer the backward pass writes into, once each (a reshaped tensor shares
   *  its input's), and its place in that list by address. */
  private readonly grads: Tensor[] = [];
  private readonly gradIndex = new Map<number, number>();
  /** By gradient address: the last step recorded that takes the tensor, the first to write its
   *  gradient in the backward pass. */
  private readonly lastTaker = new Map<number, number>();
  /** The inputs of an op's output, from output() until the op records its step. */
  private readonly pending = new Map<Tensor, readonly Tensor[]>();
  /** Per gradient: 1 if its first writer sets it (see Step.overwrites), made again when the steps
   *  change; and whether it was written yet in the pass that runs. */
  private setByFirst: Uint8Array | null = null;
  private written = new Uint8Array(0);
  private readonly start: number;

  constructor(readonly engine: Engine) {
    this.start = engine.mark();
  }

  /** The output of an op on `inputs`; it carries a gradient when any input does. */
  output(shape: readonly number[], inputs: readonly Tensor[]): Tensor {
    for (const x of inputs) if (x.grad) this.track(x.grad);
    const y = this.engine.tensor(shape);
    if (inputs.some((x) => x.grad)) this.track(y.requireGrad().grad!);
    this.pending.set(y, inputs);
    return y;
  }

  /** Working memory for an op's backward pass, owned by this tape. */
  scratch(count: number): number {
    return this.engine.alloc(count);
  }

  /** Runs `step` now, and again at every replay. Its backward rule runs only when its output
   *  `y` has a gradient, so a rule may assume `y.grad`. */
  record(y: Tensor, step: Step): void {
    step.forward();
    for (const x of this.pending.get(y) ?? []) if (x.grad) this.lastTaker.set(x.grad.ptr, this.steps.length);
    this.pending.delete(y);
    this.steps.push(step);
    this.outputs.push(y);
    this.setByFirst = null;
  }

  forward(): void {
    for (let i = 0; i < this.steps.length; i++) this.steps[i].forward();
  }

  /** Fills the gradient of every tensor that has one with d(loss)/d(tensor). */
  backward(loss: Tensor): void {
    if (!loss.grad || loss.size !== 1) throw new Error('backward needs a scalar loss that depends on a tensor with requireGrad()');
    const k = this.engine.kernels;
    const set = this.beginPass();
    for (let i = 0; i < this.grads.length; i++) if (!set[i]) k.fill(this.grads[i].ptr, 0, this.grads[i].size);
    k.fill(loss.grad.ptr, 1, 1);
    const lossIndex = this.gradIndex.get(loss.grad.ptr);
    if (lossIndex !== undefined) this.written[lossIndex] = 1; // later steps add to its 1
    for (let i = this.steps.length - 1; i >= 0; i--) if (this.outputs[i].grad) this.steps[i].backward();
  }

  /** Starts a backward pass: returns, per gradient, 1 if its first writer sets it; none is
   *  written yet. */
  protected beginPass(): Uint8Array {
    const set = (this.setByFirst ??= this.firstWriters());
    this.written.fill(0);
    return set;
  }

  /** For a step's backward rule, on an input it lists in `overwrites`: true if no step has
   *  written `grad` yet in this pass (it holds anything then, and the rule must set all of it),
   *  false if the rule must add to it. */
  first(grad: Tensor): boolean {
    const i = this.gradIndex.get(grad.ptr)!;
    if (!this.setByFirst![i] || this.written[i]) return false;
    this.written[i] = 1;
    return true;
  }

  /** Frees every tensor created since this tape was: the tape must be the last thing allocated. */
  dispose(): void {
    this.engine.release(this.start);
  }

  private track(grad: Tensor): void {
    if (this.gradIndex.has(grad.ptr)) return;
    this.gradIndex.set(grad.ptr, this.grads.length);
    this.grads.push(grad);
    this.setByFirst = null;
  }

  private firstWriters(): Uint8Array {
    const set = new Uint8Array(this.grads.length);
    for (let i = 0; i < this.grads.length; i++) {
      const ptr = this.grads[i].ptr, taker = this.lastTaker.get(ptr);
      set[i] = taker !== undefined && this.steps[taker].overwrites?.some((x) => x.grad?.ptr === ptr) ? 1 : 0;
    }
    this.written = new Uint8Array(this.grads.length);
    return set;
  }
}
