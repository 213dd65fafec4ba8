import assert from "node:assert/strict";
import { initGpu } from "../../kernels/runtime/gpu.ts";
import { conv2dCpu, conv2dParams } from "../../kernels/ops/conv2d.ts";
import { Rng } from "../data/rng.ts";
import { tensor } from "../tensor.ts";
import { noGrad } from "../autograd.ts";
import { Conv2d } from "./conv2d.ts";

function stats(a: Float32Array | Int32Array): { mean: number; std: number; maxAbs: number } {
  let s = 0, s2 = 0, m = 0;
  for (const v of a) {
    s += v;
    s2 += v * v;
    m = Math.max(m, Math.abs(v));
  }
  const mean = s / a.length;
  return { mean, std: Math.sqrt(s2 / a.length - mean * mean), maxAbs: m };
}

Deno.test("Conv2d registers weight (HWIO) and bias under PyTorch names, with torch shape", async () => {
  await initGpu();
  const c = new Conv2d(6, 8, [3, 5], { groups: 2 });
  assert.deepEqual(c.namedParameters().map(([n, t]) => [n, [...t.shape]]), [
    ["weight", [3, 5, 3, 8]],
    ["bias", [8]],
  ]);
  assert.deepEqual(c.torchWeightShape, [8, 3, 3, 5]);
  const nb = new Conv2d(4, 4, 1, { bias: false });
  assert.deepEqual(nb.namedParameters().map(([n]) => n), ["weight"]);
  assert.equal(nb.bias, null);
  assert.throws(() => new Conv2d(3, 4, 3, { groups: 2 }), /divisible/);
  c.dispose();
  nb.dispose();
});

Deno.test("Conv2d default init is U(-1/sqrt(fan_in), ..) and kaiming_normal uses the fan", async () => {
  await initGpu();
  const d = new Conv2d(32, 64, 3, { rng: new Rng(1) });
  const bound = 1 / Math.sqrt(32 * 9);
  const w = stats(await d.weight.read()), b = stats(await d.bias!.read());
  assert.ok(w.maxAbs <= bound && w.maxAbs > 0.95 * bound, `max ${w.maxAbs} vs ${bound}`);
  assert.ok(Math.abs(w.std - bound / Math.sqrt(3)) < 0.05 * bound, `std ${w.std}`);
  assert.ok(b.maxAbs <= bound && b.maxAbs > 0);
  const fo = new Conv2d(32, 64, 3, { init: { kaimingNormal: "fan_out" }, rng: new Rng(2) });
  const fi = new Conv2d(32, 64, 3, { init: { kaimingNormal: "fan_in" }, rng: new Rng(2) });
  const so = stats(await fo.weight.read()), si = stats(await fi.weight.read());
  assert.ok(Math.abs(so.std / Math.sqrt(2 / (64 * 9)) - 1) < 0.03, `fan_out std ${so.std}`);
  assert.ok(Math.abs(si.std / Math.sqrt(2 / (32 * 9)) - 1) < 0.03, `fan_in std ${si.std}`);
  assert.ok(Math.abs(so.mean) < 0.01);
  assert.deepEqual([...await fo.bias!.read()].filter((v) => v !== 0), []);
  // The same seed gives the same weights.
  const again = new Conv2d(32, 64, 3, { rng: new Rng(1) });
  assert.deepEqual(await again.weight.read(), await d.weight.read());
  for (const m of [d, fo, fi, again]) m.dispose();
});

Deno.test("Conv2d forward matches the f64 reference (stride, padding, groups, bias)", async () => {
  await initGpu();
  const rng = new Rng(3);
  const c = new Conv2d(4, 6, 3, { stride: 2, padding: 1, groups: 2, rng });
  const xs = new Float32Array(2 * 5 * 5 * 4).map(() => rng.uniform(-1, 1));
  const x = tensor(xs, [2, 5, 5, 4]);
  const y = noGrad(() => c.forward(x));
  assert.deepEqual([...y.shape], [2, 3, 3, 6]);
  const p = conv2dParams({
    N: 2,
    H: 5,
    W: 5,
    Cin: 4,
    Cout: 6,
    KH: 3,
    KW: 3,
    strideH: 2,
    strideW: 2,
    padTop: 1,
    padBottom: 1,
    padLeft: 1,
    padRight: 1,
    groups: 2,
  });
  const ref = conv2dCpu(
    Float64Array.from(xs),
    Float64Array.from(await c.weight.read()),
    p,
    { bias: Float64Array.from(await c.bias!.read()) },
  );
  const got = await y.read();
  for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(got[i] - ref[i]) < 1e-4, `at ${i}`);
  // Fused activation: relu of the same output.
  const r = noGrad(() => c.forward(x, { activation: "relu" }));
  const gotR = await r.read();
  for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(gotR[i] - Math.max(ref[i], 0)) < 1e-4);
  for (const t of [x, y, r]) t.dispose();
  c.dispose();
});

Deno.test("Conv2d.setTensor replaces the weight used by forward", async () => {
  await initGpu();
  const c = new Conv2d(1, 1, 1, { bias: false });
  c.setTensor("weight", tensor([3], [1, 1, 1, 1]));
  const x = tensor([1, 2], [1, 1, 2, 1]);
  const y = noGrad(() => c.forward(x));
  assert.deepEqual([...await y.read()], [3, 6]);
  assert.throws(() => c.setTensor("weight", tensor([1, 2], [1, 1, 1, 2])), /shape/);
  x.dispose();
  y.dispose();
  c.dispose();
});
