/**
 * Element types shared by the weight-file readers and writers (npy, safetensors, torch).
 * Half-precision types keep their raw bits in a `Uint16Array`; `bool` is one byte per element.
 * All multi-byte data is little-endian (the host byte order on every supported platform).
 */
import { UserError } from "../errors.ts";

export type DType =
  | "float32"
  | "float64"
  | "float16"
  | "bfloat16"
  | "int64"
  | "int32"
  | "int16"
  | "int8"
  | "uint8"
  | "bool";

export type RawData =
  | Float32Array
  | Float64Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

/** A tensor as stored in a file: C-order (row-major) `data` of `numel(shape)` elements. */
export interface RawTensor {
  dtype: DType;
  shape: number[];
  data: RawData;
}

/** Bytes per element. */
export const DTYPE_SIZE: Readonly<Record<DType, number>> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

const CTOR: Readonly<Record<DType, { new (buffer: ArrayBuffer): RawData; name: string }>> = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int16: Int16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

export function isDType(s: unknown): s is DType {
  return typeof s === "string" && Object.hasOwn(DTYPE_SIZE, s);
}

/** Largest element count the readers will allocate for one tensor (4 GiB of float32). */
export const MAX_NUMEL = 2 ** 30;

/**
 * Element count of `shape`, or a message describing why the shape is invalid
 * (negative, fractional or too large dimensions).
 */
export function checkedNumel(shape: readonly unknown[]): number | string {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      return `invalid dimension ${JSON.stringify(d)} in shape [${shape.join(", ")}]`;
    }
    n *= d;
  }
  if (n > MAX_NUMEL) return `shape [${shape.join(", ")}] has more than ${MAX_NUMEL} elements`;
  return n;
}

/** Element count of a valid shape (throws on an invalid one). */
export function numel(shape: readonly number[]): number {
  const n = checkedNumel(shape);
  if (typeof n === "string") throw new UserError(n);
  return n;
}

/** Copies `bytes` (any alignment) into a fresh typed array of `dtype`. */
export function typedFromBytes(dtype: DType, bytes: Uint8Array): RawData {
  const size = DTYPE_SIZE[dtype];
  if (bytes.length % size !== 0) {
    throw new UserError(`${bytes.length} bytes is not a whole number of ${dtype} elements`);
  }
  const copy = new ArrayBuffer(bytes.length);
  new Uint8Array(copy).set(bytes);
  return new CTOR[dtype](copy);
}

/** The bytes of a typed array (a view, no copy). */
export function bytesOf(data: RawData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Checks that `t.data` has the array type of `t.dtype` and `numel(t.shape)` elements. */
export function validateRawTensor(t: RawTensor, what: string): void {
  if (!isDType(t.dtype)) throw new UserError(`${what}: unsupported dtype ${String(t.dtype)}`);
  const n = checkedNumel(t.shape);
  if (typeof n === "string") throw new UserError(`${what}: ${n}`);
  const ctor = CTOR[t.dtype];
  if (!(t.data instanceof ctor)) {
    throw new UserError(
      `${what}: dtype ${t.dtype} needs a ${ctor.name}, got ${t.data?.constructor?.name}`,
    );
  }
  if (t.data.length !== n) {
    throw new UserError(
      `${what}: shape [${t.shape.join(", ")}] needs ${n} elements, data has ${t.data.length}`,
    );
  }
}

/** Reverses the byte order of every `size`-byte element in place. */
export function byteswapInPlace(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i + size <= bytes.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = bytes[a];
      bytes[a] = bytes[b];
      bytes[b] = t;
    }
  }
}
