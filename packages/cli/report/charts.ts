/** The report's charts, one function per chart kind, each returning an SVG string. */
import * as Plot from "@observablehq/plot";
import type { ClassificationReport } from "../../core/metrics/evaluate.ts";
import type { EpochRecord } from "../../core/metrics/run_results.ts";
import { PALETTE, plotSvg } from "./plot_svg.ts";

/** The four training-curve panels, as the study's plot_metrics. */
export const CURVE_METRICS = [
  { key: "loss", label: "Loss", train: "trainLoss", val: "valLoss" },
  { key: "accuracy", label: "Accuracy", train: "trainAccuracy", val: "valAccuracy" },
  { key: "precision", label: "Precision (weighted)", train: "trainPrecision", val: "valPrecision" },
  { key: "recall", label: "Recall (weighted)", train: "trainRecall", val: "valRecall" },
] as const;

export type CurveMetric = (typeof CURVE_METRICS)[number];

const SPLIT_COLORS = { domain: ["train", "validation"], range: [PALETTE[0], PALETTE[1]] };

/** Train and validation value of one metric by epoch, labelled at the last point. */
export function curveChart(epochs: EpochRecord[], metric: CurveMetric): string {
  const rows = epochs.flatMap((e) => [
    { epoch: e.epoch, split: "train", value: e[metric.train] },
    { epoch: e.epoch, split: "validation", value: e[metric.val] },
  ]);
  return plotSvg({
    width: 268,
    height: 210,
    marginRight: 58,
    x: { label: "epoch", ticks: Math.min(epochs.length, 10), tickFormat: "d" },
    y: { label: metric.label, grid: true, nice: true },
    color: SPLIT_COLORS,
    marks: [
      Plot.line(rows, { x: "epoch", y: "value", z: "split", stroke: "split", strokeWidth: 2 }),
      Plot.dot(rows, { x: "epoch", y: "value", fill: "split", r: 2.5 }),
      Plot.text(
        rows,
        Plot.selectLast({
          x: "epoch",
          y: "value",
          z: "split",
          text: "split",
          fill: "split",
          dx: 6,
          textAnchor: "start",
        }),
      ),
    ],
  });
}

/** Confusion matrix: counts in the cells, colour = share of the true class (row). */
export function confusionChart(report: ClassificationReport): string {
  const names = report.classNames;
  const cells = report.confusionMatrix.flatMap((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((count, p) => ({
      truth: names[t],
      predicted: names[p],
      count,
      share: total > 0 ? count / total : 0,
    }));
  });
  return plotSvg({
    width: 60 + 46 * names.length,
    height: 60 + 40 * names.length,
    marginLeft: 56,
    marginTop: 44,
    padding: 0.04,
    x: { domain: names, label: "predicted", axis: "top" },
    y: { domain: names, label: "true" },
    color: { type: "linear", domain: [0, 1], scheme: "blues" },
    marks: [
      Plot.cell(cells, { x: "predicted", y: "truth", fill: "share", inset: 0.5 }),
      Plot.text(cells, {
        x: "predicted",
        y: "truth",
        text: (d: { count: number }) => String(d.count),
        fill: (d: { share: number }) => (d.share > 0.55 ? "white" : "black"),
        fontSize: 11,
      }),
    ],
  });
}

/** One-vs-rest ROC curve per class, with an in-chart legend "class (AUC)". */
export function rocChart(report: ClassificationReport): string {
  const colorOf = (index: number) => PALETTE[index % PALETTE.length];
  const points = report.rocCurves.flatMap((c) =>
    c.fpr.map((fpr, i) => ({ cls: c.name, index: c.index, fpr, tpr: c.tpr[i] }))
  );
  const legend = report.rocCurves.map((c, i) => ({
    label: `${c.name} (${c.auc.toFixed(3)})`,
    color: colorOf(c.index),
    y: 0.05 + 0.07 * (report.rocCurves.length - 1 - i),
  }));
  return plotSvg({
    width: 350,
    height: 320,
    x: { domain: [0, 1], label: "false positive rate", grid: true },
    y: { domain: [0, 1], label: "true positive rate", grid: true },
    marks: [
      Plot.line([[0, 0], [1, 1]], { stroke: "#999", strokeDasharray: "4,3" }),
      Plot.line(points, {
        x: "fpr",
        y: "tpr",
        z: "cls",
        stroke: (d: { index: number }) => colorOf(d.index),
        strokeWidth: 1.6,
      }),
      Plot.dot(legend, { x: 0.6, y: "y", fill: "color", r: 4 }),
      Plot.text(legend, { x: 0.63, y: "y", text: "label", textAnchor: "start", fontSize: 10 }),
    ],
  });
}

/** Reliability diagram: accuracy per confidence bin against the diagonal, ECE in the corner. */
export function reliabilityChart(report: ClassificationReport): string {
  const bins = report.calibration.bins.filter((b) => b.count > 0);
  return plotSvg({
    width: 320,
    height: 300,
    x: { domain: [0, 1], label: "confidence (max probability)", grid: true },
    y: { domain: [0, 1], label: "accuracy", grid: true },
    marks: [
      Plot.rectY(bins, {
        x1: "lower",
        x2: "upper",
        y: "accuracy",
        fill: PALETTE[0],
        fillOpacity: 0.75,
        inset: 0.5,
      }),
      Plot.line([[0, 0], [1, 1]], { stroke: "#999", strokeDasharray: "4,3" }),
      Plot.dot(bins, { x: "meanConfidence", y: "accuracy", fill: PALETTE[2], r: 3 }),
      Plot.text([`ECE = ${report.calibration.ece.toFixed(4)}`], {
        frameAnchor: "top-left",
        dx: 6,
        dy: 6,
        textAnchor: "start",
        fontSize: 11,
        stroke: "white",
        strokeWidth: 4,
        paintOrder: "stroke",
        fill: "black",
      }),
    ],
  });
}
