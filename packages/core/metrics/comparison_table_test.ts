import assert from "node:assert/strict";
import { COMPARISON_COLUMNS, comparisonTable, REFERENCE_HEADER } from "./comparison_table.ts";
import { ORIGINAL_STUDY, originalStudyAccuracy } from "./original_study.ts";
import { syntheticStudy } from "./synthetic_study.ts";

Deno.test("original study accuracies are found under any spelling of the model name", () => {
  assert.deepEqual(originalStudyAccuracy("mobilenet_v2"), { name: "MobileNetV2", accuracy: 80.34 });
  assert.equal(originalStudyAccuracy("efficientnet_b0")?.accuracy, 81.04);
  assert.equal(originalStudyAccuracy("ResNet-18")?.accuracy, 74.65);
  assert.equal(originalStudyAccuracy("densenet121")?.accuracy, 79.74);
  assert.equal(originalStudyAccuracy("vgg16"), null);
  assert.equal(Object.keys(ORIGINAL_STUDY.testAccuracyPercent).length, 4);
});

Deno.test("comparison table: Markdown and CSV rows carry the test metrics", () => {
  const study = syntheticStudy(7, ["resnet18", "my,odd|model"]);
  const { markdown, csv } = comparisonTable(study);
  const mdLines = markdown.trim().split("\n");
  // Header, separator, 2 rows, blank line, footnote.
  assert.equal(mdLines.length, 6);
  const header = mdLines[0].split(" | ").map((s) => s.replace(/^\| |\s?\|$/g, ""));
  assert.deepEqual(header.slice(0, 5), ["Model", "Test Loss", "Accuracy %", "Precision", "Recall"]);
  assert.equal(header.at(-1), REFERENCE_HEADER);
  const r0 = study.models[0].test;
  const cells = mdLines[2].split(" | ");
  assert.equal(cells[0], "| resnet18");
  assert.equal(cells[1], r0.loss.toFixed(4));
  assert.equal(cells[2], (100 * r0.accuracy).toFixed(2));
  assert.equal(cells[3], r0.weightedPrecision.toFixed(4));
  assert.equal(cells.at(-1), "74.65 |");
  // The pipe in a model name is escaped in Markdown and the row keeps its cell count.
  assert.ok(mdLines[3].startsWith("| my,odd\\|model |"));
  assert.ok(mdLines[3].endsWith("| — |"));

  const rows = csv.trim().split("\n");
  assert.equal(rows.length, 3);
  assert.equal(rows[0].split(",").length, COMPARISON_COLUMNS.length + 2);
  const v = rows[1].split(",");
  assert.equal(Number(v[2]), 100 * r0.accuracy);
  assert.equal(Number(v[6]), r0.macroF1);
  assert.equal(Number(v[8]), r0.melanoma!.sensitivity);
  assert.equal(v.at(-1), "74.65");
  assert.ok(rows[2].startsWith('"my,odd|model",'));
});

Deno.test("comparison table prints missing values as a dash / empty CSV field", () => {
  const study = syntheticStudy(8, ["densenet121"], 1, 60);
  study.models[0].test.macroAuc = null;
  const { markdown, csv } = comparisonTable(study);
  const auc = COMPARISON_COLUMNS.findIndex((c) => c.csvHeader === "macro_auc");
  assert.equal(markdown.split("\n")[2].split(" | ")[auc + 1], "—");
  assert.equal(csv.trim().split("\n")[1].split(",")[auc + 1], "");
});
