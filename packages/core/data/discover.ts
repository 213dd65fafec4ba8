/**
 * Finds the image file of every metadata row.
 *
 * Rule: an explicit `imagesDir` is the only folder used. Otherwise the candidates inside the
 * data folder are
 *   1. the original study's layout: every `ham10000_images_part_<N>/` (any case), as one group;
 *   2. each `images_<W>x<H>/` folder (e.g. images_200x150, images_600x450);
 *   3. any other immediate subfolder holding .jpg files (e.g. a flat `HAM10000_images/`);
 *   4. the data folder itself, if it holds .jpg files;
 * and the candidate holding the most of the wanted images wins. Ties go to the earlier kind in
 * that list, then to the larger W*H, then to the name. Within a group the first folder (by
 * name) holding an image wins. Images are matched by `<image_id>.jpg` (or .jpeg, any case).
 */
import { join, resolve } from "node:path";
import { UserError } from "../errors.ts";

export interface FolderCount {
  path: string;
  /** How many of the wanted images this folder holds. */
  images: number;
  /** True for the folders the images are taken from. */
  used: boolean;
}

export interface Discovery {
  /** image_id -> absolute path of its JPEG. */
  paths: Map<string, string>;
  /** Every folder looked at, with its count of wanted images. */
  folders: FolderCount[];
  /** Wanted image_ids with no file (only non-empty with `skipMissing`). */
  missing: string[];
}

export interface DiscoverOptions {
  /** Use only this folder for images. */
  imagesDir?: string;
  /** Continue without missing images instead of throwing; they are listed in `missing`. */
  skipMissing?: boolean;
}

interface Folder {
  path: string;
  files: Map<string, string>; // image id -> file name
}

interface Candidate {
  rank: number;
  area: number;
  name: string;
  folders: Folder[];
}

const JPEG = /^(.+)\.jpe?g$/i;
const PART = /^ham10000_images_part_\d+$/i;
const SIZED = /^images_(\d+)x(\d+)$/i;

/** Finds the JPEG of each of `ids` under `dataDir`; see the module comment for the rule. */
export async function discoverImages(
  dataDir: string,
  ids: readonly string[],
  options: DiscoverOptions = {},
): Promise<Discovery> {
  const wanted = new Set(ids);
  const candidates: Candidate[] = [];
  if (options.imagesDir) {
    const dir = resolve(options.imagesDir);
    const folder = await listJpegs(dir);
    if (!folder) {
      throw new UserError(`images folder ${dir} does not exist; fix --images-dir`);
    }
    candidates.push({ rank: 0, area: 0, name: "", folders: [folder] });
  } else {
    const root = resolve(dataDir);
    const parts: Folder[] = [];
    for (const name of await subfolders(root)) {
      const folder = await listJpegs(join(root, name));
      if (!folder || folder.files.size === 0) continue;
      const sized = SIZED.exec(name);
      if (PART.test(name)) parts.push(folder);
      else if (sized) {
        candidates.push({
          rank: 1,
          area: Number(sized[1]) * Number(sized[2]),
          name,
          folders: [folder],
        });
      } else candidates.push({ rank: 2, area: 0, name, folders: [folder] });
    }
    if (parts.length) candidates.push({ rank: 0, area: 0, name: "", folders: parts });
    const self = await listJpegs(root);
    if (self && self.files.size) candidates.push({ rank: 3, area: 0, name: "", folders: [self] });
  }
  const score = (c: Candidate) => {
    const all = new Set<string>();
    for (const f of c.folders) for (const id of f.files.keys()) if (wanted.has(id)) all.add(id);
    return all.size;
  };
  const scored = candidates.map((c) => ({ c, n: score(c) }));
  scored.sort((a, b) =>
    b.n - a.n || a.c.rank - b.c.rank || b.c.area - a.c.area || a.c.name.localeCompare(b.c.name)
  );
  const chosen = scored[0]?.c;
  const paths = new Map<string, string>();
  for (const f of chosen?.folders ?? []) {
    for (const [id, file] of f.files) {
      if (wanted.has(id) && !paths.has(id)) paths.set(id, join(f.path, file));
    }
  }
  const folders: FolderCount[] = [];
  for (const { c } of scored) {
    for (const f of c.folders) {
      let n = 0;
      for (const id of f.files.keys()) if (wanted.has(id)) n++;
      folders.push({ path: f.path, images: n, used: c === chosen });
    }
  }
  const missing = ids.filter((id) => !paths.has(id));
  if (missing.length && !options.skipMissing) {
    const searched = chosen
      ? chosen.folders.map((f) => f.path).join(", ")
      : `${options.imagesDir ?? dataDir} (no folder with .jpg files found)`;
    const more = missing.length > 1 ? ` and ${missing.length - 1} more` : "";
    throw new UserError(
      `image ${missing[0]}.jpg${more} not found; searched ${searched}. ` +
        `Point --images-dir at the folder with the JPEGs, or pass --skip-missing to go on without them`,
    );
  }
  return { paths, folders, missing };
}

async function subfolders(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.isDirectory) names.push(e.name);
  return names.sort();
}

async function listJpegs(dir: string): Promise<Folder | null> {
  const files = new Map<string, string>();
  try {
    for await (const e of Deno.readDir(dir)) {
      const m = e.isFile || e.isSymlink ? JPEG.exec(e.name) : null;
      if (m) files.set(m[1], e.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return null;
    throw e;
  }
  return { path: dir, files };
}
