/**
 * Schema of `metrics.json`, written by the training command: one `StudyResults` per run of the
 * study, one `ModelResults` per trained model. All plain JSON data.
 */
import type { ClassificationReport } from "./evaluate.ts";

/** How one model was trained. */
export interface RunConfig {
  /** Model name, e.g. "resnet18", "densenet121", "mobilenet_v2", "efficientnet_b0". */
  model: string;
  epochs: number;
  batchSize: number;
  /** Initial learning rate. */
  lr: number;
  /** Square input side in pixels. */
  imageSize: number;
  /** Split used, e.g. "random" (image-level, as the study) or "lesion" (grouped by lesion_id). */
  split: string;
  seed: number;
  pretrained: boolean;
  trainImages: number;
  valImages: number;
  testImages: number;
}

/** Metrics of one epoch. Precision and recall are sklearn's weighted averages. */
export interface EpochRecord {
  /** 1-based epoch number. */
  epoch: number;
  /** Learning rate used in this epoch. */
  lr: number;
  trainLoss: number;
  trainAccuracy: number;
  trainPrecision: number;
  trainRecall: number;
  valLoss: number;
  valAccuracy: number;
  valPrecision: number;
  valRecall: number;
  valBalancedAccuracy: number;
  valMacroF1: number;
  /** Recall per class name; null for a class absent from the validation set. */
  valPerClassRecall: Record<string, number | null>;
  /** Wall time of the epoch (training + validation). */
  seconds: number;
  /** Training images per second. */
  imagesPerSecond: number;
}

/** One trained model: its configuration, history, chosen epoch and test evaluation. */
export interface ModelResults {
  config: RunConfig;
  epochs: EpochRecord[];
  /** The `epoch` value of the record whose weights were evaluated on the test set. */
  bestEpoch: number;
  test: ClassificationReport;
}

/** Everything one study run measured: the content of `metrics.json`. */
export interface StudyResults {
  /** GPU adapter description (vendor, architecture, device). */
  adapter: string;
  /** True when the adapter is a software/fallback adapter (timings are then not meaningful). */
  isFallback: boolean;
  /** ISO 8601 timestamp of the run. */
  date: string;
  /** Run profile, e.g. "quick" or "full". */
  profile: string;
  /** Split mode of the run, e.g. "random" or "lesion". */
  splitMode: string;
  models: ModelResults[];
}

/** The validation fields of an {@link EpochRecord}, read off `evaluateClassifier`'s report. */
export function epochValidationFields(
  report: ClassificationReport,
): Pick<
  EpochRecord,
  | "valLoss"
  | "valAccuracy"
  | "valPrecision"
  | "valRecall"
  | "valBalancedAccuracy"
  | "valMacroF1"
  | "valPerClassRecall"
> {
  return {
    valLoss: report.loss,
    valAccuracy: report.accuracy,
    valPrecision: report.weightedPrecision,
    valRecall: report.weightedRecall,
    valBalancedAccuracy: report.balancedAccuracy,
    valMacroF1: report.macroF1,
    valPerClassRecall: Object.fromEntries(report.perClass.map((k) => [k.name, k.recall])),
  };
}

function need(ok: boolean, path: string, what: string): void {
  if (!ok) throw new TypeError(`metrics.json: ${path} must be ${what}`);
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Checks the shape of parsed `metrics.json` content (field presence and types down to the
 * test report's headline metrics) and narrows it to `StudyResults`. Throws TypeError naming
 * the first bad field.
 */
export function assertStudyResults(value: unknown): asserts value is StudyResults {
  need(isObj(value), "the top level", "an object");
  const v = value as Record<string, unknown>;
  for (const k of ["adapter", "date", "profile", "splitMode"]) {
    need(typeof v[k] === "string", k, "a string");
  }
  need(typeof v.isFallback === "boolean", "isFallback", "a boolean");
  need(Array.isArray(v.models), "models", "an array");
  (v.models as unknown[]).forEach((m, i) => {
    const p = `models[${i}]`;
    need(isObj(m), p, "an object");
    const mo = m as Record<string, unknown>;
    need(isObj(mo.config) && typeof mo.config.model === "string", `${p}.config.model`, "a string");
    need(Array.isArray(mo.epochs), `${p}.epochs`, "an array");
    (mo.epochs as unknown[]).forEach((e, j) => {
      need(isObj(e) && typeof e.epoch === "number", `${p}.epochs[${j}].epoch`, "a number");
    });
    need(typeof mo.bestEpoch === "number", `${p}.bestEpoch`, "a number");
    need(isObj(mo.test), `${p}.test`, "an object");
    const t = mo.test as Record<string, unknown>;
    for (const k of ["accuracy", "loss", "weightedPrecision", "weightedRecall", "macroF1"]) {
      need(typeof t[k] === "number", `${p}.test.${k}`, "a number");
    }
    need(Array.isArray(t.confusionMatrix), `${p}.test.confusionMatrix`, "an array");
    need(Array.isArray(t.classNames), `${p}.test.classNames`, "an array");
  });
}
