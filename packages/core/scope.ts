/**
 * Scopes give tensors explicit lifetimes without a dispose call per intermediate:
 * `tidy(fn)` disposes every tensor created inside `fn` except the ones it returns (which move
 * to the enclosing scope) and kept ones (parameters, optimizer state, gradients of leaves).
 * Outside any scope, tensors live until `dispose()`.
 */
import type { Tensor } from "./tensor.ts";

const stack: Set<Tensor>[] = [];

/** Called by the Tensor constructor. */
export function track(t: Tensor): void {
  stack.at(-1)?.add(t);
}

type Result = Tensor | Tensor[] | Record<string, Tensor> | void | number | undefined;

function isTensor(v: unknown): v is Tensor {
  return typeof v === "object" && v !== null && "node" in v && "shape" in v;
}

function returned(result: unknown): Tensor[] {
  if (isTensor(result)) return [result];
  if (!result || typeof result !== "object") return [];
  const values = Array.isArray(result) ? result : Object.values(result);
  return values.filter(isTensor);
}

export function tidy<T extends Result>(fn: () => T): T {
  const scope = new Set<Tensor>();
  stack.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    stack.pop();
  }
  if (result instanceof Promise) throw new Error("tidy() takes a synchronous function");
  const survivors = new Set(returned(result));
  for (const t of scope) {
    if (survivors.has(t)) stack.at(-1)?.add(t);
    else if (!t.kept) t.dispose();
  }
  return result;
}
