/**
 * Reverse-mode automatic differentiation over the tape the ops record. Each op registers a
 * Node (its inputs and a backward rule) on its output when gradients are enabled and an
 * input requires them. `backward()` walks the nodes in reverse topological order, frees
 * each intermediate gradient as soon as it has been propagated, and accumulates leaf
 * gradients into `tensor.grad` (kept alive across scopes until `zeroGrad`).
 */
import type { Node, Tensor } from "./tensor.ts";
import { ones } from "./tensor.ts";
import { add } from "./ops/elementwise.ts";

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording the tape (inference, optimizer updates, backward itself). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Attaches a backward rule to an op's output when any input needs a gradient. */
export function record(
  out: Tensor,
  op: string,
  inputs: Tensor[],
  backward: Node["backward"],
): Tensor {
  if (gradEnabled && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    // A copy: callers may keep growing their array (DenseNet's running feature list).
    out.node = { op, inputs: [...inputs], backward };
  }
  return out;
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: deep networks would overflow a recursive one.
  const stack: [Tensor, boolean][] = [[root, false]];
  while (stack.length) {
    const [t, done] = stack.pop()!;
    if (done) {
      order.push(t);
      continue;
    }
    if (seen.has(t)) continue;
    seen.add(t);
    stack.push([t, true]);
    for (const i of t.node?.inputs ?? []) {
      if (i.requiresGrad && !seen.has(i)) stack.push([i, false]);
    }
  }
  return order;
}

/**
 * Back-propagates from `root` (a scalar unless `seed`, the gradient of root, is given).
 * Leaf tensors that require gradients receive `.grad`; the tape is released afterwards.
 */
export function backward(root: Tensor, seed?: Tensor): void {
  if (!root.requiresGrad) throw new Error("backward() on a tensor that does not require grad");
  if (!seed && root.size !== 1) {
    throw new Error(`backward() without a seed needs a scalar, got [${root.shape}]`);
  }
  noGrad(() => {
    const order = topoOrder(root);
    const grads = new Map<Tensor, Tensor>();
    grads.set(root, seed ? seed.view() : ones(root.shape));
    for (let k = order.length - 1; k >= 0; k--) {
      const t = order[k];
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      if (!t.node) {
        // A leaf: accumulate into .grad, which outlives scopes.
        if (t.grad) {
          const sum = add(t.grad, g).keep();
          t.grad.dispose();
          g.dispose();
          t.grad = sum;
        } else {
          t.grad = g.keep();
        }
        continue;
      }
      const inputGrads = t.node.backward(g);
      g.dispose();
      t.node.inputs.forEach((input, i) => {
        const gi = inputGrads[i];
        if (!gi) return;
        if (!input.requiresGrad) {
          gi.dispose();
          return;
        }
        const prev = grads.get(input);
        if (prev) {
          grads.set(input, add(prev, gi));
          prev.dispose();
          gi.dispose();
        } else {
          grads.set(input, gi);
        }
      });
    }
    for (const t of order) if (t.node) t.node = null;
  });
}
