/**
 * Elementwise kernels: unary activations and scalar ops, and broadcasting binary ops.
 * One invocation per output element, 256 a workgroup; shapes are baked into the source and
 * broadcast dimensions are coalesced so the common cases (same shape, bias over the last
 * axis) compile to one or two integer divisions per element.
 */
import type { Gpu } from "../runtime/gpu.ts";
import { entry1d, f32lit, gridFor } from "../runtime/grid.ts";
import { broadcastShapes, broadcastStrides, coalesce, numel, offsetsWgsl } from "./shape.ts";

export type UnaryOp =
  | "relu"
  | "relu6"
  | "sigmoid"
  | "silu"
  | "exp"
  | "log"
  | "neg"
  | "scale"
  | "shift"
  | "square"
  | "sqrt";

/** `c` is the scalar of `scale` (x*c) and `shift` (x+c); ignored by the others. */
export interface Unary {
  op: UnaryOp;
  c?: number;
}

const WG = 256;

function unaryExpr(u: Unary, x: string): string {
  const c = f32lit(u.c ?? 0);
  switch (u.op) {
    case "relu":
      return `max(${x}, 0.0)`;
    case "relu6":
      return `clamp(${x}, 0.0, 6.0)`;
    case "sigmoid":
      return `(1.0 / (1.0 + exp(-${x})))`;
    case "silu":
      return `(${x} / (1.0 + exp(-${x})))`;
    case "exp":
      return `exp(${x})`;
    case "log":
      return `log(${x})`;
    case "neg":
      return `(-${x})`;
    case "scale":
      return `(${x} * ${c})`;
    case "shift":
      return `(${x} + ${c})`;
    case "square":
      return `(${x} * ${x})`;
    case "sqrt":
      return `sqrt(${x})`;
  }
}

/** d(op)/dx * dy, from the input x. */
function unaryGradExpr(u: Unary, x: string, dy: string): string {
  switch (u.op) {
    case "relu":
      return `select(0.0, ${dy}, ${x} > 0.0)`;
    case "relu6":
      return `select(0.0, ${dy}, ${x} > 0.0 && ${x} < 6.0)`;
    case "sigmoid":
      return `(${dy} * s * (1.0 - s))`;
    case "silu":
      return `(${dy} * s * (1.0 + ${x} * (1.0 - s)))`;
    case "exp":
      return `(${dy} * exp(${x}))`;
    case "log":
      return `(${dy} / ${x})`;
    case "neg":
      return `(-${dy})`;
    case "scale":
      return `(${dy} * ${f32lit(u.c ?? 0)})`;
    case "shift":
      return dy;
    case "square":
      return `(2.0 * ${x} * ${dy})`;
    case "sqrt":
      return `(0.5 * ${dy} / sqrt(${x}))`;
  }
}

export function unaryWgsl(u: Unary, n: number): string {
  const grid = gridFor(n, WG);
  return `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
${entry1d(WG)} {
  let i = ${grid.index};
  if (i >= ${n}u) { return; }
  let v = x[i];
  y[i] = ${unaryExpr(u, "v")};
}`;
}

export function unaryBackwardWgsl(u: Unary, n: number): string {
  const grid = gridFor(n, WG);
  const needsS = u.op === "sigmoid" || u.op === "silu";
  return `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
${entry1d(WG)} {
  let i = ${grid.index};
  if (i >= ${n}u) { return; }
  let v = x[i];
  let g = dy[i];
  ${needsS ? "let s = 1.0 / (1.0 + exp(-v));" : ""}
  dx[i] = ${unaryGradExpr(u, "v", "g")};
}`;
}

export function unary(g: Gpu, u: Unary, x: GPUBuffer, n: number): GPUBuffer {
  const y = g.pool.acquire(n * 4);
  g.run(unaryWgsl(u, n), [x, y], gridFor(n, WG).workgroups);
  return y;
}

export function unaryBackward(
  g: Gpu,
  u: Unary,
  x: GPUBuffer,
  dy: GPUBuffer,
  n: number,
): GPUBuffer {
  const dx = g.pool.acquire(n * 4);
  g.run(unaryBackwardWgsl(u, n), [x, dy, dx], gridFor(n, WG).workgroups);
  return dx;
}

export function unaryCpu(u: Unary, x: Float64Array): Float64Array {
  const c = u.c ?? 0;
  return x.map((v) => {
    switch (u.op) {
      case "relu":
        return Math.max(v, 0);
      case "relu6":
        return Math.min(Math.max(v, 0), 6);
      case "sigmoid":
        return 1 / (1 + Math.exp(-v));
      case "silu":
        return v / (1 + Math.exp(-v));
      case "exp":
        return Math.exp(v);
      case "log":
        return Math.log(v);
      case "neg":
        return -v;
      case "scale":
        return v * c;
      case "shift":
        return v + c;
      case "square":
        return v * v;
      case "sqrt":
        return Math.sqrt(v);
    }
  });
}

export function unaryBackwardCpu(u: Unary, x: Float64Array, dy: Float64Array): Float64Array {
  const c = u.c ?? 0;
  return x.map((v, i) => {
    const g = dy[i];
    const s = 1 / (1 + Math.exp(-v));
    switch (u.op) {
      case "relu":
        return v > 0 ? g : 0;
      case "relu6":
        return v > 0 && v < 6 ? g : 0;
      case "sigmoid":
        return g * s * (1 - s);
      case "silu":
        return g * s * (1 + v * (1 - s));
      case "exp":
        return g * Math.exp(v);
      case "log":
        return g / v;
      case "neg":
        return -g;
      case "scale":
        return g * c;
      case "shift":
        return g;
      case "square":
        return 2 * v * g;
      case "sqrt":
        return 0.5 * g / Math.sqrt(v);
    }
  });
}

export type BinaryOp = "add" | "sub" | "mul" | "div";

const BINARY_WGSL: Record<BinaryOp, string> = { add: "+", sub: "-", mul: "*", div: "/" };

export function binaryWgsl(op: BinaryOp, aShape: number[], bShape: number[]): string {
  const outShape = broadcastShapes(aShape, bShape);
  const n = numel(outShape);
  const grid = gridFor(n, WG);
  const { shape, strides } = coalesce(outShape, [
    broadcastStrides(aShape, outShape),
    broadcastStrides(bShape, outShape),
  ]);
  return `@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${entry1d(WG)} {
  let i = ${grid.index};
  if (i >= ${n}u) { return; }
  ${offsetsWgsl("i", shape, strides, ["ia", "ib"])}
  y[i] = a[ia] ${BINARY_WGSL[op]} b[ib];
}`;
}

/** a (op) b with NumPy broadcasting; the output has the broadcast shape. */
export function binary(
  g: Gpu,
  op: BinaryOp,
  a: GPUBuffer,
  aShape: number[],
  b: GPUBuffer,
  bShape: number[],
): GPUBuffer {
  const n = numel(broadcastShapes(aShape, bShape));
  const y = g.pool.acquire(n * 4);
  g.run(binaryWgsl(op, aShape, bShape), [a, b, y], gridFor(n, WG).workgroups);
  return y;
}

export function binaryCpu(
  op: BinaryOp,
  a: Float64Array,
  aShape: number[],
  b: Float64Array,
  bShape: number[],
): Float64Array {
  const outShape = broadcastShapes(aShape, bShape);
  const sa = broadcastStrides(aShape, outShape), sb = broadcastStrides(bShape, outShape);
  const out = new Float64Array(numel(outShape));
  forEachIndex(outShape, (i, coord) => {
    let ia = 0, ib = 0;
    coord.forEach((c, d) => {
      ia += c * sa[d];
      ib += c * sb[d];
    });
    const x = a[ia], z = b[ib];
    out[i] = op === "add" ? x + z : op === "sub" ? x - z : op === "mul" ? x * z : x / z;
  });
  return out;
}

/** Calls fn(linearIndex, coordinates) for every element of `shape` in row-major order. */
export function forEachIndex(shape: readonly number[], fn: (i: number, c: number[]) => void) {
  const n = numel(shape);
  const coord = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    fn(i, coord);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++coord[d] < shape[d]) break;
      coord[d] = 0;
    }
  }
}

/** Gradients of a (op) b with respect to a and b, each summed back to its own shape. */
export function binaryBackwardCpu(
  op: BinaryOp,
  a: Float64Array,
  aShape: number[],
  b: Float64Array,
  bShape: number[],
  dy: Float64Array,
): [Float64Array, Float64Array] {
  const outShape = broadcastShapes(aShape, bShape);
  const sa = broadcastStrides(aShape, outShape), sb = broadcastStrides(bShape, outShape);
  const da = new Float64Array(a.length), db = new Float64Array(b.length);
  forEachIndex(outShape, (i, coord) => {
    let ia = 0, ib = 0;
    coord.forEach((c, d) => {
      ia += c * sa[d];
      ib += c * sb[d];
    });
    const g = dy[i], x = a[ia], z = b[ib];
    if (op === "add") {
      da[ia] += g;
      db[ib] += g;
    } else if (op === "sub") {
      da[ia] += g;
      db[ib] -= g;
    } else if (op === "mul") {
      da[ia] += g * z;
      db[ib] += g * x;
    } else {
      da[ia] += g / z;
      db[ib] -= g * x / (z * z);
    }
  });
  return [da, db];
}

export function broadcastWgsl(xShape: number[], outShape: number[], scale: number): string {
  const n = numel(outShape);
  const grid = gridFor(n, WG);
  const { shape, strides } = coalesce(outShape, [broadcastStrides(xShape, outShape)]);
  return `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
${entry1d(WG)} {
  let i = ${grid.index};
  if (i >= ${n}u) { return; }
  ${offsetsWgsl("i", shape, strides, ["ix"])}
  y[i] = x[ix]${scale === 1 ? "" : ` * ${f32lit(scale)}`};
}`;
}

/** Copies x (xShape) broadcast to outShape, times `scale`. */
export function broadcastTo(
  g: Gpu,
  x: GPUBuffer,
  xShape: number[],
  outShape: number[],
  scale = 1,
): GPUBuffer {
  broadcastShapes(xShape, outShape);
  const n = numel(outShape);
  const y = g.pool.acquire(n * 4);
  g.run(broadcastWgsl(xShape, outShape, scale), [x, y], gridFor(n, WG).workgroups);
  return y;
}
