/**
 * A small RFC 4180 CSV reader: comma separated, optional double quotes with `""` escapes,
 * LF or CRLF line ends. Errors carry the file name and the 1-based line number.
 */
import { UserError } from "../errors.ts";

export interface CsvRow {
  /** 1-based line number where the row starts. */
  line: number;
  fields: string[];
}

export interface Csv {
  header: string[];
  rows: CsvRow[];
}

/** Parses `text`; blank lines are skipped. Bad quoting raises a UserError naming `file:line`. */
export function parseCsv(text: string, file: string): Csv {
  const rows: CsvRow[] = [];
  const n = text.length;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; // byte-order mark
  let line = 1;
  while (i < n) {
    const start = line;
    const fields: string[] = [];
    let end = false, quoted = false;
    while (!end) {
      let value = "";
      if (text[i] === '"') {
        quoted = true;
        const quoteLine = line;
        i++;
        for (;;) {
          const q = text.indexOf('"', i);
          if (q < 0) {
            throw new UserError(
              `${file}:${quoteLine}: unterminated quoted field; close the quote or remove it`,
            );
          }
          const chunk = text.slice(i, q);
          for (let k = 0; k < chunk.length; k++) if (chunk.charCodeAt(k) === 10) line++;
          value += chunk;
          if (text[q + 1] === '"') {
            value += '"';
            i = q + 2;
          } else {
            i = q + 1;
            break;
          }
        }
        const c = text[i];
        if (i < n && c !== "," && c !== "\n" && c !== "\r") {
          throw new UserError(
            `${file}:${line}: unexpected character after a closing quote; ` +
              `quote the whole field and double any quote inside it`,
          );
        }
      } else {
        let j = i;
        while (j < n) {
          const c = text.charCodeAt(j);
          if (c === 44 || c === 10 || c === 13) break;
          if (c === 34) {
            throw new UserError(
              `${file}:${line}: a quote inside an unquoted field; ` +
                `quote the whole field and double any quote inside it`,
            );
          }
          j++;
        }
        value = text.slice(i, j);
        i = j;
      }
      fields.push(value);
      if (i >= n) end = true;
      else if (text[i] === ",") i++;
      else {
        if (text[i] === "\r") i++;
        if (text[i] === "\n") i++;
        line++;
        end = true;
      }
    }
    if (quoted || fields.length > 1 || fields[0] !== "") rows.push({ line: start, fields });
    // Skip further blank lines.
    while (i < n && (text[i] === "\n" || text[i] === "\r")) {
      if (text[i] === "\n") line++;
      i++;
    }
  }
  const first = rows.shift();
  if (!first) throw new UserError(`${file}: the file is empty; expected a CSV header line`);
  return { header: first.fields.map((h) => h.trim()), rows };
}

/** Throws a UserError unless every row has as many fields as the header. */
export function requireWidth(csv: Csv, file: string): void {
  for (const r of csv.rows) {
    if (r.fields.length !== csv.header.length) {
      throw new UserError(
        `${file}:${r.line}: ${r.fields.length} columns where the header has ` +
          `${csv.header.length}; fix or remove this row`,
      );
    }
  }
}
