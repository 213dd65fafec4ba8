/** Test-only fast-check arbitraries for tensors of every dtype. */
import fc from "fast-check";
import type { DType, RawTensor } from "./dtypes.ts";

const shapeArb = fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 });

function dataArb(dtype: DType, n: number): fc.Arbitrary<RawTensor["data"]> {
  const len = { minLength: n, maxLength: n };
  switch (dtype) {
    case "float32":
      return fc.float32Array(len);
    case "float64":
      return fc.float64Array(len);
    case "float16":
    case "bfloat16":
      return fc.array(fc.integer({ min: 0, max: 0xffff }), len).map((a) => Uint16Array.from(a));
    case "int64":
      return fc.bigInt64Array(len);
    case "int32":
      return fc.int32Array(len);
    case "int16":
      return fc.int16Array(len);
    case "int8":
      return fc.int8Array(len);
    case "uint8":
      return fc.uint8Array(len);
    case "bool":
      return fc.array(fc.boolean(), len).map((a) => Uint8Array.from(a, Number));
  }
}

/** A random tensor of one of `dtypes` with up to 4 dims of size 0..4. */
export function tensorArb(dtypes: DType[]): fc.Arbitrary<RawTensor> {
  return fc.tuple(fc.constantFrom(...dtypes), shapeArb).chain(([dtype, shape]) =>
    dataArb(dtype, shape.reduce((a, b) => a * b, 1)).map((data) => ({ dtype, shape, data }))
  );
}
