import assert from "node:assert/strict";
import { join } from "node:path";
import { CLASSES } from "./classes.ts";
import { loadMetadata } from "./metadata.ts";
import {
  checkManifestAgainst,
  leakRate,
  lesionSplit,
  loadManifest,
  makeSplit,
  randomSplit,
  saveManifest,
  SPLIT_NAMES,
  splitClassCounts,
  validateManifest,
} from "./split.ts";
import { METADATA, tempDir } from "./test_fixtures.ts";

const meta = await loadMetadata(METADATA);
const rows = meta.rows;
const FRACTION = { train: 0.8, val: 0.1, test: 0.1 };

Deno.test("lesion split on the real metadata: complete, grouped, stratified (5 seeds)", () => {
  for (const seed of [0, 1, 2, 17, 123456]) {
    const split = lesionSplit(rows, seed);
    checkManifestAgainst(split, rows, `seed ${seed}`); // every image exactly once
    const lesionOf = new Map(rows.map((r) => [r.imageId, r.lesionId]));
    const home = new Map<string, string>();
    for (const s of SPLIT_NAMES) {
      for (const id of split[s]) {
        const l = lesionOf.get(id)!;
        assert.ok((home.get(l) ?? s) === s, `seed ${seed}: lesion ${l} in ${home.get(l)} and ${s}`);
        home.set(l, s);
      }
    }
    assert.equal(leakRate(rows, split), 0);
    const counts = splitClassCounts(rows, split);
    for (let c = 0; c < CLASSES.length; c++) {
      const n = SPLIT_NAMES.reduce((t, s) => t + counts[s][c], 0);
      for (const s of SPLIT_NAMES) {
        const off = Math.abs(counts[s][c] - FRACTION[s] * n);
        if (n >= 500) {
          assert.ok(off / n <= 0.01, `seed ${seed} ${CLASSES[c]} ${s}: ${counts[s][c]}/${n}`);
        } else assert.ok(off <= 3, `seed ${seed} ${CLASSES[c]} ${s}: ${counts[s][c]} of ${n}`);
      }
    }
  }
});

Deno.test("splits are reproducible by seed and differ between seeds", () => {
  for (const mode of ["lesion", "random"] as const) {
    assert.deepEqual(makeSplit(rows, mode, 9), makeSplit(rows, mode, 9));
    assert.notDeepEqual(makeSplit(rows, mode, 9).test, makeSplit(rows, mode, 10).test);
  }
});

Deno.test("random split: 80/10/10 by image and about 38% of test images leak", () => {
  const rates: number[] = [];
  for (const seed of [0, 1, 2, 3, 4]) {
    const split = randomSplit(rows, seed);
    checkManifestAgainst(split, rows, "random");
    assert.deepEqual([split.train.length, split.val.length, split.test.length], [8011, 1002, 1002]);
    rates.push(leakRate(rows, split));
  }
  const mean = rates.reduce((a, b) => a + b) / rates.length;
  assert.ok(mean > 0.34 && mean < 0.43, `mean leak ${mean}`);
});

Deno.test("manifest: save/load round trip; malformed manifests are rejected", async () => {
  await using dir = await tempDir();
  const file = join(dir.path, "split.json");
  const split = lesionSplit(rows, 5);
  await saveManifest(file, split);
  assert.deepEqual(await loadManifest(file), split);
  const ok = { version: 1, mode: "lesion", seed: 1, train: ["a"], val: ["b"], test: ["c"] };
  assert.deepEqual(validateManifest(ok, "m.json"), ok);
  const bad = (patch: object, why: RegExp) =>
    assert.throws(() => validateManifest({ ...ok, ...patch }, "m.json"), why);
  bad({ version: 2 }, /m\.json: not a valid split manifest \(version is 2/);
  bad({ mode: "kfold" }, /mode must be random or lesion/);
  bad({ seed: "x" }, /seed must be an integer/);
  bad({ val: "b" }, /val must be an array/);
  bad({ test: ["a"] }, /image a is listed twice/);
  await Deno.writeTextFile(file, "{not json");
  await assert.rejects(loadManifest(file), /split\.json: not valid JSON/);
  await assert.rejects(loadManifest(join(dir.path, "none.json")), /split manifest not found/);
  assert.throws(
    () => checkManifestAgainst({ ...split, test: [...split.test, "ISIC_9999999"] }, rows, "s.json"),
    /s\.json: image ISIC_9999999 \(in test\) is not in the metadata/,
  );
  assert.throws(
    () => checkManifestAgainst({ ...split, test: split.test.slice(1) }, rows, "s.json"),
    /s\.json: 1 metadata image\(s\) are in no split/,
  );
});
