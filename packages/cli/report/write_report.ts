/** `writeReport`: writes report.html and charts/<model>_<chart>.svg, each file atomically. */
import { join } from "node:path";
import type { StudyResults } from "../../core/metrics/run_results.ts";
import { renderReport } from "./render_report.ts";

/**
 * Writes `text` to `path` atomically: to a temporary file in the same directory, then renamed
 * over `path`, so a reader never sees a half-written file.
 */
export async function writeTextAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.writeTextFile(tmp, text);
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

/** Paths written by {@link writeReport}. */
export interface WrittenReport {
  reportPath: string;
  /** Chart key (`<model>_<chart>`) to the SVG file path. */
  chartPaths: Record<string, string>;
}

/**
 * Renders the study and writes `<dir>/report.html` and `<dir>/charts/<model>_<chart>.svg`
 * (creating the folders). Charts are written before the page.
 */
export async function writeReport(dir: string, study: StudyResults): Promise<WrittenReport> {
  const { html, svgs } = renderReport(study);
  const chartsDir = join(dir, "charts");
  await Deno.mkdir(chartsDir, { recursive: true });
  const chartPaths: Record<string, string> = {};
  for (const [key, svg] of Object.entries(svgs)) {
    const path = join(chartsDir, `${key}.svg`);
    await writeTextAtomic(path, svg);
    chartPaths[key] = path;
  }
  const reportPath = join(dir, "report.html");
  await writeTextAtomic(reportPath, html);
  return { reportPath, chartPaths };
}
