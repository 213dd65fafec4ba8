import assert from "node:assert/strict";
import { forwardFlops, type Layer, MODEL_NAMES, modelForwardFlops, modelLayers } from "./shapes.ts";

/** Parameters implied by the layer shapes (conv weights, SE conv biases, BN, the fc head). */
function params(layers: Layer[]): number {
  let n = 0;
  for (const { op, count } of layers) {
    if (op.kind === "conv") {
      const p = op.p;
      // Only squeeze-excitation convs (on a 1x1 map) have a bias in these architectures.
      n += count * (p.KH * p.KW * (p.Cin / p.groups) * p.Cout + (p.H === 1 ? p.Cout : 0));
    } else if (op.kind === "depthwise") n += count * op.p.KH * op.p.KW * op.p.C;
    else if (op.kind === "bn") n += count * 2 * op.p.C;
    else if (op.kind === "linear") n += count * (op.p.K + 1) * op.p.N;
  }
  return n;
}

const macs = (layers: Layer[]) =>
  layers.filter((l) => ["conv", "depthwise", "linear"].includes(l.op.kind))
    .reduce((s, l) => s + l.count * forwardFlops(l.op) / 2, 0);

Deno.test("layer shapes reproduce torchvision's parameter counts (1000 classes)", () => {
  const expected = {
    resnet18: 11_689_512,
    densenet121: 7_978_856,
    mobilenet_v2: 3_504_872,
    efficientnet_b0: 5_288_548,
  };
  for (const m of MODEL_NAMES) assert.equal(params(modelLayers(m, 1, 224, 1000)), expected[m], m);
});

Deno.test("layer shapes give the published multiply-adds at 224 px", () => {
  // torchvision's model docs (GFLOPS column counts multiply-adds): 1.81, 2.83, 0.30, 0.39.
  const expected = { resnet18: 1.81, densenet121: 2.83, mobilenet_v2: 0.30, efficientnet_b0: 0.39 };
  for (const m of MODEL_NAMES) {
    const g = macs(modelLayers(m, 1, 224, 1000)) / 1e9;
    assert.ok(Math.abs(g - expected[m]) < 0.011, `${m}: ${g.toFixed(3)} GMACs`);
  }
});

Deno.test("shapes scale with batch and size; identical layers are merged with a count", () => {
  const a = modelLayers("resnet18", 1, 224), b = modelLayers("resnet18", 64, 224);
  assert.equal(a.length, b.length);
  assert.ok(Math.abs(modelForwardFlops(b) / modelForwardFlops(a) - 64) < 1e-9);
  const conv64 = a.find((l) => l.key.startsWith("conv N1 56x56x64->64 k3x3 s1"));
  assert.equal(conv64?.count, 4, "layer1 has four 3x3 64->64 convs");
  const keys = new Set(a.map((l) => l.key));
  assert.equal(keys.size, a.length, "keys are unique");
  const small = modelLayers("efficientnet_b0", 2, 64);
  const last = small.filter((l) => l.op.kind === "gap").at(-1)!.op;
  assert.ok(last.kind === "gap");
  assert.deepEqual([last.p.N, last.p.H, last.p.C], [2, 2, 1280]);
});
