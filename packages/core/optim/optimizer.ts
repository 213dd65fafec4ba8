/**
 * Optimizer base: holds the parameters, the learning rate (which schedulers change) and
 * per-parameter state tensors on the GPU. `step()` launches one in-place update kernel per
 * parameter with a gradient; the per-step scalars go up in one small write.
 */
import { gpu } from "../../kernels/runtime/gpu.ts";
import { type Tensor, zeros } from "../tensor.ts";

export abstract class Optimizer {
  /** Completed steps (PyTorch's `state['step']`). */
  steps = 0;
  readonly state: Map<Tensor, Tensor[]> = new Map();
  #hyper: GPUBuffer[] = [];

  constructor(readonly params: Tensor[], public lr: number, private stateSlots: number) {
    if (!(lr >= 0)) throw new Error(`invalid learning rate ${lr}`);
    for (const p of params) {
      if (p.dtype !== "f32") throw new Error(`cannot optimise ${p}: not f32`);
    }
  }

  protected slots(p: Tensor): Tensor[] {
    let s = this.state.get(p);
    if (!s) {
      s = Array.from({ length: this.stateSlots }, () => zeros(p.shape).keep());
      this.state.set(p, s);
    }
    return s;
  }

  /** Uploads this step's scalars to hyperparameter buffer `slot` (once per step each). */
  protected hyper(values: Float32Array, slot = 0): GPUBuffer {
    const g = gpu();
    this.#hyper[slot] ??= g.pool.acquire(16);
    g.write(this.#hyper[slot], values);
    return this.#hyper[slot];
  }

  /** Applies one update to every parameter that has a gradient. */
  step(): void {
    this.steps++;
    const withGrad = this.params.filter((p) => p.grad);
    if (withGrad.length) this.update(withGrad);
  }

  protected abstract update(params: Tensor[]): void;

  /** Drops the gradients (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Frees the state tensors. */
  dispose(): void {
    for (const s of this.state.values()) for (const t of s) t.dispose();
    this.state.clear();
    for (const b of this.#hyper) gpu().pool.release(b);
    this.#hyper = [];
  }
}
