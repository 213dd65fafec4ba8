#!/usr/bin/env bash
# The GPU measurement, one call on the device machine (see benches/README.md):
#   1. our kernels vs TF.js WebGPU on the same device   -> $OUT/kernels.json, kernels.log
#   2. our training steps, 224px b64 and 64px b256      -> $OUT/train.json, train.log
#   3. the PyTorch reference (strict fp32), same GPU    -> $OUT/pytorch.json, pytorch.log
#   4. one table with ours/PyTorch and ours/TF.js       -> $OUT/report.md
# Prepared here with:  bash benches/device_pack.sh
#   (= ../shared/device/prepare.sh --entry benches/kernels.ts --entry benches/train.ts, plus
#   .device/bench-node-modules.tar.xz with the npm packages of TF.js WebGPU: see device_pack.sh)
# Run there from the repository root with .device carried:  bash benches/device_run.sh
# Each phase has its own time limit (env KERNELS_S, TRAIN_S, TORCH_S) so that one slow phase
# cannot starve the others; every phase writes its JSON even when a later one fails. Extra
# arguments: KERNELS_ARGS, TRAIN_ARGS, TORCH_ARGS (appended, so they override).
set -uo pipefail
OUT=${OUT:-benches/results/device}
mkdir -p "$OUT"
start=$(date +%s)
. .device/setup.sh || { echo "device setup failed" >&2; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv \
  > "$OUT/nvidia-smi.csv" 2>&1 || true
export XDG_CACHE_HOME="$OUT/cache"
# npm packages for TF.js (node_modules does not travel); Deno then uses node_modules as it is.
if [ -f .device/bench-node-modules.tar.xz ] && [ ! -d node_modules/@tensorflow/tfjs-core ]; then
  xz -dc .device/bench-node-modules.tar.xz | tar xf - || echo "cannot unpack the npm packages" >&2
fi
DENO_RUN=(deno run --cached-only --node-modules-dir=manual -A)
KERNELS_S=${KERNELS_S:-190}
TRAIN_S=${TRAIN_S:-170}
TORCH_S=${TORCH_S:-130}

echo "== kernels ($(($(date +%s) - start)) s)"
timeout -k 5 "$KERNELS_S" "${DENO_RUN[@]}" benches/kernels.ts --warmup 1 --iterations 4 \
  --budget-s $((KERNELS_S - 50)) --out "$OUT/kernels.json" ${KERNELS_ARGS:-} > "$OUT/kernels.log" 2>&1
echo "kernels exit $?"; tail -n 8 "$OUT/kernels.log"

echo "== train ($(($(date +%s) - start)) s)"
timeout -k 5 "$TRAIN_S" "${DENO_RUN[@]}" benches/train.ts --warmup 2 --steps 4 \
  --out "$OUT/train.json" ${TRAIN_ARGS:-} > "$OUT/train.log" 2>&1
echo "train exit $?"; cat "$OUT/train.log"

echo "== pytorch ($(($(date +%s) - start)) s)"
timeout -k 5 "$TORCH_S" python3 benches/pytorch_reference.py --out "$OUT/pytorch.json" \
  --kernels-json "$OUT/kernels.json" --budget-s $((TORCH_S - 90)) ${TORCH_ARGS:-} \
  > "$OUT/pytorch.log" 2>&1
echo "pytorch exit $?"; tail -n 12 "$OUT/pytorch.log"

echo "== report ($(($(date +%s) - start)) s)"
"${DENO_RUN[@]}" benches/report.ts --kernels "$OUT/kernels.json" --train "$OUT/train.json" \
  --pytorch "$OUT/pytorch.json" --out "$OUT/report.md" > /dev/null
sed -n '1,40p' "$OUT/report.md"
echo "done in $(($(date +%s) - start)) s; files in $OUT"
