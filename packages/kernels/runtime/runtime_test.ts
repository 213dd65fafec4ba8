import assert from "node:assert/strict";
import { bucketSize } from "./buffer_pool.ts";
import { Gpu, initGpu, requestGpu } from "./gpu.ts";
import { grid1d } from "./grid.ts";

Deno.test("the adapter is found and described (fails, never skips, without one)", async () => {
  const g = await initGpu();
  assert.ok(g.info.name.length > 0);
  assert.equal(typeof g.info.isFallback, "boolean");
  assert.ok(g.info.maxStorageBuffersPerShaderStage >= 8);
  assert.equal(await initGpu(), g, "one runtime per process");
});

Deno.test("bucket sizes: at most 25% slack, monotone, 256-byte minimum", () => {
  let prev = 0;
  for (let b = 1; b < 1 << 22; b = Math.ceil(b * 1.37)) {
    const s = bucketSize(b);
    assert.ok(s >= b && s >= 256 && s >= prev, `bucket(${b}) = ${s}`);
    if (b > 256) assert.ok(s <= b * 1.25 + 4, `bucket(${b}) = ${s} wastes too much`);
    prev = s;
  }
});

Deno.test("the pool reuses released buffers and counts bytes in use", async () => {
  const g = await initGpu();
  const before = g.pool.bytesInUse;
  const a = g.pool.acquire(1000);
  assert.equal(g.pool.bytesInUse - before, bucketSize(1000));
  g.pool.release(a);
  assert.equal(g.pool.bytesInUse, before);
  const allocations = g.pool.allocations;
  const b = g.pool.acquire(990);
  assert.equal(b, a, "same bucket, same buffer");
  assert.equal(g.pool.allocations, allocations);
  g.pool.release(b);
  assert.throws(() => g.pool.release(b), /released twice/);
});

Deno.test("commands recorded before a dispatch run in order (clear, then dispatch, one submit)", async () => {
  const g = await initGpu();
  const buf = g.upload(new Float32Array([5, 5, 5, 5]));
  g.batcher.encoder().clearBuffer(buf, 0, 16);
  const code = `@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(4) fn main(@builtin(local_invocation_id) l: vec3<u32>) { y[l.x] += 1.0; }`;
  const submits = g.batcher.submits;
  g.run(code, [buf], [1, 1, 1]);
  g.run(code, [buf], [1, 1, 1]);
  const out = new Float32Array(await g.read(buf, 16));
  assert.deepEqual([...out], [2, 2, 2, 2]);
  assert.equal(g.batcher.submits - submits, 1, "both dispatches and the copy in one submit");
  g.pool.release(buf);
});

Deno.test("large 1-D grids fold into two dimensions within WebGPU's limit", () => {
  const small = grid1d(100, 256);
  assert.deepEqual(small.workgroups, [100, 1, 1]);
  const big = grid1d(200000, 256);
  assert.ok(big.workgroups[0] <= 65535 && big.workgroups[0] * big.workgroups[1] >= 200000);
});

Deno.test("a shader error surfaces as an exception at the next readback", async () => {
  const g = await initGpu();
  const buf = g.pool.acquire(16);
  g.run("this is not wgsl", [buf], [1, 1, 1]);
  await assert.rejects(() => g.read(buf, 16), /GPU error/);
  g.pool.release(buf);
});

Deno.test("a lost device gives a clear error instead of a hang", async () => {
  const first = await initGpu();
  const adapter = await navigator.gpu.requestAdapter();
  const device = await adapter!.requestDevice();
  const g = new Gpu(device, first.info);
  const buf = g.upload(new Float32Array([1, 2, 3, 4]));
  device.destroy();
  await device.lost;
  assert.throws(
    () => g.run("@compute @workgroup_size(1) fn main() {}", [], [1, 1, 1]),
    /GPU device was lost/,
  );
  await assert.rejects(() => g.read(buf, 16), /GPU device was lost/);
});

Deno.test("no adapter: one clear sentence saying what to install", async () => {
  const gpuApi = navigator.gpu;
  const original = gpuApi.requestAdapter;
  Object.defineProperty(gpuApi, "requestAdapter", {
    value: () => Promise.resolve(null),
    configurable: true,
  });
  try {
    await assert.rejects(
      requestGpu,
      /^Error: no WebGPU adapter found: install .*mesa-vulkan-drivers/,
    );
  } finally {
    Object.defineProperty(gpuApi, "requestAdapter", { value: original, configurable: true });
  }
  assert.ok(await navigator.gpu.requestAdapter(), "the real adapter is back");
});

Deno.test("trim gives free buffers back and the pool keeps working", async () => {
  const g = await initGpu();
  const a = g.pool.acquire(4096);
  g.pool.release(a);
  assert.ok(g.pool.bytesPooled >= 4096);
  const inUse = g.pool.bytesInUse;
  g.trim();
  assert.equal(g.pool.bytesPooled, 0);
  assert.equal(g.pool.bytesInUse, inUse, "buffers in use are untouched");
  const b = g.upload(new Float32Array([1, 2, 3]));
  assert.deepEqual([...new Float32Array(await g.read(b, 12))], [1, 2, 3]);
  g.pool.release(b);
});
