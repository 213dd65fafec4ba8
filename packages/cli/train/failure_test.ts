import assert from "node:assert/strict";
import { GpuError } from "../../kernels/runtime/gpu.ts";
import { UserError } from "../../core/errors.ts";
import { explainFailure } from "./failure.ts";
import { DivergedError } from "./trainer.ts";

Deno.test("explainFailure: divergence, out of memory and oversized buffers become one-line UserErrors", () => {
  const d = explainFailure(
    DivergedError.loss(NaN, 7, 1, 7),
    "resnet18",
    "runs/x/resnet18/last.safetensors",
  );
  assert.ok(d instanceof UserError);
  assert.equal(
    d.message,
    "resnet18: training diverged: the loss is NaN at step 7 (epoch 1, batch 7); try a lower " +
      "--lr; the last good checkpoint is runs/x/resnet18/last.safetensors",
  );
  const oom = explainFailure(
    new GpuError("the GPU ran out of memory: try a smaller --batch-size or --image-size"),
    "densenet121",
  );
  assert.ok(oom instanceof UserError);
  assert.match(oom.message, /^densenet121: the GPU ran out of memory: try a smaller --batch-size/);
  assert.ok(!oom.message.includes("\n"));
  const lost = explainFailure(new GpuError("the GPU device was lost (unknown): x"), "m", "a/last");
  assert.match(
    (lost as Error).message,
    /lost .* smaller --batch-size .*last good checkpoint is a\/last \(continue with --resume/,
  );
  const big = explainFailure(
    new Error(
      "a tensor of 9000.0 MiB exceeds this GPU's largest buffer (2048 MiB): use a smaller batch size or image size",
    ),
    "m",
  );
  assert.ok(big instanceof UserError);
  const bug = new TypeError("x is undefined");
  assert.equal(explainFailure(bug, "m"), bug);
});
