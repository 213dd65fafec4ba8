/**
 * The four architectures against torchvision 0.14: every state_dict key, dtype and PyTorch-
 * layout shape in order, parameter counts, BatchNorm settings, a 7-class head that changes only
 * the head, and finite logits from tiny-input forwards in eval and training mode.
 */
import assert from "node:assert/strict";
import { initGpu } from "../kernels/runtime/gpu.ts";
import { tensor } from "../core/tensor.ts";
import { tidy } from "../core/scope.ts";
import { noGrad } from "../core/autograd.ts";
import { Rng } from "../core/data/rng.ts";
import { BatchNorm2d } from "../core/nn/batchnorm2d.ts";
import { createModel, MODEL_NAMES, MODELS } from "./registry.ts";
import { torchEntries } from "./load_weights.ts";
import { readReference } from "./testing_reference.ts";

function input(n: number, size: number, seed: number) {
  const rng = new Rng(seed);
  const data = new Float32Array(n * size * size * 3).map(() => rng.uniform(-2, 2));
  return tensor(data, [n, size, size, 3]);
}

for (const name of MODEL_NAMES) {
  Deno.test(`${name}: state_dict keys, dtypes, shapes and parameter count match torchvision`, async () => {
    await initGpu();
    const ref = readReference(name);
    const model = createModel(name);
    try {
      const got = [...torchEntries(model)].map(([k, e]) => `${k}\t${e.dtype}\t[${e.shape}]`);
      const want = ref.entries.map((e) => `${e.key}\t${e.dtype}\t[${e.shape}]`);
      assert.deepEqual(got, want);
      const params = model.parameters().reduce((s, t) => s + t.size, 0);
      assert.equal(params, ref.params);
      assert.equal(params, MODELS[name].imagenetParams);
      assert.equal(model.namedBuffers().reduce((s, [, t]) => s + t.size, 0), ref.bufferNumel);
      assert.ok(model.parameters().every((p) => p.requiresGrad));
      const bns: BatchNorm2d[] = [];
      const walk = (m: typeof model | import("../core/nn/module.ts").Module) => {
        if (m instanceof BatchNorm2d) bns.push(m);
        for (const [, c] of m.children()) walk(c);
      };
      walk(model);
      assert.ok(bns.length > 0);
      assert.ok(bns.every((b) => b.eps === ref.eps && b.momentum === ref.momentum));
      assert.equal(model.arch, name);
      assert.equal(model.headPrefix, MODELS[name].headPrefix);
    } finally {
      model.dispose();
    }
  });

  Deno.test(`${name}: numClasses = 7 changes only the head`, async () => {
    await initGpu();
    const ref = readReference(name);
    const model = createModel(name, { numClasses: 7 });
    try {
      const head = MODELS[name].headPrefix;
      const got = torchEntries(model);
      assert.deepEqual([...got.keys()], ref.entries.map((e) => e.key));
      let headKeys = 0;
      for (const e of ref.entries) {
        const shape = got.get(e.key)!.shape;
        if (e.key.startsWith(head)) {
          headKeys++;
          assert.deepEqual(shape, e.key.endsWith("weight") ? [7, e.shape[1]] : [7], e.key);
        } else {
          assert.deepEqual(shape, e.shape, e.key);
        }
      }
      assert.equal(headKeys, 2);
      assert.equal(model.numClasses, 7);
      // Freezing leaves only the head trainable; unfreeze restores everything.
      model.freezeBackbone();
      const trainable = model.namedParameters().filter(([, p]) => p.requiresGrad).map(([n]) => n);
      assert.deepEqual(trainable, [`${head}weight`, `${head}bias`]);
      assert.equal(model.headParameters().length, 2);
      model.unfreeze();
      assert.ok(model.parameters().every((p) => p.requiresGrad));
    } finally {
      model.dispose();
    }
  });

  Deno.test(`${name}: a 32x32 forward gives finite logits [2, 7] in eval and train mode`, async () => {
    await initGpu();
    const model = createModel(name, { numClasses: 7, seed: 3 });
    const x = input(2, 32, 11);
    try {
      for (const training of [false, true]) {
        model.train(training);
        const y = noGrad(() => tidy(() => model.forward(x)));
        assert.deepEqual([...y.shape], [2, 7]);
        const v = await y.read();
        y.dispose();
        assert.ok(v.every(Number.isFinite), `${training ? "train" : "eval"}: ${v}`);
        assert.ok(v.some((a) => a !== 0));
        // The two samples differ, so the logits do too.
        assert.notDeepEqual([...v.slice(0, 7)], [...v.slice(7)]);
      }
    } finally {
      x.dispose();
      model.dispose();
    }
  });
}

Deno.test("createModel rejects unknown names and bad numClasses", () => {
  assert.throws(() => createModel("vgg16"), /unknown model 'vgg16'.*resnet18/);
  assert.throws(() => createModel("resnet18", { numClasses: 0 }), /positive integer/);
  assert.deepEqual(MODEL_NAMES, ["resnet18", "densenet121", "mobilenet_v2", "efficientnet_b0"]);
  for (const n of MODEL_NAMES) {
    assert.match(MODELS[n].weightsUrl, /^https:\/\/download\.pytorch\.org\/models\/.+\.pth$/);
  }
});
