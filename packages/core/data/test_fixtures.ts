/** Paths and temp-folder builders shared by the data tests (not exported from the package). */
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** ../shared/data/ham10000 beside the repository root. */
export const HAM = fileURLToPath(new URL("../../../../shared/data/ham10000/", import.meta.url));
export const METADATA = join(HAM, "HAM10000_metadata.csv");
export const ORIGINALS = join(HAM, "images_600x450");
export const SMALL = join(HAM, "images_200x150");

/** The first `n` image ids of the 600x450 originals, sorted. */
export async function originalIds(n: number): Promise<string[]> {
  const ids: string[] = [];
  for await (const e of Deno.readDir(ORIGINALS)) {
    if (e.name.endsWith(".jpg")) ids.push(e.name.slice(0, -4));
  }
  return ids.sort().slice(0, n);
}

/** The header plus the rows of HAM10000_metadata.csv whose image_id is in `ids`, as CSV text. */
export async function metadataSubset(ids: readonly string[]): Promise<string> {
  const want = new Set(ids);
  const lines = (await Deno.readTextFile(METADATA)).split("\n");
  return [lines[0], ...lines.slice(1).filter((l) => want.has(l.split(",")[1]))].join("\n") + "\n";
}

/** Copies `<id>.jpg` for each id from `from` into `to` (created). */
export async function copyImages(ids: readonly string[], from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for (const id of ids) await Deno.copyFile(join(from, `${id}.jpg`), join(to, `${id}.jpg`));
}

/** An empty temp folder, removed by the returned function. */
export async function tempDir(): Promise<{ path: string; [Symbol.asyncDispose](): Promise<void> }> {
  const path = await Deno.makeTempDir({ prefix: "dermagpu-data-" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}
