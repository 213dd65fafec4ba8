/**
 * `data:split [--data DIR] [--split lesion|random] [--seed S] [--out split.json]`: write a
 * train/val/test manifest (80/10/10) and print the per-class counts of each split.
 */
import { parseArgs } from "node:util";
import { UserError } from "../../core/errors.ts";
import { CLASSES } from "../../core/data/classes.ts";
import { openHam10000 } from "../../core/data/ham10000.ts";
import {
  leakRate,
  makeSplit,
  saveManifest,
  SPLIT_MODES,
  SPLIT_NAMES,
  splitClassCounts,
  type SplitMode,
} from "../../core/data/split.ts";

const USAGE =
  "usage: data:split [--data DIR] [--split lesion|random] [--seed S] [--out split.json]";

export async function run(args: string[]): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        data: { type: "string" },
        split: { type: "string", default: "lesion" },
        seed: { type: "string", default: "0" },
        out: { type: "string", default: "split.json" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    throw new UserError(`${(e as Error).message}\n${USAGE}`);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const mode = values.split as SplitMode;
  if (!SPLIT_MODES.includes(mode)) {
    throw new UserError(`--split ${values.split}: expected ${SPLIT_MODES.join(" or ")}`);
  }
  const seed = Number(values.seed);
  if (!/^\d+$/.test(values.seed) || !Number.isSafeInteger(seed)) {
    throw new UserError(`--seed ${values.seed}: expected a non-negative integer`);
  }
  const ham = await openHam10000({ data: values.data, metadataOnly: true });
  const rows = ham.metadata.rows;
  const split = makeSplit(rows, mode, seed);
  await saveManifest(values.out, split);
  const counts = splitClassCounts(rows, split);
  const lines = [`${mode} split, seed ${seed}, of ${rows.length} images -> ${values.out}`];
  const cell = (v: string | number) => String(v).padStart(7);
  lines.push(`${"class".padEnd(6)}${SPLIT_NAMES.map(cell).join("")}${cell("total")}`);
  for (let c = 0; c < CLASSES.length; c++) {
    const total = SPLIT_NAMES.reduce((s, n) => s + counts[n][c], 0);
    lines.push(
      `${CLASSES[c].padEnd(6)}${SPLIT_NAMES.map((n) => cell(counts[n][c])).join("")}${cell(total)}`,
    );
  }
  lines.push(
    `${"all".padEnd(6)}${SPLIT_NAMES.map((n) => cell(split[n].length)).join("")}${
      cell(rows.length)
    }`,
  );
  const lesionOf = new Map(rows.map((r) => [r.imageId, r.lesionId]));
  const lesions = (ids: string[]) => new Set(ids.map((id) => lesionOf.get(id))).size;
  lines.push(`lesions: ${SPLIT_NAMES.map((n) => `${n} ${lesions(split[n])}`).join(", ")}`);
  const leak = leakRate(rows, split);
  lines.push(
    `leak: ${(100 * leak).toFixed(1)}% of test images have a lesion with an image in train` +
      (leak > 0 ? " (use --split lesion for an honest test set)" : ""),
  );
  console.log(lines.join("\n"));
}
