import assert from "node:assert/strict";
import fc from "fast-check";
import { UserError } from "../errors.ts";
import { crc32 } from "./crc32.ts";
import { buildZip, TORCH_FIXTURES } from "./testing_builders.ts";
import { isZip, readZip } from "./zip.ts";

const enc = new TextEncoder();
const FILES: [string, Uint8Array][] = [
  ["a.txt", enc.encode("hello zip")],
  ["dir/b.bin", Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 0xff)],
  ["empty", new Uint8Array(0)],
];

Deno.test("crc32 matches the standard check value", () => {
  assert.equal(crc32(enc.encode("123456789")), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
});

for (
  const opts of [
    {},
    { zip64: true },
    { deflate: true },
    { dataDescriptor: true },
    { zip64: true, deflate: true, dataDescriptor: true },
  ]
) {
  Deno.test(`readZip: reads back entries written with ${JSON.stringify(opts)}`, () => {
    const bytes = buildZip(FILES, opts);
    assert.ok(isZip(bytes));
    const zip = readZip(bytes, "t.zip");
    assert.deepEqual(zip.entries.map((e) => e.name), FILES.map(([n]) => n));
    for (const [name, data] of FILES) assert.deepEqual(zip.read(name), data, name);
    assert.equal(zip.entries[1].method, opts.deflate ? 8 : 0);
  });
}

Deno.test("readZip: ZIP64 record is required and used when classic fields are saturated", () => {
  const bytes = buildZip(FILES, { zip64: true });
  // The classic EOCD holds 0xFFFF / 0xFFFFFFFF: only the ZIP64 record gives the real values.
  const eocd = bytes.length - 22;
  assert.equal(new DataView(bytes.buffer).getUint16(eocd + 10, true), 0xffff);
  assert.equal(readZip(bytes).entries.length, 3);
  const broken = bytes.slice();
  broken[eocd - 20] = 0; // destroy the ZIP64 locator signature
  assert.throws(() => readZip(broken, "z64.zip"), /^UserError: z64\.zip: /);
});

Deno.test("readZip: torch fixture layout (central directory sizes, data descriptors)", async () => {
  const zip = readZip(await Deno.readFile(new URL("tiny_zip_torch1.13.pth", TORCH_FIXTURES)));
  const names = zip.entries.map((e) => e.name);
  assert.ok(names.includes("tiny_zip_torch1.13/data.pkl"));
  assert.ok(names.includes("tiny_zip_torch1.13/data/9"));
  assert.equal(new TextDecoder().decode(zip.read("tiny_zip_torch1.13/version")), "3\n");
  for (const e of zip.entries) {
    const data = zip.read(e);
    assert.equal(data.length, e.size);
    if (e.name.includes("/data/")) assert.equal(data.byteOffset % 64, 0, `${e.name} aligned`);
  }
});

function throwsUser(fn: () => unknown, re: RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UserError, String(e));
    assert.match(e.message, /^t\.zip: /);
    assert.match(e.message, re);
    return true;
  });
}

Deno.test("readZip: corruption and truncation give clear errors", () => {
  const bytes = buildZip(FILES);
  throwsUser(() => readZip(bytes.subarray(0, 40), "t.zip"), /no end-of-central-directory/);
  throwsUser(() => readZip(enc.encode("PK\x03\x04 not really"), "t.zip"), /no end-of-central/);
  const flipped = bytes.slice();
  flipped[30 + "a.txt".length] ^= 0xff; // first data byte of a.txt
  throwsUser(() => readZip(flipped, "t.zip").read("a.txt"), /CRC-32 mismatch for "a\.txt"/);
  throwsUser(() => readZip(bytes, "t.zip").read("nope"), /no entry "nope"/);
  const cut = bytes.slice();
  const dv = new DataView(cut.buffer);
  dv.setUint32(cut.length - 6, 999999, true); // central directory offset past the end
  throwsUser(() => readZip(cut, "t.zip"), /central directory .* past the end/);
  const enc2 = bytes.slice();
  const cd = new DataView(enc2.buffer).getUint32(enc2.length - 6, true);
  enc2[cd + 8] |= 1; // encrypted flag on the first central entry
  throwsUser(() => readZip(enc2, "t.zip"), /encrypted/);
  const method = bytes.slice();
  method[cd + 10] = 12; // bzip2
  throwsUser(() => readZip(method, "t.zip").read("a.txt"), /compression method 12/);
});

Deno.test("readZip: random corruption never escapes as a non-UserError", () => {
  const bytes = buildZip(FILES, { deflate: true, zip64: true });
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(bytes.length - 1), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 8,
      }),
      (edits) => {
        const b = bytes.slice();
        for (const [i, v] of edits) b[i] = v;
        try {
          const zip = readZip(b, "t.zip");
          for (const e of zip.entries) zip.read(e);
        } catch (e) {
          assert.ok(e instanceof UserError, `non-UserError: ${e}`);
          assert.match(e.message, /^t\.zip: /);
        }
      },
    ),
    { seed: 11, numRuns: 500 },
  );
});
