import assert from "node:assert/strict";
import { join } from "node:path";
import { CLASSES } from "./classes.ts";
import { loadIsic, parseIsicGroundTruth } from "./isic.ts";
import { copyImages, HAM, SMALL, tempDir } from "./test_fixtures.ts";

const GT = join(HAM, "isic2018_task3", "ISIC2018_Task3_Validation_GroundTruth.csv");

Deno.test("ISIC 2018 validation ground truth: 193 one-hot rows", async () => {
  const gt = parseIsicGroundTruth(await Deno.readTextFile(GT), GT);
  assert.equal(gt.ids.length, 193);
  assert.equal(gt.ids[0], "ISIC_0034321");
  const counts = Object.fromEntries(CLASSES.map((c) => [c, 0]));
  for (const l of gt.labels) counts[CLASSES[l]]++;
  assert.deepEqual(counts, { nv: 123, bkl: 22, mel: 21, bcc: 15, akiec: 8, vasc: 3, df: 1 });
});

Deno.test("ISIC: columns in any order; images found in a folder; bad rows rejected", async () => {
  await using dir = await tempDir();
  // Stand-in images: two HAM10000 JPEGs under ISIC validation names.
  const imgs = join(dir.path, "ISIC2018_Task3_Validation_Input");
  await copyImages(["ISIC_0024306", "ISIC_0024307"], SMALL, imgs);
  await Deno.rename(join(imgs, "ISIC_0024306.jpg"), join(imgs, "ISIC_0034321.jpg"));
  await Deno.rename(join(imgs, "ISIC_0024307.jpg"), join(imgs, "ISIC_0034322.jpg"));
  const csv = join(dir.path, "gt.csv");
  await Deno.writeTextFile(
    csv,
    "image,AKIEC,BCC,BKL,DF,MEL,NV,VASC\nISIC_0034321,0,0,0,0,1,0,0\nISIC_0034322.jpg,0,0,0,0,0,0,1.0\n",
  );
  const set = await loadIsic(csv);
  assert.deepEqual(set.samples.map((s) => [s.id, CLASSES[s.label], s.path]), [
    ["ISIC_0034321", "mel", join(imgs, "ISIC_0034321.jpg")],
    ["ISIC_0034322", "vasc", join(imgs, "ISIC_0034322.jpg")],
  ]);
  await Deno.writeTextFile(csv, "image,MEL,NV,BCC,AKIEC,BKL,DF,VASC\nISIC_0034323,0,0,0,0,0,0,1\n");
  await assert.rejects(
    loadIsic(csv),
    /image ISIC_0034323\.jpg not found; searched .*ISIC2018_Task3_Validation_Input/,
  );
  const bad = "image,MEL,NV,BCC,AKIEC,BKL,DF,VASC\nA,1,0,0,0,0,0,1\n";
  assert.throws(
    () => parseIsicGroundTruth(bad, "g.csv"),
    /g\.csv:2: the class columns of A are not one-hot/,
  );
  assert.throws(
    () => parseIsicGroundTruth("image,MEL\nA,1\n", "g.csv"),
    /g\.csv:1: expected columns/,
  );
});
