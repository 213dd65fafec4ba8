/**
 * ISIC 2018 Task 3 ground truth: `image,MEL,NV,BCC,AKIEC,BKL,DF,VASC`, one one-hot row per
 * image (columns found by name, any order/case), with the images in a folder of `<image>.jpg`.
 */
import { dirname } from "node:path";
import { UserError } from "../errors.ts";
import { readUserText } from "./read_text.ts";
import { CLASSES } from "./classes.ts";
import { parseCsv, requireWidth } from "./csv.ts";
import { discoverImages, type Discovery } from "./discover.ts";
import type { Sample } from "./ham10000.ts";

export interface IsicLabels {
  file: string;
  ids: string[];
  /** Our class index per row. */
  labels: Int32Array;
}

/** Parses ground-truth CSV text; every row must be one-hot (one 1, the rest 0). */
export function parseIsicGroundTruth(text: string, file: string): IsicLabels {
  const csv = parseCsv(text, file);
  const header = csv.header.map((h) => h.toLowerCase());
  const imageCol = header.indexOf("image");
  const classCols = CLASSES.map((c) => header.indexOf(c));
  if (imageCol < 0 || classCols.some((c) => c < 0)) {
    throw new UserError(
      `${file}:1: expected columns image,MEL,NV,BCC,AKIEC,BKL,DF,VASC; is this an ISIC 2018 ` +
        `Task 3 ground-truth file?`,
    );
  }
  requireWidth(csv, file);
  const ids: string[] = [];
  const labels = new Int32Array(csv.rows.length);
  const seen = new Set<string>();
  csv.rows.forEach(({ line, fields }, r) => {
    const id = fields[imageCol].trim().replace(/\.jpe?g$/i, "");
    if (seen.has(id)) throw new UserError(`${file}:${line}: duplicate image ${id}; remove one row`);
    seen.add(id);
    let label = -1;
    for (let c = 0; c < classCols.length; c++) {
      const v = Number(fields[classCols[c]]);
      if (v === 1 && label < 0) label = c;
      else if (v !== 0) {
        throw new UserError(
          `${file}:${line}: the class columns of ${id} are not one-hot (one 1.0, the rest 0.0)`,
        );
      }
    }
    if (label < 0) throw new UserError(`${file}:${line}: ${id} has no class set to 1.0`);
    ids.push(id);
    labels[r] = label;
  });
  return { file, ids, labels };
}

export interface IsicSet extends IsicLabels {
  images: Discovery;
  /** The rows that have an image. */
  samples: Sample[];
}

/**
 * Reads a ground-truth CSV and finds its images: in `imagesDir` when given, else by the
 * discovery rule (see discover.ts) in the CSV's folder.
 */
export async function loadIsic(
  csvPath: string,
  options: { imagesDir?: string; skipMissing?: boolean } = {},
): Promise<IsicSet> {
  const text = await readUserText(csvPath, "ground-truth CSV", "check the path");
  const gt = parseIsicGroundTruth(text, csvPath);
  const images = await discoverImages(dirname(csvPath), gt.ids, options);
  const samples: Sample[] = [];
  gt.ids.forEach((id, i) => {
    const path = images.paths.get(id);
    if (path) samples.push({ id, path, label: gt.labels[i] });
  });
  return { ...gt, images, samples };
}
