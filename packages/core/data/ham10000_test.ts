import assert from "node:assert/strict";
import { join } from "node:path";
import { resolveDataDir } from "./data_dir.ts";
import { openHam10000, selectSamples } from "./ham10000.ts";
import { ImageCache } from "./image_cache.ts";
import { Loader } from "./loader.ts";
import {
  copyImages,
  metadataSubset,
  originalIds,
  ORIGINALS,
  SMALL,
  tempDir,
} from "./test_fixtures.ts";

const NO_ENV = { get: () => undefined };

Deno.test("the original study's part_1/part_2 layout loads end to end", async () => {
  await using dir = await tempDir();
  const ids = await originalIds(6);
  await Deno.writeTextFile(join(dir.path, "HAM10000_metadata.csv"), await metadataSubset(ids));
  await copyImages(ids.slice(0, 4), ORIGINALS, join(dir.path, "ham10000_images_part_1"));
  await copyImages(ids.slice(4), ORIGINALS, join(dir.path, "HAM10000_images_part_2"));
  const ham = await openHam10000({ data: dir.path, env: NO_ENV });
  assert.equal(ham.samples.length, 6);
  assert.deepEqual(
    ham.images.folders.map((f) => [f.path.slice(dir.path.length + 1), f.images, f.used]),
    [["HAM10000_images_part_2", 2, true], ["ham10000_images_part_1", 4, true]],
  );
  const cache = new ImageCache({ height: 150, width: 200, dir: join(dir.path, "cache") });
  const loader = new Loader({ samples: ham.samples, cache, batchSize: 4, seed: 1 });
  const batches = [];
  for await (const b of loader.epoch(0)) batches.push(b);
  assert.deepEqual(batches.map((b) => b.n), [4, 2]);
  assert.deepEqual(batches.flatMap((b) => b.ids).sort(), ids);
  assert.equal(cache.stats.decoded, 6);
  // The decoded 600x450 originals match the third party's 200x150 copies (PROVENANCE: ~2.1).
  const small = new ImageCache({ height: 150, width: 200, dir: join(dir.path, "cache") });
  const b = batches[0];
  for (let i = 0; i < b.n; i++) {
    const ref = await small.get(join(SMALL, `${b.ids[i]}.jpg`));
    const mine = b.images.subarray(i * 90000, (i + 1) * 90000);
    let diff = 0;
    for (let k = 0; k < ref.length; k++) diff += Math.abs(ref[k] - mine[k]);
    assert.ok(diff / ref.length < 5, `${b.ids[i]}: mean abs diff ${diff / ref.length}`);
    const label = ham.rows.find((r) => r.imageId === b.ids[i])!.label;
    assert.equal(b.labels[i], label);
  }
});

Deno.test("discovery: the folder holding the most images wins, then the larger size", async () => {
  await using dir = await tempDir();
  const ids = await originalIds(4);
  await Deno.writeTextFile(join(dir.path, "HAM10000_metadata.csv"), await metadataSubset(ids));
  await copyImages(ids, SMALL, join(dir.path, "images_200x150"));
  await copyImages(ids.slice(0, 2), ORIGINALS, join(dir.path, "images_600x450"));
  let ham = await openHam10000({ data: dir.path, env: NO_ENV });
  assert.ok(ham.samples.every((s) => s.path.includes("images_200x150")));
  assert.deepEqual(ham.images.folders.map((f) => [f.images, f.used]), [[4, true], [2, false]]);
  await copyImages(ids.slice(2), ORIGINALS, join(dir.path, "images_600x450"));
  await copyImages(ids, SMALL, join(dir.path, "flat"));
  ham = await openHam10000({ data: dir.path, env: NO_ENV });
  assert.ok(ham.samples.every((s) => s.path.includes("images_600x450")));
  // An explicit images dir wins even when another folder holds more.
  await Deno.remove(join(dir.path, "flat", `${ids[3]}.jpg`));
  const flat = join(dir.path, "flat");
  await assert.rejects(
    openHam10000({ data: dir.path, env: NO_ENV, imagesDir: flat }),
    new RegExp(`image ${ids[3]}\\.jpg not found; searched ${flat}\\. .*--skip-missing`),
  );
  ham = await openHam10000({ data: dir.path, env: NO_ENV, imagesDir: flat, skipMissing: true });
  assert.deepEqual(ham.images.missing, [ids[3]]);
  assert.equal(ham.samples.length, 3);
});

Deno.test("a flat folder of JPEGs beside the metadata is found; a missing image is named", async () => {
  await using dir = await tempDir();
  const ids = await originalIds(3);
  await Deno.writeTextFile(join(dir.path, "HAM10000_metadata.csv"), await metadataSubset(ids));
  await copyImages(ids.slice(0, 2), SMALL, dir.path);
  await assert.rejects(
    openHam10000({ data: dir.path, env: NO_ENV }),
    new RegExp(`image ${ids[2]}\\.jpg not found; searched ${dir.path}\\.`),
  );
  const ham = await openHam10000({ data: dir.path, env: NO_ENV, skipMissing: true });
  assert.deepEqual(ham.samples.map((s) => s.id).sort(), ids.slice(0, 2));
});

Deno.test("data folder: --data, then HAM10000_DIR, then ./data; the error names what was searched", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(join(dir.path, "HAM10000_metadata.csv"), "x");
  const env = { get: (k: string) => (k === "HAM10000_DIR" ? dir.path : undefined) };
  assert.equal((await resolveDataDir(dir.path, NO_ENV)).source, "--data");
  const fromEnv = await resolveDataDir(undefined, env);
  assert.deepEqual(fromEnv, {
    dir: dir.path,
    metadata: join(dir.path, "HAM10000_metadata.csv"),
    source: "HAM10000_DIR",
  });
  const empty = join(dir.path, "empty");
  await assert.rejects(
    resolveDataDir(empty, env),
    new RegExp(
      `no HAM10000 metadata found in ${empty} from --data; searched ${empty}/HAM10000_metadata\\.csv.*--data DIR or HAM10000_DIR=DIR`,
    ),
  );
  const cwd = Deno.cwd();
  try {
    Deno.chdir(dir.path);
    await assert.rejects(
      resolveDataDir(undefined, NO_ENV),
      /in .*\/data \(no --data flag and HAM10000_DIR is not set\)/,
    );
  } finally {
    Deno.chdir(cwd);
  }
});

Deno.test("selectSamples keeps the order of the ids and skips unknown ones", () => {
  const s = [0, 1, 2].map((i) => ({ id: `I${i}`, path: `/p/${i}.jpg`, label: i }));
  assert.deepEqual(selectSamples(s, ["I2", "X", "I0"]), [s[2], s[0]]);
});
