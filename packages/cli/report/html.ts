/** Small HTML helpers: escaping and tables. */

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  ).replace(/'/g, "&#39;");
}

/** A table cell: text (escaped) and whether it is numeric (right-aligned). */
export interface Cell {
  text: string;
  numeric?: boolean;
  /** Extra CSS class. */
  cls?: string;
}

/** An HTML table from a header row and body rows; every text is escaped. */
export function htmlTable(headers: Cell[], rows: Cell[][], caption?: string): string {
  const cell = (tag: string, c: Cell) => {
    const classes = [c.numeric ? "num" : "", c.cls ?? ""].filter(Boolean).join(" ");
    return `<${tag}${classes ? ` class="${classes}"` : ""}>${escapeHtml(c.text)}</${tag}>`;
  };
  return [
    "<table>",
    caption ? `<caption>${escapeHtml(caption)}</caption>` : "",
    `<thead><tr>${headers.map((h) => cell("th", h)).join("")}</tr></thead>`,
    `<tbody>${
      rows.map((r) => `<tr>${r.map((c) => cell("td", c)).join("")}</tr>`).join("")
    }</tbody>`,
    "</table>",
  ].join("");
}

/** File-name-safe slugs for the model names, made unique with a numeric suffix. */
export function modelSlugs(names: string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((name) => {
    const base = name.toLowerCase().replace(/[^a-z0-9_-]+/g, "_").replace(/^_+|_+$/g, "") ||
      "model";
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return n === 1 ? base : `${base}_${n}`;
  });
}
