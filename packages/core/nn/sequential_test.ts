import assert from "node:assert/strict";
import { initGpu } from "../../kernels/runtime/gpu.ts";
import { tensor } from "../tensor.ts";
import { noGrad } from "../autograd.ts";
import { Sequential } from "./sequential.ts";
import { Conv2d } from "./conv2d.ts";
import { BatchNorm2d } from "./batchnorm2d.ts";
import { Activation, ReLU, ReLU6, SiLU } from "./activation.ts";

Deno.test("Sequential names children by position (skipping nulls) or by given names", async () => {
  await initGpu();
  const s = new Sequential([
    new Conv2d(2, 3, 1, { bias: false }),
    null,
    new BatchNorm2d(3),
    ReLU(),
  ]);
  assert.deepEqual(s.namedParameters().map(([n]) => n), ["0.weight", "1.weight", "1.bias"]);
  assert.deepEqual(s.children().map(([n]) => n), ["0", "1", "2"]);
  assert.equal(s.length, 3);
  assert.ok(s.at(2) instanceof Activation);
  assert.throws(() => s.at(7), /no layer 7/);
  const named = new Sequential([["conv0", new Conv2d(1, 1, 1)], ["relu0", ReLU()]] as [
    string,
    Conv2d | Activation,
  ][]);
  assert.deepEqual(named.namedParameters().map(([n]) => n), ["conv0.weight", "conv0.bias"]);
  s.dispose();
  named.dispose();
});

Deno.test("Sequential applies layers in order; BN + activation fusion gives the same values", async () => {
  await initGpu();
  const x = tensor([-2, -1, 0.5, 3, 7, -6, 1, 2], [1, 2, 2, 2]);
  for (const act of [ReLU, ReLU6, SiLU]) {
    for (const training of [true, false]) {
      const fused = new Sequential([new BatchNorm2d(2), act()]).train(training);
      const bn = new BatchNorm2d(2).train(training);
      const a = noGrad(() => fused.forward(x));
      const b = noGrad(() => {
        const h = bn.forward(x);
        const y = act().forward(h);
        h.dispose();
        return y;
      });
      const av = await a.read(), bv = await b.read();
      av.forEach((v, i) => assert.ok(Math.abs(v - bv[i]) < 1e-5, `${act().kind} ${v} ${bv[i]}`));
      a.dispose();
      b.dispose();
      fused.dispose();
      bn.dispose();
    }
  }
  // Order matters: conv(x) then relu differs from relu then conv for a negative weight.
  const c = new Conv2d(1, 1, 1, { bias: false });
  c.setTensor("weight", tensor([-1], [1, 1, 1, 1]));
  const s = new Sequential([c, ReLU()]);
  const y = noGrad(() => s.forward(tensor([1, -2], [1, 1, 2, 1])));
  assert.deepEqual([...await y.read()], [0, 2]);
  y.dispose();
  s.dispose();
  x.dispose();
});
