import assert from "node:assert/strict";
import { join } from "node:path";
import { writeFileAtomic } from "./atomic.ts";

Deno.test("writeFileAtomic: creates and replaces a file, leaving no temporary files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dermagpu_atomic_" });
  try {
    const path = join(dir, "ckpt.safetensors");
    await writeFileAtomic(path, Uint8Array.of(1, 2, 3));
    assert.deepEqual(await Deno.readFile(path), Uint8Array.of(1, 2, 3));
    const big = Uint8Array.from({ length: 300_000 }, (_, i) => i & 0xff);
    await writeFileAtomic(path, big);
    assert.deepEqual(await Deno.readFile(path), big);
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names, ["ckpt.safetensors"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeFileAtomic: a failed rename keeps the old file and removes the temporary", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dermagpu_atomic_" });
  try {
    // The target is a non-empty directory, so the final rename must fail.
    const target = join(dir, "target");
    await Deno.mkdir(target);
    await Deno.writeFile(join(target, "keep"), Uint8Array.of(9));
    await assert.rejects(() => writeFileAtomic(target, Uint8Array.of(1)));
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names, ["target"]);
    assert.deepEqual(await Deno.readFile(join(target, "keep")), Uint8Array.of(9));
    await assert.rejects(() => writeFileAtomic(join(dir, "missing", "x"), Uint8Array.of(1)));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
