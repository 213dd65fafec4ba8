/**
 * Dispatch geometry. WebGPU caps each dimension at 65535 workgroups, so large 1-D problems
 * fold into 2-D grids; the generated WGSL recovers the linear index with the folded width
 * baked in.
 */

export interface Grid1D {
  /** Workgroups to dispatch, [x, y, 1]. */
  workgroups: [number, number, number];
  /** WGSL expression for the linear invocation index (needs `wid` and `lid` builtins). */
  index: string;
  /** WGSL expression for the linear workgroup index. */
  group: string;
}

export const MAX_WORKGROUPS_PER_DIM = 65535;

/** A grid of `groups` workgroups of `size` invocations each. */
export function grid1d(groups: number, size: number): Grid1D {
  const x = Math.max(1, Math.min(groups, MAX_WORKGROUPS_PER_DIM));
  const y = Math.max(1, Math.ceil(groups / x));
  if (y > MAX_WORKGROUPS_PER_DIM) {
    throw new Error(`problem too large for one dispatch: ${groups} workgroups`);
  }
  const group = y === 1 ? "wid.x" : `(wid.y * ${x}u + wid.x)`;
  return { workgroups: [x, y, 1], group, index: `(${group} * ${size}u + lid.x)` };
}

/** A grid with one invocation per element, `size` invocations a workgroup. */
export function gridFor(elements: number, size = 256): Grid1D {
  return grid1d(Math.ceil(elements / size), size);
}

/** Standard compute entry header for a 1-D kernel. */
export function entry1d(size: number): string {
  return `@compute @workgroup_size(${size})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>)`;
}

/** WGSL float literal for a JS number (always has a decimal point or exponent). */
export function f32lit(v: number): string {
  if (Number.isNaN(v)) throw new Error("NaN literal");
  if (!Number.isFinite(v)) return v > 0 ? "3.4028234663852886e38" : "-3.4028234663852886e38";
  const s = String(Math.fround(v));
  return /[.eE]/.test(s) ? s : `${s}.0`;
}
