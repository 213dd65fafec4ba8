import assert from "node:assert/strict";
import { join } from "node:path";
import { UserError } from "../errors.ts";
import { decodeResize, defaultCacheDir, ImageCache } from "./image_cache.ts";
import { Loader } from "./loader.ts";
import { copyImages, SMALL, tempDir } from "./test_fixtures.ts";

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...await filesUnder(p));
    else out.push(p);
  }
  return out;
}

Deno.test("image cache: decode once, then served from disk; keyed by mtime and size", async () => {
  await using dir = await tempDir();
  await copyImages(["ISIC_0024306"], SMALL, dir.path);
  const img = join(dir.path, "ISIC_0024306.jpg");
  const cacheDir = join(dir.path, "cache");
  const a = new ImageCache({ height: 30, width: 40, dir: cacheDir });
  const first = await a.get(img);
  assert.equal(first.length, 30 * 40 * 3);
  assert.deepEqual(a.stats, { hits: 0, decoded: 1 });
  const files = await filesUnder(cacheDir);
  assert.equal(files.length, 1, "one entry, no temp files left");
  assert.match(files[0], /\/v1\/[0-9a-f]{2}\/[0-9a-f]{32}\.rgb$/);
  const b = new ImageCache({ height: 30, width: 40, dir: cacheDir });
  assert.deepEqual(await b.get(img), first);
  assert.deepEqual(b.stats, { hits: 1, decoded: 0 });
  // Another size is another entry; an edited file (new mtime) is decoded again.
  await new ImageCache({ height: 15, width: 20, dir: cacheDir }).get(img);
  await Deno.utime(img, new Date(), new Date(Date.now() + 5000));
  const c = new ImageCache({ height: 30, width: 40, dir: cacheDir });
  await c.get(img);
  assert.deepEqual(c.stats, { hits: 0, decoded: 1 });
  assert.equal((await filesUnder(cacheDir)).length, 3);
});

Deno.test("resize rules: fill keeps the whole view, cover crops the centre", async () => {
  const img = join(SMALL, "ISIC_0024306.jpg");
  const full = await decodeResize(img, 150, 200, "fill");
  const cover = await decodeResize(img, 150, 150, "cover");
  assert.equal(cover.length, 150 * 150 * 3);
  // The 150x150 centre crop of a 150x200 image is columns 25..174 of the full decode.
  let diff = 0;
  for (let y = 0; y < 150; y++) {
    for (let x = 0; x < 150; x++) {
      for (let c = 0; c < 3; c++) {
        diff += Math.abs(cover[(y * 150 + x) * 3 + c] - full[(y * 200 + x + 25) * 3 + c]);
      }
    }
  }
  assert.ok(diff / cover.length < 0.5, `mean diff ${diff / cover.length}`);
});

Deno.test("a corrupt or truncated JPEG is a UserError naming the file", async () => {
  await using dir = await tempDir();
  const garbage = join(dir.path, "ISIC_0000001.jpg");
  await Deno.writeFile(garbage, new TextEncoder().encode("this is not a jpeg"));
  const truncated = join(dir.path, "ISIC_0000002.jpg");
  const bytes = await Deno.readFile(join(SMALL, "ISIC_0024306.jpg"));
  await Deno.writeFile(truncated, bytes.subarray(0, bytes.length >> 1));
  const cache = new ImageCache({ height: 15, width: 20, dir: join(dir.path, "cache") });
  for (const f of [garbage, truncated]) {
    await assert.rejects(cache.get(f), (e: Error) => {
      assert.ok(e instanceof UserError);
      assert.match(e.message, new RegExp(`^${f}: cannot decode the image \\(.+\\); replace it`));
      return true;
    });
  }
  const loader = new Loader({
    samples: [{ id: "ISIC_0000002", path: truncated, label: 0 }],
    cache,
    batchSize: 1,
  });
  await assert.rejects(loader.epoch(0).next(), /ISIC_0000002\.jpg: cannot decode the image/);
  await assert.rejects(cache.get(join(dir.path, "gone.jpg")), /gone\.jpg not found/);
});

Deno.test("default cache dir: XDG_CACHE_HOME, else ~/.cache", () => {
  const env = (vars: Record<string, string>) => ({ get: (k: string) => vars[k] });
  assert.equal(defaultCacheDir(env({ XDG_CACHE_HOME: "/x", HOME: "/h" })), "/x/dermagpu");
  assert.equal(defaultCacheDir(env({ HOME: "/h" })), "/h/.cache/dermagpu");
  assert.throws(() => defaultCacheDir(env({})), /set XDG_CACHE_HOME or HOME/);
});
