import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { run as inspect } from "./data_inspect.ts";
import { run as split } from "./data_split.ts";
import { loadManifest } from "../../core/data/split.ts";

const HAM = fileURLToPath(new URL("../../../../shared/data/ham10000/", import.meta.url));

async function output(fn: () => Promise<void>): Promise<string> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    await fn();
  } finally {
    console.log = log;
  }
  return lines.join("\n");
}

Deno.test("data:inspect reports the real HAM10000 counts", async () => {
  const text = await output(() => inspect(["--data", HAM]));
  assert.match(text, /^images: 10015$/m);
  assert.match(text, /^lesions: 7470 /m);
  assert.match(text, /^ages: 57 missing/m);
  const expected = { nv: 6705, mel: 1113, bkl: 1099, bcc: 514, akiec: 327, vasc: 142, df: 115 };
  for (const [dx, n] of Object.entries(expected)) {
    assert.match(text, new RegExp(`^\\s+\\d ${dx}\\s.*\\s${n}\\s+[\\d.]+%$`, "m"));
  }
  assert.match(text, /^\s+images_200x150\s+10015\s+\(used\)$/m);
  assert.match(text, /^\s+images_600x450\s+128$/m);
});

Deno.test("data:split writes a lesion manifest and prints per-split counts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dermagpu-split-" });
  try {
    const out = join(dir, "split.json");
    const text = await output(() => split(["--data", HAM, "--seed", "4", "--out", out]));
    const m = await loadManifest(out);
    assert.equal(m.mode, "lesion");
    assert.equal(m.seed, 4);
    assert.equal(m.train.length + m.val.length + m.test.length, 10015);
    assert.match(
      text,
      new RegExp(`^all\\s+${m.train.length}\\s+${m.val.length}\\s+${m.test.length}\\s+10015$`, "m"),
    );
    assert.match(text, /^leak: 0\.0% /m);
    const random = await output(() => split(["--data", HAM, "--split", "random", "--out", out]));
    const leak = Number(/^leak: ([\d.]+)%/m.exec(random)![1]);
    assert.ok(leak > 30 && leak < 45, `random split leak ${leak}%`);
    await assert.rejects(
      split(["--data", HAM, "--split", "kfold", "--out", out]),
      /--split kfold: expected random or lesion/,
    );
    await assert.rejects(
      split(["--data", HAM, "--seed", "1.5", "--out", out]),
      /--seed 1\.5: expected a non-negative integer/,
    );
    await assert.rejects(split(["--data", dir]), /no HAM10000 metadata found in .* from --data/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
