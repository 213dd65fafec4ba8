import assert from "node:assert/strict";
import { initGpu } from "../../kernels/runtime/gpu.ts";
import { tensor } from "../tensor.ts";
import { noGrad } from "../autograd.ts";
import { tidy } from "../scope.ts";
import { Rng } from "../data/rng.ts";
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

Deno.test("inference folds Conv2d -> BatchNorm2d (-> activation) into one conv, same values", async () => {
  await initGpu();
  assert.equal(Sequential.foldBatchNorm, "auto");
  // "auto" folds on real GPUs only; force it so the folded path runs here too.
  Sequential.foldBatchNorm = true;
  const rng = new Rng(3);
  const x = tensor(Float32Array.from({ length: 2 * 5 * 4 * 3 }, () => rng.uniform(-2, 2)), [
    2,
    5,
    4,
    3,
  ]);
  for (const act of [null, ReLU, ReLU6, SiLU]) {
    for (const bias of [false, true]) {
      for (const groups of [1, 3]) {
        const conv = new Conv2d(3, 6, 3, { padding: 1, stride: 2, bias, groups, rng });
        const bn = new BatchNorm2d(6);
        // Non-trivial statistics and affine parameters.
        bn.setTensor(
          "running_mean",
          tensor(Float32Array.from({ length: 6 }, () => rng.uniform(-1, 1))),
        );
        bn.setTensor(
          "running_var",
          tensor(Float32Array.from({ length: 6 }, () => rng.uniform(0.5, 2))),
        );
        bn.setTensor(
          "weight",
          tensor(Float32Array.from({ length: 6 }, () => rng.uniform(0.5, 1.5))),
        );
        bn.setTensor("bias", tensor(Float32Array.from({ length: 6 }, () => rng.uniform(-1, 1))));
        const seq = new Sequential([conv, bn, act ? act() : null]).eval();
        const folded = noGrad(() => seq.forward(x));
        // With the tape on, the layers run one by one (no folding).
        const plain = tidy(() => seq.forward(x));
        assert.ok(plain.node, "the reference ran on the tape, unfolded");
        const a = await folded.read(), b = await plain.read();
        assert.deepEqual(folded.shape, plain.shape);
        a.forEach((v, i) =>
          assert.ok(Math.abs(v - b[i]) < 1e-5 * (1 + Math.abs(b[i])), `${v} vs ${b[i]}`)
        );
        folded.dispose();
        plain.dispose();
        seq.dispose();
      }
    }
  }
  Sequential.foldBatchNorm = "auto";
  x.dispose();
});

Deno.test("BatchNorm folding follows its switch: off means BatchNorm's own kernel runs", async () => {
  const g = await initGpu();
  const conv = new Conv2d(2, 2, 1, { bias: false });
  const bn = new BatchNorm2d(2);
  const seq = new Sequential([conv, bn]).eval();
  const x = tensor([1, 2, 3, 4], [1, 1, 2, 2]);
  const dispatches = (fold: boolean) => {
    Sequential.foldBatchNorm = fold;
    const before = g.batcher.dispatches;
    noGrad(() => seq.forward(x)).dispose();
    return g.batcher.dispatches - before;
  };
  try {
    // Folded: the fold's small weight ops + one conv; unfolded: conv + the BatchNorm kernel.
    const folded = dispatches(true), unfolded = dispatches(false);
    assert.equal(unfolded, 2);
    assert.ok(folded > unfolded, `folded ${folded} dispatches, unfolded ${unfolded}`);
  } finally {
    Sequential.foldBatchNorm = "auto";
    seq.dispose();
    x.dispose();
  }
});
