/** Server-side Observable Plot: renders a chart into a standalone SVG string with linkedom. */
import * as Plot from "@observablehq/plot";
import { parseHTML } from "linkedom";

const SVG_NS = "http://www.w3.org/2000/svg";

/** Chart palette (Tableau 10), fixed so HTML legends and SVGs agree without Plot legends. */
export const PALETTE = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
];

/** The part of a DOM element used here (the workspace compiles without the DOM lib). */
interface MiniElement {
  tagName: string;
  outerHTML: string;
  setAttribute(name: string, value: string): void;
}

/**
 * Renders `options` with Plot into an `<svg>` string that stands alone as a file (it carries
 * the SVG namespace). Options must not ask for legends (those make a `<figure>`, not an SVG).
 */
export function plotSvg(options: Plot.PlotOptions): string {
  const { document } = parseHTML("<html><body></body></html>") as unknown as { document: unknown };
  const el = Plot.plot({ ...options, document } as Plot.PlotOptions) as unknown as MiniElement;
  if (el.tagName.toLowerCase() !== "svg") {
    throw new Error(`Plot returned <${el.tagName.toLowerCase()}>, expected <svg>`);
  }
  el.setAttribute("xmlns", SVG_NS);
  return el.outerHTML;
}
