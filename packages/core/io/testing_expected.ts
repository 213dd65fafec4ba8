/** Test-only: the tiny torch-format fixtures' expected contents (tiny_expected.json). */
import assert from "node:assert/strict";
import type { StateDict } from "./state_dict.ts";
import { TORCH_FIXTURES } from "./testing_builders.ts";

interface Expected {
  dtype: string;
  shape: number[];
  storage_offset: number;
  values: number[];
}

export const EXPECTED: Record<string, Expected> = JSON.parse(
  await Deno.readTextFile(new URL("tiny_expected.json", TORCH_FIXTURES)),
);

/** Asserts a loaded StateDict equals tiny_expected.json exactly (keys, order, shapes, values). */
export function assertMatchesExpected(sd: StateDict) {
  assert.deepEqual([...sd.keys()], Object.keys(EXPECTED));
  for (const [key, exp] of Object.entries(EXPECTED)) {
    const t = sd.get(key)!;
    assert.deepEqual(t.shape, exp.shape, key);
    if (exp.dtype === "int64") {
      assert.equal(t.dtype, "int64", key);
      assert.deepEqual([...t.data as BigInt64Array], exp.values.map(BigInt), key);
    } else {
      // float16/float64 are converted to float32; values are exact float32 numbers.
      assert.equal(t.dtype, "float32", key);
      assert.deepEqual([...t.data as Float32Array], exp.values, key);
    }
  }
}
