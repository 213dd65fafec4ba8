/** Crash-safe file replacement: write a temporary file beside the target, fsync, then rename. */
import { basename, dirname, join } from "node:path";

/**
 * Writes `bytes` to `path` atomically: readers see either the old file or the complete new one,
 * never a partial write. The temporary file lives in the same directory (so the rename stays on
 * one file system), its data is fsynced before the rename, and it is removed if anything fails.
 * The directory entry itself is not fsynced.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const rand = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
  const tmp = join(dirname(path), `.${basename(path)}.${Deno.pid}.${rand}.tmp`);
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(tmp, { write: true, createNew: true });
    let written = 0;
    while (written < bytes.length) {
      written += await file.write(bytes.subarray(written));
    }
    await file.sync();
    file.close();
    file = undefined;
    await Deno.rename(tmp, path);
  } catch (e) {
    try {
      file?.close();
    } catch { /* already closed */ }
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}
