import assert from "node:assert/strict";
import { join } from "node:path";
import { UserError } from "../errors.ts";
import {
  detectWeightsFormat,
  loadSafetensorsFile,
  loadWeightsFile,
  parseWeights,
  saveSafetensorsFile,
} from "./load.ts";
import { writeNpy } from "./npy.ts";
import type { StateDict } from "./state_dict.ts";
import { le, SHARED, TORCH_FIXTURES, torchPickle, torchZip } from "./testing_builders.ts";
import { assertMatchesExpected } from "./testing_expected.ts";

const MOBILENET = new URL(
  "weights/mobilenet_v2/tfslim_mobilenet_v2_1.0_224_fp32_bnfolded_npy/",
  SHARED,
);

const FIXTURES: [string, string][] = [
  ["tiny_zip_torch1.13.pth", "torch-zip"],
  ["tiny_legacy_torch1.13.pth", "torch-legacy"],
  ["tiny.safetensors", "safetensors"],
];

for (const [file, format] of FIXTURES) {
  Deno.test(`loadWeightsFile: ${file} (${format}) equals tiny_expected.json`, async () => {
    const path = new URL(file, TORCH_FIXTURES).pathname;
    assert.equal(detectWeightsFormat(await Deno.readFile(path)), format);
    assertMatchesExpected(await loadWeightsFile(path));
  });
}

Deno.test("loadWeightsFile: format comes from magic bytes, not the extension", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dermagpu_load_" });
  try {
    const misnamed = join(dir, "weights.safetensors");
    await Deno.copyFile(new URL("tiny_legacy_torch1.13.pth", TORCH_FIXTURES), misnamed);
    assertMatchesExpected(await loadWeightsFile(misnamed));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadWeightsFile: a directory of .npy files (real TF-slim MobileNetV2 backbone)", async () => {
  const sd = await loadWeightsFile(MOBILENET.pathname);
  assert.equal(sd.size, 105);
  const mapping = JSON.parse(await Deno.readTextFile(new URL("mapping.json", MOBILENET)));
  let checked = 0;
  for (const e of mapping.entries) {
    if (e.present !== false) {
      assert.deepEqual(sd.get(e.weight.replace(/\.npy$/, ""))!.shape, e.npy_shape, e.weight);
      checked++;
    }
    assert.deepEqual(sd.get(e.bias.replace(/\.npy$/, ""))!.shape, e.bias_shape, e.bias);
  }
  assert.equal(checked, 52);
  for (const [k, t] of sd) {
    assert.equal(t.dtype, "float32", k);
    assert.ok((t.data as Float32Array).every(Number.isFinite), k);
  }
});

Deno.test("parseWeights: a single .npy is keyed by its file stem", () => {
  const bytes = writeNpy({ dtype: "float64", shape: [2], data: Float64Array.of(1, 2) });
  const sd = parseWeights(bytes, "/x/y/fc.bias.npy");
  assert.deepEqual([...sd], [["fc.bias", {
    dtype: "float32",
    shape: [2],
    data: Float32Array.of(1, 2),
  }]]);
});

Deno.test("parseWeights: normalizes keys unless rawKeys", () => {
  const pkl = torchPickle([{
    name: "module.features.denseblock1.denselayer1.norm.1.weight",
    storage: "FloatStorage",
    key: "0",
    storageNumel: 2,
    offset: 0,
    size: [2],
    stride: [1],
  }], { wrap: ["state_dict"] });
  const bytes = torchZip(pkl, [["0", le(Float32Array.of(1, 2))]]);
  assert.deepEqual([...parseWeights(bytes, "d.pth").keys()], [
    "features.denseblock1.denselayer1.norm1.weight",
  ]);
  assert.deepEqual([...parseWeights(bytes, "d.pth", { rawKeys: true }).keys()], [
    "module.features.denseblock1.denselayer1.norm.1.weight",
  ]);
});

Deno.test("loadWeightsFile: errors name the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dermagpu_load_" });
  try {
    const junk = join(dir, "junk.pth");
    await Deno.writeTextFile(junk, "hello, not weights");
    await assert.rejects(() => loadWeightsFile(junk), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.ok(e.message.startsWith(`${junk}: unrecognised weights file format`), e.message);
      return true;
    });
    const missing = join(dir, "missing.pth");
    await assert.rejects(() => loadWeightsFile(missing), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.ok(e.message.startsWith(`${missing}: cannot open`), e.message);
      return true;
    });
    await assert.rejects(() => loadWeightsFile(dir), /no \.npy files/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("saveSafetensorsFile / loadSafetensorsFile round-trip a training checkpoint", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dermagpu_load_" });
  try {
    const sd: StateDict = new Map([
      ["fc.weight", { dtype: "float32", shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) }],
      ["bn.num_batches_tracked", { dtype: "int64", shape: [], data: BigInt64Array.of(123n) }],
      ["mask", { dtype: "uint8", shape: [2], data: Uint8Array.of(0, 255) }],
      ["step", { dtype: "int32", shape: [1], data: Int32Array.of(-4) }],
    ]);
    const path = join(dir, "ckpt.safetensors");
    await saveSafetensorsFile(path, sd, { epoch: "3", model: "resnet18" });
    const back = await loadSafetensorsFile(path);
    assert.deepEqual(back.metadata, { epoch: "3", model: "resnet18" });
    assert.deepEqual(new Map([...back.stateDict].sort()), new Map([...sd].sort()));
    assert.deepEqual(await loadWeightsFile(path), back.stateDict);
    await assert.rejects(() => loadSafetensorsFile(join(dir, "nope")), /nope: cannot open/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
