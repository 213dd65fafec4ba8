/**
 * NumPy `.npy` reader and writer: format versions 1.0, 2.0 and 3.0, little-endian numeric dtypes,
 * C order. Fortran-order, big-endian, object and structured arrays are refused with a `UserError`.
 */
import { ByteReader } from "./byte_reader.ts";
import {
  bytesOf,
  checkedNumel,
  type DType,
  DTYPE_SIZE,
  type RawTensor,
  typedFromBytes,
  validateRawTensor,
} from "./dtypes.ts";

export const NPY_MAGIC = Uint8Array.of(0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59); // "\x93NUMPY"

const DESCR_TO_DTYPE: Readonly<Record<string, DType>> = {
  "<f4": "float32",
  "<f8": "float64",
  "<f2": "float16",
  "<i8": "int64",
  "<i4": "int32",
  "<i2": "int16",
  "|i1": "int8",
  "<i1": "int8",
  "|u1": "uint8",
  "<u1": "uint8",
  "|b1": "bool",
};

const DTYPE_TO_DESCR: Partial<Record<DType, string>> = {
  float32: "<f4",
  float64: "<f8",
  float16: "<f2",
  int64: "<i8",
  int32: "<i4",
  int16: "<i2",
  int8: "|i1",
  uint8: "|u1",
  bool: "|b1",
};

/** True when `bytes` starts with the `.npy` magic string. */
export function isNpy(bytes: Uint8Array): boolean {
  return bytes.length >= NPY_MAGIC.length && NPY_MAGIC.every((b, i) => bytes[i] === b);
}

type PyValue = string | boolean | number | PyValue[];

/** Parses the small Python-literal dict of an npy header (strings, True/False, int tuples). */
function parseHeaderDict(text: string, fail: (m: string) => never): Map<string, PyValue> {
  let i = 0;
  const ws = () => {
    while (i < text.length && " \t\r\n".includes(text[i])) i++;
  };
  const expect = (c: string) => {
    ws();
    if (text[i] !== c) {
      fail(`expected '${c}' at position ${i} of the header ${JSON.stringify(text)}`);
    }
    i++;
  };
  const str = (): string => {
    const q = text[i];
    const end = text.indexOf(q, i + 1);
    if (end < 0) fail(`unterminated string in the header ${JSON.stringify(text)}`);
    const s = text.slice(i + 1, end);
    i = end + 1;
    return s;
  };
  const value = (): PyValue => {
    ws();
    const c = text[i];
    if (c === "'" || c === '"') return str();
    if (text.startsWith("True", i)) return (i += 4, true);
    if (text.startsWith("False", i)) return (i += 5, false);
    if (c === "(" || c === "[") {
      const close = c === "(" ? ")" : "]";
      i++;
      const items: PyValue[] = [];
      for (let guard = 0; guard <= text.length; guard++) {
        ws();
        if (text[i] === close) break;
        items.push(value());
        ws();
        if (text[i] === ",") i++;
        else if (text[i] !== close) fail(`expected ',' or '${close}' in the header`);
      }
      i++;
      return items;
    }
    const m = /^\d+L?/.exec(text.slice(i));
    if (!m) fail(`unexpected text at position ${i} of the header ${JSON.stringify(text)}`);
    i += m[0].length;
    return Number.parseInt(m[0], 10);
  };
  const out = new Map<string, PyValue>();
  expect("{");
  for (let guard = 0; guard <= text.length; guard++) {
    ws();
    if (text[i] === "}") return out;
    if (text[i] !== "'" && text[i] !== '"') fail(`expected a quoted key in the header`);
    const key = str();
    expect(":");
    out.set(key, value());
    ws();
    if (text[i] === ",") i++;
    else if (text[i] !== "}") fail(`expected ',' or '}' in the header`);
  }
  return fail(`unterminated header dict`);
}

/** Reads a `.npy` file. `name` is used in error messages. */
export function readNpy(bytes: Uint8Array, name = "npy file"): RawTensor {
  const r = new ByteReader(bytes, name, ".npy file");
  if (!isNpy(bytes)) r.fail("not a .npy file (missing the \\x93NUMPY magic)");
  r.seek(NPY_MAGIC.length);
  const major = r.u8();
  r.u8(); // minor
  if (major < 1 || major > 3) {
    r.fail(`unsupported .npy format version ${major} (1, 2 and 3 are read)`);
  }
  const headerLen = major === 1 ? r.u16() : r.u32();
  const text = major === 3 ? r.utf8(headerLen) : r.latin1(headerLen);
  const fail = (m: string): never => r.fail(`bad .npy header: ${m}`);
  const dict = parseHeaderDict(text, fail);
  const descr = dict.get("descr");
  const fortran = dict.get("fortran_order");
  const shapeV = dict.get("shape");
  if (typeof descr !== "string") {
    return fail(`'descr' must be a simple dtype string (structured dtypes are not supported)`);
  }
  if (typeof fortran !== "boolean") return fail(`'fortran_order' must be True or False`);
  if (!Array.isArray(shapeV)) return fail(`'shape' must be a tuple`);
  const shape = shapeV.map((d) => (typeof d === "number" ? d : NaN));
  const dtype = DESCR_TO_DTYPE[descr];
  if (!dtype) {
    const hint = descr.startsWith(">")
      ? "big-endian arrays are not supported; save with a.astype(a.dtype.newbyteorder('<'))"
      : "supported: " + Object.keys(DESCR_TO_DTYPE).join(" ");
    return fail(`dtype '${descr}' is not supported (${hint})`);
  }
  if (fortran) {
    return r.fail(
      "Fortran-order (column-major) arrays are not supported; re-save with " +
        "np.save(path, np.ascontiguousarray(a))",
    );
  }
  const n = checkedNumel(shape);
  if (typeof n === "string") return fail(n);
  const nbytes = n * DTYPE_SIZE[dtype];
  const data = r.take(nbytes);
  if (r.remaining !== 0) {
    r.fail(`${r.remaining} unexpected bytes after the array data (the file is corrupt)`);
  }
  return { dtype, shape, data: typedFromBytes(dtype, data) };
}

/**
 * Writes a `.npy` file (version 1.0, or 2.0 when the header exceeds 64 KiB) whose data starts on a
 * 64-byte boundary, as NumPy >= 1.9 does. `bfloat16` has no NumPy dtype and is refused.
 */
export function writeNpy(tensor: RawTensor): Uint8Array {
  validateRawTensor(tensor, "writeNpy");
  const descr = DTYPE_TO_DESCR[tensor.dtype];
  if (!descr) throw new TypeError(`writeNpy: dtype ${tensor.dtype} has no NumPy equivalent`);
  const dims = tensor.shape.length === 1 ? `${tensor.shape[0]},` : tensor.shape.join(", ");
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  let major = 1;
  let prefix = NPY_MAGIC.length + 2 + 2;
  if (dict.length + 1 + prefix > 65535) {
    major = 2;
    prefix += 2;
  }
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  const header = dict + " ".repeat(total - prefix - dict.length - 1) + "\n";
  const data = bytesOf(tensor.data);
  const out = new Uint8Array(total + data.length);
  out.set(NPY_MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (major === 1) dv.setUint16(8, header.length, true);
  else dv.setUint32(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[prefix + i] = header.charCodeAt(i);
  out.set(data, total);
  return out;
}
