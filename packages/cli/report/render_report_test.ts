import assert from "node:assert/strict";
import { comparisonTable } from "../../core/metrics/comparison_table.ts";
import { syntheticStudy } from "../../core/metrics/synthetic_study.ts";
import { modelSlugs } from "./html.ts";
import { classOrderMelFirst, MODEL_CHARTS, renderReport } from "./render_report.ts";

const study = syntheticStudy(17, ["resnet18", "densenet121"], 3, 150);

Deno.test("renderReport: every chart inline and as a standalone SVG", () => {
  const { html, svgs } = renderReport(study);
  const keys = ["resnet18", "densenet121"].flatMap((m) => MODEL_CHARTS.map((c) => `${m}_${c}`));
  assert.deepEqual(Object.keys(svgs), keys);
  for (const key of keys) {
    assert.ok(svgs[key].startsWith("<svg") && svgs[key].endsWith("</svg>"), key);
    assert.ok(svgs[key].includes('xmlns="http://www.w3.org/2000/svg"'), key);
    assert.ok(html.includes(`data-chart="${key}"`), key);
    assert.ok(html.includes(svgs[key]), `${key} not inline`);
  }
  assert.equal(html.match(/<svg/g)?.length, keys.length);
});

Deno.test("renderReport: self-contained, no scripts, no external references", () => {
  const { html } = renderReport(study);
  assert.ok(!/<script/i.test(html));
  const urls = html.match(/(https?:)?\/\/[^\s"'<)]+/g) ?? [];
  assert.deepEqual(urls.filter((u) => u !== "http://www.w3.org/2000/svg"), []);
  assert.ok(!/\b(src|href)=/i.test(html));
  assert.ok(html.startsWith("<!DOCTYPE html>"));
});

Deno.test("renderReport: comparison values, reference column, melanoma-first recall table", () => {
  const { html } = renderReport(study);
  const r = study.models[0].test;
  assert.ok(html.includes(`<td class="num">${(100 * r.accuracy).toFixed(2)}</td>`));
  assert.ok(html.includes(`<td class="num">${r.macroAuc!.toFixed(4)}</td>`));
  assert.ok(html.includes('<td class="num ref">74.65</td>'));
  assert.ok(html.includes('<td class="num ref">79.74</td>'));
  assert.deepEqual(classOrderMelFirst(study), ["mel", "akiec", "bcc", "bkl", "df", "nv", "vasc"]);
  const recall = html.slice(html.indexOf('id="per-class-recall"'));
  const heads = [
    ...recall.slice(0, recall.indexOf("</thead>")).matchAll(/<th(?: [^>]*)?>([^<]*)</g),
  ]
    .map((m) => m[1]);
  assert.deepEqual(heads, ["Model", "mel", "akiec", "bcc", "bkl", "df", "nv", "vasc"]);
  const mel = r.perClass.find((k) => k.name === "mel")!;
  assert.ok(recall.includes(`<td class="num mel">${mel.recall!.toFixed(3)}</td>`));
  // Same numbers as the Markdown comparison table.
  const md = comparisonTable(study).markdown.split("\n")[2].split(" | ");
  assert.ok(html.includes(`<td class="num">${md[1]}</td>`));
});

Deno.test("renderReport: escapes names, flags fallback adapters, dedupes slugs", () => {
  const s = syntheticStudy(18, ['a<b>&"x', 'a<b>&"x'], 1, 60);
  const { html, svgs } = renderReport(s);
  assert.ok(!html.includes("a<b>"));
  assert.ok(html.includes("a&lt;b&gt;&amp;&quot;x"));
  assert.ok(html.includes('class="warn"'));
  assert.ok(Object.keys(svgs).every((k) => /^[a-z0-9_-]+$/.test(k)));
  assert.deepEqual(modelSlugs(['a<b>&"x', 'a<b>&"x', "ResNet-18", "!!"]), [
    "a_b_x",
    "a_b_x_2",
    "resnet-18",
    "model",
  ]);
  const noFallback = renderReport({ ...study, isFallback: false }).html;
  assert.ok(!noFallback.includes('class="warn"'));
});
