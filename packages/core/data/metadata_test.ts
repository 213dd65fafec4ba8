import assert from "node:assert/strict";
import { join } from "node:path";
import { CLASS_NAMES, CLASSES, classIndex } from "./classes.ts";
import { classCounts, loadMetadata, parseMetadata } from "./metadata.ts";
import { HAM, METADATA } from "./test_fixtures.ts";

const HEADER = "lesion_id,image_id,dx,dx_type,age,sex,localization";

Deno.test("classes: alphabetical index order and display names", () => {
  assert.deepEqual([...CLASSES], ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]);
  assert.equal(classIndex("MEL"), 4);
  assert.equal(classIndex("nevus"), -1);
  assert.equal(CLASS_NAMES[classIndex("nv")], "Melanocytic nevi");
  assert.equal(CLASS_NAMES[classIndex("bkl")], "Benign keratosis-like lesions");
});

Deno.test("metadata: the real HAM10000 file", async () => {
  const m = await loadMetadata(METADATA);
  assert.equal(m.rows.length, 10015);
  assert.equal(new Set(m.rows.map((r) => r.lesionId)).size, 7470);
  const counts = classCounts(m.rows);
  const byName = Object.fromEntries(CLASSES.map((c, i) => [c, counts[i]]));
  assert.deepEqual(byName, {
    nv: 6705,
    mel: 1113,
    bkl: 1099,
    bcc: 514,
    akiec: 327,
    vasc: 142,
    df: 115,
  });
  assert.equal(m.agesFilled, 57);
  assert.equal(m.hasDataset, false);
  const known = m.rows.filter((r) => !r.ageFilled);
  const mean = known.reduce((s, r) => s + r.age, 0) / known.length;
  assert.ok(Math.abs(m.meanAge - mean) < 1e-9);
  assert.ok(m.rows.filter((r) => r.ageFilled).every((r) => r.age === m.meanAge));
  assert.deepEqual(m.rows[0], {
    lesionId: "HAM_0000118",
    imageId: "ISIC_0027419",
    dx: "bkl",
    label: 2,
    dxType: "histo",
    age: 80,
    ageFilled: false,
    sex: "male",
    localization: "scalp",
    line: 2,
  });
});

Deno.test("metadata: the dataset-column variant has the same rows, .jpg stripped", async () => {
  const plain = await loadMetadata(METADATA);
  const ds = await loadMetadata(join(HAM, "HAM10000_metadata_with_dataset.csv"));
  assert.equal(ds.hasDataset, true);
  assert.equal(ds.rows.length, plain.rows.length);
  assert.equal(ds.rows.filter((r) => r.dataset === "vidir_molemax").length, 3954);
  for (let i = 0; i < ds.rows.length; i++) {
    const { dataset: _, ...rest } = ds.rows[i];
    assert.deepEqual(rest, plain.rows[i]);
  }
});

Deno.test("metadata: NaN and empty ages are filled with the mean", () => {
  const m = parseMetadata(
    `${HEADER}\nL1,I1,nv,histo,40.0,male,back\nL2,I2,mel,histo,NaN,female,face\n` +
      `L3,I3,df,histo,,female,face\nL4,I4,nv,histo,60,male,back\n`,
    "m.csv",
  );
  assert.equal(m.agesFilled, 2);
  assert.deepEqual(m.rows.map((r) => r.age), [40, 50, 50, 60]);
});

Deno.test("metadata: bad rows name the file and line", () => {
  const bad = (rows: string) => () =>
    parseMetadata(`${HEADER}\nL1,I1,nv,histo,40,male,back\n${rows}`, "meta.csv");
  assert.throws(bad("L2,I2,melanoma,histo,40,male,back\n"), /meta\.csv:3: unknown dx 'melanoma'/);
  assert.throws(
    bad("L2,I1,nv,histo,40,male,back\n"),
    /meta\.csv:3: duplicate image_id I1 \(first on line 2\)/,
  );
  assert.throws(bad("L2,I2,nv,histo,40,male\n"), /meta\.csv:3: 6 columns where the header has 7/);
  assert.throws(bad('L2,"I2,nv,histo,40,male,back\n'), /meta\.csv:3: unterminated quoted field/);
  assert.throws(bad("L2,I2,nv,histo,forty,male,back\n"), /meta\.csv:3: age 'forty'/);
  assert.throws(
    () => parseMetadata("lesion,image,dx\nL1,I1,nv\n", "x.csv"),
    /x\.csv:1: missing column\(s\) lesion_id, image_id, dx_type, age, sex, localization/,
  );
});
