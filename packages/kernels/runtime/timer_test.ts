import assert from "node:assert/strict";
import { initGpu } from "./gpu.ts";
import { GpuTimer, median, regions, timeRecorded, totals } from "./timer.ts";

/** A kernel doing `loops` multiply-adds per element of a 64K-element buffer. */
function busyKernel(loops: number): string {
  return `@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  var s = y[id.x];
  for (var k = 0u; k < ${loops}u; k = k + 1u) { s = s * 1.0001 + 0.5; }
  y[id.x] = s;
}`;
}
const ELEMENTS = 1 << 16;

Deno.test("timestamp marks are monotone and a 4x workload takes longer than 1x", async () => {
  const g = await initGpu();
  const timer = new GpuTimer(g);
  assert.equal(timer.mode, g.info.timestamps ? "timestamp" : "wall");
  const buf = g.pool.acquire(ELEMENTS * 4);
  const code = busyKernel(400);
  g.run(code, [buf], [ELEMENTS / 64, 1, 1]); // compile outside the timed region
  await g.sync();
  for (let rep = 0; rep < 2; rep++) {
    await timer.markSynced("one");
    g.run(code, [buf], [ELEMENTS / 64, 1, 1]);
    await timer.markSynced("four");
    for (let i = 0; i < 4; i++) g.run(code, [buf], [ELEMENTS / 64, 1, 1]);
    await timer.markSynced("end");
  }
  const marks = await timer.read();
  assert.equal(marks.length, 6);
  assert.equal(marks[0].ns, 0);
  for (let i = 1; i < marks.length; i++) {
    assert.ok(marks[i].ns >= marks[i - 1].ns, `mark ${i} went back in time`);
  }
  const t = totals(marks);
  const one = t.get("one")!, four = t.get("four")!;
  assert.ok(one > 0, `one dispatch took ${one} ns`);
  assert.ok(four > 2 * one, `4 dispatches ${four} ns vs 1 dispatch ${one} ns`);
  assert.equal(timer.pending, 0, "read() empties the timer");
  timer.dispose();
  g.pool.release(buf);
});

Deno.test("the wall-clock fallback also orders workloads", async () => {
  const g = await initGpu();
  const buf = g.pool.acquire(ELEMENTS * 4);
  const timer = new GpuTimer(g, { timestamps: false });
  assert.equal(timer.mode, "wall");
  const small = busyKernel(50), big = busyKernel(2000);
  const run = (code: string) => () => g.run(code, [buf], [ELEMENTS / 64, 1, 1]);
  const a = median(await timeRecorded(g, run(small), { iterations: 3, timer }));
  const b = median(await timeRecorded(g, run(big), { iterations: 3, timer }));
  assert.ok(b > a, `40x the loop: ${b} ms vs ${a} ms`);
  g.pool.release(buf);
});

Deno.test("timeRecorded returns one positive time per iteration", async () => {
  const g = await initGpu();
  const buf = g.pool.acquire(ELEMENTS * 4);
  const code = busyKernel(100);
  let calls = 0;
  const times = await timeRecorded(g, () => {
    calls++;
    g.run(code, [buf], [ELEMENTS / 64, 1, 1]);
  }, { iterations: 4, warmup: 2 });
  assert.equal(times.length, 4);
  assert.equal(calls, 6, "warm-up runs are recorded too");
  assert.ok(times.every((t) => t > 0), `times ${times}`);
  g.pool.release(buf);
});

Deno.test("regions: labels, totals, NaN on a counter reset; median; capacity", async () => {
  const marks = [
    { label: "a", ns: 0 },
    { label: "b", ns: 10 },
    { label: "a", ns: 15 },
    { label: "b", ns: 5 },
    { label: "end", ns: 30 },
  ];
  const r = regions(marks);
  assert.deepEqual(r.map((x) => x.label), ["a", "b", "a", "b"]);
  assert.ok(Number.isNaN(r[2].ns), "negative difference is not a time");
  assert.deepEqual([...totals(marks)], [["a", 10], ["b", 30]]);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, NaN, 2, 3]), 2.5);
  assert.ok(Number.isNaN(median([])));
  const g = await initGpu();
  const timer = new GpuTimer(g, { capacity: 2 });
  timer.mark("x");
  timer.mark("y");
  assert.throws(() => timer.mark("z"), /timer full/);
  assert.equal((await timer.read()).length, 2);
  timer.dispose();
  assert.throws(() => new GpuTimer(g, { capacity: 1 }), /capacity/);
});
