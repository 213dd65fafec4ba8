import assert from "node:assert/strict";
import { UserError } from "../errors.ts";
import { float32ToFloat16 } from "./f16.ts";
import {
  type FakeTensor,
  le,
  PickleWriter,
  TORCH_FIXTURES,
  torchLegacy,
  torchPickle,
  torchZip,
} from "./testing_builders.ts";
import { assertMatchesExpected } from "./testing_expected.ts";
import { isTorchLegacy, loadTorch } from "./torch.ts";
import { isZip } from "./zip.ts";

const fixture = async (f: string) => await Deno.readFile(new URL(f, TORCH_FIXTURES));

Deno.test("loadTorch: tiny zip fixture (torch 1.13) equals tiny_expected.json", async () => {
  const bytes = await fixture("tiny_zip_torch1.13.pth");
  assert.ok(isZip(bytes) && !isTorchLegacy(bytes));
  assertMatchesExpected(loadTorch(bytes, "tiny_zip.pth"));
});

Deno.test("loadTorch: tiny legacy fixture (torch 1.13) equals tiny_expected.json", async () => {
  const bytes = await fixture("tiny_legacy_torch1.13.pth");
  assert.ok(isTorchLegacy(bytes) && !isZip(bytes));
  assertMatchesExpected(loadTorch(bytes, "tiny_legacy.pth"));
});

Deno.test("loadTorch: views of one storage are independent copies", async () => {
  const sd = loadTorch(await fixture("tiny_zip_torch1.13.pth"));
  const a = sd.get("view.a")!.data as Float32Array;
  const b = sd.get("view.b")!.data as Float32Array;
  a[0] = 100;
  assert.equal(b[0], 6);
  assert.notEqual(a.buffer, b.buffer);
});

const f32 = (n: number, f = (i: number) => i) => Float32Array.from({ length: n }, (_, i) => f(i));
const T = (t: Partial<FakeTensor> & { name: string; size: number[] }): FakeTensor => ({
  storage: "FloatStorage",
  key: "0",
  storageNumel: t.size.reduce((a, b) => a * b, 1),
  offset: 0,
  stride: t.size.map((_, i) => t.size.slice(i + 1).reduce((a, b) => a * b, 1)),
  ...t,
});

Deno.test("loadTorch: non-contiguous strides give contiguous copies", () => {
  // storage holds a 2x3 row-major matrix 0..5; "t" is its transpose (size [3,2], stride [1,3]),
  // "col" is column 1 (size [2], stride [3], offset 1), "e" broadcasts element 4 (stride 0).
  const pkl = torchPickle([
    T({ name: "m", size: [2, 3] }),
    T({ name: "t", size: [3, 2], stride: [1, 3], storageNumel: 6 }),
    T({ name: "col", size: [2], stride: [3], offset: 1, storageNumel: 6 }),
    T({ name: "e", size: [2, 2], stride: [0, 0], offset: 4, storageNumel: 6 }),
  ]);
  const sd = loadTorch(torchZip(pkl, [["0", le(f32(6))]]));
  assert.deepEqual([...sd.get("m")!.data as Float32Array], [0, 1, 2, 3, 4, 5]);
  assert.deepEqual([...sd.get("t")!.data as Float32Array], [0, 3, 1, 4, 2, 5]);
  assert.deepEqual(sd.get("t")!.shape, [3, 2]);
  assert.deepEqual([...sd.get("col")!.data as Float32Array], [1, 4]);
  assert.deepEqual([...sd.get("e")!.data as Float32Array], [4, 4, 4, 4]);
});

Deno.test("loadTorch: float64, float16, bfloat16, int32, uint8 and bool storages", () => {
  const half = float32ToFloat16(Float32Array.of(0.5, -2, 65504));
  const bf16 = Uint16Array.of(0x3f80, 0xc000); // 1, -2
  const pkl = torchPickle([
    T({ name: "d", storage: "DoubleStorage", key: "d", size: [2] }),
    T({ name: "h", storage: "HalfStorage", key: "h", size: [3] }),
    T({ name: "b", storage: "BFloat16Storage", key: "b", size: [2] }),
    T({ name: "i", storage: "IntStorage", key: "i", size: [2] }),
    T({ name: "u", storage: "ByteStorage", key: "u", size: [2] }),
    T({ name: "q", storage: "BoolStorage", key: "q", size: [2] }),
    T({ name: "l", storage: "LongStorage", key: "l", size: [2] }),
  ]);
  const sd = loadTorch(torchZip(pkl, [
    ["d", le(Float64Array.of(0.1, -3))],
    ["h", le(half)],
    ["b", le(bf16)],
    ["i", le(Int32Array.of(-7, 9))],
    ["u", Uint8Array.of(200, 3)],
    ["q", Uint8Array.of(1, 0)],
    ["l", le(BigInt64Array.of(-(2n ** 40n), 5n))],
  ]));
  assert.deepEqual(sd.get("d"), { dtype: "float32", shape: [2], data: Float32Array.of(0.1, -3) });
  assert.deepEqual(sd.get("h"), {
    dtype: "float32",
    shape: [3],
    data: Float32Array.of(0.5, -2, 65504),
  });
  assert.deepEqual(sd.get("b"), { dtype: "float32", shape: [2], data: Float32Array.of(1, -2) });
  assert.deepEqual(sd.get("i"), { dtype: "int32", shape: [2], data: Int32Array.of(-7, 9) });
  assert.deepEqual(sd.get("u"), { dtype: "uint8", shape: [2], data: Uint8Array.of(200, 3) });
  assert.deepEqual(sd.get("q"), { dtype: "bool", shape: [2], data: Uint8Array.of(1, 0) });
  assert.deepEqual(sd.get("l")!.data, BigInt64Array.of(-(2n ** 40n), 5n));
});

Deno.test("loadTorch: ZIP64 archive, deflated entries, other prefix, big-endian byteorder", () => {
  const pkl = torchPickle([T({ name: "w", size: [3] })]);
  const values = Float32Array.of(1.5, -2, 3);
  const big = new Uint8Array(12);
  const dv = new DataView(big.buffer);
  values.forEach((v, i) => dv.setFloat32(4 * i, v, false));
  for (const opts of [{ zip64: true }, { deflate: true }, { prefix: "resnet18_zip" }]) {
    assert.deepEqual(loadTorch(torchZip(pkl, [["0", le(values)]], opts)).get("w")!.data, values);
  }
  const sd = loadTorch(torchZip(pkl, [["0", big]], { byteorder: "big" }));
  assert.deepEqual(sd.get("w")!.data, values);
});

Deno.test("loadTorch: unwraps {'state_dict': ...} and {'model': {'state_dict': ...}}", () => {
  for (const wrap of [["state_dict"], ["model"], ["model", "state_dict"]]) {
    const pkl = torchPickle([T({ name: "module.fc.bias", size: [2] })], { wrap });
    const sd = loadTorch(torchZip(pkl, [["0", le(f32(2))]]));
    assert.deepEqual([...sd.keys()], ["module.fc.bias"], wrap.join("/"));
  }
});

Deno.test("loadTorch: nn.Parameter via _rebuild_parameter", () => {
  const pkl = torchPickle([T({ name: "p", size: [2], parameter: true })]);
  assert.deepEqual(
    loadTorch(torchZip(pkl, [["0", le(f32(2, (i) => i + 1))]])).get("p")!.data,
    f32(2, (i) => i + 1),
  );
});

Deno.test("loadTorch: legacy stream with storage views and big-endian sys_info", () => {
  // Root storage "r" of 6 elements; "v" is a legacy view of elements 2..5 of it.
  const pkl = torchPickle([
    T({ name: "whole", key: "r", size: [6], storageNumel: 6 }),
    T({ name: "v", key: "r", size: [2], offset: 1, storageNumel: 6, view: ["view1", 2, 4] }),
  ], { legacy: true });
  const sd = loadTorch(torchLegacy(pkl, [["r", 6, le(f32(6))]]));
  assert.deepEqual([...sd.get("whole")!.data as Float32Array], [0, 1, 2, 3, 4, 5]);
  assert.deepEqual([...sd.get("v")!.data as Float32Array], [3, 4]);
  const big = new Uint8Array(24);
  f32(6).forEach((v, i) => new DataView(big.buffer).setFloat32(4 * i, v, false));
  const sdBig = loadTorch(torchLegacy(pkl, [["r", 6, big]], { littleEndian: false }));
  assert.deepEqual([...sdBig.get("whole")!.data as Float32Array], [0, 1, 2, 3, 4, 5]);
});

function throwsUser(fn: () => unknown, re: RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UserError, String(e));
    assert.match(e.message, /^bad\.pth[ :]/);
    assert.match(e.message, re);
    return true;
  });
}

Deno.test("loadTorch: clear errors for broken or unsafe checkpoints", () => {
  const ok = torchPickle([T({ name: "w", size: [4] })]);
  throwsUser(() => loadTorch(Uint8Array.of(1, 2, 3), "bad.pth"), /not a torch\.save checkpoint/);
  throwsUser(
    () => loadTorch(torchZip(ok, [["0", le(f32(3))]]), "bad.pth"),
    /storage "archive\/data\/0" has 12 bytes, expected 16/,
  );
  throwsUser(
    () => loadTorch(torchZip(ok, []), "bad.pth"),
    /storage entry "archive\/data\/0" is missing/,
  );
  const past = torchPickle([T({ name: "w", size: [4], offset: 2, storageNumel: 4 })]);
  throwsUser(
    () => loadTorch(torchZip(past, [["0", le(f32(4))]]), "bad.pth"),
    /reaches past its storage/,
  );
  const model = new PickleWriter().proto().global("torchvision.models.resnet", "ResNet").stop()
    .bytes();
  throwsUser(
    () => loadTorch(torchZip(model, []), "bad.pth"),
    /"torchvision\.models\.resnet\.ResNet".*state_dict/,
  );
  const noTensors = new PickleWriter().proto().emptyDict().str("epoch").int(3).op(0x73).stop()
    .bytes();
  throwsUser(() => loadTorch(torchZip(noTensors, []), "bad.pth"), /no tensors found.*epoch/);
  throwsUser(
    () => loadTorch(torchLegacy(ok, [["0", 4, le(f32(4))]]).subarray(0, 200), "bad.pth"),
    /truncated/,
  );
});
