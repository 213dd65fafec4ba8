import assert from "node:assert/strict";
import fc from "fast-check";
import { UserError } from "../errors.ts";
import {
  checkStrict,
  normalizeKeys,
  renameDenseNetKey,
  type StateDict,
  type StateTensor,
  stripPrefix,
  toStateTensor,
  unwrapCheckpoint,
} from "./state_dict.ts";

const t = (...shape: number[]): StateTensor => ({
  dtype: "float32",
  shape,
  data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
});

Deno.test("renameDenseNetKey: torchvision's old-name regex", () => {
  const cases: [string, string][] = [
    [
      "features.denseblock1.denselayer1.norm.1.weight",
      "features.denseblock1.denselayer1.norm1.weight",
    ],
    [
      "features.denseblock1.denselayer1.norm.1.running_var",
      "features.denseblock1.denselayer1.norm1.running_var",
    ],
    [
      "features.denseblock4.denselayer16.conv.2.weight",
      "features.denseblock4.denselayer16.conv2.weight",
    ],
    ["features.denseblock2.denselayer3.norm.2.bias", "features.denseblock2.denselayer3.norm2.bias"],
    [
      "features.denseblock2.denselayer3.relu.1.weight",
      "features.denseblock2.denselayer3.relu1.weight",
    ],
    // Not matched: already new names, other modules, other indices or suffixes.
    [
      "features.denseblock1.denselayer1.norm1.weight",
      "features.denseblock1.denselayer1.norm1.weight",
    ],
    ["features.transition1.norm.weight", "features.transition1.norm.weight"],
    [
      "features.denseblock1.denselayer1.norm.3.weight",
      "features.denseblock1.denselayer1.norm.3.weight",
    ],
    [
      "features.denseblock1.denselayer1.norm.1.num_batches_tracked",
      "features.denseblock1.denselayer1.norm.1.num_batches_tracked",
    ],
    ["features.denselayer.norm.1.weight", "features.denselayer.norm.1.weight"],
  ];
  for (const [from, to] of cases) assert.equal(renameDenseNetKey(from), to, from);
});

Deno.test("renameDenseNetKey: property: removes exactly the one dot, idempotent", () => {
  fc.assert(
    fc.property(
      fc.stringMatching(/^[a-z0-9.]{0,12}$/),
      fc.nat(40),
      fc.constantFrom("norm", "relu", "conv"),
      fc.constantFrom("1", "2"),
      fc.constantFrom("weight", "bias", "running_mean", "running_var"),
      (pre, n, mod, idx, suffix) => {
        const old = `${pre}denselayer${n}.${mod}.${idx}.${suffix}`;
        const renamed = renameDenseNetKey(old);
        assert.equal(renamed, `${pre}denselayer${n}.${mod}${idx}.${suffix}`);
        assert.equal(renameDenseNetKey(renamed), renamed);
      },
    ),
    { seed: 5, numRuns: 300 },
  );
});

Deno.test("stripPrefix / normalizeKeys keep order and values", () => {
  const a = t(1);
  const sd: StateDict = new Map([
    ["module.fc.weight", a],
    ["module.features.denseblock1.denselayer2.conv.1.weight", t(2)],
    ["bn.bias", t(3)],
  ]);
  assert.deepEqual([...stripPrefix(sd).keys()], [
    "fc.weight",
    "features.denseblock1.denselayer2.conv.1.weight",
    "bn.bias",
  ]);
  const n = normalizeKeys(sd);
  assert.deepEqual([...n.keys()], [
    "fc.weight",
    "features.denseblock1.denselayer2.conv1.weight",
    "bn.bias",
  ]);
  assert.equal(n.get("fc.weight"), a);
  assert.deepEqual([...stripPrefix(sd, "bn.").keys()][2], "bias");
});

Deno.test("unwrapCheckpoint: finds the nested tensor dict", () => {
  const isT = (v: unknown) => v === "T";
  const inner = new Map([["w", "T"]]);
  assert.equal(unwrapCheckpoint(inner, isT), inner);
  const wrapped = new Map<unknown, unknown>([["epoch", 3], ["state_dict", inner]]);
  assert.equal(unwrapCheckpoint(wrapped, isT), inner);
  const deep = new Map([["model", new Map([["model_state_dict", inner]])]]);
  assert.equal(unwrapCheckpoint(deep, isT), inner);
  const none = new Map([["epoch", 3]]);
  assert.equal(unwrapCheckpoint(none, isT), none);
});

Deno.test("toStateTensor: float16/bfloat16/float64 -> float32, int16/int8 -> int32", () => {
  assert.deepEqual(
    toStateTensor({ dtype: "float16", shape: [2], data: Uint16Array.of(0x3c00, 0xc000) }),
    {
      dtype: "float32",
      shape: [2],
      data: Float32Array.of(1, -2),
    },
  );
  assert.deepEqual(
    toStateTensor({ dtype: "float64", shape: [], data: Float64Array.of(0.1) }).data,
    Float32Array.of(0.1),
  );
  assert.deepEqual(
    toStateTensor({ dtype: "bfloat16", shape: [1], data: Uint16Array.of(0x4040) }).data,
    Float32Array.of(3),
  );
  assert.deepEqual(toStateTensor({ dtype: "int8", shape: [2], data: Int8Array.of(-3, 4) }), {
    dtype: "int32",
    shape: [2],
    data: Int32Array.of(-3, 4),
  });
  const l = BigInt64Array.of(7n);
  assert.equal(toStateTensor({ dtype: "int64", shape: [], data: l }).data, l);
});

const EXPECTED = new Map<string, number[]>([
  ["conv.weight", [4, 3, 3, 3]],
  ["bn.weight", [4]],
  ["bn.num_batches_tracked", []],
  ["fc.weight", [7, 4]],
  ["fc.bias", [7]],
]);

Deno.test("checkStrict: passes on a match and reports optional keys", () => {
  const sd: StateDict = new Map([
    ["conv.weight", t(4, 3, 3, 3)],
    ["bn.weight", t(4)],
    ["fc.weight", t(7, 4)],
    ["fc.bias", t(7)],
  ]);
  assert.deepEqual(checkStrict(sd, EXPECTED), { missingOptional: ["bn.num_batches_tracked"] });
});

Deno.test("checkStrict: one UserError lists every problem, names the file, suggests a fix", () => {
  const sd: StateDict = new Map([
    ["conv.weight", t(4, 3, 3, 3)],
    ["bn.weight", t(5)],
    ["bn.num_batches_tracked", t()],
    ["fc.weight", t(1000, 4)],
    ["fc.bias", t(1000)],
    ["extra.a", t(1)],
    ["extra.b", t(1)],
  ]);
  const full = new Map(EXPECTED).set("conv.bias", [4]);
  assert.throws(() => checkStrict(sd, full, { file: "resnet.pth" }), (e: unknown) => {
    assert.ok(e instanceof UserError);
    const m = e.message;
    assert.match(m, /^resnet\.pth: weights do not match the model: /);
    assert.match(m, /1 missing key\(s\): conv\.bias/);
    assert.match(m, /2 unexpected key\(s\): extra\.a, extra\.b/);
    assert.match(m, /3 shape mismatch\(es\): bn\.weight \(file \[5\], model \[4\]\)/);
    assert.match(m, /fc\.weight \(file \[1000,4\], model \[7,4\]\)/);
    assert.match(m, /fc\.bias \(file \[1000\], model \[7\]\)/);
    assert.match(m, /Fix: .*classifier head/);
    assert.ok(!m.includes("\n"), "one line");
    return true;
  });
  // Skipping the head and the extras leaves only bn.weight and conv.bias.
  assert.throws(
    () => checkStrict(sd, full, { skipPrefixes: ["fc.", "extra."], hint: "use --head new" }),
    (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.ok(!e.message.includes("fc."), e.message);
      assert.match(
        e.message,
        /^weights do not match.*conv\.bias.*bn\.weight.*Fix: use --head new$/,
      );
      return true;
    },
  );
  const ok = new Map(sd);
  ok.delete("extra.a");
  ok.delete("extra.b");
  ok.set("bn.weight", t(4));
  assert.deepEqual(checkStrict(ok, EXPECTED, { skipPrefixes: ["fc."] }), { missingOptional: [] });
});

Deno.test("checkStrict: suggests stripping module. when every key has it", () => {
  const sd: StateDict = new Map([["module.conv.weight", t(4, 3, 3, 3)]]);
  assert.throws(() => checkStrict(sd, EXPECTED), /"module\."/);
});
