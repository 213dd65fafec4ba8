/** @module @dermagpu/cli — the command line (`main`) and the HTML report. */
export { main } from "./main.ts";
export { renderReport } from "./report/render_report.ts";
export { writeReport } from "./report/write_report.ts";
export { checkReportInChromium } from "./report/check_in_chromium.ts";
