import assert from "node:assert/strict";
import fc from "fast-check";
import { UserError } from "../errors.ts";
import { isNpy, readNpy, writeNpy } from "./npy.ts";
import { tensorArb } from "./testing_arbitraries.ts";
import { SHARED } from "./testing_builders.ts";

const MOBILENET = new URL(
  "weights/mobilenet_v2/tfslim_mobilenet_v2_1.0_224_fp32_bnfolded_npy/",
  SHARED,
);

Deno.test("npy: write/read round-trip for every numpy dtype and shape", () => {
  fc.assert(
    fc.property(
      tensorArb([
        "float32",
        "float64",
        "float16",
        "int64",
        "int32",
        "int16",
        "int8",
        "uint8",
        "bool",
      ]),
      (t) => {
        const bytes = writeNpy(t);
        assert.ok(isNpy(bytes));
        const header = new DataView(bytes.buffer).getUint16(8, true);
        assert.equal((10 + header) % 64, 0, "data starts on a 64-byte boundary");
        assert.deepEqual(readNpy(bytes), { dtype: t.dtype, shape: t.shape, data: t.data });
      },
    ),
    { seed: 1234, numRuns: 300 },
  );
});

const headerText = (b: Uint8Array) =>
  new TextDecoder().decode(b.subarray(10, 10 + new DataView(b.buffer).getUint16(8, true)));

Deno.test("npy: header text matches numpy's format", () => {
  const bytes = writeNpy({ dtype: "float32", shape: [3], data: Float32Array.of(1, 2, 3) });
  assert.match(
    headerText(bytes),
    /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(3,\), \} *\n$/,
  );
  assert.equal(bytes.length, 128 + 12); // 71-byte header padded to 128
  const scalar = writeNpy({ dtype: "int64", shape: [], data: BigInt64Array.of(7n) });
  assert.match(headerText(scalar), /'shape': \(\), \}/);
  const matrix = writeNpy({ dtype: "uint8", shape: [2, 1], data: Uint8Array.of(1, 2) });
  assert.match(headerText(matrix), /'descr': '\|u1'.*'shape': \(2, 1\), \}/);
});

/** Builds an npy file by hand with an arbitrary header and format version. */
function handNpy(header: string, data: Uint8Array, major = 1): Uint8Array {
  const h = new TextEncoder().encode(header);
  const pre = major === 1 ? 10 : 12;
  const out = new Uint8Array(pre + h.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const dv = new DataView(out.buffer);
  if (major === 1) dv.setUint16(8, h.length, true);
  else dv.setUint32(8, h.length, true);
  out.set(h, pre);
  out.set(data, pre + h.length);
  return out;
}

Deno.test("npy: versions 2 and 3, spacing and Python 2 long suffixes", () => {
  const data = new Uint8Array(Float64Array.of(1.5, -2).buffer);
  for (const major of [1, 2, 3]) {
    for (
      const header of [
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n",
        '{ "shape" : (2L,) , "descr":"<f8","fortran_order":False}   \n',
      ]
    ) {
      const t = readNpy(handNpy(header, data, major));
      assert.deepEqual(t, { dtype: "float64", shape: [2], data: Float64Array.of(1.5, -2) });
    }
  }
});

function throwsUser(fn: () => unknown, re: RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UserError, String(e));
    assert.match(e.message, /^w\.npy: /);
    assert.match(e.message, re);
    return true;
  });
}

Deno.test("npy: refuses Fortran order, big-endian, unknown dtypes and bad sizes", () => {
  const d8 = new Uint8Array(8);
  const h = (descr: string, fortran = "False", shape = "(2,)") =>
    `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }\n`;
  throwsUser(
    () => readNpy(handNpy(h("<f4", "True"), d8), "w.npy"),
    /Fortran-order.*ascontiguousarray/,
  );
  throwsUser(() => readNpy(handNpy(h(">f4"), d8), "w.npy"), /'>f4'.*big-endian/);
  throwsUser(() => readNpy(handNpy(h("<c8"), d8), "w.npy"), /'<c8' is not supported/);
  throwsUser(() => readNpy(handNpy(h("<f4"), d8.subarray(0, 7)), "w.npy"), /truncated/);
  throwsUser(() => readNpy(handNpy(h("<f4"), new Uint8Array(12)), "w.npy"), /4 unexpected bytes/);
  throwsUser(() => readNpy(handNpy(h("<f4", "False", "(-1,)"), d8), "w.npy"), /bad \.npy header/);
  throwsUser(() => readNpy(handNpy(h("<f4", "False", "(2, 3"), d8), "w.npy"), /bad \.npy header/);
  throwsUser(
    () =>
      readNpy(
        handNpy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}\n", d8),
        "w.npy",
      ),
    /structured/,
  );
  throwsUser(() => readNpy(new TextEncoder().encode("not numpy"), "w.npy"), /not a \.npy file/);
  throwsUser(() => readNpy(handNpy(h("<f4"), d8, 4), "w.npy"), /format version 4/);
});

Deno.test("npy: reads a real TF-slim MobileNetV2 weight file", async () => {
  const bytes = await Deno.readFile(new URL("Const_100.npy", MOBILENET));
  const t = readNpy(bytes, "Const_100.npy");
  assert.equal(t.dtype, "float32");
  assert.deepEqual(t.shape, [320, 1, 1, 960]);
  const offset = 10 + new DataView(bytes.buffer).getUint16(8, true);
  assert.equal(offset, 96, "older numpy 16-byte-aligned header");
  assert.equal(bytes.length, offset + 4 * 320 * 960);
  const data = t.data as Float32Array;
  const dv = new DataView(bytes.buffer);
  for (const i of [0, 1, 12345, data.length - 1]) {
    assert.equal(data[i], dv.getFloat32(offset + 4 * i, true));
  }
  assert.ok(data.every(Number.isFinite));
  assert.ok(data.some((v) => v !== 0));
});
