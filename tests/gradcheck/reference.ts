/** Small f64 references used by several gradient checks. */
import { stridesOf } from "../../packages/kernels/ops/shape.ts";
import { forEachIndex } from "../../packages/kernels/ops/elementwise.ts";

/** The gradient of a sum over `axes`: dy broadcast back over the reduced axes, times scale. */
export function expandCpu(
  dy: Float64Array,
  shape: number[],
  axes: number[],
  scale: number,
): Float64Array {
  const set = new Set(axes);
  const kept = shape.filter((_, i) => !set.has(i));
  const ks = stridesOf(kept);
  const out = new Float64Array(shape.reduce((a, b) => a * b, 1));
  forEachIndex(shape, (i, coord) => {
    let o = 0, k = 0;
    coord.forEach((c, d) => {
      if (!set.has(d)) o += c * ks[k++];
    });
    out[i] = dy[o] * scale;
  });
  return out;
}
