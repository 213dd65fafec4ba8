/**
 * One table from the three benchmark outputs of a device run: our kernels and TF.js
 * (benches/kernels.ts), our training steps (benches/train.ts) and PyTorch
 * (benches/pytorch_reference.py), with the ratios ours / PyTorch and ours / TF.js.
 * A ratio is a speed ratio: > 1 means ours is faster (other ms / our ms, or our img/s /
 * their img/s).
 *
 *   deno run -A benches/report.ts --kernels K.json --train T.json --pytorch P.json [--out R.md]
 *
 * Any input may be missing or carry an error; the table shows what there is.
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    kernels: { type: "string" },
    train: { type: "string" },
    pytorch: { type: "string" },
    out: { type: "string" },
  },
});

interface Timing {
  ms: number;
  gflops: number;
  gbps: number;
}
interface KernelResult {
  op: string;
  shape: string;
  models: string[];
  count: number;
  ours: Timing | null;
  tfjs: Timing | null;
  relErr?: number;
  error?: string;
}
interface TrainRow {
  model: string;
  size: number;
  batch: number;
  imagesPerSec?: number;
  gpuImagesPerSec?: number;
  forwardMs?: number;
  backwardMs?: number;
  optimizerMs?: number;
  peakBytes?: number | null;
  error?: string;
}
interface TorchKernel {
  op: string;
  shape: string;
  ms?: number;
  gflops?: number;
  error?: string;
}

// deno-lint-ignore no-explicit-any
async function load(path: string | undefined): Promise<any | null> {
  if (!path) return null;
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    console.error(`report: cannot read ${path}: ${(e as Error).message}`);
    return null;
  }
}

const kernels = await load(values.kernels);
const train = await load(values.train);
const torch = await load(values.pytorch);

const n = (v: number | undefined | null, d = 1) =>
  v === undefined || v === null || !Number.isFinite(v) ? "-" : v.toFixed(d);
const ratio = (a: number | undefined | null, b: number | undefined | null) =>
  a && b && Number.isFinite(a) && Number.isFinite(b) ? (a / b).toFixed(2) : "-";
const mib = (b: number | undefined | null) => b ? (b / 2 ** 20).toFixed(0) : "-";

const lines: string[] = [];
lines.push(`# dermagpu benchmark report`);
lines.push("");
lines.push(
  `- ours: ${kernels?.adapter ?? train?.adapter ?? "?"}, Deno ${kernels?.deno ?? "?"}, ` +
    `timer ${kernels?.timer ?? train?.timer ?? "?"}, kernels ${kernels?.date ?? "-"}, train ${
      train?.date ?? "-"
    }`,
);
lines.push(
  `- TF.js WebGPU: ${
    kernels
      ? (kernels.tfjs?.ok ? "same process, same device" : `unavailable: ${kernels.tfjs?.error}`)
      : "-"
  }`,
);
lines.push(`- PyTorch: ${
  torch
    ? torch.error ??
      `${torch.device}, torch ${torch.torch}, CUDA ${torch.cuda}, cuDNN ${torch.cudnn}, TF32 off, ` +
        `cudnn.benchmark ${torch.cudnn_benchmark}, channels_last ${torch.channels_last}`
    : "-"
}`);
lines.push(
  `- ratios are speed ratios (> 1: ours faster): ours/PyTorch = PyTorch ms / our ms ` +
    `(kernels) or our img/s / PyTorch img/s (training)`,
);
lines.push("");

if (train || torch?.train) {
  lines.push(`## Training steps (forward + cross-entropy + backward + Adam)`);
  lines.push("");
  lines.push(
    "| model | px | batch | ours img/s | PyTorch img/s | ours/PyTorch | ours fwd/bwd/opt ms | " +
      "PyTorch fwd/bwd/opt ms | ours peak MiB | PyTorch peak MiB |",
  );
  lines.push("|---|---|---|---|---|---|---|---|---|---|");
  const torchRows: TrainRow[] = torch?.train ?? [];
  const ourRows: TrainRow[] = train?.results ?? [];
  const keys = new Map<string, { ours?: TrainRow; torch?: TrainRow }>();
  for (const r of ourRows) keys.set(`${r.model}|${r.size}|${r.batch}`, { ours: r });
  for (const r of torchRows) {
    const k = `${r.model}|${r.size}|${r.batch}`;
    keys.set(k, { ...keys.get(k), torch: r });
  }
  const split = (r?: TrainRow) =>
    r && !r.error ? `${n(r.forwardMs)} / ${n(r.backwardMs)} / ${n(r.optimizerMs, 2)}` : "-";
  for (const [k, { ours, torch: t }] of keys) {
    const [model, size, batch] = k.split("|");
    lines.push(
      `| ${model} | ${size} | ${batch} | ${ours?.error ? "error" : n(ours?.imagesPerSec)} | ${
        t?.error ? "error" : n(t?.imagesPerSec)
      } | ${ratio(ours?.imagesPerSec, t?.imagesPerSec)} | ${split(ours)} | ${split(t)} | ${
        mib(ours?.peakBytes)
      } | ${mib(t?.peakBytes)} |`,
    );
  }
  const errors = [...keys.entries()].flatMap(([k, v]) =>
    [
      v.ours?.error && `ours ${k}: ${v.ours.error}`,
      v.torch?.error && `PyTorch ${k}: ${v.torch.error}`,
    ]
      .filter(Boolean)
  );
  for (const e of errors) lines.push(`\n- ${e}`);
  lines.push("");
}

if (kernels || torch?.kernels) {
  const tk = new Map<string, TorchKernel>();
  for (const r of (torch?.kernels ?? []) as TorchKernel[]) tk.set(`${r.op}|${r.shape}`, r);
  const rows: KernelResult[] = kernels?.results ?? [];
  // Summary per op family: time-weighted over the shapes measured by all three.
  lines.push(`## Kernels: totals per op (count-weighted sum of ms over the layer shapes)`);
  lines.push("");
  lines.push("| op | shapes | ours ms | TF.js ms | PyTorch ms | ours/PyTorch | ours/TF.js |");
  lines.push("|---|---|---|---|---|---|---|");
  // Ratios over the shapes both sides measured; the ms columns are the totals of each side.
  interface OpSum {
    shapes: number;
    ours: number;
    tfjs: number;
    torch: number;
    pairT: [number, number];
    pairF: [number, number];
  }
  const byOp = new Map<string, OpSum>();
  for (const r of rows) {
    if (r.op === "matmul") continue;
    const t = tk.get(`${r.op}|${r.shape}`);
    const e = byOp.get(r.op) ??
      { shapes: 0, ours: 0, tfjs: 0, torch: 0, pairT: [0, 0], pairF: [0, 0] };
    e.shapes++;
    const o = r.ours?.ms, f = r.tfjs?.ms, p = t?.ms;
    if (o !== undefined) e.ours += r.count * o;
    if (f !== undefined) e.tfjs += r.count * f;
    if (p !== undefined) e.torch += r.count * p;
    if (o !== undefined && p !== undefined) {
      e.pairT[0] += r.count * o;
      e.pairT[1] += r.count * p;
    }
    if (o !== undefined && f !== undefined) {
      e.pairF[0] += r.count * o;
      e.pairF[1] += r.count * f;
    }
    byOp.set(r.op, e);
  }
  for (const [op, e] of byOp) {
    lines.push(
      `| ${op} | ${e.shapes} | ${n(e.ours, 2)} | ${n(e.tfjs || NaN, 2)} | ${
        n(e.torch || NaN, 2)
      } | ${ratio(e.pairT[1], e.pairT[0])} | ${ratio(e.pairF[1], e.pairF[0])} |`,
    );
  }
  lines.push("");
  lines.push(`## Kernels: every shape`);
  lines.push("");
  lines.push(
    "| op | shape | models | ours ms | ours GFLOP/s | ours GB/s | TF.js ms | PyTorch ms | " +
      "PyTorch GFLOP/s | ours/PyTorch | ours/TF.js | rel err vs TF.js |",
  );
  lines.push("|---|---|---|---|---|---|---|---|---|---|---|---|");
  const shown = new Set<string>();
  for (const r of rows) {
    const key = `${r.op}|${r.shape}`;
    shown.add(key);
    const t = tk.get(key);
    lines.push(
      `| ${r.op} | ${r.shape} | ${r.models.join(", ")} | ${n(r.ours?.ms, 3)} | ${
        n(r.ours?.gflops)
      } | ${n(r.ours?.gbps)} | ${n(r.tfjs?.ms, 3)} | ${n(t?.ms, 3)} | ${n(t?.gflops)} | ${
        ratio(t?.ms, r.ours?.ms)
      } | ${ratio(r.tfjs?.ms, r.ours?.ms)} | ${
        r.relErr === undefined ? "-" : r.relErr.toExponential(1)
      } |${r.error ? ` ${r.error}` : ""}`,
    );
  }
  for (const [key, t] of tk) {
    if (shown.has(key)) continue;
    lines.push(
      `| ${t.op} | ${t.shape} | | - | - | - | - | ${n(t.ms, 3)} | ${n(t.gflops)} | - | - | - |${
        t.error ? ` ${t.error}` : ""
      }`,
    );
  }
  lines.push("");
  if (kernels?.skippedForBudget) {
    lines.push(
      `${kernels.skippedForBudget} of ${kernels.layerShapes} layer shapes were skipped by --budget-s.`,
    );
  }
}

const text = lines.join("\n") + "\n";
if (values.out) await Deno.writeTextFile(values.out, text);
console.log(text);
