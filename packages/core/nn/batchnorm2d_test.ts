import assert from "node:assert/strict";
import { initGpu } from "../../kernels/runtime/gpu.ts";
import { tensor } from "../tensor.ts";
import { noGrad } from "../autograd.ts";
import { BatchNorm2d } from "./batchnorm2d.ts";

Deno.test("BatchNorm2d has PyTorch's names, defaults and a scalar num_batches_tracked", async () => {
  await initGpu();
  const bn = new BatchNorm2d(3);
  assert.deepEqual(bn.namedParameters().map(([n]) => n), ["weight", "bias"]);
  assert.deepEqual(bn.namedBuffers().map(([n, t]) => [n, [...t.shape], t.dtype]), [
    ["running_mean", [3], "f32"],
    ["running_var", [3], "f32"],
    ["num_batches_tracked", [], "i32"],
  ]);
  assert.equal(bn.eps, 1e-5);
  assert.equal(bn.momentum, 0.1);
  assert.deepEqual([...await bn.weight.read()], [1, 1, 1]);
  assert.deepEqual([...await bn.bias.read()], [0, 0, 0]);
  assert.deepEqual([...await bn.runningVar.read()], [1, 1, 1]);
  const custom = new BatchNorm2d(2, { eps: 1e-3, momentum: 0.01 });
  assert.equal(custom.eps, 1e-3);
  assert.equal(custom.momentum, 0.01);
  bn.dispose();
  custom.dispose();
});

Deno.test("BatchNorm2d training updates running stats and counts batches; eval uses them", async () => {
  await initGpu();
  const bn = new BatchNorm2d(2);
  // Channel 0 takes 1, 3 (mean 2, unbiased var 2); channel 1 takes 0, 0.
  const x = tensor([1, 0, 3, 0], [1, 1, 2, 2]);
  const y = noGrad(() => bn.forward(x));
  const yv = await y.read();
  assert.ok(Math.abs(yv[0] + 1) < 1e-3 && Math.abs(yv[2] - 1) < 1e-3, `${yv}`);
  assert.deepEqual([...await bn.runningMean.read()].map((v) => +v.toFixed(5)), [0.2, 0]);
  assert.deepEqual([...await bn.runningVar.read()].map((v) => +v.toFixed(5)), [1.1, 0.9]);
  noGrad(() => bn.forward(x)).dispose();
  assert.deepEqual([...await bn.numBatchesTracked.read()], [2]);
  bn.eval();
  const e = noGrad(() => bn.forward(x));
  const mean = await bn.runningMean.read(), vr = await bn.runningVar.read();
  const ev = await e.read();
  const expect = [1, 0, 3, 0].map((v, i) => (v - mean[i % 2]) / Math.sqrt(vr[i % 2] + 1e-5));
  ev.forEach((v, i) => assert.ok(Math.abs(v - expect[i]) < 1e-5, `${v} vs ${expect[i]}`));
  // Eval mode leaves the counter alone; the fused activation clamps.
  const r = noGrad(() => bn.forward(tensor([-1, 5, 1, 5], [1, 1, 2, 2]), "relu"));
  assert.ok((await r.read()).every((v) => v >= 0));
  assert.deepEqual([...await bn.numBatchesTracked.read()], [2]);
  for (const t of [x, y, e, r]) t.dispose();
  bn.dispose();
});
