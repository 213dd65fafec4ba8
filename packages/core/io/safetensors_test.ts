import assert from "node:assert/strict";
import fc from "fast-check";
import { UserError } from "../errors.ts";
import type { RawTensor } from "./dtypes.ts";
import { isSafetensors, readSafetensors, writeSafetensors } from "./safetensors.ts";
import { toStateTensor } from "./state_dict.ts";
import { tensorArb } from "./testing_arbitraries.ts";
import { TORCH_FIXTURES } from "./testing_builders.ts";
import { assertMatchesExpected } from "./testing_expected.ts";

const ALL = [
  "float32",
  "float64",
  "float16",
  "bfloat16",
  "int64",
  "int32",
  "int16",
  "int8",
  "uint8",
  "bool",
] as const;

Deno.test("safetensors: reads the tiny fixture exactly, with its metadata", async () => {
  const bytes = await Deno.readFile(new URL("tiny.safetensors", TORCH_FIXTURES));
  assert.ok(isSafetensors(bytes));
  const { tensors, metadata } = readSafetensors(bytes, "tiny.safetensors");
  assert.deepEqual(metadata, { format: "pt" });
  assert.equal(tensors.get("half.weight")!.dtype, "float16");
  assert.equal(tensors.get("bn.num_batches_tracked")!.dtype, "int64");
  assertMatchesExpected(new Map([...tensors].map(([k, t]) => [k, toStateTensor(t)])));
});

Deno.test("safetensors: write/read round-trip (all dtypes, 0-rank and empty tensors)", () => {
  const named = fc.uniqueArray(
    fc.tuple(
      fc.oneof(fc.constant("__proto__"), fc.string({ minLength: 1, maxLength: 12 }))
        .filter((s) => s !== "__metadata__"),
      tensorArb([...ALL]),
    ),
    { selector: ([k]) => k, maxLength: 6 },
  );
  const meta = fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), {
    maxKeys: 3,
  });
  fc.assert(
    fc.property(named, meta, (entries, metadata) => {
      const bytes = writeSafetensors(new Map(entries), metadata);
      const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      assert.equal(n % 8, 0, "header padded to a multiple of 8");
      const back = readSafetensors(bytes);
      assert.deepEqual(back.metadata, Object.fromEntries(Object.entries(metadata)));
      assert.deepEqual(
        back.tensors,
        new Map(entries.map(([k, t]) => [k, { ...t, shape: t.shape }])),
      );
    }),
    { seed: 99, numRuns: 200 },
  );
});

Deno.test("safetensors: writer orders tensors by descending alignment then name", () => {
  const t = (dtype: RawTensor["dtype"], data: RawTensor["data"]): RawTensor => ({
    dtype,
    shape: [data.length],
    data,
  });
  const bytes = writeSafetensors({
    b8: t("uint8", Uint8Array.of(1)),
    z: t("float32", Float32Array.of(1)),
    a: t("float32", Float32Array.of(2)),
    l: t("int64", BigInt64Array.of(3n)),
  });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  const order = Object.entries(header as Record<string, { data_offsets: number[] }>)
    .sort((x, y) => x[1].data_offsets[0] - y[1].data_offsets[0]).map(([k]) => k);
  assert.deepEqual(order, ["l", "a", "z", "b8"]);
  assert.equal(header.__metadata__, undefined);
});

Deno.test("safetensors: writer rejects inconsistent tensors", () => {
  assert.throws(
    () => writeSafetensors({ x: { dtype: "float32", shape: [3], data: Float32Array.of(1, 2) } }),
    TypeError,
  );
  assert.throws(
    () => writeSafetensors({ x: { dtype: "int64", shape: [1], data: Float32Array.of(1) } }),
    /BigInt64Array/,
  );
  assert.throws(() => writeSafetensors({}, { a: 1 as unknown as string }), TypeError);
});

/** A safetensors file from a raw header object and data buffer. */
function raw(header: unknown, data = new Uint8Array(0), headerText = JSON.stringify(header)) {
  const h = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

Deno.test("safetensors: validation errors name the file and the problem", () => {
  const f = (shape: number[], off: number[], dtype = "F32") => ({
    dtype,
    shape,
    data_offsets: off,
  });
  const cases: [Uint8Array, RegExp][] = [
    [Uint8Array.of(1, 2, 3), /too short/],
    [raw(null, new Uint8Array(0), "{"), /not valid UTF-8 JSON/],
    [raw([1]), /not a JSON object/],
    [raw({ a: f([2], [0, 8]) }, new Uint8Array(4)), /cover 8 bytes but the data buffer holds 4/],
    [raw({ a: f([2], [0, 4]) }, new Uint8Array(4)), /needs 8 bytes but data_offsets span 4/],
    [
      raw({ a: f([1], [0, 4]), b: f([1], [8, 12]) }, new Uint8Array(12)),
      /"b" starts at byte 8.*expected 4/,
    ],
    [raw({ a: f([2], [0, 8]), b: f([1], [4, 8]) }, new Uint8Array(8)), /starts at byte 4/],
    [raw({ a: f([1], [0, 1], "F8_E4M3") }, new Uint8Array(1)), /unsupported dtype "F8_E4M3"/],
    [raw({ a: f([-1], [0, 0]) }), /invalid dimension -1/],
    [
      raw({ a: { dtype: "F32", shape: [1], data_offsets: [0] } }, new Uint8Array(4)),
      /invalid data_offsets/,
    ],
    [raw({ __metadata__: { a: 1 } }), /__metadata__ value for "a" is not a string/],
  ];
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 2n ** 40n, true);
  cases.push([huge, /header length .* exceeds/]);
  const past = raw({});
  new DataView(past.buffer).setBigUint64(0, 1000n, true);
  cases.push([past, /runs past the end/]);
  for (const [bytes, re] of cases) {
    assert.throws(() => readSafetensors(bytes, "m.safetensors"), (e: unknown) => {
      assert.ok(e instanceof UserError, String(e));
      assert.match(e.message, /^m\.safetensors: /);
      assert.match(e.message, re);
      return true;
    });
  }
});
