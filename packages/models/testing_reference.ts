/**
 * Test helper: torchvision 0.14's state_dict listings (testdata/<model>.txt, copied from the
 * shared reference: key, dtype, shape, numel per line; header lines state the counts).
 */
export interface ReferenceEntry {
  key: string;
  dtype: string;
  shape: number[];
  numel: number;
}

export interface Reference {
  entries: ReferenceEntry[];
  params: number;
  bufferNumel: number;
  eps: number;
  momentum: number;
}

export function readReference(model: string): Reference {
  const text = Deno.readTextFileSync(new URL(`./testdata/${model}.txt`, import.meta.url));
  const entries: ReferenceEntry[] = [];
  let params = NaN, bufferNumel = NaN, eps = NaN, momentum = NaN;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) {
      const p = /parameter count \(numel of model.parameters\(\)\): (\d+)/.exec(line);
      if (p) params = Number(p[1]);
      const b = /buffer numel \(incl. num_batches_tracked\): (\d+)/.exec(line);
      if (b) bufferNumel = Number(b[1]);
      const e = /eps=([\d.e-]+) momentum=([\d.]+)/.exec(line);
      if (e) [eps, momentum] = [Number(e[1]), Number(e[2])];
      continue;
    }
    if (!line.trim()) continue;
    const [key, dtype, shape, numel] = line.split("\t");
    entries.push({ key, dtype, shape: JSON.parse(shape), numel: Number(numel) });
  }
  return { entries, params, bufferNumel, eps, momentum };
}
