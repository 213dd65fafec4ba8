/**
 * The model comparison table: the original study's columns (Model | Test Loss | Accuracy % |
 * Precision | Recall) followed by the metrics that matter more on imbalanced HAM10000.
 */
import { ORIGINAL_STUDY, originalStudyAccuracy } from "./original_study.ts";
import type { ModelResults, StudyResults } from "./run_results.ts";

/** One column of the comparison table. */
export interface ComparisonColumn {
  header: string;
  csvHeader: string;
  value(m: ModelResults): number | null;
  /** Digits after the decimal point in the Markdown/HTML rendering. */
  digits: number;
}

/** The columns, in order (the model name column excluded). */
export const COMPARISON_COLUMNS: readonly ComparisonColumn[] = [
  { header: "Test Loss", csvHeader: "test_loss", value: (m) => m.test.loss, digits: 4 },
  {
    header: "Accuracy %",
    csvHeader: "accuracy_pct",
    value: (m) => 100 * m.test.accuracy,
    digits: 2,
  },
  {
    header: "Precision",
    csvHeader: "weighted_precision",
    value: (m) => m.test.weightedPrecision,
    digits: 4,
  },
  {
    header: "Recall",
    csvHeader: "weighted_recall",
    value: (m) => m.test.weightedRecall,
    digits: 4,
  },
  {
    header: "Balanced Acc %",
    csvHeader: "balanced_accuracy_pct",
    value: (m) => 100 * m.test.balancedAccuracy,
    digits: 2,
  },
  { header: "Macro F1", csvHeader: "macro_f1", value: (m) => m.test.macroF1, digits: 4 },
  { header: "Macro AUC", csvHeader: "macro_auc", value: (m) => m.test.macroAuc, digits: 4 },
  {
    header: "Mel Sensitivity",
    csvHeader: "mel_sensitivity",
    value: (m) => m.test.melanoma?.sensitivity ?? null,
    digits: 4,
  },
  {
    header: "Mel Specificity",
    csvHeader: "mel_specificity",
    value: (m) => m.test.melanoma?.specificity ?? null,
    digits: 4,
  },
  { header: "ECE", csvHeader: "ece", value: (m) => m.test.calibration.ece, digits: 4 },
];

/** Header of the reference column (the original study's accuracy). */
export const REFERENCE_HEADER = "Study Acc % (ref.)";

/** Formats a number with fixed digits, or an em dash for null / non-finite. */
export function formatCell(v: number | null, digits: number): string {
  return v === null || !Number.isFinite(v) ? "—" : v.toFixed(digits);
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function mdField(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/[\r\n]+/g, " ");
}

/**
 * The comparison table as Markdown (with the original study's accuracy as a reference column
 * and a footnote) and as CSV (full-precision numbers, empty for missing values; the reference
 * column is included as `study_accuracy_pct`).
 */
export function comparisonTable(study: StudyResults): { markdown: string; csv: string } {
  const headers = ["Model", ...COMPARISON_COLUMNS.map((c) => c.header), REFERENCE_HEADER];
  const md: string[] = [
    `| ${headers.join(" | ")} |`,
    `|${headers.map((_, i) => (i === 0 ? " --- " : " ---: ")).join("|")}|`,
  ];
  const csv: string[] = [
    ["model", ...COMPARISON_COLUMNS.map((c) => c.csvHeader), "study_accuracy_pct"].join(","),
  ];
  for (const m of study.models) {
    const ref = originalStudyAccuracy(m.config.model);
    const cells = COMPARISON_COLUMNS.map((c) => formatCell(c.value(m), c.digits));
    md.push(
      `| ${
        [mdField(m.config.model), ...cells, formatCell(ref?.accuracy ?? null, 2)].join(" | ")
      } |`,
    );
    const raw = COMPARISON_COLUMNS.map((c) => {
      const v = c.value(m);
      return v === null || !Number.isFinite(v) ? "" : String(v);
    });
    csv.push([csvField(m.config.model), ...raw, ref ? String(ref.accuracy) : ""].join(","));
  }
  md.push(
    "",
    `${REFERENCE_HEADER}: test accuracy published by the original study ` +
      `(${ORIGINAL_STUDY.split} split, ${ORIGINAL_STUDY.optimizer}); this run used the ` +
      `"${mdField(study.splitMode)}" split. Precision and Recall are support-weighted.`,
  );
  return { markdown: md.join("\n") + "\n", csv: csv.join("\n") + "\n" };
}
