/**
 * Cached downloads of published weight files, verified like torch.hub's `check_hash`: a file
 * named `<name>-<hex>.<ext>` must have a SHA-256 digest that starts with `<hex>`. A file in the
 * cache is verified again before use; a bad download never replaces a good file.
 */
import { basename, join } from "node:path";
import { UserError } from "../errors.ts";
import { writeFileAtomic } from "./atomic.ts";

/** The hash prefix torchvision puts in its file names, e.g. "f37072fd" in resnet18-f37072fd.pth. */
export function hashPrefixOf(fileName: string): string | null {
  return /-([0-9a-f]{8,64})\.[a-z0-9]+$/i.exec(fileName)?.[1]?.toLowerCase() ?? null;
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>),
  );
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** `$DERMAGPU_CACHE`, else `$XDG_CACHE_HOME/dermagpu`, else `~/.cache/dermagpu`; then `weights/`. */
export function defaultWeightsCache(env = Deno.env.toObject()): string {
  const base = env.DERMAGPU_CACHE ??
    join(env.XDG_CACHE_HOME ?? join(env.HOME ?? ".", ".cache"), "dermagpu");
  return join(base, "weights");
}

async function verified(path: string, prefix: string | null): Promise<boolean> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    return false;
  }
  return prefix === null || (await sha256Hex(bytes)).startsWith(prefix);
}

export interface DownloadOptions {
  cacheDir?: string;
  /** Progress callback: bytes received and the total when the server says it. */
  onProgress?: (received: number, total: number | null) => void;
}

/** Returns the local path of `url`'s file, downloading and verifying it on first use. */
export async function downloadWeights(url: string, opts: DownloadOptions = {}): Promise<string> {
  const dir = opts.cacheDir ?? defaultWeightsCache();
  const name = basename(new URL(url).pathname);
  const path = join(dir, name);
  const prefix = hashPrefixOf(name);
  if (await verified(path, prefix)) return path;
  await Deno.mkdir(dir, { recursive: true });
  let response: Response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new UserError(
      `cannot download ${url} (${(e as Error).message}); without network, download it elsewhere ` +
        `and pass the file with --pretrained FILE (or put it in ${dir})`,
    );
  }
  if (!response.ok || !response.body) {
    throw new UserError(
      `downloading ${url} failed: HTTP ${response.status} ${response.statusText}`,
    );
  }
  const total = Number(response.headers.get("content-length")) || null;
  const chunks: Uint8Array[] = [];
  let received = 0;
  for await (const chunk of response.body) {
    chunks.push(chunk);
    received += chunk.length;
    opts.onProgress?.(received, total);
  }
  const bytes = new Uint8Array(received);
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.length;
  }
  if (prefix) {
    const digest = await sha256Hex(bytes);
    if (!digest.startsWith(prefix)) {
      throw new UserError(
        `${url}: the download's SHA-256 ${digest.slice(0, 16)}... does not start with ${prefix} ` +
          `(corrupt or replaced file); nothing was cached, try again`,
      );
    }
  }
  await writeFileAtomic(path, bytes);
  return path;
}
