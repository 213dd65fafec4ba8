/**
 * Seeded inverted dropout: element i is kept when hash(i, seed) >= p * 2^32 and scaled by
 * 1/(1-p). The mask is never stored: the backward regenerates it from the same seed. The
 * seed lives in a one-word buffer so a new seed each step reuses the same pipeline.
 * One invocation per element.
 */
import type { Gpu } from "../runtime/gpu.ts";
import { entry1d, f32lit, gridFor } from "../runtime/grid.ts";

const WG = 256;

/** PCG-style integer hash (Jarzynski & Olano 2020), shared by WGSL and the CPU reference. */
const HASH_WGSL = `fn pcg(v: u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}`;

export function pcgHash(v: number): number {
  const s = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const w = Math.imul(((s >>> ((s >>> 28) + 4)) ^ s) >>> 0, 277803737) >>> 0;
  return ((w >>> 22) ^ w) >>> 0;
}

function threshold(p: number): number {
  return Math.min(0xffffffff, Math.round(p * 2 ** 32));
}

export function dropoutWgsl(n: number, p: number): string {
  const grid = gridFor(n, WG);
  return `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> seed: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${HASH_WGSL}
${entry1d(WG)} {
  let i = ${grid.index};
  if (i >= ${n}u) { return; }
  let keep = pcg(i ^ pcg(seed[0])) >= ${threshold(p)}u;
  y[i] = select(0.0, x[i] * ${f32lit(1 / (1 - p))}, keep);
}`;
}

/** Applies dropout with probability p (0 <= p < 1) to n elements; seed is a 1-word u32 buffer. */
export function dropout(g: Gpu, x: GPUBuffer, seed: GPUBuffer, n: number, p: number): GPUBuffer {
  const y = g.pool.acquire(n * 4);
  g.run(dropoutWgsl(n, p), [x, seed, y], gridFor(n, WG).workgroups);
  return y;
}

export function dropoutMaskCpu(n: number, p: number, seed: number): Float64Array {
  const t = threshold(p), hs = pcgHash(seed);
  const mask = new Float64Array(n);
  for (let i = 0; i < n; i++) mask[i] = pcgHash((i ^ hs) >>> 0) >= t ? 1 / (1 - p) : 0;
  return mask;
}

/** Forward and backward are the same product with the mask. */
export function dropoutCpu(x: Float64Array, p: number, seed: number): Float64Array {
  const mask = dropoutMaskCpu(x.length, p, seed);
  return x.map((v, i) => v * mask[i]);
}
