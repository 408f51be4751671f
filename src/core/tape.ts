// Reverse-mode autodiff over a recorded list of steps. Ops run as they are recorded, and the
// same recording can be replayed: `forward()` recomputes every step from the current inputs
// and `backward(loss)` sends d(loss)/d(step output) back through the steps in reverse order.
// Replaying, rather than recording anew, is what keeps an attack's iterations allocation-free.
import { Engine, Tensor } from './engine.js';

/** One recorded op: how to compute its output, and how to add its share to its inputs' gradients. */
export interface Step {
  forward(): void;
  backward(): void;
}

export class Tape {
  private readonly steps: Step[] = [];
  private readonly outputs: Tensor[] = [];
  /** Every gradient buffer the backward pass writes into, zeroed before it starts. */
  private readonly grads: Tensor[] = [];
  private readonly start: number;

  constructor(readonly engine: Engine) {
    this.start = engine.mark();
  }

  /** The output of an op on `inputs`; it carries a gradient when any input does. */
  output(shape: readonly number[], inputs: readonly Tensor[]): Tensor {
    for (const x of inputs) if (x.grad) this.track(x.grad);
    const y = this.engine.tensor(shape);
    if (inputs.some((x) => x.grad)) this.track(y.requireGrad().grad!);
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
    this.steps.push(step);
    this.outputs.push(y);
  }

  forward(): void {
    for (let i = 0; i < this.steps.length; i++) this.steps[i].forward();
  }

  /** Fills the gradient of every tensor that has one with d(loss)/d(tensor). */
  backward(loss: Tensor): void {
    if (!loss.grad || loss.size !== 1) throw new Error('backward needs a scalar loss that depends on a tensor with requireGrad()');
    const k = this.engine.kernels;
    for (let i = 0; i < this.grads.length; i++) k.fill(this.grads[i].ptr, 0, this.grads[i].size);
    k.fill(loss.grad.ptr, 1, 1);
    for (let i = this.steps.length - 1; i >= 0; i--) if (this.outputs[i].grad) this.steps[i].backward();
  }

  /** Frees every tensor created since this tape was: the tape must be the last thing allocated. */
  dispose(): void {
    this.engine.release(this.start);
  }

  private track(grad: Tensor): void {
    if (!this.grads.some((g) => g.ptr === grad.ptr)) this.grads.push(grad);
  }
}
