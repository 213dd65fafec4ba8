#!/usr/bin/env python3
"""PyTorch reference for the dermagpu benchmarks, run on the same GPU in the same device call.

Strict fp32: TF32 is switched off for cuDNN and for matmul, so the numbers compare like with
like against our fp32 WGSL kernels. cudnn.benchmark is on (cuDNN times its algorithms per
shape, the usual training setting; --no-cudnn-benchmark turns it off).

  python3 benches/pytorch_reference.py --out OUT.json [--kernels-json kernels.json]
      [--configs 224x64,64x256] [--steps 10] [--warmup 3] [--models a,b] [--iterations 10]
      [--budget-s S] [--channels-last] [--quick]

Training: torchvision resnet18 / densenet121 / mobilenet_v2 / efficientnet_b0 (no weights,
7 classes), Adam, cross-entropy, synthetic inputs; images/s over the timed steps (wall clock
after synchronize) and the forward / backward / optimizer split by CUDA events; peak memory
from torch.cuda.max_memory_allocated.

Kernels: 4096^3 (and the other matmul sizes) GFLOP/s, and every op/shape found in
--kernels-json (our kernels benchmark output, `params` of each result) timed with CUDA events:
conv2d forward / input-gradient / weight-gradient (torch.nn.grad), depthwise the same with
groups=C, batch norm training forward and backward, pooling forward and backward.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "pytorch.json"))
parser.add_argument("--kernels-json")
parser.add_argument("--configs", default="224x64,64x256")
parser.add_argument("--models", default="resnet18,densenet121,mobilenet_v2,efficientnet_b0")
parser.add_argument("--steps", type=int, default=10)
parser.add_argument("--warmup", type=int, default=3)
parser.add_argument("--iterations", type=int, default=10)
parser.add_argument("--matmul", default="1024,2048,4096")
parser.add_argument("--budget-s", type=float, default=math.inf)
parser.add_argument("--channels-last", action="store_true")
parser.add_argument("--no-cudnn-benchmark", action="store_true")
parser.add_argument("--quick", action="store_true", help="tiny sizes (a CPU smoke test)")
args = parser.parse_args()

report = {"kind": "pytorch", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def write():
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)


try:
    import torch
    import torch.nn.functional as F
    import torchvision
except Exception as e:  # noqa: BLE001 - reported in the JSON
    report["error"] = f"cannot import torch/torchvision: {e!r}"
    write()
    print(report["error"], file=sys.stderr)
    sys.exit(1)

torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False
torch.set_float32_matmul_precision("highest")
torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
cuda = dev.type == "cuda"
report.update({
    "device": torch.cuda.get_device_name(0) if cuda else "cpu",
    "torch": torch.__version__,
    "torchvision": torchvision.__version__,
    "cuda": torch.version.cuda,
    "cudnn": torch.backends.cudnn.version() if cuda else None,
    "tf32": False,
    "cudnn_benchmark": torch.backends.cudnn.benchmark,
    "channels_last": args.channels_last,
})
if args.quick:
    args.configs, args.steps, args.warmup, args.iterations = "32x4", 2, 1, 3
    args.matmul = "256,512"
print(f"pytorch reference on {report['device']} (torch {torch.__version__}, tf32 off)")
T0 = time.time()


def sync():
    if cuda:
        torch.cuda.synchronize()


class Timer:
    """Elapsed ms between marks, CUDA events on the GPU, perf_counter on the CPU."""

    def __init__(self):
        self.marks = []

    def mark(self, label):
        if cuda:
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            self.marks.append((label, e))
        else:
            self.marks.append((label, time.perf_counter()))

    def totals(self):
        sync()
        out = {}
        for (label, a), (_, b) in zip(self.marks, self.marks[1:]):
            ms = a.elapsed_time(b) if cuda else (b - a) * 1e3
            out[label] = out.get(label, 0.0) + ms
        return out


def time_op(fn, iterations=None, warmup=2):
    """Median ms of fn() over iterations (each bracketed by events) after warm-up."""
    iterations = iterations or args.iterations
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(iterations):
        if cuda:
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b))
        else:
            s = time.perf_counter()
            fn()
            times.append((time.perf_counter() - s) * 1e3)
    return statistics.median(times), min(times)


# ---------------------------------------------------------------------------------------------
# Training

def build(name):
    return getattr(torchvision.models, name)(weights=None, num_classes=7)


def train_bench(name, size, batch):
    r = {"model": name, "size": size, "batch": batch, "steps": args.steps}
    model = opt = x = y = None
    try:
        torch.manual_seed(0)
        model = build(name).to(dev).train()
        mf = torch.channels_last if args.channels_last else torch.contiguous_format
        model = model.to(memory_format=mf)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        x = torch.randn(batch, 3, size, size, device=dev).to(memory_format=mf)
        y = torch.randint(0, 7, (batch,), device=dev)
        r["params"] = sum(p.numel() for p in model.parameters())

        def step(timer=None):
            if timer:
                timer.mark("forward")
            loss = F.cross_entropy(model(x), y)
            if timer:
                timer.mark("backward")
            loss.backward()
            if timer:
                timer.mark("optimizer")
            opt.step()
            opt.zero_grad(set_to_none=True)
            return loss

        for _ in range(args.warmup):
            step()
        sync()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        timer = Timer()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            loss = step(timer)
        timer.mark("end")
        sync()
        wall = time.perf_counter() - t0
        t = timer.totals()
        r.update({
            "imagesPerSec": batch * args.steps / wall,
            "stepMs": wall * 1e3 / args.steps,
            "forwardMs": t.get("forward", math.nan) / args.steps,
            "backwardMs": t.get("backward", math.nan) / args.steps,
            "optimizerMs": t.get("optimizer", math.nan) / args.steps,
            "peakBytes": torch.cuda.max_memory_allocated() if cuda else None,
            "loss": float(loss.item()),
        })
        gpu_ms = r["forwardMs"] + r["backwardMs"] + r["optimizerMs"]
        r["gpuImagesPerSec"] = batch / (gpu_ms / 1e3)
    except Exception as e:  # noqa: BLE001 - e.g. out of memory
        r["error"] = f"{type(e).__name__}: {e}"[:500]
    finally:
        del model, opt, x, y
        if cuda:
            torch.cuda.empty_cache()
    return r


report["train"] = []
for cfg in args.configs.split(","):
    size, batch = (int(v) for v in cfg.split("x"))
    for name in args.models.split(","):
        r = train_bench(name, size, batch)
        report["train"].append(r)
        print(f"train {name:16s} {size}px b{batch}: "
              + (f"{r['imagesPerSec']:.1f} img/s, fwd {r['forwardMs']:.1f} bwd {r['backwardMs']:.1f}"
                 f" opt {r['optimizerMs']:.2f} ms, peak {(r['peakBytes'] or 0) / 2**20:.0f} MiB"
                 if "error" not in r else f"ERROR {r['error']}"), flush=True)
        write()

# ---------------------------------------------------------------------------------------------
# Kernels

def rand(*shape):
    return torch.rand(*shape, device=dev) * 2 - 1


def nchw(n, h, w, c):
    t = rand(n, c, h, w)
    return t.contiguous(memory_format=torch.channels_last) if args.channels_last else t


def kernel_case(op, p):
    """A zero-argument function running op on shape p (our benchmark's `params`)."""
    kind = p["kind"]
    if kind == "matmul":
        a, b = rand(p["M"], p["K"]), rand(p["K"], p["N"])
        return lambda: torch.mm(a, b)
    if kind in ("conv", "depthwise"):
        groups = p.get("groups", 1) if kind == "conv" else p["C"]
        cin = p["Cin"] if kind == "conv" else p["C"]
        cout = p["Cout"] if kind == "conv" else p["C"]
        stride = (p["strideH"], p["strideW"])
        if p["padTop"] != p["padBottom"] or p["padLeft"] != p["padRight"]:
            raise ValueError("asymmetric padding")
        pad = (p["padTop"], p["padLeft"])
        x = nchw(p["N"], p["H"], p["W"], cin)
        w = rand(cout, cin // groups, p["KH"], p["KW"])
        y = F.conv2d(x, w, None, stride, pad, 1, groups)
        dy = torch.rand_like(y)
        stage = op.split(".")[1]
        if stage.startswith("fwd"):
            if "relu" in op:
                bias = rand(cout)
                return lambda: F.relu(F.conv2d(x, w, bias, stride, pad, 1, groups))
            return lambda: F.conv2d(x, w, None, stride, pad, 1, groups)
        if stage == "dx":
            return lambda: torch.nn.grad.conv2d_input(x.shape, w, dy, stride, pad, 1, groups)
        if stage == "dw":
            return lambda: torch.nn.grad.conv2d_weight(x, w.shape, dy, stride, pad, 1, groups)
    if kind == "bn":
        x = nchw(p["N"], p["H"], p["W"], p["C"])
        g, b = torch.ones(p["C"], device=dev), torch.zeros(p["C"], device=dev)
        rm, rv = torch.zeros(p["C"], device=dev), torch.ones(p["C"], device=dev)
        if op == "batchnorm.train":
            return lambda: F.batch_norm(x, rm, rv, g, b, True, 0.1, 1e-5)
        xg, gg, bg = x.clone().requires_grad_(), g.clone().requires_grad_(), b.clone().requires_grad_()
        y = F.batch_norm(xg, rm, rv, gg, bg, True, 0.1, 1e-5)
        dy = torch.rand_like(y)
        return lambda: torch.autograd.grad(y, (xg, gg, bg), dy, retain_graph=True)
    if kind in ("maxpool", "avgpool", "gap"):
        x = nchw(p["N"], p["H"], p["W"], p["C"])
        if kind == "gap":
            f = lambda t: t.mean((2, 3))  # noqa: E731
        elif kind == "maxpool":
            f = lambda t: F.max_pool2d(t, p["k"], p["s"], p["pad"])  # noqa: E731
        else:
            f = lambda t: F.avg_pool2d(t, p["k"], p["s"], p["pad"])  # noqa: E731
        if op.endswith(".fwd"):
            return lambda: f(x)
        xg = x.clone().requires_grad_()
        y = f(xg)
        dy = torch.rand_like(y)
        return lambda: torch.autograd.grad(y, (xg,), dy, retain_graph=True)
    raise ValueError(f"no PyTorch equivalent for {op} {kind}")


cases = [{"op": "matmul", "shape": f"{n}x{n}x{n}", "params": {"kind": "matmul", "M": n, "N": n, "K": n},
          "flops": 2 * n ** 3, "bytes": 12 * n * n} for n in map(int, args.matmul.split(","))]
if args.kernels_json and os.path.exists(args.kernels_json):
    with open(args.kernels_json) as f:
        ours = json.load(f)
    seen = {(c["op"], c["shape"]) for c in cases}
    for r in ours.get("results", []):
        if (r["op"], r["shape"]) not in seen and r.get("params"):
            seen.add((r["op"], r["shape"]))
            cases.append({k: r[k] for k in ("op", "shape", "params", "flops", "bytes")})
report["kernels"] = []
start = time.time()
for c in cases:
    if time.time() - start > args.budget_s:
        c["error"] = "skipped: --budget-s"
        report["kernels"].append(c)
        continue
    try:
        fn = kernel_case(c["op"], c["params"])
        ms, ms_min = time_op(fn)
        c.update({"ms": ms, "msMin": ms_min, "gflops": c["flops"] / (ms * 1e6),
                  "gbps": c["bytes"] / (ms * 1e6)})
        del fn
    except Exception as e:  # noqa: BLE001 - e.g. out of memory, unsupported op
        c["error"] = f"{type(e).__name__}: {e}"[:300]
    report["kernels"].append(c)
    if c["op"] == "matmul" and "ms" in c:
        print(f"matmul {c['shape']}: {c['ms']:.3f} ms, {c['gflops']:.0f} GFLOP/s", flush=True)
    if cuda:
        torch.cuda.empty_cache()
done = sum(1 for c in report["kernels"] if "ms" in c)
print(f"{done} of {len(cases)} kernel cases timed")
report["seconds"] = time.time() - T0
write()
print(f"wrote {args.out} ({report['seconds']:.0f} s)")
