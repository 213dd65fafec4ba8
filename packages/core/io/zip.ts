/**
 * A read-only ZIP archive reader: central directory, ZIP64 extensions, stored and deflated
 * entries, CRC-32 checks. Sizes and offsets come from the central directory (torch.save sets the
 * data-descriptor flag, leaving the local headers' sizes zero). Multi-disk and encrypted archives
 * are refused. Every malformed structure raises a `UserError` naming the file.
 */
import { inflateRawSync } from "node:zlib";
import { ByteReader } from "./byte_reader.ts";
import { crc32 } from "./crc32.ts";

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const EOCD_SIZE = 22;
const CENTRAL_SIZE = 46;

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate. */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  localHeaderOffset: number;
}

/** True when `bytes` starts with a ZIP local-file header or an empty archive's EOCD. */
export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b &&
    ((bytes[2] === 3 && bytes[3] === 4) || (bytes[2] === 5 && bytes[3] === 6));
}

export class ZipArchive {
  /** Entries in central-directory order. */
  readonly entries: ZipEntry[] = [];
  readonly #byName = new Map<string, ZipEntry>();
  readonly #r: ByteReader;

  constructor(readonly bytes: Uint8Array, readonly name = "ZIP archive") {
    this.#r = new ByteReader(bytes, name, "ZIP archive");
    this.#readCentralDirectory();
  }

  /** The entry called `name`, if any (the first one when names repeat). */
  get(name: string): ZipEntry | undefined {
    return this.#byName.get(name);
  }

  /** The uncompressed bytes of an entry; stored entries are returned as views (no copy). */
  read(entryOrName: ZipEntry | string, { verifyCrc = true } = {}): Uint8Array {
    const e = typeof entryOrName === "string" ? this.get(entryOrName) : entryOrName;
    if (!e) return this.#r.fail(`ZIP archive has no entry "${entryOrName}"`);
    const r = this.#r.seek(e.localHeaderOffset);
    if (r.u32() !== SIG_LOCAL) {
      r.fail(
        `corrupt ZIP archive: no local header for "${e.name}" at offset ${e.localHeaderOffset}`,
      );
    }
    r.seek(e.localHeaderOffset + 26);
    const nameLen = r.u16();
    const extraLen = r.u16();
    r.seek(e.localHeaderOffset + 30 + nameLen + extraLen);
    const raw = r.take(e.compressedSize);
    let out: Uint8Array;
    if (e.method === 0) {
      if (e.compressedSize !== e.size) {
        r.fail(`corrupt ZIP archive: stored entry "${e.name}" has differing sizes`);
      }
      out = raw;
    } else if (e.method === 8) {
      try {
        const buf = inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) });
        out = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
      } catch (err) {
        return r.fail(`corrupt ZIP archive: cannot inflate "${e.name}": ${(err as Error).message}`);
      }
      if (out.length !== e.size) {
        r.fail(
          `corrupt ZIP archive: "${e.name}" inflated to ${out.length} bytes, expected ${e.size}`,
        );
      }
    } else {
      return r.fail(
        `ZIP entry "${e.name}" uses compression method ${e.method}; only stored (0) and deflate (8) are supported`,
      );
    }
    if (verifyCrc && crc32(out) !== e.crc32) {
      r.fail(`corrupt ZIP archive: CRC-32 mismatch for "${e.name}" (the file is damaged)`);
    }
    return out;
  }

  #findEocd(): number {
    const b = this.bytes;
    const stop = Math.max(0, b.length - EOCD_SIZE - 0xffff);
    for (let p = b.length - EOCD_SIZE; p >= stop; p--) {
      if (b[p] === 0x50 && b[p + 1] === 0x4b && this.#r.seek(p).u32() === SIG_EOCD) return p;
    }
    return this.#r.fail(
      "not a ZIP archive or truncated: no end-of-central-directory record " +
        "(the file is incomplete; re-download or re-save it)",
    );
  }

  #readCentralDirectory(): void {
    const r = this.#r;
    const eocd = this.#findEocd();
    r.seek(eocd + 4);
    const disk = r.u16();
    const cdDisk = r.u16();
    r.u16(); // entries on this disk
    let count = r.u16();
    let cdSize = r.u32();
    let cdOffset = r.u32();
    if (eocd >= 20 && r.seek(eocd - 20).u32() === SIG_ZIP64_LOCATOR) {
      r.u32(); // disk with the ZIP64 record
      const recOffset = r.u64();
      r.seek(recOffset);
      if (r.u32() !== SIG_ZIP64_EOCD) {
        r.fail(
          `corrupt ZIP archive: ZIP64 end-of-central-directory record missing at ${recOffset}`,
        );
      }
      r.u64(); // record size
      r.u16(); // version made by
      r.u16(); // version needed
      const disk64 = r.u32();
      const cdDisk64 = r.u32();
      if (disk64 !== 0 || cdDisk64 !== 0) r.fail("multi-disk ZIP archives are not supported");
      r.u64(); // entries on this disk
      count = r.u64();
      cdSize = r.u64();
      cdOffset = r.u64();
    } else if (disk !== 0 || cdDisk !== 0) {
      r.fail("multi-disk ZIP archives are not supported");
    }
    if (cdOffset + cdSize > r.bytes.length) {
      r.fail(
        `corrupt ZIP archive: central directory (${cdSize} bytes at ${cdOffset}) is past the end`,
      );
    }
    if (count * CENTRAL_SIZE > cdSize) {
      r.fail(
        `corrupt ZIP archive: ${count} entries cannot fit in a ${cdSize}-byte central directory`,
      );
    }
    r.seek(cdOffset);
    const decoder = new TextDecoder();
    for (let i = 0; i < count; i++) {
      const at = r.pos;
      if (r.u32() !== SIG_CENTRAL) {
        r.fail(`corrupt ZIP archive: bad central directory entry at ${at}`);
      }
      r.u16(); // version made by
      r.u16(); // version needed
      const flags = r.u16();
      const method = r.u16();
      r.u32(); // time, date
      const crc = r.u32();
      let compressedSize = r.u32();
      let size = r.u32();
      const nameLen = r.u16();
      const extraLen = r.u16();
      const commentLen = r.u16();
      const diskStart = r.u16();
      r.u16(); // internal attributes
      r.u32(); // external attributes
      let localHeaderOffset = r.u32();
      const name = decoder.decode(r.take(nameLen));
      if (flags & 1) {
        r.fail(`ZIP entry "${name}" is encrypted; encrypted archives are not supported`);
      }
      const extraEnd = r.pos + extraLen;
      r.need(extraLen);
      while (r.pos + 4 <= extraEnd) {
        const id = r.u16();
        const len = r.u16();
        const next = r.pos + len;
        if (next > extraEnd) r.fail(`corrupt ZIP archive: bad extra field in entry "${name}"`);
        if (id === 0x0001) {
          if (size === 0xffffffff) size = r.u64();
          if (compressedSize === 0xffffffff) compressedSize = r.u64();
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = r.u64();
          if (r.pos > next) r.fail(`corrupt ZIP archive: short ZIP64 extra field in "${name}"`);
        }
        r.seek(next);
      }
      r.seek(extraEnd);
      r.take(commentLen);
      if (diskStart !== 0 && diskStart !== 0xffff) {
        r.fail("multi-disk ZIP archives are not supported");
      }
      if (localHeaderOffset + 30 + compressedSize > r.bytes.length) {
        r.fail(`corrupt or truncated ZIP archive: data of "${name}" runs past the end of the file`);
      }
      const entry: ZipEntry = { name, method, compressedSize, size, crc32: crc, localHeaderOffset };
      this.entries.push(entry);
      if (!this.#byName.has(name)) this.#byName.set(name, entry);
    }
  }
}

/** Opens a ZIP archive held in memory. */
export function readZip(bytes: Uint8Array, name?: string): ZipArchive {
  return new ZipArchive(bytes, name);
}
