import assert from "node:assert/strict";
import { initGpu } from "../../kernels/runtime/gpu.ts";
import { tensor } from "../tensor.ts";
import { noGrad } from "../autograd.ts";
import { Rng } from "../data/rng.ts";
import { SqueezeExcitation } from "./squeeze_excitation.ts";

Deno.test("SqueezeExcitation has torchvision's keys and matches a CPU reference", async () => {
  await initGpu();
  const rng = new Rng(2);
  const se = new SqueezeExcitation(4, 2, { activation: "silu", rng });
  assert.deepEqual(se.namedParameters().map(([n, t]) => [n, [...t.shape]]), [
    ["fc1.weight", [1, 1, 4, 2]],
    ["fc1.bias", [2]],
    ["fc2.weight", [1, 1, 2, 4]],
    ["fc2.bias", [4]],
  ]);
  const N = 2, HW = 3, C = 4;
  const xs = new Float32Array(N * HW * C).map(() => rng.uniform(-1, 1));
  const x = tensor(xs, [N, 1, HW, C]);
  const y = noGrad(() => se.forward(x));
  const [w1, b1, w2, b2] = await Promise.all(se.parameters().map((p) => p.read()));
  const got = await y.read();
  const silu = (v: number) => v / (1 + Math.exp(-v));
  for (let n = 0; n < N; n++) {
    const m = [0, 1, 2, 3].map((c) => {
      let s = 0;
      for (let p = 0; p < HW; p++) s += xs[(n * HW + p) * C + c];
      return s / HW;
    });
    const h = [0, 1].map((j) => silu(b1[j] + m.reduce((s, v, c) => s + v * w1[c * 2 + j], 0)));
    const sc = [0, 1, 2, 3].map((c) =>
      1 / (1 + Math.exp(-(b2[c] + h.reduce((s, v, j) => s + v * w2[j * 4 + c], 0))))
    );
    for (let p = 0; p < HW; p++) {
      for (let c = 0; c < C; c++) {
        const i = (n * HW + p) * C + c;
        assert.ok(Math.abs(got[i] - xs[i] * sc[c]) < 1e-5, `${got[i]} vs ${xs[i] * sc[c]}`);
      }
    }
  }
  x.dispose();
  y.dispose();
  se.dispose();
});
