/**
 * Decode + resize each JPEG once (sharp), then keep the raw RGB bytes on disk.
 *
 * Resize rule (`fit`):
 * - "fill" (default): exactly height x width, aspect ratio ignored. HAM10000 images are 4:3,
 *   so a 3:4 target (e.g. 225x300 or 150x200) keeps their shape and the whole field of view.
 * - "cover": scale (aspect kept) so the image covers height x width, then crop the centre:
 *   torchvision's Resize(S) + CenterCrop(S) when height = width = S.
 * Interpolation is sharp's "linear" kernel, antialiased when shrinking like PIL's BILINEAR.
 *
 * Cache files: `<dir>/v1/<ab>/<key>.rgb`, height*width*3 bytes (HWC, uint8) with no header.
 * The key hashes the source's absolute path, size and mtime with the target size and fit, so
 * an edited image is decoded again (an ImageCache stats each path once, so edits made while
 * one instance is in use are seen by the next instance). Files are written to a temp name then renamed, so a crash
 * never leaves a partial entry. The default dir is $XDG_CACHE_HOME/dermagpu, else
 * ~/.cache/dermagpu.
 */
import { createHash } from "node:crypto";
import { dirname, join, resolve } from "node:path";
import sharp from "sharp";
import { UserError } from "../errors.ts";

export type Fit = "fill" | "cover";

export interface ImageCacheOptions {
  height: number;
  width: number;
  fit?: Fit;
  /** Cache folder; defaults to `defaultCacheDir()`. */
  dir?: string;
}

const VERSION = "v1";
const KERNEL = "linear";

/** $XDG_CACHE_HOME/dermagpu, else $HOME/.cache/dermagpu. */
export function defaultCacheDir(
  env: { get(key: string): string | undefined } = Deno.env,
): string {
  const xdg = env.get("XDG_CACHE_HOME");
  if (xdg) return join(xdg, "dermagpu");
  const home = env.get("HOME") ?? env.get("USERPROFILE");
  if (!home) {
    throw new UserError(
      "cannot place the image cache: set XDG_CACHE_HOME or HOME, or pass a cache dir",
    );
  }
  return join(home, ".cache", "dermagpu");
}

export class ImageCache {
  readonly dir: string;
  readonly height: number;
  readonly width: number;
  readonly fit: Fit;
  /** Lookups served from disk, and images decoded (cache misses) since creation. */
  readonly stats = { hits: 0, decoded: 0 };
  readonly #keys = new Map<string, string>();
  readonly #dirs = new Set<string>();

  constructor(options: ImageCacheOptions) {
    if (!(options.height >= 1 && options.width >= 1)) {
      throw new UserError(`image size ${options.height}x${options.width} must be at least 1x1`);
    }
    this.height = options.height;
    this.width = options.width;
    this.fit = options.fit ?? "fill";
    this.dir = resolve(options.dir ?? defaultCacheDir());
  }

  /** Bytes in one cached image: height*width*3. */
  get bytes(): number {
    return this.height * this.width * 3;
  }

  /** The RGB bytes (height x width x 3) of the image at `path`, decoding it on a miss. */
  async get(path: string): Promise<Uint8Array> {
    const file = await this.#file(path);
    try {
      const data = await Deno.readFile(file);
      if (data.byteLength === this.bytes) {
        this.stats.hits++;
        return data;
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const data = await decodeResize(path, this.height, this.width, this.fit);
    this.stats.decoded++;
    await this.#write(file, data);
    return data;
  }

  async #file(path: string): Promise<string> {
    const abs = resolve(path);
    let key = this.#keys.get(abs);
    if (!key) {
      let info: Deno.FileInfo;
      try {
        info = await Deno.stat(abs);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) {
          throw new UserError(`image ${abs} not found; was it moved? Run data:inspect to re-check`);
        }
        throw e;
      }
      const id = [
        abs,
        info.size,
        info.mtime?.getTime() ?? 0,
        this.height,
        this.width,
        this.fit,
        KERNEL,
      ];
      key = createHash("sha256").update(JSON.stringify(id)).digest("hex").slice(0, 32);
      this.#keys.set(abs, key);
    }
    return join(this.dir, VERSION, key.slice(0, 2), `${key}.rgb`);
  }

  async #write(file: string, data: Uint8Array): Promise<void> {
    const folder = dirname(file);
    if (!this.#dirs.has(folder)) {
      await Deno.mkdir(folder, { recursive: true });
      this.#dirs.add(folder);
    }
    const tmp = `${file}.${Deno.pid}-${Math.random().toString(36).slice(2)}.tmp`;
    await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, file);
  }
}

/** Decodes a JPEG (any format sharp reads) to height x width x 3 RGB bytes by `fit`. */
export async function decodeResize(
  path: string,
  height: number,
  width: number,
  fit: Fit = "fill",
): Promise<Uint8Array> {
  try {
    const { data, info } = await sharp(path, { failOn: "truncated" })
      .rotate() // honour EXIF orientation
      .resize(width, height, { fit, position: "centre", kernel: KERNEL })
      .removeAlpha()
      .toColourspace("srgb")
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || info.width !== width || info.height !== height) {
      throw new Error(`decoded to ${info.width}x${info.height}x${info.channels}`);
    }
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } catch (e) {
    const why = String((e as Error).message ?? e).split("\n")[0];
    throw new UserError(
      `${path}: cannot decode the image (${why}); replace it with a good copy or remove it`,
    );
  }
}
