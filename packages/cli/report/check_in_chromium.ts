/**
 * Opens a report in headless Chromium (over the DevTools protocol) and reports what rendered:
 * SVG counts, the charts that have a laid-out SVG, and every console error, uncaught
 * exception or browser log error (failed loads, CSP violations).
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { CdpClient, type CdpEvent } from "./cdp_client.ts";

/** Default Chromium binary (Debian package `chromium`). */
export const CHROMIUM_PATH = "/usr/bin/chromium";

/** What {@link checkReportInChromium} found. */
export interface ChromiumCheck {
  /** `<svg>` elements in the rendered DOM. */
  svgCount: number;
  /** `<svg>` elements with a non-zero layout box. */
  renderedSvgCount: number;
  /** `data-chart` keys of the `figure.chart` elements holding a laid-out, non-empty SVG. */
  charts: string[];
  /** Number of `<table>` elements. */
  tableCount: number;
  title: string;
  /** console.error / console.assert, uncaught exceptions, and log entries of level "error". */
  consoleErrors: string[];
  /** Every console API message, as "type: text". */
  consoleMessages: string[];
  /** Browser product string, e.g. "HeadlessChrome/150.0.7871.100". */
  browser: string;
}

/** Options of {@link checkReportInChromium}. */
export interface ChromiumCheckOptions {
  /** Chromium binary; default {@link CHROMIUM_PATH}. */
  chromiumPath?: string;
  /** Whole-check time limit; default 30 s. */
  timeoutMs?: number;
  /** Time to wait after the load event for late messages; default 300 ms. */
  settleMs?: number;
}

const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-extensions",
  "--mute-audio",
  "--remote-debugging-port=0",
];

const PROBE = `(() => {
  const sized = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const svgs = [...document.querySelectorAll("svg")];
  const charts = [...document.querySelectorAll("figure.chart[data-chart]")].filter((f) => {
    const s = f.querySelector("svg");
    return s !== null && sized(s) && s.querySelectorAll("path, rect, line, circle, text").length > 0;
  }).map((f) => f.getAttribute("data-chart"));
  return { svgCount: svgs.length, renderedSvgCount: svgs.filter(sized).length, charts,
    tableCount: document.querySelectorAll("table").length, title: document.title };
})()`;

function argText(a: Record<string, unknown>): string {
  return a.value !== undefined ? String(a.value) : String(a.description ?? a.type ?? "");
}

/** Collects console output and errors from CDP events of one session. */
function collector(sessionId: string, errors: string[], messages: string[]) {
  return (e: CdpEvent) => {
    if (e.sessionId !== sessionId) return;
    const p = e.params;
    if (e.method === "Runtime.consoleAPICalled") {
      const text = ((p.args as Record<string, unknown>[]) ?? []).map(argText).join(" ");
      messages.push(`${p.type}: ${text}`);
      if (p.type === "error" || p.type === "assert") errors.push(`console.${p.type}: ${text}`);
    } else if (e.method === "Runtime.exceptionThrown") {
      const d = p.exceptionDetails as { text?: string; exception?: { description?: string } };
      errors.push(`exception: ${d.exception?.description ?? d.text ?? "unknown"}`);
    } else if (e.method === "Log.entryAdded") {
      const entry = p.entry as { level: string; source: string; text: string; url?: string };
      if (entry.level === "error") {
        errors.push(`${entry.source}: ${entry.text}${entry.url ? ` (${entry.url})` : ""}`);
      }
    }
  };
}

/** Reads Chromium's stderr to the end; resolves `ready` with the DevTools URL once printed. */
function watchStderr(stream: ReadableStream<Uint8Array>) {
  let text = "";
  let onUrl: (url: string) => void = () => {};
  const url = new Promise<string>((r) => (onUrl = r));
  const done = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      const m = text.match(/DevTools listening on (ws:\/\/\S+)/);
      if (m) onUrl(m[1]);
      if (text.length > 1_000_000) text = text.slice(-100_000);
    }
  })();
  return { url, done, tail: () => text.slice(-2000) };
}

/**
 * Loads `htmlPath` in a fresh headless Chromium (one launch, a new temporary profile) and
 * returns what rendered. Throws when Chromium is missing (the message says to run
 * `apt-get install chromium`), fails to start, or exceeds the time limit.
 */
export async function checkReportInChromium(
  htmlPath: string,
  options: ChromiumCheckOptions = {},
): Promise<ChromiumCheck> {
  const chromium = options.chromiumPath ?? CHROMIUM_PATH;
  try {
    await Deno.stat(chromium);
  } catch {
    throw new Error(
      `Chromium not found at ${chromium}: install it with \`apt-get install chromium\``,
    );
  }
  const fileUrl = pathToFileURL(resolve(htmlPath)).href;
  const profile = await Deno.makeTempDir({ prefix: "dermagpu-chromium-" });
  const child = new Deno.Command(chromium, {
    args: [...FLAGS, `--user-data-dir=${profile}`, "about:blank"],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = watchStderr(child.stderr);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Chromium check timed out; stderr tail:\n${stderr.tail()}`)),
      options.timeoutMs ?? 30_000,
    );
  });
  const exited = child.status.then((s) => {
    throw new Error(`Chromium exited early (code ${s.code}); stderr tail:\n${stderr.tail()}`);
  });
  exited.catch(() => {});
  let cdp: CdpClient | undefined;
  try {
    const wsUrl = await Promise.race([stderr.url, timeout, exited]);
    cdp = await Promise.race([CdpClient.connect(wsUrl), timeout]);
    const client = cdp;
    const work = (async (): Promise<ChromiumCheck> => {
      const browser = String((await client.send("Browser.getVersion")).product ?? "");
      const { targetId } = await client.send("Target.createTarget", { url: "about:blank" });
      const { sessionId } = await client.send("Target.attachToTarget", {
        targetId,
        flatten: true,
      }) as { sessionId: string };
      const consoleErrors: string[] = [];
      const consoleMessages: string[] = [];
      const off = client.on(collector(sessionId, consoleErrors, consoleMessages));
      for (const domain of ["Runtime", "Log", "Page"]) {
        await client.send(`${domain}.enable`, {}, sessionId);
      }
      const loaded = client.waitFor("Page.loadEventFired", sessionId);
      const nav = await client.send("Page.navigate", { url: fileUrl }, sessionId);
      if (nav.errorText) throw new Error(`cannot load ${fileUrl}: ${nav.errorText}`);
      await loaded;
      await new Promise((r) => setTimeout(r, options.settleMs ?? 300));
      const evaluated = await client.send("Runtime.evaluate", {
        expression: PROBE,
        returnByValue: true,
      }, sessionId);
      off();
      const value = (evaluated.result as { value: Omit<ChromiumCheck, "consoleErrors"> }).value;
      return { ...value, consoleErrors, consoleMessages, browser };
    })();
    return await Promise.race([work, timeout, exited]);
  } finally {
    clearTimeout(timer);
    if (cdp) {
      await cdp.send("Browser.close").catch(() => {});
      await cdp.close();
    }
    const killer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, 5_000);
    await child.status.catch(() => {});
    clearTimeout(killer);
    await stderr.done.catch(() => {});
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}
