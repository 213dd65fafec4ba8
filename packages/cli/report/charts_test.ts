import assert from "node:assert/strict";
import { parseHTML } from "linkedom";
import { syntheticStudy } from "../../core/metrics/synthetic_study.ts";
import { confusionChart, CURVE_METRICS, curveChart, reliabilityChart, rocChart } from "./charts.ts";

interface Node {
  textContent: string | null;
  getAttribute(n: string): string | null;
}
function parse(svg: string) {
  const { document } = parseHTML(`<html><body>${svg}</body></html>`) as unknown as {
    document: { querySelectorAll(s: string): Node[] };
  };
  return (sel: string) => [...document.querySelectorAll(sel)];
}

const study = syntheticStudy(99, ["resnet18"], 4, 200);
const model = study.models[0];

Deno.test("curve chart: a dot per split and epoch, labels at the end", () => {
  for (const metric of CURVE_METRICS) {
    const svg = curveChart(model.epochs, metric);
    assert.ok(svg.startsWith("<svg") && svg.includes('xmlns="http://www.w3.org/2000/svg"'));
    const q = parse(svg);
    assert.equal(q("circle").length, 2 * model.epochs.length);
    const texts = q("text").map((t) => t.textContent);
    assert.ok(texts.includes("train") && texts.includes("validation"), texts.join(","));
  }
});

Deno.test("confusion chart: one cell and one count per class pair", () => {
  const q = parse(confusionChart(model.test));
  const c = model.test.classNames.length;
  // Cells are rects inside the cell mark's group.
  assert.equal(q('g[aria-label="cell"] rect').length, c * c);
  const counts = q('g[aria-label="text"] text').map((t) => Number(t.textContent));
  assert.deepEqual(counts, model.test.confusionMatrix.flat());
  const ticks = q('g[aria-label="x-axis tick label"] text').map((t) => t.textContent);
  assert.deepEqual(ticks, model.test.classNames);
});

Deno.test("ROC chart: one curve and one legend entry per class with a defined AUC", () => {
  const q = parse(rocChart(model.test));
  const curves = model.test.rocCurves.length;
  // Two line marks: the diagonal (one path) and the curves (one path per class).
  assert.equal(q('g[aria-label="line"]').length, 2);
  assert.equal(q('g[aria-label="line"] path').length, 1 + curves);
  const legend = q('g[aria-label="text"] text').map((t) => t.textContent);
  assert.deepEqual(
    legend,
    model.test.rocCurves.map((r) => `${r.name} (${r.auc.toFixed(3)})`),
  );
});

Deno.test("reliability chart: one bar per non-empty bin and the ECE", () => {
  const q = parse(reliabilityChart(model.test));
  const nonEmpty = model.test.calibration.bins.filter((b) => b.count > 0).length;
  assert.equal(q('g[aria-label="rect"] rect').length, nonEmpty);
  const texts = q("text").map((t) => t.textContent);
  assert.ok(texts.includes(`ECE = ${model.test.calibration.ece.toFixed(4)}`));
});
