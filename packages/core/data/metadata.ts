/**
 * HAM10000_metadata.csv: `lesion_id,image_id,dx,dx_type,age,sex,localization`, optionally with
 * a `dataset` column (that variant's image_id ends in `.jpg`, which is stripped). Columns are
 * found by header name, so extra columns (e.g. images_600x450/metadata.csv) are ignored.
 * Missing ages (empty or NaN) are filled with the mean of the known ages.
 */
import { UserError } from "../errors.ts";
import { readUserText } from "./read_text.ts";
import { type ClassCode, CLASSES, classIndex } from "./classes.ts";
import { parseCsv, requireWidth } from "./csv.ts";

export interface MetadataRow {
  lesionId: string;
  /** Without any `.jpg` suffix, e.g. "ISIC_0027419". */
  imageId: string;
  dx: ClassCode;
  /** Class index (see CLASSES). */
  label: number;
  dxType: string;
  /** Age in years; the mean age where the file had none (see `ageFilled`). */
  age: number;
  ageFilled: boolean;
  sex: string;
  localization: string;
  /** Source collection (vidir_molemax, rosendahl...) where the file has a `dataset` column. */
  dataset?: string;
  /** 1-based line in the CSV. */
  line: number;
}

export interface Metadata {
  file: string;
  rows: MetadataRow[];
  /** Rows whose age was missing and filled with `meanAge`. */
  agesFilled: number;
  meanAge: number;
  hasDataset: boolean;
}

const REQUIRED = ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"];

/** Parses the metadata CSV text; `file` names it in errors. */
export function parseMetadata(text: string, file: string): Metadata {
  const csv = parseCsv(text, file);
  const col = new Map(csv.header.map((h, i) => [h.toLowerCase(), i]));
  const missing = REQUIRED.filter((h) => !col.has(h));
  if (missing.length) {
    throw new UserError(
      `${file}:1: missing column(s) ${missing.join(", ")}; expected a HAM10000 metadata header ` +
        `(${REQUIRED.join(",")})`,
    );
  }
  requireWidth(csv, file);
  const at = (name: string) => col.get(name)!;
  const [cLesion, cImage, cDx, cType, cAge, cSex, cLoc] = REQUIRED.map(at);
  const cDataset = col.get("dataset");
  const seen = new Map<string, number>();
  const rows: MetadataRow[] = [];
  let ageSum = 0, ageCount = 0;
  for (const { line, fields } of csv.rows) {
    const imageId = fields[cImage].trim().replace(/\.jpe?g$/i, "");
    const lesionId = fields[cLesion].trim();
    if (!imageId || !lesionId) {
      throw new UserError(`${file}:${line}: empty image_id or lesion_id; fix or remove this row`);
    }
    const prev = seen.get(imageId);
    if (prev !== undefined) {
      throw new UserError(
        `${file}:${line}: duplicate image_id ${imageId} (first on line ${prev}); remove one row`,
      );
    }
    seen.set(imageId, line);
    const label = classIndex(fields[cDx]);
    if (label < 0) {
      throw new UserError(
        `${file}:${line}: unknown dx '${fields[cDx]}'; expected one of ${CLASSES.join(", ")}`,
      );
    }
    const ageText = fields[cAge].trim();
    let age = NaN;
    if (ageText !== "" && ageText.toLowerCase() !== "nan") {
      age = Number(ageText);
      if (!Number.isFinite(age) || age < 0) {
        throw new UserError(`${file}:${line}: age '${ageText}' is not a number; fix or empty it`);
      }
      ageSum += age;
      ageCount++;
    }
    rows.push({
      lesionId,
      imageId,
      dx: CLASSES[label],
      label,
      dxType: fields[cType].trim(),
      age,
      ageFilled: Number.isNaN(age),
      sex: fields[cSex].trim(),
      localization: fields[cLoc].trim(),
      ...(cDataset !== undefined ? { dataset: fields[cDataset].trim() } : {}),
      line,
    });
  }
  if (rows.length === 0) throw new UserError(`${file}: no data rows after the header`);
  const meanAge = ageCount ? ageSum / ageCount : 0;
  let agesFilled = 0;
  for (const r of rows) {
    if (r.ageFilled) {
      r.age = meanAge;
      agesFilled++;
    }
  }
  return { file, rows, agesFilled, meanAge, hasDataset: cDataset !== undefined };
}

/** Reads and parses a metadata CSV file. */
export async function loadMetadata(path: string): Promise<Metadata> {
  const text = await readUserText(path, "metadata file", "check the --data folder");
  return parseMetadata(text, path);
}

/** Images per class index. */
export function classCounts(rows: readonly { label: number }[]): number[] {
  const counts = new Array(CLASSES.length).fill(0);
  for (const r of rows) counts[r.label]++;
  return counts;
}
