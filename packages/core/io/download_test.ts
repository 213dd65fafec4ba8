import assert from "node:assert/strict";
import { join } from "node:path";
import { downloadWeights, hashPrefixOf, sha256Hex } from "./download.ts";

/** A local server for one fixture file; counts requests. */
function serve(files: Record<string, Uint8Array>) {
  let requests = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    requests++;
    const body = files[new URL(req.url).pathname];
    return body
      ? new Response(body as Uint8Array<ArrayBuffer>)
      : new Response("no", { status: 404 });
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  return { base, server, count: () => requests };
}

const FIXTURE = new URL(
  "../../../../shared/fixtures/torch-format/tiny_zip_torch1.13.pth",
  import.meta.url,
);

Deno.test("hash prefixes are read from torchvision file names", () => {
  assert.equal(hashPrefixOf("resnet18-f37072fd.pth"), "f37072fd");
  assert.equal(hashPrefixOf("efficientnet_b0_rwightman-3dd342df.pth"), "3dd342df");
  assert.equal(hashPrefixOf("weights.pth"), null);
});

Deno.test("downloadWeights verifies the hash prefix, caches, and refuses a corrupt download", async () => {
  const bytes = await Deno.readFile(FIXTURE);
  const prefix = (await sha256Hex(bytes)).slice(0, 8);
  const bad = Uint8Array.from(bytes);
  bad[100] ^= 0xff;
  const { base, server, count } = serve({
    [`/models/tiny-${prefix}.pth`]: bytes,
    [`/models/tampered-${prefix}.pth`]: bad,
  });
  const cacheDir = await Deno.makeTempDir();
  try {
    const path = await downloadWeights(`${base}/models/tiny-${prefix}.pth`, { cacheDir });
    assert.equal(path, join(cacheDir, `tiny-${prefix}.pth`));
    assert.deepEqual(await Deno.readFile(path), bytes);
    assert.equal(count(), 1);
    // Cached: no second request.
    await downloadWeights(`${base}/models/tiny-${prefix}.pth`, { cacheDir });
    assert.equal(count(), 1);
    await assert.rejects(
      () => downloadWeights(`${base}/models/tampered-${prefix}.pth`, { cacheDir }),
      /does not start with/,
    );
    await assert.rejects(() => Deno.stat(join(cacheDir, `tampered-${prefix}.pth`)));
    await assert.rejects(
      () => downloadWeights(`${base}/models/missing-${prefix}.pth`, { cacheDir }),
      /HTTP 404/,
    );
    // A corrupted cached file is fetched again.
    await Deno.writeFile(path, bad);
    await downloadWeights(`${base}/models/tiny-${prefix}.pth`, { cacheDir });
    assert.deepEqual(await Deno.readFile(path), bytes);
    assert.equal(count(), 4);
  } finally {
    await server.shutdown();
    await Deno.remove(cacheDir, { recursive: true });
  }
});
