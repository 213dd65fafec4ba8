/**
 * Opens a HAM10000 folder in one call: resolve the folder, parse the metadata, find the images.
 * Training, `data:inspect` and `data:split` all start here.
 */
import { type DataDir, resolveDataDir } from "./data_dir.ts";
import { discoverImages, type DiscoverOptions, type Discovery } from "./discover.ts";
import { loadMetadata, type Metadata, type MetadataRow } from "./metadata.ts";

/** One labelled image, as the loader wants it. */
export interface Sample {
  id: string;
  path: string;
  /** Class index (see CLASSES). */
  label: number;
}

export interface Ham10000 {
  dataDir: DataDir;
  metadata: Metadata;
  images: Discovery;
  /** The metadata rows that have an image, in metadata order. */
  rows: MetadataRow[];
  /** `rows` as loader samples. */
  samples: Sample[];
}

export interface OpenOptions extends DiscoverOptions {
  /** The --data flag; else HAM10000_DIR, else ./data. */
  data?: string;
  env?: { get(key: string): string | undefined };
  /** Parse the metadata only (no image discovery): `images.paths` is empty. */
  metadataOnly?: boolean;
}

export async function openHam10000(options: OpenOptions = {}): Promise<Ham10000> {
  const dataDir = await resolveDataDir(options.data, options.env);
  const metadata = await loadMetadata(dataDir.metadata);
  if (options.metadataOnly) {
    const images = { paths: new Map<string, string>(), folders: [], missing: [] };
    return { dataDir, metadata, images, rows: metadata.rows, samples: [] };
  }
  const images = await discoverImages(dataDir.dir, metadata.rows.map((r) => r.imageId), options);
  const rows = metadata.rows.filter((r) => images.paths.has(r.imageId));
  const samples = rows.map((r) => ({
    id: r.imageId,
    path: images.paths.get(r.imageId)!,
    label: r.label,
  }));
  return { dataDir, metadata, images, rows, samples };
}

/** The samples whose ids are in `ids`, in the order of `ids`; ids without a sample are skipped. */
export function selectSamples(samples: readonly Sample[], ids: readonly string[]): Sample[] {
  const byId = new Map(samples.map((s) => [s.id, s]));
  return ids.flatMap((id) => byId.get(id) ?? []);
}
