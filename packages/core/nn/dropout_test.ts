import assert from "node:assert/strict";
import { initGpu } from "../../kernels/runtime/gpu.ts";
import { ones } from "../tensor.ts";
import { noGrad } from "../autograd.ts";
import { Dropout } from "./dropout.ts";

Deno.test("Dropout is the identity in eval mode and with p = 0", async () => {
  await initGpu();
  const x = ones([4, 8]);
  const d = new Dropout(0.5).eval();
  assert.equal(d.forward(x), x);
  assert.equal(new Dropout(0).forward(x), x);
  assert.throws(() => new Dropout(1), /\[0, 1\)/);
  assert.deepEqual(d.namedParameters(), []);
  x.dispose();
});

Deno.test("Dropout in training zeroes about p, scales the rest, and is seeded per call", async () => {
  await initGpu();
  const x = ones([64, 64]);
  const a = new Dropout(0.25, { seed: 5 }), b = new Dropout(0.25, { seed: 5 });
  const [a1, a2, b1] = noGrad(() => [a.forward(x), a.forward(x), b.forward(x)]);
  const v1 = await a1.read(), v2 = await a2.read(), w1 = await b1.read();
  const zeros = v1.filter((v) => v === 0).length / v1.length;
  assert.ok(Math.abs(zeros - 0.25) < 0.03, `zero fraction ${zeros}`);
  assert.ok(v1.every((v) => v === 0 || Math.abs(v - 4 / 3) < 1e-6));
  assert.deepEqual(v1, w1, "same seed, same call count: same mask");
  assert.notDeepEqual(v1, v2, "a new mask on each call");
  for (const t of [x, a1, a2, b1]) t.dispose();
});
