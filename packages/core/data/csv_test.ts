import assert from "node:assert/strict";
import fc from "fast-check";
import { parseCsv, requireWidth } from "./csv.ts";

const SEED = Number(Deno.env.get("FC_SEED") ?? 20240611);

Deno.test("csv: quotes, escaped quotes, CRLF, BOM and blank lines", () => {
  const text = '\ufeffa,b\r\n1,"x, ""y"""\r\n\r\n"multi\nline",2\n';
  const csv = parseCsv(text, "t.csv");
  assert.deepEqual(csv.header, ["a", "b"]);
  assert.deepEqual(csv.rows, [
    { line: 2, fields: ["1", 'x, "y"'] },
    { line: 4, fields: ["multi\nline", "2"] },
  ]);
});

Deno.test("csv: any table survives quoting and parsing (property)", () => {
  const field = fc.string({ unit: fc.constantFrom("a", "b", ",", '"', "\n", " ", "1") });
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 4 }).chain((w) =>
        fc.array(fc.array(field, { minLength: w, maxLength: w }), { minLength: 1, maxLength: 6 })
      ),
      fc.boolean(),
      (table, crlf) => {
        const quote = (f: string) => `"${f.replaceAll('"', '""')}"`;
        const eol = crlf ? "\r\n" : "\n";
        const text = table.map((r) => r.map(quote).join(",")).join(eol);
        const csv = parseCsv(text, "p.csv");
        // Header names are trimmed; data fields are kept as they are.
        assert.deepEqual(csv.header, table[0].map((h) => h.trim()));
        assert.deepEqual(csv.rows.map((r) => r.fields), table.slice(1));
      },
    ),
    { seed: SEED, numRuns: 200 },
  );
});

Deno.test("csv: bad quoting and wrong column counts name the file and line", () => {
  assert.throws(() => parseCsv('a,b\n1,2\n"3,4\n', "f.csv"), /f\.csv:3: unterminated quoted field/);
  assert.throws(
    () => parseCsv('a,b\n1,"2"x\n', "f.csv"),
    /f\.csv:2: unexpected character after a closing quote/,
  );
  assert.throws(
    () => parseCsv('a,b\n1,2"x\n', "f.csv"),
    /f\.csv:2: a quote inside an unquoted field/,
  );
  assert.throws(() => parseCsv("", "e.csv"), /e\.csv: the file is empty/);
  const csv = parseCsv("a,b\n1,2\n3,4,5\n", "w.csv");
  assert.throws(() => requireWidth(csv, "w.csv"), /w\.csv:3: 3 columns where the header has 2/);
});
