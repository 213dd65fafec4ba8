#!/usr/bin/env bash
# Builds .device/ for benches/device_run.sh, here (with network), from the repository root:
#   1. ../shared/device/prepare.sh for the two benchmark entry points (Deno, its cache, Vulkan
#      loader), and
#   2. .device/bench-node-modules.tar.xz: the npm packages TF.js WebGPU needs (tfjs-core,
#      tfjs-backend-webgpu and their dependency closure, ~5 MB), taken from ./node_modules.
# Why 2: with "nodeModulesDir": "auto" Deno keeps npm packages in ./node_modules, which is
# git-ignored and does not travel, and prepare.sh's DENO_DIR then holds no npm packages, so
# `deno run --cached-only` of kernels.ts fails there ("npm package not found in cache"); the
# whole npm cache (--node-modules-dir=none) is ~44 MB compressed and does not fit beside Deno.
# device_run.sh unpacks the tarball into node_modules and runs with --node-modules-dir=manual.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
deno_bin=$(command -v deno || true)
[ -n "$deno_bin" ] || deno_bin=$(npx -y deno@2.9.6 eval 'console.log(Deno.execPath())' 2>/dev/null | tail -1)
"$deno_bin" cache benches/kernels.ts benches/train.ts benches/report.ts   # fills ./node_modules
../shared/device/prepare.sh --entry benches/kernels.ts --entry benches/train.ts "$@"
paths=$(python3 - <<'PY'
import os
roots = ["node_modules/@tensorflow/tfjs-core", "node_modules/@tensorflow/tfjs-backend-webgpu"]
seen, todo, out = set(), [], list(roots)
def pkg_dir(link):  # node_modules/.deno/<name@ver> holding the real package
    real = os.path.relpath(os.path.realpath(link))
    parts = real.split(os.sep)
    return os.sep.join(parts[:3])
for r in roots:
    todo.append(pkg_dir(r))
while todo:
    d = todo.pop()
    if d in seen:
        continue
    seen.add(d)
    nm = os.path.join(d, "node_modules")
    for entry in os.listdir(nm):
        for sub in ([os.path.join(entry, s) for s in os.listdir(os.path.join(nm, entry))]
                    if entry.startswith("@") else [entry]):
            p = os.path.join(nm, sub)
            if os.path.islink(p):
                todo.append(pkg_dir(p))
print("\n".join(sorted(seen) + out))
PY
)
echo "$paths" | tar cf - -T - | xz -T2 -6 > .device/bench-node-modules.tar.xz
echo "packed $(echo "$paths" | wc -l) npm paths: $(du -h .device/bench-node-modules.tar.xz | cut -f1)"
total=$(git ls-files -co --exclude-standard -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
dev=$(du -sb .device | cut -f1)
echo "bundle: .device $(numfmt --to=iec "$dev") + working tree $(numfmt --to=iec "$total") of 64Mi"
[ $((dev + total)) -le $((63 * 1024 * 1024)) ] || { echo "too large to travel" >&2; exit 1; }
