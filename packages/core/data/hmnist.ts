/**
 * The Kaggle "skin-cancer-mnist-ham10000" CSVs: hmnist_8_8_L.csv, hmnist_8_8_RGB.csv,
 * hmnist_28_28_L.csv, hmnist_28_28_RGB.csv. Each has H*W*C integer pixel columns (row-major,
 * channels interleaved per pixel for RGB, i.e. HWC) then `label`. The hmnist label order is
 * 0=akiec, 1=bcc, 2=bkl, 3=df, 4=nv, 5=vasc, 6=mel; it is mapped to our class index. Row i is
 * metadata row i (verified on the 8x8 L file), so image and lesion ids come from the metadata.
 */
import { UserError } from "../errors.ts";
import { readUserText } from "./read_text.ts";
import { classIndex } from "./classes.ts";
import type { MetadataRow } from "./metadata.ts";

/** hmnist label -> dx code. */
export const HMNIST_LABELS = ["akiec", "bcc", "bkl", "df", "nv", "vasc", "mel"] as const;

const TO_CLASS = HMNIST_LABELS.map(classIndex);

export interface Hmnist {
  n: number;
  height: number;
  width: number;
  channels: 1 | 3;
  /** n*height*width*channels pixels, NHWC. */
  pixels: Uint8Array;
  /** Our class index per row. */
  labels: Int32Array;
  /** From the metadata, where given. */
  imageIds?: string[];
  lesionIds?: string[];
}

const SHAPES: Record<number, [number, number, 1 | 3]> = {
  64: [8, 8, 1],
  192: [8, 8, 3],
  784: [28, 28, 1],
  2352: [28, 28, 3],
};

/**
 * Parses hmnist CSV text. The shape comes from the file name (`hmnist_<H>_<W>_<L|RGB>`) when
 * it has one, else from the pixel count (64, 192, 784, 2352). With `metadata`, the row counts
 * must match and every label must agree with the metadata's dx.
 */
export function parseHmnist(text: string, file: string, metadata?: readonly MetadataRow[]): Hmnist {
  const eol = text.indexOf("\n");
  const header = text.slice(0, eol < 0 ? text.length : eol).replace(/\r$/, "").split(",");
  const cols = header.length;
  const pixelsPerRow = cols - 1;
  if (header[cols - 1].trim() !== "label" || !header[0].startsWith("pixel")) {
    throw new UserError(`${file}:1: expected pixel0000,...,label columns; is this an hmnist CSV?`);
  }
  const named = /hmnist_(\d+)_(\d+)_(L|RGB)/i.exec(file);
  const shape: [number, number, 1 | 3] | undefined = named
    ? [Number(named[1]), Number(named[2]), named[3].toUpperCase() === "L" ? 1 : 3]
    : SHAPES[pixelsPerRow];
  if (!shape || shape[0] * shape[1] * shape[2] !== pixelsPerRow) {
    throw new UserError(
      `${file}:1: ${pixelsPerRow} pixel columns do not fit ` +
        (named
          ? `the ${named[1]}x${named[2]} ${named[3]} shape in its name`
          : "8x8 or 28x28, L or RGB"),
    );
  }
  const rowsText = eol < 0 ? "" : text.slice(eol + 1);
  const { n, pixels, labels } = parseRows(rowsText, pixelsPerRow, file);
  const out: Hmnist = { n, height: shape[0], width: shape[1], channels: shape[2], pixels, labels };
  if (metadata) {
    if (metadata.length !== n) {
      throw new UserError(
        `${file}: ${n} rows but the metadata has ${metadata.length}; use the metadata file the ` +
          `hmnist CSV was made from`,
      );
    }
    for (let r = 0; r < n; r++) {
      if (metadata[r].label !== labels[r]) {
        throw new UserError(
          `${file}:${r + 2}: label ${HMNIST_LABELS.indexOf(metadata[r].dx as never)} expected ` +
            `for ${metadata[r].imageId} (${metadata[r].dx}); the rows are not in metadata order`,
        );
      }
    }
    out.imageIds = metadata.map((m) => m.imageId);
    out.lesionIds = metadata.map((m) => m.lesionId);
  }
  return out;
}

/** Reads and parses an hmnist CSV file. */
export async function loadHmnist(path: string, metadata?: readonly MetadataRow[]): Promise<Hmnist> {
  return parseHmnist(await readUserText(path, "hmnist CSV", "check the path"), path, metadata);
}

/** Parses the data rows: `pixelsPerRow` values 0..255 then a label 0..6, each line. */
function parseRows(text: string, pixelsPerRow: number, file: string) {
  let maxRows = 1;
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) maxRows++;
  const pixels = new Uint8Array(maxRows * pixelsPerRow);
  const labels = new Int32Array(maxRows);
  let rows = 0, col = 0, v = 0, digits = 0, line = 2;
  const fail = (why: string): never => {
    throw new UserError(`${file}:${line}: ${why}; fix or remove this row`);
  };
  const value = () => {
    if (digits === 0) fail(`empty or non-integer value in column ${col + 1}`);
    if (col < pixelsPerRow) {
      if (v > 255) fail(`pixel value ${v} is above 255`);
      pixels[rows * pixelsPerRow + col] = v;
    } else if (col === pixelsPerRow) {
      if (v > 6) fail(`label ${v} is not 0..6`);
      labels[rows] = TO_CLASS[v];
    } else fail(`more columns than the header's ${pixelsPerRow + 1}`);
    v = 0;
    digits = 0;
  };
  const endRow = () => {
    value();
    if (col !== pixelsPerRow) fail(`${col + 1} columns where the header has ${pixelsPerRow + 1}`);
    col = 0;
    rows++;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      v = v * 10 + (c - 48);
      digits++;
    } else if (c === 44) {
      value();
      col++;
    } else if (c === 10) {
      if (digits || col) endRow();
      line++;
    } else if (c !== 13) fail(`unexpected '${text[i]}' (hmnist values are integers)`);
  }
  if (digits || col) endRow();
  return { n: rows, pixels: pixels.slice(0, rows * pixelsPerRow), labels: labels.slice(0, rows) };
}
