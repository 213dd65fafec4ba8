/**
 * Loader throughput: images/s delivered as uint8 NHWC batches, first epoch with a cold cache
 * (decode + resize + write, temp cache dir) and then from the cache.
 *
 *   deno task bench:loader [--data DIR] [--limit N] [--batch 64] [--height 150] [--width 200]
 *                          [--fit fill|cover] [--epochs 2] [--cache-dir DIR]
 *
 * --data defaults to HAM10000_DIR, else ../shared/data/ham10000 beside the repository.
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { openHam10000 } from "../packages/core/data/ham10000.ts";
import { type Fit, ImageCache } from "../packages/core/data/image_cache.ts";
import { Loader } from "../packages/core/data/loader.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    data: { type: "string" },
    "images-dir": { type: "string" },
    limit: { type: "string" },
    batch: { type: "string", default: "64" },
    height: { type: "string", default: "150" },
    width: { type: "string", default: "200" },
    fit: { type: "string", default: "fill" },
    epochs: { type: "string", default: "2" },
    "cache-dir": { type: "string" },
  },
});

const data = values.data ?? Deno.env.get("HAM10000_DIR") ??
  fileURLToPath(new URL("../../shared/data/ham10000/", import.meta.url));
const ham = await openHam10000({ data, imagesDir: values["images-dir"] });
const limit = values.limit ? Number(values.limit) : ham.samples.length;
const samples = ham.samples.slice(0, limit);
const cacheDir = values["cache-dir"] ?? await Deno.makeTempDir({ prefix: "dermagpu-bench-cache-" });
const cache = new ImageCache({
  height: Number(values.height),
  width: Number(values.width),
  fit: values.fit as Fit,
  dir: cacheDir,
});
const loader = new Loader({ samples, cache, batchSize: Number(values.batch), seed: 0 });
const folder = ham.images.folders.find((f) => f.used)?.path ?? "?";
console.log(
  `loader bench: ${samples.length} images from ${folder} -> ${cache.height}x${cache.width} ` +
    `(${cache.fit}), batch ${loader.batchSize}, cache ${cacheDir}, ${navigator.hardwareConcurrency} CPUs`,
);

async function epoch(e: number): Promise<{ seconds: number; images: number }> {
  const t0 = performance.now();
  let images = 0;
  for await (const b of loader.epoch(e)) images += b.n;
  return { seconds: (performance.now() - t0) / 1000, images };
}

try {
  const runs = Number(values.epochs);
  for (let e = 0; e < runs; e++) {
    const before = { ...cache.stats };
    const r = await epoch(e);
    const decoded = cache.stats.decoded - before.decoded;
    const label = decoded ? `epoch ${e} (cold: ${decoded} decoded)` : `epoch ${e} (cached)`;
    console.log(
      `${label.padEnd(30)} ${r.images} images in ${r.seconds.toFixed(2)} s: ` +
        `${(r.images / r.seconds).toFixed(0)} images/s`,
    );
  }
} finally {
  if (!values["cache-dir"]) await Deno.remove(cacheDir, { recursive: true });
}
