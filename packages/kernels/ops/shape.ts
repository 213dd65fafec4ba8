/** Shape arithmetic shared by kernel generators and CPU references (row-major, contiguous). */

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** NumPy broadcasting of two shapes; throws a readable error when they do not broadcast. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`shapes [${a}] and [${b}] do not broadcast`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/**
 * Strides of `shape` when read at the coordinates of `outShape` (its broadcast target):
 * broadcast dimensions get stride 0. Returned with outShape's rank.
 */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const own = stridesOf(shape);
  const off = outShape.length - shape.length;
  return outShape.map((_, i) => {
    const j = i - off;
    return j < 0 || shape[j] === 1 ? 0 : own[j];
  });
}

/**
 * Merges adjacent dimensions whose strides are contiguous in every operand, so generated
 * index math has as few divisions as possible. `strides` has one stride list per operand.
 */
export function coalesce(
  shape: readonly number[],
  strides: number[][],
): { shape: number[]; strides: number[][] } {
  const dims: number[] = [];
  const out: number[][] = strides.map(() => []);
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1) continue;
    const last = dims.length - 1;
    if (
      last >= 0 && strides.every((s, k) => out[k][last] === s[i] * shape[i])
    ) {
      dims[last] *= shape[i];
      strides.forEach((s, k) => out[k][last] = s[i]);
    } else {
      dims.push(shape[i]);
      strides.forEach((s, k) => out[k].push(s[i]));
    }
  }
  return { shape: dims, strides: out };
}

/** WGSL statements that compute `var <name>: u32` offsets for each operand from linear `i`. */
export function offsetsWgsl(
  index: string,
  shape: readonly number[],
  strides: number[][],
  names: string[],
): string {
  const lines = names.map((n) => `var ${n} = 0u;`);
  lines.push(`var rem = ${index};`);
  const outStrides = stridesOf(shape);
  for (let d = 0; d < shape.length; d++) {
    const coord = d === shape.length - 1 ? "rem" : `(rem / ${outStrides[d]}u)`;
    lines.push(`{ let c = ${coord};`);
    names.forEach((n, k) => {
      if (strides[k][d] !== 0) lines.push(`  ${n} += c * ${strides[k][d]}u;`);
    });
    if (d < shape.length - 1) lines.push(`  rem -= c * ${outStrides[d]}u;`);
    lines.push(`}`);
  }
  return lines.join("\n  ");
}
