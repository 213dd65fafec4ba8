/**
 * Test-only builders: a small ZIP writer (stored/deflate, optional forced ZIP64, torch-style data
 * descriptors) and a pickle emitter for crafting torch checkpoints. Not used by library code.
 */
import { deflateRawSync } from "node:zlib";
import { crc32 } from "./crc32.ts";

export const SHARED = new URL("../../../../shared/", import.meta.url);
export const TORCH_FIXTURES = new URL("fixtures/torch-format/", SHARED);

class Bytes {
  readonly out: number[] = [];
  u8(...v: number[]) {
    for (const x of v) this.out.push(x & 0xff);
    return this;
  }
  u16(v: number) {
    return this.u8(v, v >> 8);
  }
  u32(v: number) {
    return this.u8(v, v >>> 8, v >>> 16, v >>> 24);
  }
  u64(v: number) {
    return this.u32(v % 2 ** 32).u32(Math.floor(v / 2 ** 32));
  }
  raw(b: Uint8Array | number[]) {
    for (const x of b) this.out.push(x);
    return this;
  }
  get length() {
    return this.out.length;
  }
}

export interface ZipBuildOptions {
  /** Write ZIP64 extra fields (sizes/offsets saturated to 0xFFFFFFFF) and a ZIP64 EOCD. */
  zip64?: boolean;
  /** Deflate entries instead of storing them. */
  deflate?: boolean;
  /** Set the data-descriptor flag and zero the local header sizes, as torch.save does. */
  dataDescriptor?: boolean;
}

/** Builds a ZIP archive from name -> bytes. */
export function buildZip(
  files: [string, Uint8Array][],
  opts: ZipBuildOptions = {},
): Uint8Array {
  const b = new Bytes();
  const central = new Bytes();
  const enc = new TextEncoder();
  for (const [name, data] of files) {
    const nameBytes = enc.encode(name);
    const body = opts.deflate ? new Uint8Array(deflateRawSync(data)) : data;
    const method = opts.deflate ? 8 : 0;
    const crc = crc32(data);
    const flags = opts.dataDescriptor ? 0x0808 : 0x0800;
    const offset = b.length;
    const sat = (v: number) => (opts.zip64 ? 0xffffffff : v);
    const localExtra = new Bytes();
    if (opts.zip64) localExtra.u16(1).u16(16).u64(data.length).u64(body.length);
    b.u32(0x04034b50).u16(45).u16(flags).u16(method).u32(0)
      .u32(opts.dataDescriptor ? 0 : crc)
      .u32(opts.dataDescriptor ? 0 : sat(body.length))
      .u32(opts.dataDescriptor ? 0 : sat(data.length))
      .u16(nameBytes.length).u16(localExtra.length).raw(nameBytes).raw(localExtra.out).raw(body);
    if (opts.dataDescriptor) b.u32(0x08074b50).u32(crc).u32(body.length).u32(data.length);
    const extra = new Bytes();
    if (opts.zip64) extra.u16(1).u16(24).u64(data.length).u64(body.length).u64(offset);
    central.u32(0x02014b50).u16(45).u16(45).u16(flags).u16(method).u32(0).u32(crc)
      .u32(sat(body.length)).u32(sat(data.length)).u16(nameBytes.length).u16(extra.length)
      .u16(0).u16(0).u16(0).u32(0).u32(sat(offset)).raw(nameBytes).raw(extra.out);
  }
  const cdOffset = b.length;
  b.raw(central.out);
  const n = files.length;
  if (opts.zip64) {
    const recOffset = b.length;
    b.u32(0x06064b50).u64(44).u16(45).u16(45).u32(0).u32(0).u64(n).u64(n)
      .u64(central.length).u64(cdOffset);
    b.u32(0x07064b50).u32(0).u64(recOffset).u32(1);
    b.u32(0x06054b50).u16(0).u16(0).u16(0xffff).u16(0xffff).u32(0xffffffff).u32(0xffffffff)
      .u16(0);
  } else {
    b.u32(0x06054b50).u16(0).u16(0).u16(n).u16(n).u32(central.length).u32(cdOffset).u16(0);
  }
  return Uint8Array.from(b.out);
}

/** Emits pickle opcodes (protocol 2 style, no memo). */
export class PickleWriter {
  readonly b = new Bytes();
  proto(p = 2) {
    this.b.u8(0x80, p);
    return this;
  }
  global(module: string, name: string) {
    this.b.u8(0x63).raw(new TextEncoder().encode(`${module}\n${name}\n`));
    return this;
  }
  mark() {
    this.b.u8(0x28);
    return this;
  }
  str(s: string) {
    const e = new TextEncoder().encode(s);
    this.b.u8(0x58).u32(e.length).raw(e);
    return this;
  }
  int(n: number) {
    if (n >= 0 && n < 256) this.b.u8(0x4b, n);
    else this.b.u8(0x4a).u32(n);
    return this;
  }
  /** LONG1 of a (possibly huge) integer. */
  long(v: bigint) {
    const bytes: number[] = [];
    let x = v;
    while (x !== 0n && x !== -1n) {
      bytes.push(Number(x & 0xffn));
      x >>= 8n;
    }
    const neg = v < 0n;
    if (bytes.length === 0 || (bytes[bytes.length - 1] & 0x80 ? !neg : neg)) {
      bytes.push(neg ? 0xff : 0);
    }
    this.b.u8(0x8a, bytes.length).raw(bytes);
    return this;
  }
  /** MARK items... TUPLE. */
  tuple(...items: ((w: PickleWriter) => unknown)[]) {
    this.mark();
    for (const f of items) f(this);
    this.b.u8(0x74);
    return this;
  }
  ints(v: number[]) {
    return this.tuple(...v.map((n) => (w: PickleWriter) => w.int(n)));
  }
  op(...codes: number[]) {
    this.b.u8(...codes);
    return this;
  }
  none() {
    return this.op(0x4e);
  }
  emptyDict() {
    return this.op(0x7d);
  }
  emptyTuple() {
    return this.op(0x29);
  }
  reduce() {
    return this.op(0x52);
  }
  newfalse() {
    return this.op(0x89);
  }
  setitems() {
    return this.op(0x75);
  }
  stop() {
    return this.op(0x2e);
  }
  orderedDict() {
    return this.global("collections", "OrderedDict").emptyTuple().reduce();
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.b.out);
  }
}

export interface FakeTensor {
  name: string;
  /** e.g. "FloatStorage". */
  storage: string;
  key: string;
  /** Elements in the storage. */
  storageNumel: number;
  offset: number;
  size: number[];
  stride: number[];
  /** Legacy view metadata [viewKey, offset, size]. */
  view?: [string, number, number];
  /** Wrap in torch._utils._rebuild_parameter. */
  parameter?: boolean;
}

/** Emits one `_rebuild_tensor_v2(...)` call as torch.save does. */
export function emitTensor(w: PickleWriter, t: FakeTensor, legacy: boolean) {
  if (t.parameter) w.global("torch._utils", "_rebuild_parameter").mark();
  w.global("torch._utils", "_rebuild_tensor_v2").mark();
  w.mark().str("storage").global("torch", t.storage).str(t.key).str("cpu").int(t.storageNumel);
  if (legacy) {
    if (t.view) {
      w.tuple((x) => x.str(t.view![0]), (x) => x.int(t.view![1]), (x) => x.int(t.view![2]));
    } else w.none();
  }
  w.op(0x74, 0x51); // TUPLE BINPERSID
  w.int(t.offset).ints(t.size).ints(t.stride).newfalse().orderedDict().op(0x74).reduce();
  if (t.parameter) w.newfalse().orderedDict().op(0x74).reduce();
}

/** A torch-like data.pkl for an OrderedDict of tensors, optionally nested under `wrap` keys. */
export function torchPickle(
  tensors: FakeTensor[],
  opts: { legacy?: boolean; wrap?: string[] } = {},
) {
  const w = new PickleWriter().proto(2);
  for (const k of opts.wrap ?? []) w.emptyDict().str(k);
  w.orderedDict().mark();
  for (const t of tensors) {
    w.str(t.name);
    emitTensor(w, t, opts.legacy ?? false);
  }
  w.setitems();
  for (const _ of opts.wrap ?? []) w.op(0x73); // SETITEM
  return w.stop().bytes();
}

/** A torch ZIP checkpoint from a data.pkl and storages (key -> little-endian bytes). */
export function torchZip(
  pkl: Uint8Array,
  storages: [string, Uint8Array][],
  opts: ZipBuildOptions & { prefix?: string; byteorder?: string } = {},
): Uint8Array {
  const p = opts.prefix ?? "archive";
  const files: [string, Uint8Array][] = [[`${p}/data.pkl`, pkl]];
  if (opts.byteorder) files.push([`${p}/byteorder`, new TextEncoder().encode(opts.byteorder)]);
  for (const [k, v] of storages) files.push([`${p}/data/${k}`, v]);
  files.push([`${p}/version`, new TextEncoder().encode("3\n")]);
  return buildZip(files, { dataDescriptor: true, ...opts });
}

/** A legacy torch stream: magic, protocol, sys_info, object pickle, keys, raw storages. */
export function torchLegacy(
  objectPickle: Uint8Array,
  storages: [string, number, Uint8Array][],
  opts: { littleEndian?: boolean } = {},
): Uint8Array {
  const head = new PickleWriter().proto(2).long(0x1950a86a20f9469cfc6cn).stop()
    .proto(2).int(1001).stop()
    .proto(2).emptyDict().mark()
    .str("protocol_version").int(1001)
    .str("little_endian").op(opts.littleEndian === false ? 0x89 : 0x88)
    .setitems().stop().bytes();
  const keys = new PickleWriter().proto(2).op(0x5d).mark();
  for (const [k] of storages) keys.str(k);
  keys.op(0x65).stop();
  const out = new Bytes().raw(head).raw(objectPickle).raw(keys.bytes());
  for (const [, count, data] of storages) out.u64(count).raw(data);
  return Uint8Array.from(out.out);
}

/** Little-endian bytes of a typed array. */
export function le(data: ArrayBufferView): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
}
