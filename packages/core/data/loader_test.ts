import assert from "node:assert/strict";
import type { Sample } from "./ham10000.ts";
import { type ImageSource, Loader } from "./loader.ts";

/** A 2x2 image source whose bytes are the sample index; it records the paths asked for. */
function fakeSource(): ImageSource & { calls: string[] } {
  const calls: string[] = [];
  return {
    height: 2,
    width: 2,
    bytes: 12,
    calls,
    get(path: string) {
      calls.push(path);
      return Promise.resolve(new Uint8Array(12).fill(Number(path)));
    },
  };
}

const samples: Sample[] = Array.from({ length: 10 }, (_, i) => ({
  id: `id${i}`,
  path: String(i),
  label: i < 8 ? 0 : 1,
}));

async function collect(loader: Loader, epoch: number) {
  const out = [];
  for await (const b of loader.epoch(epoch)) out.push(b);
  return out;
}

Deno.test("loader: each epoch is a seeded permutation in NHWC batches", async () => {
  const loader = new Loader({ samples, cache: fakeSource(), batchSize: 4, seed: 3 });
  const e0 = await collect(loader, 0);
  assert.deepEqual(e0.map((b) => b.n), [4, 4, 2]);
  const ids = e0.flatMap((b) => b.ids);
  assert.deepEqual(ids.slice().sort(), samples.map((s) => s.id).sort());
  for (const b of e0) {
    assert.equal(b.images.length, b.n * 12);
    for (let i = 0; i < b.n; i++) {
      const k = Number(b.ids[i].slice(2));
      assert.ok(b.images.subarray(i * 12, i * 12 + 12).every((v) => v === k));
      assert.equal(b.labels[i], samples[k].label);
    }
  }
  const again = await collect(
    new Loader({ samples, cache: fakeSource(), batchSize: 4, seed: 3 }),
    0,
  );
  assert.deepEqual(again.flatMap((b) => b.ids), ids);
  const e1 = await collect(loader, 1);
  assert.notDeepEqual(e1.flatMap((b) => b.ids), ids);
});

Deno.test("loader: sequential, dropLast and balanced orders", async () => {
  const seq = new Loader({
    samples,
    cache: fakeSource(),
    batchSize: 3,
    order: "sequential",
    dropLast: true,
  });
  assert.equal(seq.batchesPerEpoch, 3);
  assert.deepEqual(
    (await collect(seq, 0)).flatMap((b) => b.ids),
    samples.slice(0, 9).map((s) => s.id),
  );
  const many: Sample[] = Array.from(
    { length: 1000 },
    (_, i) => ({ id: `${i}`, path: "0", label: i < 950 ? 0 : 1 }),
  );
  const bal = new Loader({
    samples: many,
    cache: fakeSource(),
    batchSize: 100,
    order: "balanced",
    seed: 1,
  });
  const idx = bal.indices(0);
  assert.equal(idx.length, 1000);
  const rare = Array.from(idx).filter((i) => many[i].label === 1).length;
  assert.ok(rare > 400 && rare < 600, `${rare} of 1000 draws from the 5% class`);
});

Deno.test("loader: the next batches are requested before the caller asks for them", async () => {
  const source = fakeSource();
  const loader = new Loader({
    samples,
    cache: source,
    batchSize: 2,
    order: "sequential",
    prefetch: 2,
  });
  const it = loader.epoch(0);
  const first = await it.next();
  assert.deepEqual(first.value!.ids, ["id0", "id1"]);
  // Batch 0 delivered; batches 1 and 2 (prefetch 2) are already being read, batch 3 not yet.
  assert.deepEqual(source.calls, ["0", "1", "2", "3", "4", "5", "6", "7"]);
  await it.next();
  assert.equal(source.calls.length, 10);
  await it.return(undefined);
});
