/**
 * Modules hold named parameters, buffers (running statistics) and child modules, so the
 * names compose exactly like PyTorch's state_dict keys ("layer1.0.conv1.weight").
 */
import type { Tensor } from "../tensor.ts";

export abstract class Module {
  training = true;
  readonly #params = new Map<string, Tensor>();
  readonly #buffers = new Map<string, Tensor>();
  readonly #children = new Map<string, Module>();

  protected param(name: string, t: Tensor): Tensor {
    t.requiresGrad = true;
    t.keep();
    this.#params.set(name, t);
    return t;
  }

  protected buffer(name: string, t: Tensor): Tensor {
    t.keep();
    this.#buffers.set(name, t);
    return t;
  }

  protected child<M extends Module>(name: string, m: M): M {
    this.#children.set(name, m);
    return m;
  }

  children(): [string, Module][] {
    return [...this.#children];
  }

  /** Parameters with their dotted names, in registration order (PyTorch's order). */
  namedParameters(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this.#params) out.push([prefix + n, t]);
    for (const [n, c] of this.#children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  namedBuffers(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this.#buffers) out.push([prefix + n, t]);
    for (const [n, c] of this.#children) out.push(...c.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  /** Parameters and buffers together: the keys of a PyTorch state_dict. */
  stateTensors(): Map<string, Tensor> {
    return new Map([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /** Replaces a parameter or buffer tensor (weight loading); the old one is disposed. */
  setTensor(name: string, t: Tensor): void {
    const dot = name.indexOf(".");
    if (dot >= 0) {
      const c = this.#children.get(name.slice(0, dot));
      if (!c) throw new Error(`no submodule for '${name}'`);
      return c.setTensor(name.slice(dot + 1), t);
    }
    const isParam = this.#params.has(name);
    const map = isParam ? this.#params : this.#buffers;
    const old = map.get(name);
    if (!old) throw new Error(`no parameter or buffer '${name}'`);
    if (old.shape.join() !== t.shape.join()) {
      throw new Error(`'${name}' has shape [${old.shape}], got [${t.shape}]`);
    }
    t.keep();
    if (isParam) t.requiresGrad = old.requiresGrad;
    map.set(name, t);
    old.dispose();
    this.onTensorReplaced(name, t);
  }

  /** Subclasses that cache tensors in fields refresh them here. */
  protected onTensorReplaced(_name: string, _t: Tensor): void {}

  train(mode = true): this {
    this.training = mode;
    for (const c of this.#children.values()) c.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Turns gradients on or off for every parameter (freeze / unfreeze). */
  requiresGrad(on: boolean): this {
    for (const p of this.parameters()) p.requiresGrad = on;
    return this;
  }

  dispose(): void {
    for (const t of this.#params.values()) t.dispose();
    for (const t of this.#buffers.values()) t.dispose();
    for (const c of this.#children.values()) c.dispose();
  }

  abstract forward(x: Tensor): Tensor;
}
