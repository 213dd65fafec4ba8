import assert from "node:assert/strict";
import { initGpu } from "./gpu.ts";
import { adapterSlug, Autotuner, type Candidate, defaultCachePath } from "./autotune.ts";

const candidates: Candidate<{ tile: number }>[] = [
  { name: "t8", config: { tile: 8 } },
  { name: "t16", config: { tile: 16 } },
  { name: "t32", config: { tile: 32 } },
];
/** Fake timing: each config "takes" a fixed time; records which configs were timed. */
function fakeMeasure(ms: Record<number, number>, timed: number[]) {
  let current = 0;
  return {
    run: (c: { tile: number }) => {
      current = c.tile;
      if (ms[c.tile] < 0) throw new Error("config does not compile");
    },
    measure: (run: () => void) => {
      run();
      timed.push(current);
      return Promise.resolve(ms[current]);
    },
  };
}

Deno.test("autotune picks the fastest candidate, caches it on disk, and the next process reuses it", async () => {
  const g = await initGpu();
  const dir = await Deno.makeTempDir();
  const cachePath = `${dir}/sub/autotune-test.json`;
  try {
    const timed: number[] = [];
    const f = fakeMeasure({ 8: 3, 16: 1, 32: 2 }, timed);
    const a = new Autotuner(g, { enabled: true, cachePath, measure: f.measure });
    const fallback = { tile: 0 };
    assert.deepEqual(await a.choose("gemm", "64x64x64", candidates, f.run, fallback), { tile: 16 });
    assert.deepEqual(timed, [8, 16, 32]);
    assert.equal(a.measured, 3);
    // Same shape again: cached in memory, nothing timed.
    assert.deepEqual(await a.choose("gemm", "64x64x64", candidates, f.run, fallback), { tile: 16 });
    assert.equal(a.measured, 3);
    const file = JSON.parse(await Deno.readTextFile(cachePath));
    assert.equal(file.adapter, g.info.name);
    assert.equal(file.entries["gemm|64x64x64"].winner, "t16");
    assert.deepEqual(file.entries["gemm|64x64x64"].ms, { t8: 3, t16: 1, t32: 2 });
    // A new tuner (a later process) reads the winner from disk without timing.
    const timed2: number[] = [];
    const f2 = fakeMeasure({ 8: 0.1, 16: 5, 32: 5 }, timed2);
    const b = new Autotuner(g, { enabled: true, cachePath, measure: f2.measure });
    assert.deepEqual(b.lookup("gemm", "64x64x64", candidates), { tile: 16 });
    assert.deepEqual(await b.choose("gemm", "64x64x64", candidates, f2.run, fallback), {
      tile: 16,
    });
    assert.equal(b.measured, 0);
    // Another shape is tuned on its own (and now t8 wins).
    assert.deepEqual(await b.choose("gemm", "8x8x8", candidates, f2.run, fallback), { tile: 8 });
    assert.equal(b.lookup("gemm", "1x1x1", candidates), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("autotune is off by default (fallback, no timing, no cache read) and skips failing candidates", async () => {
  const g = await initGpu();
  const dir = await Deno.makeTempDir();
  const cachePath = `${dir}/autotune.json`;
  try {
    await Deno.writeTextFile(
      cachePath,
      JSON.stringify({
        version: 1,
        adapter: "x",
        entries: { "op|s": { winner: "t8", ms: {}, date: "" } },
      }),
    );
    const timed: number[] = [];
    const f = fakeMeasure({ 8: -1, 16: 2, 32: 1 }, timed);
    const env = Deno.env.get("DERMAGPU_AUTOTUNE");
    const off = new Autotuner(g, { enabled: false, cachePath, measure: f.measure });
    assert.equal(off.enabled, false);
    assert.deepEqual(await off.choose("op", "s", candidates, f.run, { tile: 0 }), { tile: 0 });
    assert.equal(off.lookup("op", "s", candidates), undefined);
    assert.equal(timed.length, 0);
    if (env === undefined) assert.equal(new Autotuner(g, { cachePath: null }).enabled, false);
    const on = new Autotuner(g, { enabled: true, cachePath, measure: f.measure });
    assert.deepEqual(on.lookup("op", "s", candidates), { tile: 8 }, "reads the existing file");
    assert.deepEqual(await on.choose("op", "t", candidates, f.run, { tile: 0 }), { tile: 32 });
    assert.equal(on.entry("op", "t")!.ms.t8, Infinity, "a throwing candidate is never chosen");
    // All candidates failing gives the fallback.
    const f3 = fakeMeasure({ 8: -1, 16: -1, 32: -1 }, []);
    const all = new Autotuner(g, { enabled: true, cachePath: null, measure: f3.measure });
    assert.deepEqual(await all.choose("op", "u", candidates, f3.run, { tile: 0 }), { tile: 0 });
    // A corrupt cache file is ignored.
    await Deno.writeTextFile(cachePath, "{not json");
    const c = new Autotuner(g, { enabled: true, cachePath, measure: f.measure });
    assert.equal(c.lookup("op", "s", candidates), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("autotune with real GPU timing prefers the config that does less work", async () => {
  const g = await initGpu();
  const n = 1 << 16;
  const buf = g.pool.acquire(n * 4);
  const kernel = (loops: number) =>
    `@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  var s = y[id.x];
  for (var k = 0u; k < ${loops}u; k = k + 1u) { s = s * 1.0001 + 0.5; }
  y[id.x] = s;
}`;
  const cands = [
    { name: "slow", config: 3000 },
    { name: "fast", config: 30 },
    { name: "medium", config: 600 },
  ];
  const t = new Autotuner(g, { enabled: true, cachePath: null, iterations: 2 });
  const best = await t.choose("busy", String(n), cands, (loops) => {
    g.run(kernel(loops), [buf], [n / 64, 1, 1]);
  }, -1);
  assert.equal(best, 30);
  const ms = t.entry("busy", String(n))!.ms;
  assert.ok(ms.slow > ms.fast, JSON.stringify(ms));
  g.pool.release(buf);
});

Deno.test("cache path and adapter slug", () => {
  assert.equal(adapterSlug("llvmpipe (LLVM 15.0.6, 256 bits)"), "llvmpipe-llvm-15-0-6-256-bits");
  assert.equal(adapterSlug("NVIDIA H200"), "nvidia-h200");
  assert.equal(adapterSlug("!!!"), "unknown");
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  try {
    Deno.env.set("XDG_CACHE_HOME", "/tmp/xdg");
    assert.equal(defaultCachePath("NVIDIA H200"), "/tmp/xdg/dermagpu/autotune-nvidia-h200.json");
  } finally {
    if (xdg === undefined) Deno.env.delete("XDG_CACHE_HOME");
    else Deno.env.set("XDG_CACHE_HOME", xdg);
  }
});
