import assert from "node:assert/strict";
import { join } from "node:path";
import { syntheticStudy } from "../../core/metrics/synthetic_study.ts";
import { checkReportInChromium } from "./check_in_chromium.ts";
import { MODEL_CHARTS } from "./render_report.ts";
import { writeReport } from "./write_report.ts";

Deno.test("report renders in headless Chromium with every chart and no console errors", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dermagpu-report-" });
  try {
    // 2 models x 3 epochs; every number comes from a seeded RNG through the real metrics.
    const study = syntheticStudy(2024, ["resnet18", "efficientnet_b0"], 3);
    const { reportPath } = await writeReport(dir, study);
    const check = await checkReportInChromium(reportPath);
    assert.deepEqual(check.consoleErrors, []);
    const expected = ["resnet18", "efficientnet_b0"].flatMap((m) =>
      MODEL_CHARTS.map((c) => `${m}_${c}`)
    );
    assert.deepEqual(check.charts, expected);
    assert.equal(check.svgCount, expected.length);
    assert.equal(check.renderedSvgCount, expected.length);
    // Comparison, per-class recall, and one per-class detail table per model.
    assert.equal(check.tableCount, 2 + 2);
    assert.match(check.title, /dermagpu report/);
    assert.match(check.browser, /Chrom/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the Chromium check reports console errors, exceptions and failed loads", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dermagpu-report-" });
  try {
    const page = join(dir, "broken.html");
    await Deno.writeTextFile(
      page,
      `<!DOCTYPE html><html><head><title>broken</title></head><body>
<figure class="chart" data-chart="only"><svg width="20" height="20"><rect width="9" height="9"/></svg></figure>
<svg width="0" height="0"></svg>
<img src="missing-image.png">
<script>console.log("fine"); console.error("bad thing"); throw new Error("boom");</script>
</body></html>`,
    );
    const check = await checkReportInChromium(page);
    assert.equal(check.svgCount, 2);
    assert.equal(check.renderedSvgCount, 1);
    assert.deepEqual(check.charts, ["only"]);
    assert.ok(check.consoleMessages.includes("log: fine"), check.consoleMessages.join("\n"));
    const errors = check.consoleErrors.join("\n");
    assert.match(errors, /console\.error: bad thing/);
    assert.match(errors, /boom/);
    assert.match(errors, /missing-image\.png/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a missing Chromium fails with the install command", async () => {
  await assert.rejects(
    checkReportInChromium("report.html", { chromiumPath: "/nonexistent/chromium" }),
    /apt-get install chromium/,
  );
});
