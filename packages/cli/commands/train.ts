/**
 * `train`: trains and compares the study's CNNs (see train/options.ts for the flags,
 * train/profile.ts for the quick/full profiles, train/study.ts for the outputs). `train --resume DIR` continues a
 * stopped run from its last checkpoint with the same options, data order and augmentation.
 */
import { join } from "node:path";
import { initGpu } from "../../kernels/runtime/gpu.ts";
import { UserError } from "../../core/errors.ts";
import { parseTrainArgs, TRAIN_USAGE, type TrainOptions } from "../train/options.ts";
import { resolveTrainOptions } from "../train/profile.ts";
import { runStudy } from "../train/study.ts";

export async function run(args: string[]): Promise<void> {
  const parsed = parseTrainArgs(args);
  if (parsed.help) {
    console.log(TRAIN_USAGE);
    return;
  }
  if (parsed.resume !== undefined) {
    const file = join(parsed.resume, "run.json");
    let options: TrainOptions;
    try {
      options = JSON.parse(await Deno.readTextFile(file)) as TrainOptions;
    } catch (e) {
      throw new UserError(
        `--resume ${parsed.resume}: cannot read ${file} (${(e as Error).message}); pass the ` +
          `folder of a run started by train`,
      );
    }
    await runStudy({ ...options, out: parsed.resume }, {}, true);
    return;
  }
  const g = await initGpu();
  await runStudy(resolveTrainOptions(parsed.given, g.info.isFallback));
}
