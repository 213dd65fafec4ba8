import assert from "node:assert/strict";
import { bar, formatDuration, Progress } from "./progress.ts";

Deno.test("bar and formatDuration", () => {
  assert.equal(bar(0, 4, 4), "[....]");
  assert.equal(bar(2, 4, 4), "[##..]");
  assert.equal(bar(9, 4, 4), "[####]");
  assert.equal(formatDuration(5.2), "5s");
  assert.equal(formatDuration(125), "2m05s");
  assert.equal(formatDuration(3725), "1h02m");
  assert.equal(formatDuration(NaN), "?");
});

Deno.test("Progress logs plain lines every N batches, or a live status on a terminal", () => {
  let t = 0;
  const lines: string[] = [];
  const plain = new Progress({ line: (s) => lines.push(s) }, 2, () => t);
  plain.start({ label: "m", epoch: 1, epochs: 2, steps: 5 });
  for (let s = 1; s <= 5; s++) {
    t += 1000;
    plain.update(s, 10, 1.5);
  }
  assert.equal(lines.length, 3); // batches 2, 4, 5
  assert.match(lines[0], /^m epoch 1\/2 batch 2\/5 loss 1\.5000 10\.0 img\/s ETA 3s$/);
  assert.match(lines[2], /batch 5\/5 .* ETA 0s$/);
  assert.equal(plain.imagesPerSecond, 10);

  const status: string[] = [];
  const tty = new Progress({ line: () => {}, status: (s) => status.push(s) }, 2, () => t);
  tty.start({ label: "m", epoch: 2, epochs: 2, steps: 4, startStep: 2 });
  t += 2000;
  tty.update(3, 20);
  assert.equal(status.length, 1);
  assert.match(
    status[0],
    /^m epoch 2\/2 \[#{9}\.\] batch \[#{15}\.{5}\] 3\/4 10\.0 img\/s ETA 2s$/,
  );
});
