#!/usr/bin/python3
"""Inference alone against the FLOP-ideal (issue 17: "inference alone <= 1.5x the FLOP-ideal at
the measured GEMM peak"), for every bundled package.

For each package: the network is rebuilt from the architecture its manifest records
(models/common/nets.py, the code that trained it; its parameter count is checked against the
package's model.pt) and its multiply-accumulates are counted with forward hooks on every
convolution, transposed convolution and linear layer at the package's input size (FLOPs = 2 x
MACs; normalisation, activations, pooling and concatenation are not counted: they are memory
work, and they are part of what the ratio measures). The time is medvision's C++ inference call
path (benchmarks/infer_bench: infer::Runtime::run with the package's graph, the call every
classify / segment goes through; a 3D model inside the tensor cache scope the sliding window
opens), median of --repeat calls after 3 warm-ups, per image. The peak
is the best of several dense float32 kernels measured in the same run with the same threads
(torch.mm 1024^2 and 2048^2, a 1x1 convolution 1024->1024 at 56^2, a 3x3 convolution 128->128 at
56^2, through oneDNN as the models' convolutions are). ideal = FLOPs / peak; ratio = time / ideal.

  flop_ideal.py --build build [--models a,b] [--batch2d 16] [--repeat 10] [--threads 2]
                [--out benchmarks/results/flop_ideal.json]
Tests never assert timings; this is a report (docs/performance.md).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "models"))
from common import nets  # noqa: E402

MODELS = "cxr-pneumonia,cxr-findings,cxr-edema,cxr-lungs,brain-tumour"


def count_flops(arch: dict, shape):
    """(FLOPs per image, parameters) of the eager network at input shape [C, *spatial]."""
    net = nets.build(arch).eval()
    macs = [0]

    def hook(mod, inp, out):
        if isinstance(mod, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)):
            k = mod.weight[0].numel()  # (cin / groups) x kernel volume
            macs[0] += out.numel() * k
        elif isinstance(mod, (torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d)):
            # Every input voxel scatters into cout x kernel outputs.
            macs[0] += inp[0].numel() * mod.weight[0].numel()
        elif isinstance(mod, torch.nn.Linear):
            macs[0] += out.numel() * mod.in_features

    for m in net.modules():
        m.register_forward_hook(hook)
    with torch.no_grad():
        net(torch.zeros([1] + list(shape)))
    return 2 * macs[0], sum(p.numel() for p in net.parameters())


def best_ms(fn, repeat=5):
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best * 1000.0


def measure_peak():
    """GFLOP/s of dense float32 kernels with the current thread count; the best is the peak."""
    out = {}
    with torch.inference_mode():
        for n in (1024, 2048):
            a, b = torch.randn(n, n), torch.randn(n, n)
            out[f"mm{n}"] = 2 * n ** 3 / best_ms(lambda: torch.mm(a, b)) / 1e6
        x = torch.randn(1, 1024, 56, 56)
        c1 = torch.nn.Conv2d(1024, 1024, 1, bias=False).eval()
        out["conv1x1_1024_56"] = 2 * 1024 * 1024 * 56 * 56 / best_ms(lambda: c1(x)) / 1e6
        x3 = torch.randn(1, 128, 56, 56)
        c3 = torch.nn.Conv2d(128, 128, 3, padding=1, bias=False).eval()
        out["conv3x3_128_56"] = 2 * 128 * 128 * 9 * 56 * 56 / best_ms(lambda: c3(x3)) / 1e6
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--models", default=MODELS)
    ap.add_argument("--batch2d", type=int, default=16, help="batch for 2D classification models (segmentation: 1, as medvision runs it)")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "results" / "flop_ideal.json"))
    a = ap.parse_args()
    bench = Path(a.build) / "benchmarks" / "infer_bench"
    if not bench.exists():
        sys.exit(f"flop_ideal: {bench} not found (build the benchmarks in {a.build})")
    torch.set_num_threads(a.threads)
    res = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
           "threads": a.threads, "repeat": a.repeat, "torch": torch.__version__,
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "loadavg_before": os.getloadavg(), "models": []}
    peaks = [measure_peak()]
    for name in a.models.split(","):
        pkg = REPO / "models" / name / "package"
        man = json.loads((pkg / "manifest.json").read_text())
        arch = (man.get("provenance") or {}).get("architecture") or man.get("architecture")
        shape = [man["input"]["channels"]] + list(man["input"]["size"])
        flops, params = count_flops(arch, shape)
        scripted = sum(p.numel() for p in torch.jit.load(str(pkg / "model.pt")).parameters())
        if scripted != params:
            sys.exit(f"flop_ideal: {name}: rebuilt network has {params} parameters, model.pt "
                     f"{scripted}: the architecture record does not match the package")
        # The batch medvision runs: segmentation is one window (2D: the whole resized image) at a
        # time, classification is batched (--batch2d, the CLI's default 16).
        batch = 1 if len(shape) == 4 or man.get("task") == "segmentation" else a.batch2d
        graph = (man.get("inference") or {}).get("graph", "optimize_for_inference")
        # A 3D model runs inside the sliding window's tensor cache scope, as `segment` does.
        cmd = [str(bench), str(pkg / "model.pt"), graph, str(a.threads),
               ",".join(map(str, shape)), str(batch), str(a.repeat), "3"] + \
            (["cache"] if len(shape) == 4 else [])
        p = subprocess.run(cmd, capture_output=True, text=True, check=True)
        run = json.loads(p.stdout.strip().splitlines()[-1])
        samples = run["batches"][str(batch)]["samples"]
        ms = statistics.median(samples) / batch
        res["models"].append({"model": name, "version": man["version"], "input": shape,
                              "graph": graph, "fused_norms": run.get("fused_norms", 0),
                              "batch": batch, "params": params,
                              "gflop_per_image": flops / 1e9, "ms_per_image": ms,
                              "samples_ms": samples})
        peaks.append(measure_peak())  # between models: the best of all rounds is the peak
    peak = max(v for p in peaks for v in p.values())
    res["peaks_gflops"] = peaks
    res["peak_gflops"] = peak
    res["loadavg_after"] = os.getloadavg()
    print(f"peak {peak:.1f} GFLOP/s (best of {len(peaks)} rounds of "
          f"{', '.join(peaks[0])})")
    print(f"{'model':14s} {'GFLOP/img':>9s} {'batch':>5s} {'ms/img':>8s} {'ideal ms':>8s} "
          f"{'ratio':>6s}")
    for m in res["models"]:
        m["ideal_ms_per_image"] = m["gflop_per_image"] / peak * 1000.0
        m["ratio_to_ideal"] = m["ms_per_image"] / m["ideal_ms_per_image"]
        m["achieved_gflops"] = m["gflop_per_image"] / m["ms_per_image"] * 1000.0
        print(f"{m['model']:14s} {m['gflop_per_image']:9.3f} {m['batch']:5d} "
              f"{m['ms_per_image']:8.2f} {m['ideal_ms_per_image']:8.2f} {m['ratio_to_ideal']:6.2f}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
