/**
 * Robustness: truncated or corrupted weight files must either load or throw a `UserError` naming
 * the file, never hang, crash with another error type, or allocate unbounded memory.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { UserError } from "../errors.ts";
import { parseWeights } from "./load.ts";
import { writeNpy } from "./npy.ts";
import { buildZip, SHARED, TORCH_FIXTURES } from "./testing_builders.ts";
import { readZip } from "./zip.ts";

const NAME = "fuzzed-weights.bin";

const sources: [string, Uint8Array][] = [
  ["torch zip", await Deno.readFile(new URL("tiny_zip_torch1.13.pth", TORCH_FIXTURES))],
  ["torch legacy", await Deno.readFile(new URL("tiny_legacy_torch1.13.pth", TORCH_FIXTURES))],
  ["safetensors", await Deno.readFile(new URL("tiny.safetensors", TORCH_FIXTURES))],
  [
    "real npy",
    await Deno.readFile(
      new URL(
        "weights/mobilenet_v2/tfslim_mobilenet_v2_1.0_224_fp32_bnfolded_npy/MobilenetV2_Conv_Conv2D_bias.npy",
        SHARED,
      ),
    ),
  ],
  ["npy v1", writeNpy({ dtype: "int64", shape: [2, 2], data: BigInt64Array.of(1n, 2n, 3n, 4n) })],
];

/** Parses `bytes`; returns "ok" or "error" and fails the test for anything but a clean UserError. */
function attempt(bytes: Uint8Array): "ok" | "error" {
  const start = performance.now();
  try {
    parseWeights(bytes, NAME);
    return "ok";
  } catch (e) {
    assert.ok(e instanceof UserError, `not a UserError: ${e instanceof Error ? e.stack : e}`);
    assert.ok(e.message.startsWith(NAME), e.message);
    assert.ok(e.message.length > NAME.length + 10 && e.message.length < 2000, e.message);
    return "error";
  } finally {
    assert.ok(performance.now() - start < 2000, "one parse took over 2 s");
  }
}

for (const [label, original] of sources) {
  Deno.test(`fuzz ${label}: the intact file loads`, () => {
    assert.equal(attempt(original), "ok");
  });

  Deno.test(`fuzz ${label}: every truncation is refused cleanly`, () => {
    let errors = 0;
    for (let n = 0; n < original.length; n++) {
      if (attempt(original.subarray(0, n)) === "error") errors++;
    }
    // Every proper prefix is missing data that the format's lengths or offsets require.
    assert.equal(errors, original.length);
  });

  Deno.test(`fuzz ${label}: random byte corruption loads or throws a clear UserError`, () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(original.length - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 6,
        }),
        (edits) => {
          const b = original.slice();
          for (const [i, v] of edits) b[i] = v;
          attempt(b);
        },
      ),
      { seed: 2024, numRuns: 400 },
    );
  });

  Deno.test(`fuzz ${label}: random splices (insert/delete runs) load or throw cleanly`, () => {
    fc.assert(
      fc.property(
        fc.nat(original.length),
        fc.nat(64),
        fc.uint8Array({ maxLength: 64 }),
        (at, del, insert) => {
          const b = new Uint8Array([
            ...original.subarray(0, at),
            ...insert,
            ...original.subarray(Math.min(original.length, at + del)),
          ]);
          attempt(b);
        },
      ),
      { seed: 77, numRuns: 300 },
    );
  });
}

Deno.test("fuzz torch zip: corrupted data.pkl inside a valid archive (CRCs recomputed)", () => {
  const zip = readZip(sources[0][1]);
  const files: [string, Uint8Array][] = zip.entries.map((e) => [e.name, zip.read(e).slice()]);
  const pkl = files.findIndex(([n]) => n.endsWith("/data.pkl"));
  const original = files[pkl][1];
  let ok = 0;
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(original.length - 1), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 4,
      }),
      (edits) => {
        const b = original.slice();
        for (const [i, v] of edits) b[i] = v;
        const copy = files.slice();
        copy[pkl] = [files[pkl][0], b];
        if (attempt(buildZip(copy, { dataDescriptor: true })) === "ok") ok++;
      },
    ),
    { seed: 31, numRuns: 400 },
  );
  assert.ok(ok < 400, "some corruptions must be detected");
});
