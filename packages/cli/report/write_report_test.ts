import assert from "node:assert/strict";
import { join } from "node:path";
import { syntheticStudy } from "../../core/metrics/synthetic_study.ts";
import { renderReport } from "./render_report.ts";
import { writeReport, writeTextAtomic } from "./write_report.ts";

Deno.test("writeReport writes report.html and charts/<model>_<chart>.svg, no temp files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dermagpu-write-" });
  try {
    const study = syntheticStudy(31, ["mobilenet_v2"], 2, 80);
    const expected = renderReport(study);
    const out = join(dir, "run", "report");
    // Writing twice overwrites in place.
    await writeReport(out, syntheticStudy(32, ["mobilenet_v2"], 2, 80));
    const written = await writeReport(out, study);
    assert.equal(written.reportPath, join(out, "report.html"));
    assert.equal(await Deno.readTextFile(written.reportPath), expected.html);
    for (const [key, svg] of Object.entries(expected.svgs)) {
      assert.equal(written.chartPaths[key], join(out, "charts", `${key}.svg`));
      assert.equal(await Deno.readTextFile(written.chartPaths[key]), svg);
    }
    const names = [...Deno.readDirSync(join(out, "charts"))].map((e) => e.name).sort();
    assert.deepEqual(names, Object.keys(expected.svgs).map((k) => `${k}.svg`).sort());
    assert.deepEqual([...Deno.readDirSync(out)].map((e) => e.name).sort(), [
      "charts",
      "report.html",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeTextAtomic leaves nothing behind when the rename fails", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dermagpu-write-" });
  try {
    // The target is an existing non-empty directory: the rename fails, the temp file goes.
    await Deno.mkdir(join(dir, "target", "inner"), { recursive: true });
    await assert.rejects(writeTextAtomic(join(dir, "target"), "x"));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["target"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
