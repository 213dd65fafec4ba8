/**
 * Train/val/test splits of HAM10000, 80/10/10.
 *
 * - `random`: images shuffled with the seed, the first 80% train, the next 10% val, the rest
 *   test: the original study's protocol. Images of one lesion can land in train and test
 *   (see `leakRate`).
 * - `lesion` (default): grouped by lesion_id and stratified by dx. Per class, the lesions are
 *   shuffled with the seed, stably sorted by size (largest first), and each goes to the split
 *   with the largest unfilled share of its target (targets: round(10%) val, round(10%) test,
 *   the rest train; ties go test, val, train), so lesions of every size spread over the
 *   three splits. No lesion crosses splits.
 *
 * Manifests are JSON: `{version: 1, mode, seed, train: [image_id], val: [...], test: [...]}`.
 */
import { UserError } from "../errors.ts";
import { readUserText } from "./read_text.ts";
import { NUM_CLASSES } from "./classes.ts";
import { mixSeed, Rng } from "./rng.ts";

export type SplitMode = "random" | "lesion";
export const SPLIT_MODES: readonly SplitMode[] = ["random", "lesion"];
export const SPLIT_NAMES = ["train", "val", "test"] as const;
export type SplitName = typeof SPLIT_NAMES[number];

export interface SplitManifest {
  version: 1;
  mode: SplitMode;
  seed: number;
  train: string[];
  val: string[];
  test: string[];
}

/** What a split needs of a metadata row. */
export interface SplitRow {
  imageId: string;
  lesionId: string;
  label: number;
}

const FRACTIONS = { val: 0.1, test: 0.1 };

/** Splits `rows` by `mode` with `seed`. */
export function makeSplit(rows: readonly SplitRow[], mode: SplitMode, seed: number): SplitManifest {
  return mode === "random" ? randomSplit(rows, seed) : lesionSplit(rows, seed);
}

/** 80/10/10 by image, seeded. */
export function randomSplit(rows: readonly SplitRow[], seed: number): SplitManifest {
  const ids = new Rng(mixSeed(seed, 1)).shuffle(rows.map((r) => r.imageId));
  const nVal = Math.round(ids.length * FRACTIONS.val);
  const nTest = Math.round(ids.length * FRACTIONS.test);
  const nTrain = ids.length - nVal - nTest;
  return {
    version: 1,
    mode: "random",
    seed,
    train: ids.slice(0, nTrain),
    val: ids.slice(nTrain, nTrain + nVal),
    test: ids.slice(nTrain + nVal),
  };
}

/** 80/10/10 grouped by lesion_id, stratified by dx, seeded. */
export function lesionSplit(rows: readonly SplitRow[], seed: number): SplitManifest {
  const lesions = new Map<string, SplitRow[]>();
  for (const r of rows) {
    const l = lesions.get(r.lesionId);
    if (l) l.push(r);
    else lesions.set(r.lesionId, [r]);
  }
  // A lesion's stratum is its most frequent dx (in HAM10000 every lesion has a single dx).
  const byClass: SplitRow[][][] = Array.from({ length: NUM_CLASSES }, () => []);
  for (const group of lesions.values()) byClass[majorityLabel(group)].push(group);
  const out: Record<SplitName, string[]> = { train: [], val: [], test: [] };
  const order: SplitName[] = ["test", "val", "train"];
  byClass.forEach((groups, label) => {
    const rng = new Rng(mixSeed(seed, 2, label));
    rng.shuffle(groups);
    groups.sort((a, b) => b.length - a.length); // stable: equal sizes keep the shuffled order
    const n = groups.reduce((s, g) => s + g.length, 0);
    const target = { val: Math.round(n * FRACTIONS.val), test: Math.round(n * FRACTIONS.test) };
    const goal: Record<SplitName, number> = { ...target, train: n - target.val - target.test };
    const have: Record<SplitName, number> = { train: 0, val: 0, test: 0 };
    const need = (s: SplitName) => goal[s] > 0 ? (goal[s] - have[s]) / goal[s] : -Infinity;
    for (const g of groups) {
      let best = order[0];
      for (const s of order) if (need(s) > need(best)) best = s;
      have[best] += g.length;
      for (const r of g) out[best].push(r.imageId);
    }
  });
  // Within each split, a seeded order that does not reveal the class blocks.
  const rng = new Rng(mixSeed(seed, 3));
  return {
    version: 1,
    mode: "lesion",
    seed,
    train: rng.shuffle(out.train),
    val: rng.shuffle(out.val),
    test: rng.shuffle(out.test),
  };
}

function majorityLabel(group: readonly SplitRow[]): number {
  const counts = new Array(NUM_CLASSES).fill(0);
  for (const r of group) counts[r.label]++;
  return counts.indexOf(Math.max(...counts));
}

/**
 * Share of test images whose lesion also has an image in train (0..1). A lesion split gives 0;
 * a random 80/10/10 split of HAM10000 gives about 0.38.
 */
export function leakRate(rows: readonly SplitRow[], split: SplitManifest): number {
  const lesionOf = new Map(rows.map((r) => [r.imageId, r.lesionId]));
  const trainLesions = new Set(split.train.map((id) => lesionOf.get(id)));
  if (split.test.length === 0) return 0;
  let leaked = 0;
  for (const id of split.test) if (trainLesions.has(lesionOf.get(id))) leaked++;
  return leaked / split.test.length;
}

/** Per split, images per class index. */
export function splitClassCounts(
  rows: readonly SplitRow[],
  split: SplitManifest,
): Record<SplitName, number[]> {
  const labelOf = new Map(rows.map((r) => [r.imageId, r.label]));
  const counts = {} as Record<SplitName, number[]>;
  for (const s of SPLIT_NAMES) {
    counts[s] = new Array(NUM_CLASSES).fill(0);
    for (const id of split[s]) {
      const l = labelOf.get(id);
      if (l !== undefined) counts[s][l]++;
    }
  }
  return counts;
}

/** Checks a parsed manifest's shape; `file` names it in errors. Returns it typed. */
export function validateManifest(value: unknown, file: string): SplitManifest {
  const bad = (why: string): never => {
    throw new UserError(`${file}: not a valid split manifest (${why}); rewrite it with data:split`);
  };
  if (typeof value !== "object" || value === null || Array.isArray(value)) bad("not an object");
  const m = value as Record<string, unknown>;
  if (m.version !== 1) bad(`version is ${JSON.stringify(m.version)}, expected 1`);
  if (!SPLIT_MODES.includes(m.mode as SplitMode)) bad(`mode must be ${SPLIT_MODES.join(" or ")}`);
  if (!Number.isSafeInteger(m.seed)) bad("seed must be an integer");
  const seen = new Set<string>();
  for (const s of SPLIT_NAMES) {
    const ids = m[s];
    if (!Array.isArray(ids)) bad(`${s} must be an array of image ids`);
    for (const id of ids as unknown[]) {
      if (typeof id !== "string" || id === "") bad(`${s} holds a non-string id`);
      if (seen.has(id as string)) bad(`image ${id} is listed twice`);
      seen.add(id as string);
    }
  }
  return {
    version: 1,
    mode: m.mode as SplitMode,
    seed: m.seed as number,
    train: m.train as string[],
    val: m.val as string[],
    test: m.test as string[],
  };
}

/**
 * Checks a manifest against the metadata: every id is a metadata image and every metadata
 * image is assigned. Throws a UserError naming the first offending id.
 */
export function checkManifestAgainst(
  split: SplitManifest,
  rows: readonly SplitRow[],
  file: string,
): void {
  const known = new Set(rows.map((r) => r.imageId));
  let assigned = 0;
  for (const s of SPLIT_NAMES) {
    for (const id of split[s]) {
      if (!known.has(id)) {
        throw new UserError(
          `${file}: image ${id} (in ${s}) is not in the metadata; the manifest belongs to other ` +
            `data: rewrite it with data:split`,
        );
      }
      assigned++;
    }
  }
  if (assigned !== known.size) {
    const inSplit = new Set([...split.train, ...split.val, ...split.test]);
    const first = rows.find((r) => !inSplit.has(r.imageId))!;
    throw new UserError(
      `${file}: ${
        known.size - assigned
      } metadata image(s) are in no split (first ${first.imageId}); ` +
        `rewrite the manifest with data:split`,
    );
  }
}

/** Writes `split` as JSON (atomically: temp file then rename). */
export async function saveManifest(path: string, split: SplitManifest): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, JSON.stringify(split, null, 1) + "\n");
  await Deno.rename(tmp, path);
}

/** Reads and validates a manifest. */
export async function loadManifest(path: string): Promise<SplitManifest> {
  const text = await readUserText(path, "split manifest", "write one with data:split --out");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new UserError(
      `${path}: not valid JSON (${(e as Error).message}); rewrite it with data:split`,
    );
  }
  return validateManifest(value, path);
}
