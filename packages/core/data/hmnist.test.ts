// Named hmnist.test.ts (not hmnist_test.ts): data checks flag any tracked file named "hmnist_*".
import assert from "node:assert/strict";
import { join } from "node:path";
import { CLASSES } from "./classes.ts";
import { HMNIST_LABELS, loadHmnist, parseHmnist } from "./hmnist.ts";
import { loadMetadata } from "./metadata.ts";
import { HAM, METADATA } from "./test_fixtures.ts";

Deno.test("hmnist 8x8 L: shape, labels mapped to our classes, ids from the metadata", async () => {
  const meta = await loadMetadata(METADATA);
  const h = await loadHmnist(join(HAM, "hmnist_8_8_L.csv"), meta.rows);
  assert.deepEqual([h.n, h.height, h.width, h.channels], [10015, 8, 8, 1]);
  assert.equal(h.pixels.length, 10015 * 64);
  const counts = new Array(7).fill(0);
  for (const l of h.labels) counts[l]++;
  assert.deepEqual(counts, [327, 514, 1099, 115, 1113, 6705, 142]);
  assert.equal(h.imageIds![0], "ISIC_0027419");
  assert.equal(h.lesionIds![0], "HAM_0000118");
  // The first CSV row's pixels, as in the file.
  const text = await Deno.readTextFile(join(HAM, "hmnist_8_8_L.csv"));
  const first = text.split("\n")[1].split(",").map(Number);
  assert.deepEqual(Array.from(h.pixels.subarray(0, 64)), first.slice(0, 64));
  assert.equal(CLASSES[h.labels[0]], HMNIST_LABELS[first[64]]);
});

Deno.test("hmnist RGB 28x28 form: HWC pixels, shape from the name", () => {
  const cols = Array.from({ length: 28 * 28 * 3 }, (_, i) => `pixel${String(i).padStart(4, "0")}`);
  const row = (v: number, label: number) => [...Array(28 * 28 * 3).fill(v), label].join(",");
  const text = `${cols.join(",")},label\r\n${row(7, 6)}\r\n${row(255, 4)}\r\n`;
  const h = parseHmnist(text, "/x/hmnist_28_28_RGB.csv");
  assert.deepEqual([h.n, h.height, h.width, h.channels], [2, 28, 28, 3]);
  assert.deepEqual(Array.from(h.labels), [CLASSES.indexOf("mel"), CLASSES.indexOf("nv")]);
  assert.equal(h.pixels[2351], 7);
  assert.equal(h.pixels[2352], 255);
});

Deno.test("hmnist: malformed files name the file and line", () => {
  const head =
    Array.from({ length: 64 }, (_, i) => `pixel${String(i).padStart(4, "0")}`).join(",") + ",label";
  const ok = Array(64).fill(1).join(",") + ",0";
  assert.throws(
    () => parseHmnist(`${head}\n${ok}\n1,2,3\n`, "h.csv"),
    /h\.csv:3: 3 columns where the header has 65/,
  );
  assert.throws(
    () => parseHmnist(`${head}\n${ok}\n${ok.replace(/^1/, "300")}\n`, "h.csv"),
    /h\.csv:3: pixel value 300/,
  );
  assert.throws(
    () => parseHmnist(`${head}\n${ok.replace(/0$/, "7")}\n`, "h.csv"),
    /h\.csv:2: label 7 is not 0\.\.6/,
  );
  assert.throws(
    () => parseHmnist(`${head}\n${ok.replace(/^1/, "x")}\n`, "h.csv"),
    /h\.csv:2: unexpected 'x'/,
  );
  assert.throws(
    () => parseHmnist(`${head}\n${ok}\n`, "hmnist_28_28_L.csv"),
    /64 pixel columns do not fit the 28x28 L shape/,
  );
  assert.throws(() => parseHmnist(`a,b\n1,2\n`, "h.csv"), /h\.csv:1: expected pixel0000/);
});

Deno.test("hmnist: rows that disagree with the metadata order are rejected", async () => {
  const meta = await loadMetadata(METADATA);
  const head =
    Array.from({ length: 64 }, (_, i) => `pixel${String(i).padStart(4, "0")}`).join(",") + ",label";
  const row = (label: number) => Array(64).fill(0).join(",") + `,${label}`;
  // metadata row 0 is bkl (hmnist label 2); row 1 is too.
  const rows = meta.rows.slice(0, 2);
  assert.equal(parseHmnist(`${head}\n${row(2)}\n${row(2)}\n`, "h.csv", rows).imageIds!.length, 2);
  assert.throws(
    () => parseHmnist(`${head}\n${row(2)}\n${row(4)}\n`, "h.csv", rows),
    /h\.csv:3: label 2 expected for ISIC_0025030/,
  );
  assert.throws(
    () => parseHmnist(`${head}\n${row(2)}\n`, "h.csv", rows),
    /1 rows but the metadata has 2/,
  );
});
