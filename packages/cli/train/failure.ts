/**
 * Turns the expected ways a training run fails into one-line UserErrors that name the model,
 * the fix and the checkpoint that survives: a diverged loss (lower --lr), the GPU running out
 * of memory or a tensor exceeding the largest buffer (smaller --batch-size / --image-size), a
 * lost device. Anything else is returned unchanged (a bug keeps its stack).
 */
import { GpuError } from "../../kernels/runtime/gpu.ts";
import { UserError } from "../../core/errors.ts";
import { DivergedError } from "./trainer.ts";

export function explainFailure(e: unknown, model: string, lastCheckpoint?: string): unknown {
  const kept = lastCheckpoint ? `; the last good checkpoint is ${lastCheckpoint}` : "";
  const resume = lastCheckpoint ? ` (continue with --resume on the run folder)` : "";
  if (e instanceof DivergedError) return new UserError(`${model}: ${e.message}${kept}`);
  if (e instanceof GpuError) {
    const oom = /out of memory/.test(e.message);
    return new UserError(
      `${model}: ${e.message}${
        oom ? "" : "; try a smaller --batch-size or --image-size"
      }${kept}${resume}`,
    );
  }
  if (e instanceof Error && /exceeds this GPU's largest buffer/.test(e.message)) {
    return new UserError(`${model}: ${e.message}${kept}`);
  }
  return e;
}
