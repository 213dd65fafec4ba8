import assert from "node:assert/strict";
import fc from "fast-check";
import {
  bfloat16ToFloat32,
  f16BitsToNumber,
  float16ToFloat32,
  float32ToFloat16,
  numberToF16Bits,
} from "./f16.ts";

Deno.test("float16: every non-NaN bit pattern round-trips through float32", () => {
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const back = float32ToFloat16(float16ToFloat32(all));
  for (let h = 0; h < 65536; h++) {
    if (Number.isNaN(f16BitsToNumber(h))) assert.ok(Number.isNaN(f16BitsToNumber(back[h])));
    else assert.equal(back[h], h, `bits 0x${h.toString(16)}`);
  }
});

Deno.test("float16: known values", () => {
  const bits = Uint16Array.of(0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x7c00, 0xfc00, 0x3555);
  assert.deepEqual(
    [...float16ToFloat32(bits)],
    [1, -2, 65504, 2 ** -24, -0, Infinity, -Infinity, 0.333251953125],
  );
});

Deno.test("float16: rounding matches Float16Array (round to nearest even)", () => {
  const oracle = new Float16Array(1);
  const oracleBits = new Uint16Array(oracle.buffer);
  fc.assert(
    fc.property(fc.float({ noNaN: true }), (x) => {
      oracle[0] = x;
      assert.equal(numberToF16Bits(x), oracleBits[0], `x=${x}`);
    }),
    { seed: 3, numRuns: 5000 },
  );
  for (const x of [65520, 65519.99, 2 ** -25, 2 ** -25 * 1.0001, 3 * 2 ** -25, 1 + 2 ** -11]) {
    oracle[0] = x;
    assert.equal(numberToF16Bits(x), oracleBits[0], `x=${x}`);
  }
});

Deno.test("bfloat16: bits are the top half of a float32", () => {
  assert.deepEqual([...bfloat16ToFloat32(Uint16Array.of(0x3f80, 0xc040, 0x0000, 0x7f80))], [
    1,
    -3,
    0,
    Infinity,
  ]);
});
