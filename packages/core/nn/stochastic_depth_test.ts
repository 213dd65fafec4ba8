import assert from "node:assert/strict";
import { initGpu } from "../../kernels/runtime/gpu.ts";
import { ones, tensor } from "../tensor.ts";
import { backward, noGrad } from "../autograd.ts";
import { tidy } from "../scope.ts";
import { sum } from "../ops/reduce.ts";
import { StochasticDepth, stochasticDepthMask } from "./stochastic_depth.ts";

Deno.test("stochasticDepthMask drops about p of the rows and scales the rest by 1/(1-p)", () => {
  const m = stochasticDepthMask(4000, 0.2, 7);
  const dropped = m.filter((v) => v === 0).length / m.length;
  assert.ok(Math.abs(dropped - 0.2) < 0.03, `dropped ${dropped}`);
  assert.ok(m.every((v) => v === 0 || Math.abs(v - 1.25) < 1e-6));
  assert.deepEqual(stochasticDepthMask(50, 0.2, 7), stochasticDepthMask(50, 0.2, 7));
  assert.notDeepEqual(stochasticDepthMask(50, 0.2, 7), stochasticDepthMask(50, 0.2, 8));
});

Deno.test("StochasticDepth zeroes or scales whole samples in training, identity in eval", async () => {
  await initGpu();
  const x = ones([64, 2, 2, 3]);
  const sd = new StochasticDepth(0.5, { seed: 3 });
  const y = noGrad(() => sd.forward(x));
  const v = await y.read();
  let kept = 0;
  for (let n = 0; n < 64; n++) {
    const row = v.slice(n * 12, n * 12 + 12);
    assert.ok(row.every((a) => a === row[0]) && (row[0] === 0 || row[0] === 2), `sample ${n}`);
    if (row[0] === 2) kept++;
  }
  assert.ok(kept > 16 && kept < 48, `kept ${kept}`);
  const y2 = noGrad(() => sd.forward(x));
  assert.notDeepEqual(await y2.read(), v, "a fresh mask per call");
  assert.equal(sd.eval().forward(x), x);
  assert.equal(new StochasticDepth(0).forward(x), x);
  assert.throws(() => new StochasticDepth(1), /\[0, 1\)/);
  // The gradient flows through the same mask.
  const w = tensor([1, 1], [2, 1, 1, 1]);
  w.requiresGrad = true;
  const sd2 = new StochasticDepth(0.5, { seed: 1 });
  const out = tidy(() => {
    const o = sd2.forward(w);
    backward(sum(o));
    return o;
  });
  assert.deepEqual([...await w.grad!.read()], [...await out.read()]);
  for (const t of [x, y, y2, w, out, w.grad!]) t.dispose();
});
