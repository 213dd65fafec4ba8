/**
 * `renderReport`: the study's self-contained HTML report (inline SVG charts and CSS, no
 * scripts, no external requests) plus each chart as a standalone SVG.
 */
import {
  COMPARISON_COLUMNS,
  formatCell,
  REFERENCE_HEADER,
} from "../../core/metrics/comparison_table.ts";
import { ORIGINAL_STUDY, originalStudyAccuracy } from "../../core/metrics/original_study.ts";
import type { ModelResults, StudyResults } from "../../core/metrics/run_results.ts";
import { confusionChart, CURVE_METRICS, curveChart, reliabilityChart, rocChart } from "./charts.ts";
import { type Cell, escapeHtml, htmlTable, modelSlugs } from "./html.ts";

/** Chart names per model, in page order; files are `charts/<model>_<chart>.svg`. */
export const MODEL_CHARTS = [
  ...CURVE_METRICS.map((m) => m.key),
  "confusion",
  "roc",
  "reliability",
] as const;

/** The rendered report: the HTML page and every chart keyed `<model>_<chart>`. */
export interface RenderedReport {
  html: string;
  svgs: Record<string, string>;
}

const CSS = `
body { font: 14px/1.45 system-ui, sans-serif; color: #222; margin: 0 auto; max-width: 1180px;
  padding: 16px 24px 48px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 36px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.meta { color: #555; margin: 0; }
.warn { background: #fff4e5; border: 1px solid #f0b45b; padding: 6px 10px; border-radius: 4px; }
.note { color: #555; font-size: 12.5px; max-width: 900px; }
table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; }
th { background: #f5f5f5; font-weight: 600; }
td.num, th.num { text-align: right; }
td.ref, th.ref { color: #777; font-style: italic; }
td.mel, th.mel { background: #fdf0ef; }
.charts { display: flex; flex-wrap: wrap; gap: 12px 20px; align-items: flex-start; }
figure.chart { margin: 0; }
figure.chart figcaption { font-size: 12.5px; color: #444; margin-bottom: 2px; }
figure.chart svg { display: block; }
`;

function figure(key: string, caption: string, svg: string): string {
  return `<figure class="chart" data-chart="${escapeHtml(key)}">` +
    `<figcaption>${escapeHtml(caption)}</figcaption>${svg}</figure>`;
}

function comparisonHtml(study: StudyResults): string {
  const headers: Cell[] = [
    { text: "Model" },
    ...COMPARISON_COLUMNS.map((c) => ({ text: c.header, numeric: true })),
    { text: REFERENCE_HEADER, numeric: true, cls: "ref" },
  ];
  const rows = study.models.map((m): Cell[] => [
    { text: m.config.model },
    ...COMPARISON_COLUMNS.map((c) => ({ text: formatCell(c.value(m), c.digits), numeric: true })),
    {
      text: formatCell(originalStudyAccuracy(m.config.model)?.accuracy ?? null, 2),
      numeric: true,
      cls: "ref",
    },
  ]);
  return htmlTable(headers, rows);
}

/** Class names of the study with melanoma first, then the rest in class order. */
export function classOrderMelFirst(study: StudyResults): string[] {
  const names: string[] = [];
  for (const m of study.models) {
    for (const n of m.test.classNames) if (!names.includes(n)) names.push(n);
  }
  const mel = study.models.find((m) => m.test.melanoma)?.test.melanoma?.name;
  return mel && names.includes(mel) ? [mel, ...names.filter((n) => n !== mel)] : names;
}

function perClassRecallHtml(study: StudyResults): string {
  const order = classOrderMelFirst(study);
  const mel = order[0];
  const isMel = (n: string) => study.models.some((m) => m.test.melanoma?.name === n) && n === mel;
  const headers: Cell[] = [
    { text: "Model" },
    ...order.map((n) => ({ text: n, numeric: true, cls: isMel(n) ? "mel" : "" })),
  ];
  const rows = study.models.map((m): Cell[] => [
    { text: m.config.model },
    ...order.map((n) => {
      const k = m.test.perClass.find((p) => p.name === n);
      return {
        text: formatCell(k?.recall ?? null, 3),
        numeric: true,
        cls: isMel(n) ? "mel" : "",
      };
    }),
  ]);
  const support: Cell[] = [
    { text: "test support" },
    ...order.map((n) => {
      const k = study.models[0]?.test.perClass.find((p) => p.name === n);
      return { text: k ? String(k.support) : "—", numeric: true, cls: "ref" };
    }),
  ];
  return htmlTable(headers, [...rows, support]);
}

function perClassDetailHtml(m: ModelResults): string {
  const headers: Cell[] = ["Class", "Support", "Precision", "Recall", "F1", "AUC"].map((
    t,
    i,
  ) => ({ text: t, numeric: i > 0 }));
  const rows = m.test.perClass.map((k): Cell[] => [
    { text: k.name, cls: k.name === m.test.melanoma?.name ? "mel" : "" },
    { text: String(k.support), numeric: true },
    { text: formatCell(k.precision, 3), numeric: true },
    { text: formatCell(k.recall, 3), numeric: true },
    { text: formatCell(k.f1, 3), numeric: true },
    { text: formatCell(k.auc, 3), numeric: true },
  ]);
  return htmlTable(headers, rows);
}

function configLine(m: ModelResults): string {
  const c = m.config;
  return `${c.epochs} epochs, batch ${c.batchSize}, lr ${c.lr}, ${c.imageSize}px, ` +
    `split ${c.split}, seed ${c.seed}, ${c.pretrained ? "pretrained" : "from scratch"}; ` +
    `train/val/test ${c.trainImages}/${c.valImages}/${c.testImages} images; ` +
    `test metrics from epoch ${m.bestEpoch}`;
}

function modelSection(m: ModelResults, slug: string, svgs: Record<string, string>): string {
  const charts: Record<string, { caption: string; svg: string }> = {};
  for (const metric of CURVE_METRICS) {
    charts[metric.key] = { caption: metric.label, svg: curveChart(m.epochs, metric) };
  }
  charts.confusion = {
    caption: "Confusion matrix (test; colour = row share)",
    svg: confusionChart(m.test),
  };
  charts.roc = { caption: "ROC one-vs-rest (test; legend: class (AUC))", svg: rocChart(m.test) };
  charts.reliability = {
    caption: `Reliability diagram (test, ${m.test.calibration.numBins} bins)`,
    svg: reliabilityChart(m.test),
  };
  const figs: string[] = [];
  for (const name of MODEL_CHARTS) {
    const key = `${slug}_${name}`;
    svgs[key] = charts[name].svg;
    figs.push(figure(key, charts[name].caption, charts[name].svg));
  }
  const curves = figs.slice(0, CURVE_METRICS.length).join("");
  const rest = figs.slice(CURVE_METRICS.length).join("");
  return `<section class="model" id="model-${escapeHtml(slug)}">` +
    `<h2>${escapeHtml(m.config.model)}</h2><p class="meta">${escapeHtml(configLine(m))}</p>` +
    `<h3>Training curves</h3><div class="charts">${curves}</div>` +
    `<h3>Test set</h3><div class="charts">${rest}</div>` +
    `<h3>Per-class test metrics</h3>${perClassDetailHtml(m)}</section>`;
}

/** Renders the whole report. Pure: no file system access. */
export function renderReport(study: StudyResults): RenderedReport {
  const svgs: Record<string, string> = {};
  const slugs = modelSlugs(study.models.map((m) => m.config.model));
  const sections = study.models.map((m, i) => modelSection(m, slugs[i], svgs));
  const meta = `Adapter: ${study.adapter} · profile: ${study.profile} · split: ` +
    `${study.splitMode} · ${study.date}`;
  const html = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dermagpu report: ${escapeHtml(study.profile)}, ${escapeHtml(study.splitMode)} split</title>
<style>${CSS}</style></head><body>
<header><h1>dermagpu: skin-lesion classifiers on HAM10000</h1>
<p class="meta">${escapeHtml(meta)}</p>
${
    study.isFallback
      ? '<p class="warn">Ran on a fallback (software) adapter: timings are not representative.</p>'
      : ""
  }
</header>
<section id="comparison"><h2>Test-set comparison</h2>${comparisonHtml(study)}
<p class="note">Precision and Recall are support-weighted (as the original study). Balanced
accuracy is the mean per-class recall (the ISIC challenge metric). ${escapeHtml(REFERENCE_HEADER)}
is the original study's published test accuracy (${escapeHtml(ORIGINAL_STUDY.split)} split,
${escapeHtml(ORIGINAL_STUDY.optimizer)}); a random image-level split lets images of one lesion fall
in both train and test, which inflates accuracy.</p></section>
<section id="per-class-recall"><h2>Per-class test recall (melanoma first)</h2>
${perClassRecallHtml(study)}</section>
${sections.join("\n")}
<footer class="note"><p>Generated by dermagpu. Self-contained: inline SVG charts, no scripts.</p></footer>
</body></html>
`;
  return { html, svgs };
}
