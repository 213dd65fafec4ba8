/**
 * safetensors reader and writer (https://github.com/huggingface/safetensors): an 8-byte
 * little-endian header length N, N bytes of JSON, then the tensor bytes. The reader applies the
 * reference implementation's validation (offsets tile the buffer, sizes match shapes).
 */
import { UserError } from "../errors.ts";
import {
  bytesOf,
  checkedNumel,
  type DType,
  DTYPE_SIZE,
  type RawTensor,
  typedFromBytes,
  validateRawTensor,
} from "./dtypes.ts";

const ST_TO_DTYPE: Readonly<Record<string, DType>> = {
  F32: "float32",
  F64: "float64",
  F16: "float16",
  BF16: "bfloat16",
  I64: "int64",
  I32: "int32",
  I16: "int16",
  I8: "int8",
  U8: "uint8",
  BOOL: "bool",
};

const DTYPE_TO_ST: Readonly<Record<DType, string>> = Object.fromEntries(
  Object.entries(ST_TO_DTYPE).map(([k, v]) => [v, k]),
) as Record<DType, string>;

/** Largest JSON header accepted (same limit as the reference implementation). */
export const MAX_HEADER_BYTES = 100_000_000;

export interface Safetensors {
  tensors: Map<string, RawTensor>;
  metadata: Record<string, string>;
}

/**
 * True when `bytes` looks like a safetensors file: a plausible header length followed by "{".
 */
export function isSafetensors(bytes: Uint8Array): boolean {
  if (bytes.length < 10) return false;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getBigUint64(0, true);
  return n >= 2n && n <= BigInt(Math.min(MAX_HEADER_BYTES, bytes.length - 8)) && bytes[8] === 0x7b;
}

/** Reads a safetensors file. Tensor data is copied into fresh typed arrays. */
export function readSafetensors(bytes: Uint8Array, name = "safetensors file"): Safetensors {
  const fail = (m: string): never => {
    throw new UserError(
      `${name}: ${m} (the safetensors file is corrupt or truncated; re-export or re-download it)`,
    );
  };
  if (bytes.length < 8) fail(`only ${bytes.length} bytes, too short for the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) fail(`header length ${n64} exceeds ${MAX_HEADER_BYTES}`);
  const n = Number(n64);
  if (8 + n > bytes.length) fail(`header length ${n} runs past the end of the file`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    fail(`header is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    fail("header is not a JSON object");
  }
  const dataStart = 8 + n;
  const bufLen = bytes.length - dataStart;
  const meta: [string, string][] = [];
  const entries: { key: string; dtype: DType; shape: number[]; begin: number; end: number }[] = [];
  for (const [key, v] of Object.entries(header as Record<string, unknown>)) {
    if (key === "__metadata__") {
      if (v === null) continue;
      if (typeof v !== "object" || Array.isArray(v)) fail(`__metadata__ must be a string map`);
      for (const [mk, mv] of Object.entries(v as Record<string, unknown>)) {
        if (typeof mv !== "string") fail(`__metadata__ value for "${mk}" is not a string`);
        meta.push([mk, mv as string]);
      }
      continue;
    }
    const info = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof info !== "object" || info === null) fail(`entry "${key}" is not an object`);
    const dtype = ST_TO_DTYPE[String(info.dtype)];
    if (!dtype) {
      fail(
        `tensor "${key}" has unsupported dtype ${JSON.stringify(info.dtype)} (supported: ${
          Object.keys(ST_TO_DTYPE).join(" ")
        })`,
      );
    }
    if (!Array.isArray(info.shape)) fail(`tensor "${key}" has no shape array`);
    const shape = info.shape as number[];
    const count = checkedNumel(shape);
    if (typeof count === "string") return fail(`tensor "${key}": ${count}`);
    const off = info.data_offsets;
    if (
      !Array.isArray(off) || off.length !== 2 ||
      !off.every((x) => Number.isSafeInteger(x) && x >= 0)
    ) {
      return fail(`tensor "${key}" has invalid data_offsets ${JSON.stringify(off)}`);
    }
    const [begin, end] = off as number[];
    if (end < begin) fail(`tensor "${key}" has data_offsets [${begin}, ${end}] with end < begin`);
    if (end - begin !== count * DTYPE_SIZE[dtype]) {
      fail(
        `tensor "${key}" (${dtype} [${shape.join(", ")}]) needs ${
          count * DTYPE_SIZE[dtype]
        } bytes but data_offsets span ${end - begin}`,
      );
    }
    entries.push({ key, dtype, shape, begin, end });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of entries) {
    if (e.begin !== pos) {
      fail(
        `tensor "${e.key}" starts at byte ${e.begin} of the data buffer, expected ${pos} ` +
          `(offsets must tile the buffer without gaps or overlaps)`,
      );
    }
    pos = e.end;
  }
  if (pos !== bufLen) {
    fail(`tensors cover ${pos} bytes but the data buffer holds ${bufLen} bytes`);
  }
  const tensors = new Map<string, RawTensor>();
  for (const e of entries) {
    const raw = bytes.subarray(dataStart + e.begin, dataStart + e.end);
    tensors.set(e.key, {
      dtype: e.dtype,
      shape: e.shape.slice(),
      data: typedFromBytes(e.dtype, raw),
    });
  }
  // fromEntries defines own properties, so even a "__proto__" key is kept as data.
  return { tensors, metadata: Object.fromEntries(meta) };
}

/**
 * Serialises tensors to safetensors bytes. Tensors are laid out by descending element size, then
 * by name (the reference writer's order); the header is space-padded to a multiple of 8 bytes.
 * Throws a `TypeError` for an invalid tensor (wrong array type, length/shape mismatch) or metadata.
 */
export function writeSafetensors(
  tensors: ReadonlyMap<string, RawTensor> | Readonly<Record<string, RawTensor>>,
  metadata: Readonly<Record<string, string>> = {},
): Uint8Array {
  const list: [string, RawTensor][] = tensors instanceof Map
    ? [...(tensors as ReadonlyMap<string, RawTensor>)]
    : Object.entries(tensors as Readonly<Record<string, RawTensor>>);
  for (const [key, t] of list) {
    if (key === "__metadata__" || key === "") throw new TypeError(`invalid tensor name "${key}"`);
    try {
      validateRawTensor(t, `tensor "${key}"`);
    } catch (e) {
      throw new TypeError((e as Error).message);
    }
  }
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== "string") throw new TypeError(`metadata value for "${k}" must be a string`);
  }
  list.sort(([ka, a], [kb, b]) =>
    DTYPE_SIZE[b.dtype] - DTYPE_SIZE[a.dtype] || (ka < kb ? -1 : ka > kb ? 1 : 0)
  );
  // A null prototype makes a tensor called "__proto__" an ordinary key.
  const header: Record<string, unknown> = Object.create(null);
  if (Object.keys(metadata).length > 0) {
    header.__metadata__ = Object.fromEntries(Object.entries(metadata));
  }
  let offset = 0;
  for (const [key, t] of list) {
    const size = t.data.byteLength;
    header[key] = {
      dtype: DTYPE_TO_ST[t.dtype],
      shape: t.shape,
      data_offsets: [offset, offset + size],
    };
    offset += size;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const [, t] of list) {
    out.set(bytesOf(t.data), pos);
    pos += t.data.byteLength;
  }
  return out;
}
