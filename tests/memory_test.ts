/**
 * GPU memory stays flat across training steps: 50 steps of a small MLP with Adam, and the
 * pool's bytes in use return to the same value after each step.
 */
import assert from "node:assert/strict";
import { initGpu } from "../packages/kernels/runtime/gpu.ts";
import { tensor } from "../packages/core/tensor.ts";
import { tidy } from "../packages/core/scope.ts";
import { backward } from "../packages/core/autograd.ts";
import { relu } from "../packages/core/ops/elementwise.ts";
import { crossEntropy } from "../packages/core/ops/softmax.ts";
import { dropout } from "../packages/core/ops/dropout.ts";
import { Linear } from "../packages/core/nn/linear.ts";
import { Adam } from "../packages/core/optim/adam.ts";
import { Rng } from "../packages/core/data/rng.ts";

Deno.test("50 MLP training steps keep GPU bytes in use constant and reduce the loss", async () => {
  const g = await initGpu();
  const rng = new Rng(7);
  const fc1 = new Linear(12, 32, { rng }), fc2 = new Linear(32, 4, { rng });
  const params = [...fc1.parameters(), ...fc2.parameters()];
  const opt = new Adam(params, { lr: 1e-2 });
  // A learnable problem: the label is the argmax of a fixed linear map of the input.
  const n = 64;
  const x = new Float32Array(n * 12).map(() => rng.uniform(-1, 1));
  const y = new Int32Array(n).map((_, i) => {
    const row = x.subarray(i * 12, i * 12 + 12);
    const s = [0, 1, 2, 3].map((k) => row[k] + row[k + 4] - row[k + 8]);
    return s.indexOf(Math.max(...s));
  });
  const xs = tensor(x, [n, 12]).keep(), ys = tensor(y).keep();
  const losses: number[] = [];
  const inUse: number[] = [];
  for (let step = 0; step < 50; step++) {
    const loss = tidy(() => {
      const h = dropout(relu(fc1.forward(xs)), 0.1, step);
      const l = crossEntropy(fc2.forward(h), ys);
      backward(l);
      opt.step();
      opt.zeroGrad();
      return l;
    });
    losses.push(await loss.item());
    loss.dispose();
    inUse.push(g.pool.bytesInUse);
  }
  // After the first step (optimizer state is created lazily) memory is exactly flat.
  assert.ok(inUse.slice(1).every((b) => b === inUse[1]), `bytes in use drift: ${inUse}`);
  assert.ok(losses[49] < losses[0] * 0.7, `loss did not fall: ${losses[0]} -> ${losses[49]}`);
  g.check();
});
