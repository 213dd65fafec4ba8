/**
 * Tensors live in pooled GPU buffers (f32, or i32 for labels), row-major and contiguous.
 * A tensor knows the op that made it (`node`) so `backward()` can walk the tape; see
 * autograd.ts. Reshapes share the storage, which is reference counted: the buffer returns
 * to the pool when the last tensor on it is disposed. Lifetimes are explicit: `dispose()`,
 * or `tidy()` (scope.ts), which disposes what a block created except what it returns.
 */
import { gpu } from "../kernels/runtime/gpu.ts";
import { numel } from "../kernels/ops/shape.ts";
import { track } from "./scope.ts";

export type DType = "f32" | "i32";

class Storage {
  refs = 1;
  constructor(readonly buffer: GPUBuffer) {}
  release(): void {
    if (--this.refs === 0) gpu().pool.release(this.buffer);
  }
}

/** What an op recorded to compute its inputs' gradients from its output's gradient. */
export interface Node {
  op: string;
  inputs: Tensor[];
  /** Gradients for each input (null where not needed); each returned tensor is new. */
  backward: (dy: Tensor) => (Tensor | null)[];
}

let nextId = 0;

export class Tensor {
  readonly id = nextId++;
  readonly size: number;
  #storage: Storage | null;
  requiresGrad = false;
  grad: Tensor | null = null;
  node: Node | null = null;
  /** Kept tensors (parameters, optimizer state) are never disposed by a scope. */
  kept = false;

  constructor(
    readonly shape: readonly number[],
    readonly dtype: DType,
    storage: GPUBuffer | Storage,
  ) {
    this.size = numel(shape);
    this.#storage = storage instanceof Storage ? storage : new Storage(storage);
    track(this);
  }

  get buffer(): GPUBuffer {
    if (!this.#storage) throw new Error(`tensor #${this.id} [${this.shape}] was disposed`);
    return this.#storage.buffer;
  }

  get disposed(): boolean {
    return this.#storage === null;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** Returns the buffer to the pool (once no reshaped view shares it). Idempotent. */
  dispose(): void {
    if (!this.#storage) return;
    this.#storage.release();
    this.#storage = null;
    this.node = null;
  }

  /** A new tensor handle on the same storage (no copy). */
  view(shape: readonly number[] = this.shape): Tensor {
    if (numel(shape) !== this.size) {
      throw new Error(`cannot view [${this.shape}] (${this.size} elements) as [${shape}]`);
    }
    const s = this.#storage;
    if (!s) throw new Error(`tensor #${this.id} was disposed`);
    s.refs++;
    return new Tensor(shape, this.dtype, s);
  }

  /** Marks this tensor as long-lived: scopes leave it alone. */
  keep(): this {
    this.kept = true;
    return this;
  }

  /** Copies the values to the CPU. The only readback; awaited explicitly by the caller. */
  async read(): Promise<Float32Array | Int32Array> {
    const bytes = await gpu().read(this.buffer, this.size * 4);
    return this.dtype === "i32" ? new Int32Array(bytes) : new Float32Array(bytes);
  }

  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item() needs one element, tensor has [${this.shape}]`);
    return (await this.read())[0];
  }

  toString(): string {
    return `Tensor#${this.id}(${this.dtype}[${this.shape}]${this.node ? ` ${this.node.op}` : ""})`;
  }
}

function checkShape(shape: readonly number[]): void {
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new Error(`invalid shape [${shape}]`);
  }
}

/** A tensor holding `data` (f32 unless an Int32Array is given). */
export function tensor(
  data: ArrayLike<number> | Float32Array | Int32Array,
  shape: readonly number[] = [data.length],
): Tensor {
  checkShape(shape);
  if (numel(shape) !== data.length) {
    throw new Error(`${data.length} values do not fill shape [${shape}]`);
  }
  const typed = data instanceof Int32Array || data instanceof Float32Array
    ? data
    : Float32Array.from(data);
  return new Tensor(shape, typed instanceof Int32Array ? "i32" : "f32", gpu().upload(typed));
}

/** An f32 tensor filled with `value`, on the GPU (no upload). */
export function full(shape: readonly number[], value: number): Tensor {
  checkShape(shape);
  const t = new Tensor(shape, "f32", gpu().pool.acquire(numel(shape) * 4));
  fillBuffer(t.buffer, t.size, value);
  return t;
}

export function zeros(shape: readonly number[]): Tensor {
  return full(shape, 0);
}

export function ones(shape: readonly number[]): Tensor {
  return full(shape, 1);
}

function fillBuffer(buffer: GPUBuffer, n: number, value: number): void {
  const g = gpu();
  if (value === 0) {
    g.batcher.encoder().clearBuffer(buffer, 0, n * 4);
    return;
  }
  const bits = new Uint32Array(new Float32Array([value]).buffer)[0];
  const code = `@group(0) @binding(0) var<storage, read_write> y: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = id.x + id.y * nw.x * 256u;
  if (i < ${n}u) { y[i] = ${bits}u; }
}`;
  const groups = Math.ceil(n / 256);
  const x = Math.min(groups, 65535);
  g.run(code, [buffer], [x, Math.ceil(groups / x), 1]);
}

/** A new f32 tensor for a kernel's freshly acquired output buffer. */
export function fromBuffer(
  buffer: GPUBuffer,
  shape: readonly number[],
  dtype: DType = "f32",
): Tensor {
  return new Tensor(shape, dtype, buffer);
}
