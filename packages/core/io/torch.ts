/**
 * Reader for `torch.save` checkpoints, without Python: the ZIP format (PyTorch >= 1.6:
 * `<prefix>/data.pkl` + `<prefix>/data/<key>` storages) and the legacy pickle-stream format
 * (magic, protocol, sys_info, object, storage keys, raw storages). Pickles go through the safe
 * interpreter with `TORCH_GLOBALS`. Tensors honour storage offsets, shared storages and strides
 * (non-contiguous views become contiguous copies).
 */
import { UserError } from "../errors.ts";
import { ByteReader } from "./byte_reader.ts";
import {
  byteswapInPlace,
  checkedNumel,
  DTYPE_SIZE,
  type RawData,
  type RawTensor,
  typedFromBytes,
} from "./dtypes.ts";
import { unpickle } from "./pickle.ts";
import { type StateDict, toStateTensor, unwrapCheckpoint } from "./state_dict.ts";
import { StorageRef, StorageType, TensorRef, TORCH_GLOBALS } from "./torch_globals.ts";
import { isZip, ZipArchive } from "./zip.ts";

/** The legacy format's first pickle: `0x1950a86a20f9469cfc6c`. */
export const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;
/** PROTO 2, LONG1 of 10 bytes, then the magic's little-endian bytes. */
const LEGACY_PREFIX = Uint8Array.of(
  0x80,
  0x02,
  0x8a,
  0x0a,
  0x6c,
  0xfc,
  0x9c,
  0x46,
  0xf9,
  0x20,
  0x6a,
  0xa8,
  0x50,
  0x19,
);

/** True when `bytes` starts like a legacy (pre-1.6) torch.save stream. */
export function isTorchLegacy(bytes: Uint8Array): boolean {
  return bytes.length >= LEGACY_PREFIX.length && LEGACY_PREFIX.every((b, i) => bytes[i] === b);
}

/** Largest element count of a view that overlaps itself (more elements than its storage). */
const MAX_OVERLAPPING_NUMEL = 2 ** 24;

type PersistentLoad = (pid: unknown, fail: (m: string) => never) => unknown;

/** Parses `('storage', torch.XStorage, key, location, numel[, view_metadata])`. */
function parseStoragePid(pid: unknown, fail: (m: string) => never, legacy: boolean): StorageRef {
  if (!Array.isArray(pid) || pid[0] !== "storage") {
    return fail(`unsupported persistent id ${JSON.stringify(Array.isArray(pid) ? pid[0] : pid)}`);
  }
  const [, type, key, location, count, view] = pid;
  if (!(type instanceof StorageType)) return fail("persistent id without a storage type");
  if (typeof key !== "string" || key.length === 0 || key.length > 256) {
    return fail("persistent id with a bad storage key");
  }
  if (!Number.isSafeInteger(count) || (count as number) < 0) {
    return fail(`storage "${key}" has a bad element count ${String(count)}`);
  }
  const loc = typeof location === "string" ? location : "cpu";
  if (legacy && view !== null && view !== undefined) {
    if (
      !Array.isArray(view) || view.length !== 3 || !Number.isSafeInteger(view[1]) ||
      !Number.isSafeInteger(view[2]) || view[1] < 0 || view[2] < 0 ||
      view[1] + view[2] > (count as number)
    ) {
      return fail(`storage "${key}" has bad view metadata`);
    }
    return new StorageRef(key, type.dtype, view[2], loc, view[1]);
  }
  return new StorageRef(key, type.dtype, count as number, loc);
}

/** Records each root storage's dtype and size, checking that a key keeps one dtype. */
function storageCollector(legacy: boolean) {
  const roots = new Map<string, { dtype: StorageRef["dtype"]; numel: number }>();
  const load: PersistentLoad = (pid, fail) => {
    const ref = parseStoragePid(pid, fail, legacy);
    const rootNumel = legacy && Array.isArray(pid) ? pid[4] as number : ref.numel;
    const seen = roots.get(ref.key);
    if (seen && seen.dtype !== ref.dtype) fail(`storage "${ref.key}" is used with two dtypes`);
    if (!seen) roots.set(ref.key, { dtype: ref.dtype, numel: rootNumel });
    return ref;
  };
  return { roots, load };
}

/** Copies the elements of a (possibly strided) view into a new C-order array. */
function materialize(
  t: TensorRef,
  storage: RawData,
  fail: (m: string) => never,
  what: string,
): RawTensor {
  const n = checkedNumel(t.size);
  if (typeof n === "string") return fail(`${what}: ${n}`);
  const start = t.storage.offset + t.storageOffset;
  let last = start;
  for (let i = 0; i < t.size.length; i++) last += (t.size[i] - 1) * t.stride[i];
  const limit = t.storage.offset + t.storage.numel;
  if (n > 0 && (start >= limit || last >= limit || last >= storage.length)) {
    fail(
      `${what}: view (offset ${t.storageOffset}, size [${t.size}], stride [${t.stride}]) ` +
        `reaches past its storage of ${t.storage.numel} elements (the file is corrupt)`,
    );
  }
  if (n > t.storage.numel && n > MAX_OVERLAPPING_NUMEL) {
    // Only overlapping (e.g. stride-0 expanded) views can have more elements than their storage;
    // bounding them keeps a corrupt size tuple from allocating gigabytes.
    fail(`${what}: overlapping view of ${n} elements is larger than its storage`);
  }
  const dtype = t.storage.dtype;
  let contiguous = true;
  for (let i = t.size.length - 1, expect = 1; i >= 0; i--) {
    if (t.size[i] !== 1 && t.stride[i] !== expect) contiguous = false;
    expect *= t.size[i];
  }
  if (contiguous || n === 0) {
    return { dtype, shape: t.size.slice(), data: storage.slice(start, start + n) as RawData };
  }
  const Ctor = storage.constructor as new (n: number) => RawData;
  const out = new Ctor(n) as unknown as Record<number, unknown>;
  const src = storage as unknown as Record<number, unknown>;
  const rank = t.size.length;
  const idx = new Array<number>(rank).fill(0);
  let off = start;
  for (let i = 0; i < n; i++) {
    out[i] = src[off];
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      off += t.stride[d];
      if (idx[d] < t.size[d]) break;
      off -= t.stride[d] * t.size[d];
      idx[d] = 0;
    }
  }
  return { dtype, shape: t.size.slice(), data: out as unknown as RawData };
}

/** Turns the unpickled root object into a StateDict, reading storages through `storageData`. */
function buildStateDict(
  root: unknown,
  storageData: (key: string) => RawData,
  fail: (m: string) => never,
): StateDict {
  if (!(root instanceof Map)) {
    return fail(
      "the checkpoint is not a dict of tensors (save model.state_dict() rather than the model)",
    );
  }
  const dict = unwrapCheckpoint(root, (v) => v instanceof TensorRef);
  const sd: StateDict = new Map();
  for (const [k, v] of dict) {
    if (typeof k === "string" && v instanceof TensorRef) {
      sd.set(k, toStateTensor(materialize(v, storageData(v.storage.key), fail, `tensor "${k}"`)));
    }
  }
  if (sd.size === 0) {
    const keys = [...root.keys()].slice(0, 20).map(String).join(", ");
    fail(`no tensors found in the checkpoint (top-level keys: ${keys || "none"})`);
  }
  return sd;
}

function loadTorchZip(bytes: Uint8Array, name: string): StateDict {
  const fail = (m: string): never => {
    throw new UserError(`${name}: ${m}`);
  };
  const zip = new ZipArchive(bytes, name);
  const pkl = zip.entries.find((e) => e.name === "data.pkl" || e.name.endsWith("/data.pkl"));
  if (!pkl) {
    return fail("ZIP archive has no data.pkl entry: it is not a torch.save checkpoint");
  }
  const prefix = pkl.name.slice(0, pkl.name.length - "data.pkl".length);
  let bigEndian = false;
  const order = zip.get(`${prefix}byteorder`);
  if (order) {
    const s = new TextDecoder().decode(zip.read(order)).trim();
    if (s !== "little" && s !== "big") fail(`unknown byteorder "${s}"`);
    bigEndian = s === "big";
  }
  const { roots, load } = storageCollector(false);
  const { value } = unpickle(zip.read(pkl), {
    name: `${name} (${pkl.name})`,
    globals: TORCH_GLOBALS,
    persistentLoad: load,
  });
  const cache = new Map<string, RawData>();
  const storageData = (key: string): RawData => {
    let data = cache.get(key);
    if (!data) {
      const root = roots.get(key)!;
      const entryName = `${prefix}data/${key}`;
      if (!zip.get(entryName)) fail(`storage entry "${entryName}" is missing from the archive`);
      const raw = zip.read(entryName);
      const size = DTYPE_SIZE[root.dtype];
      if (raw.length < root.numel * size || raw.length % size !== 0) {
        fail(`storage "${entryName}" has ${raw.length} bytes, expected ${root.numel * size}`);
      }
      data = typedFromBytes(root.dtype, raw);
      if (bigEndian) byteswapInPlace(new Uint8Array(data.buffer), size);
      cache.set(key, data);
    }
    return data;
  };
  return buildStateDict(value, storageData, fail);
}

function loadTorchLegacy(bytes: Uint8Array, name: string): StateDict {
  const r = new ByteReader(bytes, name, "legacy torch checkpoint");
  const fail = (m: string): never => r.fail(m);
  const next = (persistentLoad?: PersistentLoad) => {
    const res = unpickle(bytes, { name, offset: r.pos, globals: TORCH_GLOBALS, persistentLoad });
    r.seek(res.end);
    return res.value;
  };
  if (next() !== LEGACY_MAGIC) fail("not a torch checkpoint (bad legacy magic number)");
  const protocol = next();
  if (protocol !== LEGACY_PROTOCOL) fail(`unsupported legacy torch protocol ${String(protocol)}`);
  const sysInfo = next();
  const littleEndian = !(sysInfo instanceof Map) || sysInfo.get("little_endian") !== false;
  const { roots, load } = storageCollector(true);
  const root = next(load);
  const keys = next();
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === "string")) {
    fail("corrupt legacy checkpoint: the storage key list is not a list of strings");
  }
  const storages = new Map<string, RawData>();
  for (const key of keys as string[]) {
    const info = roots.get(key);
    if (!info) return fail(`corrupt legacy checkpoint: storage "${key}" is listed but never used`);
    const count = r.i64();
    const size = DTYPE_SIZE[info.dtype];
    if (count < 0 || count * size > r.remaining) {
      fail(`truncated legacy checkpoint: storage "${key}" claims ${count} elements`);
    }
    const data = typedFromBytes(info.dtype, r.take(count * size));
    if (!littleEndian) byteswapInPlace(new Uint8Array(data.buffer), size);
    storages.set(key, data);
  }
  if (r.remaining !== 0) {
    fail(`corrupt legacy checkpoint: ${r.remaining} unexpected trailing bytes`);
  }
  const storageData = (key: string): RawData =>
    storages.get(key) ?? fail(`corrupt legacy checkpoint: storage "${key}" has no data`);
  return buildStateDict(root, storageData, fail);
}

/**
 * Loads a `torch.save` checkpoint (ZIP or legacy format) holding a state_dict, possibly wrapped
 * (`{"state_dict": ...}`, `{"model": ...}`). Keys are returned as stored (see `normalizeKeys`).
 * float16/bfloat16/float64 become float32; int64 stays `BigInt64Array`. Throws `UserError`.
 */
export function loadTorch(bytes: Uint8Array, name = "checkpoint"): StateDict {
  if (isZip(bytes)) return loadTorchZip(bytes, name);
  if (isTorchLegacy(bytes)) return loadTorchLegacy(bytes, name);
  throw new UserError(
    `${name}: not a torch.save checkpoint (neither a ZIP archive nor a legacy torch pickle)`,
  );
}
