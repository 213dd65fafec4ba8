/**
 * A/B of GEMM tile configs against the current default (`chooseGemmConfig`) on the GEMMs of
 * the models' conv layers (forward, input gradient, weight gradient) and square matmuls.
 * Rounds are interleaved (every config once per round) and each config keeps its fastest
 * round, so load from other processes on a shared machine hits all configs alike.
 *
 *   deno run -A benches/tune_gemm.ts [--batch 8] [--size 64] [--per-model 8] [--rounds 5]
 *                                    [--matmul 128,256,512] [--out FILE]
 *
 * The "proposed" column is `proposedConfig` below: the rule suggested for gemm.ts.
 */
import { parseArgs } from "node:util";
import { initGpu } from "../packages/kernels/runtime/gpu.ts";
import { timeRecorded } from "../packages/kernels/runtime/timer.ts";
import {
  chooseGemmConfig,
  gemm,
  GEMM_REGISTER,
  GEMM_REGISTER_SMALL,
  type GemmConfig,
  type GemmSpec,
} from "../packages/kernels/ops/gemm.ts";
import * as conv from "../packages/kernels/ops/conv2d.ts";
import { matmulSpec } from "../packages/kernels/ops/matmul.ts";
import { MODEL_NAMES, modelLayers } from "./shapes.ts";
import type { Gpu } from "../packages/kernels/runtime/gpu.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    batch: { type: "string", default: "8" },
    size: { type: "string", default: "64" },
    "per-model": { type: "string", default: "8" },
    rounds: { type: "string", default: "5" },
    matmul: { type: "string", default: "128,256,512" },
    out: { type: "string" },
  },
});

const R = (BM: number, BN: number, BK: number, TM: number, TN: number): GemmConfig => ({
  variant: "register",
  BM,
  BN,
  BK,
  TM,
  TN,
});
const R64x64 = R(64, 64, 2, 8, 8), R32x64 = R(32, 64, 2, 4, 8), R32x32 = R(32, 32, 2, 4, 4);

/**
 * The rule proposed for software adapters (register variant): 8x8 outputs per thread where
 * both sides are wide, 4x8 for few rows and many columns, 8x4 down to 16 columns, and the
 * small tile only for narrow problems (e.g. the RGB stem's input gradient, N = 3).
 */
export function proposedConfig(g: Gpu, M: number, N: number, batch = 1): GemmConfig {
  if (!g.info.isFallback) return chooseGemmConfig(g, M, N, batch);
  if (M >= 64 && N >= 64) return R64x64;
  if (M >= 64 && N >= 16) return GEMM_REGISTER;
  if (N >= 64) return R32x64;
  return GEMM_REGISTER_SMALL;
}

const name = (c: GemmConfig) => `${c.BM}x${c.BN}x${c.BK} t${c.TM}x${c.TN}`;

const g = await initGpu();
const batch = Number(values.batch), size = Number(values.size);
const rounds = Number(values.rounds), perModel = Number(values["per-model"]);

interface Problem {
  label: string;
  spec: GemmSpec;
  inputs: number[];
  outElements: number;
}
const problems: Problem[] = [];
for (const n of values.matmul.split(",").map(Number)) {
  problems.push({
    label: `matmul ${n}^3`,
    spec: matmulSpec({ M: n, N: n, K: n }),
    inputs: [n * n, n * n],
    outElements: n * n,
  });
}
const seen = new Set<string>();
for (const m of MODEL_NAMES) {
  const convs = modelLayers(m, batch, size).filter((l) => l.op.kind === "conv");
  const step = Math.max(1, convs.length / perModel);
  for (let i = 0; i < convs.length && problems.length < 1000; i += step) {
    const l = convs[Math.floor(i)];
    if (l.op.kind !== "conv" || seen.has(l.key)) continue;
    seen.add(l.key);
    const p = l.op.p, { OH, OW } = conv.conv2dOutputSize(p);
    const xN = p.N * p.H * p.W * p.Cin, yN = p.N * OH * OW * p.Cout;
    const wN = p.KH * p.KW * p.Cin * p.Cout;
    problems.push(
      { label: `fwd ${l.key}`, spec: conv.conv2dSpec(p), inputs: [xN, wN], outElements: yN },
      {
        // At stride > 1 dx runs by phases: time the first (largest) phase's GEMM.
        label: `dx  ${l.key}${conv.usesPhases(p) ? " (phase 0)" : ""}`,
        spec: conv.usesPhases(p)
          ? conv.conv2dBackwardInputPhaseSpecs(p)[0]
          : conv.conv2dBackwardInputSpec(p),
        inputs: [yN, wN],
        outElements: xN,
      },
      {
        label: `dw  ${l.key}`,
        spec: conv.conv2dBackwardWeightSpec(p),
        inputs: [xN, yN],
        outElements: wN,
      },
    );
  }
}

const FIXED: GemmConfig[] = [GEMM_REGISTER, GEMM_REGISTER_SMALL, R64x64, R32x64, R32x32];
console.log(
  `GEMM tile A/B on ${g.info.name}: ${problems.length} problems, ${rounds} interleaved rounds, ` +
    `min per config`,
);
console.log(
  "problem".padEnd(52) + "M N K".padEnd(18) + "current".padStart(22) + "proposed".padStart(22) +
    "x".padStart(6) + "  " + FIXED.map(name).map((s) => s.padStart(15)).join(""),
);

interface Row {
  label: string;
  M: number;
  N: number;
  K: number;
  batch: number;
  current: string;
  proposed: string;
  ms: Record<string, number>;
}
const rows: Row[] = [];
let logCurrent = 0, logProposed = 0, sumCurrent = 0, sumProposed = 0;
for (const pr of problems) {
  const s = pr.spec, b = s.batch ?? 1;
  const cur = chooseGemmConfig(g, s.M, s.N, b), prop = proposedConfig(g, s.M, s.N, b);
  const configs = new Map<string, GemmConfig>();
  for (const c of [cur, prop, ...FIXED]) configs.set(name(c), c);
  const bufs = pr.inputs.map((n) => g.pool.acquire(4 * n));
  const best = new Map<string, number>();
  const record = (c: GemmConfig) => () => {
    g.pool.release(gemm(g, s, bufs, { config: c, outElements: pr.outElements }));
  };
  try {
    for (const c of configs.values()) record(c)(); // compile everything first
    await g.sync();
    for (let r = 0; r < rounds; r++) {
      for (const [k, c] of configs) {
        const t = Math.min(...await timeRecorded(g, record(c), { iterations: 2, warmup: 0 }));
        best.set(k, Math.min(best.get(k) ?? Infinity, t));
      }
    }
  } catch (e) {
    console.log(`${pr.label}: ${(e as Error).message}`);
    continue;
  } finally {
    for (const buf of bufs) g.pool.release(buf);
  }
  const cm = best.get(name(cur))!, pm = best.get(name(prop))!;
  logCurrent += Math.log(cm);
  logProposed += Math.log(pm);
  sumCurrent += cm;
  sumProposed += pm;
  const ms = Object.fromEntries(best);
  rows.push({
    label: pr.label,
    M: s.M,
    N: s.N,
    K: s.K,
    batch: b,
    current: name(cur),
    proposed: name(prop),
    ms,
  });
  console.log(
    pr.label.slice(0, 51).padEnd(52) + `${s.M} ${s.N} ${s.K}${b > 1 ? ` z${b}` : ""}`.padEnd(18) +
      `${name(cur)} ${cm.toFixed(3)}`.padStart(22) + `${name(prop)} ${pm.toFixed(3)}`.padStart(22) +
      (cm / pm).toFixed(2).padStart(6) + "  " +
      FIXED.map((c) => (best.get(name(c)) ?? NaN).toFixed(3).padStart(15)).join(""),
  );
}
const geo = Math.exp((logCurrent - logProposed) / rows.length);
console.log(
  `\n${rows.length} problems: proposed vs current: geometric-mean speed-up ${geo.toFixed(2)}x, ` +
    `summed ms ${sumCurrent.toFixed(1)} -> ${sumProposed.toFixed(1)} ` +
    `(${(sumCurrent / sumProposed).toFixed(2)}x)`,
);
if (values.out) {
  await Deno.writeTextFile(
    values.out,
    JSON.stringify(
      { adapter: g.info.name, date: new Date().toISOString(), batch, size, rounds, geo, rows },
      null,
      1,
    ) + "\n",
  );
}
