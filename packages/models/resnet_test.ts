/** One ResNet-18 training step: the backward pass reaches every parameter (or only the head). */
import assert from "node:assert/strict";
import { initGpu } from "../kernels/runtime/gpu.ts";
import { tensor } from "../core/tensor.ts";
import { tidy } from "../core/scope.ts";
import { backward } from "../core/autograd.ts";
import { crossEntropy } from "../core/ops/softmax.ts";
import { Rng } from "../core/data/rng.ts";
import { resnet18 } from "./resnet.ts";

Deno.test("resnet18: one training step gives a finite, nonzero gradient for every parameter", async () => {
  await initGpu();
  const model = resnet18({ numClasses: 7, seed: 9 }).train();
  const rng = new Rng(1);
  const x = tensor(new Float32Array(2 * 32 * 32 * 3).map(() => rng.uniform(-2, 2)), [2, 32, 32, 3]);
  const y = tensor(new Int32Array([1, 4]));
  try {
    const loss = tidy(() => {
      const l = crossEntropy(model.forward(x), y);
      backward(l);
      return l;
    });
    assert.ok(Number.isFinite(await loss.item()));
    loss.dispose();
    const params = model.namedParameters();
    assert.equal(params.length, 62);
    for (const [name, p] of params) {
      assert.ok(p.grad, `no gradient for ${name}`);
      assert.deepEqual(p.grad.shape, p.shape, name);
      const g = await p.grad.read();
      assert.ok(g.every(Number.isFinite), name);
      assert.ok(g.some((v) => v !== 0), `zero gradient for ${name}`);
      p.grad.dispose();
      p.grad = null;
    }
    // With the backbone frozen only the head receives gradients.
    model.freezeBackbone();
    tidy(() => backward(crossEntropy(model.forward(x), y)));
    const withGrad = params.filter(([, p]) => p.grad).map(([n]) => n);
    assert.deepEqual(withGrad, ["fc.weight", "fc.bias"]);
  } finally {
    for (const p of model.parameters()) p.grad?.dispose();
    x.dispose();
    y.dispose();
    model.dispose();
  }
});
