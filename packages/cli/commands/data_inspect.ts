/**
 * `data:inspect [--data DIR] [--images-dir DIR]`: summarise a HAM10000 folder: images,
 * lesions, per-class counts, ages filled, images found per folder (missing images are counted,
 * not fatal).
 */
import { parseArgs } from "node:util";
import { relative } from "node:path";
import { UserError } from "../../core/errors.ts";
import { CLASS_NAMES, CLASSES } from "../../core/data/classes.ts";
import { classCounts } from "../../core/data/metadata.ts";
import { openHam10000 } from "../../core/data/ham10000.ts";

const USAGE = "usage: data:inspect [--data DIR] [--images-dir DIR]";

export async function run(args: string[]): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        data: { type: "string" },
        "images-dir": { type: "string" },
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
  const ham = await openHam10000({
    data: values.data,
    imagesDir: values["images-dir"],
    skipMissing: true,
  });
  const { metadata, images } = ham;
  const rows = metadata.rows;
  const lines: string[] = [];
  lines.push(`HAM10000 at ${ham.dataDir.dir} (${ham.dataDir.source})`);
  lines.push(
    `metadata: ${relative(ham.dataDir.dir, metadata.file)}` +
      (metadata.hasDataset ? " (with dataset column)" : ""),
  );
  lines.push(`images: ${rows.length}`);
  const perLesion = new Map<string, number>();
  for (const r of rows) perLesion.set(r.lesionId, (perLesion.get(r.lesionId) ?? 0) + 1);
  const sizes = new Map<number, number>();
  for (const n of perLesion.values()) sizes.set(n, (sizes.get(n) ?? 0) + 1);
  const sizeText = [...sizes].sort((a, b) => a[0] - b[0]).map(([k, v]) => `${v} with ${k}`);
  lines.push(`lesions: ${perLesion.size} (images per lesion: ${sizeText.join(", ")})`);
  lines.push(
    `ages: ${metadata.agesFilled} missing, filled with the mean age ${metadata.meanAge.toFixed(2)}`,
  );
  lines.push("classes:");
  const counts = classCounts(rows);
  const order = CLASSES.map((_, i) => i).sort((a, b) => counts[b] - counts[a]);
  for (const c of order) {
    const pct = (100 * counts[c] / rows.length).toFixed(1);
    lines.push(
      `  ${c} ${CLASSES[c].padEnd(5)} ${CLASS_NAMES[c].padEnd(30)} ${
        String(counts[c]).padStart(6)
      }` +
        `  ${pct.padStart(5)}%`,
    );
  }
  if (metadata.hasDataset) {
    const ds = new Map<string, number>();
    for (const r of rows) ds.set(r.dataset ?? "", (ds.get(r.dataset ?? "") ?? 0) + 1);
    const text = [...ds].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k || "(empty)"} ${v}`);
    lines.push(`datasets: ${text.join(", ")}`);
  }
  lines.push("images found per folder:");
  if (images.folders.length === 0) lines.push("  (no folder with .jpg files)");
  for (const f of images.folders) {
    const name = relative(ham.dataDir.dir, f.path) || ".";
    lines.push(`  ${name.padEnd(32)} ${String(f.images).padStart(6)}${f.used ? "  (used)" : ""}`);
  }
  lines.push(
    `with an image: ${images.paths.size}; missing: ${images.missing.length}` +
      (images.missing.length ? ` (first ${images.missing[0]})` : ""),
  );
  console.log(lines.join("\n"));
}
