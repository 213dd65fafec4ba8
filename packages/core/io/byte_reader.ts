/**
 * A bounds-checked little-endian reader over a byte array. Every read past the end throws a
 * `UserError` naming the file, so corrupt or truncated inputs never surface as a `RangeError`.
 */
import { UserError } from "../errors.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });
const latin1 = new TextDecoder("latin1");

export class ByteReader {
  pos: number;
  readonly #view: DataView;

  /**
   * @param bytes the data to read
   * @param name the file name used in error messages
   * @param what what is being read ("ZIP archive", "pickle", ...), used in error messages
   */
  constructor(
    readonly bytes: Uint8Array,
    readonly name: string,
    readonly what: string,
    pos = 0,
  ) {
    this.pos = pos;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  /** Throws a `UserError` "<name>: <message>". */
  fail(message: string): never {
    throw new UserError(`${this.name}: ${message}`);
  }

  /** Ensures `n` more bytes are available at the current position. */
  need(n: number): void {
    if (!(n >= 0) || this.pos + n > this.bytes.length) {
      this.fail(
        `truncated ${this.what}: needs ${n} bytes at offset ${this.pos} but only ${
          Math.max(0, this.remaining)
        } remain (the file is incomplete or corrupt; re-download or re-export it)`,
      );
    }
  }

  seek(pos: number): this {
    if (!(pos >= 0 && pos <= this.bytes.length)) {
      this.fail(
        `corrupt ${this.what}: offset ${pos} is outside the file (${this.bytes.length} bytes)`,
      );
    }
    this.pos = pos;
    return this;
  }

  u8(): number {
    this.need(1);
    return this.bytes[this.pos++];
  }

  u16(): number {
    this.need(2);
    const v = this.#view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.#view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  i32(): number {
    this.need(4);
    const v = this.#view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** An unsigned 64-bit value that must fit in a safe JS integer. */
  u64(): number {
    this.need(8);
    const v = this.#view.getBigUint64(this.pos, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
      this.fail(`corrupt ${this.what}: 64-bit value ${v} at offset ${this.pos} is too large`);
    }
    this.pos += 8;
    return Number(v);
  }

  /** A signed 64-bit value that must fit in a safe JS integer. */
  i64(): number {
    this.need(8);
    const v = this.#view.getBigInt64(this.pos, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      this.fail(`corrupt ${this.what}: 64-bit value ${v} at offset ${this.pos} is too large`);
    }
    this.pos += 8;
    return Number(v);
  }

  /** A big-endian IEEE double (pickle BINFLOAT). */
  f64be(): number {
    this.need(8);
    const v = this.#view.getFloat64(this.pos, false);
    this.pos += 8;
    return v;
  }

  /** The next `n` bytes as a view (no copy). */
  take(n: number): Uint8Array {
    this.need(n);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** `n` bytes decoded as strict UTF-8. */
  utf8(n: number): string {
    const b = this.take(n);
    try {
      return utf8.decode(b);
    } catch {
      return this.fail(`corrupt ${this.what}: invalid UTF-8 text at offset ${this.pos - n}`);
    }
  }

  /** `n` bytes decoded as Latin-1 (never fails). */
  latin1(n: number): string {
    return latin1.decode(this.take(n));
  }

  /** Bytes up to (not including) the next "\n", at most `max` bytes; consumes the newline. */
  line(max: number): string {
    const end = Math.min(this.bytes.length, this.pos + max + 1);
    for (let i = this.pos; i < end; i++) {
      if (this.bytes[i] === 0x0a) {
        const s = latin1.decode(this.bytes.subarray(this.pos, i));
        this.pos = i + 1;
        return s;
      }
    }
    return this.fail(
      `corrupt ${this.what}: expected a newline-terminated line of at most ${max} bytes at offset ${this.pos}`,
    );
  }
}
