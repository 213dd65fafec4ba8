/**
 * PyTorch-layout weight import/export: the OIHW -> HWIO mapping (dense and depthwise), strict
 * errors listing every problem at once, skipping the head, non-strict reports, and export ->
 * load round-trips that reproduce the logits exactly.
 */
import assert from "node:assert/strict";
import { initGpu } from "../kernels/runtime/gpu.ts";
import { tensor } from "../core/tensor.ts";
import { tidy } from "../core/scope.ts";
import { noGrad } from "../core/autograd.ts";
import { Rng } from "../core/data/rng.ts";
import { Conv2d } from "../core/nn/conv2d.ts";
import { BatchNorm2d } from "../core/nn/batchnorm2d.ts";
import { Sequential } from "../core/nn/sequential.ts";
import { Linear } from "../core/nn/linear.ts";
import type { StateDict, StateTensor } from "../core/io/state_dict.ts";
import { createModel, type ModelName } from "./registry.ts";
import { resnet18 } from "./resnet.ts";
import { exportStateDict, loadStateDict, torchShape, torchShapes } from "./load_weights.ts";

const arange = (n: number) => Float32Array.from({ length: n }, (_, i) => i);

function smallNet(): Sequential {
  return new Sequential([
    new Conv2d(2, 3, [2, 1]),
    new BatchNorm2d(3),
    new Conv2d(3, 3, [1, 2], { groups: 3, bias: false }),
    new Linear(4, 5),
  ]);
}

function smallDict(): StateDict {
  const f = (shape: number[]) => ({
    dtype: "float32" as const,
    shape,
    data: arange(shape.reduce((a, b) => a * b, 1)),
  });
  return new Map<string, StateTensor>([
    ["0.weight", f([3, 2, 2, 1])],
    ["0.bias", f([3])],
    ["1.weight", f([3])],
    ["1.bias", f([3])],
    ["1.running_mean", f([3])],
    ["1.running_var", f([3])],
    ["1.num_batches_tracked", { dtype: "int64", shape: [], data: BigInt64Array.of(42n) }],
    ["2.weight", f([3, 1, 1, 2])],
    ["3.weight", f([5, 4])],
    ["3.bias", f([5])],
  ]);
}

Deno.test("loadStateDict maps OIHW to HWIO (dense and depthwise) and keeps Linear [out, in]", async () => {
  await initGpu();
  const net = smallNet();
  assert.deepEqual(torchShape(net, "0.weight"), [3, 2, 2, 1]);
  assert.deepEqual(torchShape(net, "2.weight"), [3, 1, 1, 2]);
  assert.throws(() => torchShape(net, "9.weight"), /no parameter or buffer '9.weight'/);
  const report = loadStateDict(net, smallDict());
  assert.equal(report.loaded.length, 10);
  const conv = net.at(0) as Conv2d, dw = net.at(2) as Conv2d;
  const w = await conv.weight.read();
  // HWIO [2, 1, 2, 3]: w[kh, kw, i, o] = oihw[o, i, kh, kw] = ((o * 2 + i) * 2 + kh) * 1 + kw.
  for (let kh = 0; kh < 2; kh++) {
    for (let i = 0; i < 2; i++) {
      for (let o = 0; o < 3; o++) assert.equal(w[(kh * 2 + i) * 3 + o], (o * 2 + i) * 2 + kh);
    }
  }
  // Depthwise [C, 1, 1, KW] -> [1, KW, 1, C]: d[kw, c] = c * 2 + kw.
  assert.deepEqual([...await dw.weight.read()], [0, 2, 4, 1, 3, 5]);
  assert.deepEqual([...await (net.at(3) as Linear).weight.read()], [...arange(20)]);
  assert.deepEqual([...await (net.at(1) as BatchNorm2d).numBatchesTracked.read()], [42]);
  // Exporting gives back the PyTorch layout exactly.
  const back = await exportStateDict(net);
  const src = smallDict();
  assert.deepEqual([...back.keys()], [...src.keys()]);
  for (const [k, t] of src) {
    assert.deepEqual(back.get(k)!.shape, t.shape, k);
    assert.deepEqual([...back.get(k)!.data], [...t.data], k);
    assert.equal(back.get(k)!.dtype, t.dtype, k);
  }
  net.dispose();
});

Deno.test("strict loading reports every missing, unexpected and mismatched key in one error", async () => {
  await initGpu();
  const net = smallNet();
  const sd = smallDict();
  sd.delete("0.bias");
  sd.delete("1.num_batches_tracked"); // optional: not an error
  sd.set("extra.weight", { dtype: "float32", shape: [1], data: arange(1) });
  sd.set("3.bias", { dtype: "float32", shape: [6], data: arange(6) });
  const before = await (net.at(3) as Linear).weight.read();
  assert.throws(
    () => loadStateDict(net, sd, { file: "w.pth" }),
    (e: Error) => {
      assert.match(e.message, /^w\.pth: /);
      assert.match(e.message, /1 missing key\(s\): 0\.bias/);
      assert.match(e.message, /1 unexpected key\(s\): extra\.weight/);
      assert.match(e.message, /1 shape mismatch\(es\): 3\.bias \(file \[6\], model \[5\]\)/);
      assert.doesNotMatch(e.message, /num_batches_tracked/);
      return true;
    },
  );
  // Nothing was loaded.
  assert.deepEqual(await (net.at(3) as Linear).weight.read(), before);
  // Non-strict loads what matches and reports the rest.
  const r = loadStateDict(net, sd, { strict: false });
  assert.deepEqual(r.missing, ["0.bias", "1.num_batches_tracked"]);
  assert.deepEqual(r.unexpected, ["extra.weight"]);
  assert.deepEqual(r.mismatched, ["3.bias (file [6], model [5])"]);
  assert.equal(r.loaded.length, 7);
  assert.deepEqual([...await (net.at(3) as Linear).weight.read()], [...arange(20)]);
  // "module." prefixes (DataParallel) are stripped by default.
  const wrapped: StateDict = new Map([...smallDict()].map(([k, v]) => [`module.${k}`, v]));
  assert.equal(loadStateDict(net, wrapped).loaded.length, 10);
  net.dispose();
});

async function logits(model: ReturnType<typeof createModel>, x: ReturnType<typeof tensor>) {
  const y = noGrad(() => tidy(() => model.forward(x)));
  const v = await y.read();
  y.dispose();
  return v;
}

function image(seed: number) {
  const rng = new Rng(seed);
  return tensor(new Float32Array(2 * 32 * 32 * 3).map(() => rng.uniform(-2, 2)), [2, 32, 32, 3]);
}

for (const name of ["resnet18", "mobilenet_v2", "efficientnet_b0"] as ModelName[]) {
  Deno.test(`${name}: export -> load into a differently seeded model reproduces the logits`, async () => {
    await initGpu();
    const a = createModel(name, { numClasses: 7, seed: 1 });
    const b = createModel(name, { numClasses: 7, seed: 2 });
    const x = image(5);
    try {
      // A training-mode forward moves the BatchNorm statistics and counters off their defaults.
      a.train();
      noGrad(() => tidy(() => a.forward(x))).dispose();
      a.eval();
      b.eval();
      const want = await logits(a, x);
      assert.notDeepEqual(await logits(b, x), want);
      const sd = await exportStateDict(a);
      assert.deepEqual(new Map([...sd].map(([k, t]) => [k, t.shape])), torchShapes(a));
      const nbt = [...sd].find(([k]) => k.endsWith("num_batches_tracked"))![1];
      assert.deepEqual([...nbt.data], [1n]);
      const r = loadStateDict(b, sd);
      assert.equal(r.loaded.length, sd.size);
      assert.deepEqual(await logits(b, x), want);
    } finally {
      x.dispose();
      a.dispose();
      b.dispose();
    }
  });
}

Deno.test("skipHead loads 1000-class ImageNet weights into a 7-class model", async () => {
  await initGpu();
  const imagenet = resnet18({ seed: 4 });
  const ham = resnet18({ numClasses: 7, seed: 5 });
  try {
    const sd = await exportStateDict(imagenet);
    assert.throws(() => loadStateDict(ham, sd), /2 shape mismatch\(es\): fc\.weight.*fc\.bias/);
    const headBefore = await ham.fc.weight.read();
    const r = loadStateDict(ham, sd, { skipHead: true });
    assert.deepEqual(r.skipped, ["fc.weight", "fc.bias"]);
    assert.equal(r.loaded.length, sd.size - 2);
    assert.deepEqual(await ham.fc.weight.read(), headBefore);
    assert.deepEqual(await ham.conv1.weight.read(), await imagenet.conv1.weight.read());
  } finally {
    imagenet.dispose();
    ham.dispose();
  }
});
