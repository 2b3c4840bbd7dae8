#!/usr/bin/python3
"""Makes the benchmark model package: torchvision DenseNet-121 at 224x224, 3 channels, 14 sigmoid
labels, random weights fixed by a seed (the timings do not depend on the weights).

Writes OUT (default build-bench/bench-data/densenet121) with model.pt (TorchScript, forward +
exported features/head for CAM), manifest.json (docs/model-package.md, format 1) and flops.json
(multiply-accumulates of one 224x224 image, counted with forward hooks on Conv2d and Linear).

Self-contained on purpose: models/common/export.py exports trained weights (.npz from train.py),
which this random-weight package does not have.
Needs /usr/bin/python3 (torch 1.13, torchvision 0.14).
"""
import argparse
import hashlib
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import densenet121

LABELS = ["Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
          "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia"]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
SIZE = 224


class DenseNetCXR(nn.Module):
    """DenseNet-121 split into features (feature maps) and head (pool + linear) for Grad-CAM."""

    def __init__(self):
        super().__init__()
        self.net = densenet121(weights=None, num_classes=len(LABELS))

    @torch.jit.export
    def features(self, x):
        return F.relu(self.net.features(x))

    @torch.jit.export
    def head(self, f):
        return self.net.classifier(torch.flatten(F.adaptive_avg_pool2d(f, (1, 1)), 1))

    def forward(self, x):
        return self.head(self.features(x))


def count_macs(model: nn.Module, x: torch.Tensor) -> dict:
    macs = {"conv": 0, "linear": 0}

    def conv_hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        macs["conv"] += out.numel() * k

    def linear_hook(m, inp, out):
        macs["linear"] += out.numel() * m.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    total = macs["conv"] + macs["linear"]
    return {"input": list(x.shape), "macs": total, "gmacs": total / 1e9, "gflops": 2 * total / 1e9,
            "conv_macs": macs["conv"], "linear_macs": macs["linear"],
            "note": "Conv2d + Linear multiply-accumulates only (BN, ReLU, pooling, concat not counted); "
                    "FLOPs = 2 x MACs"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="build-bench/bench-data/densenet121")
    ap.add_argument("--seed", type=int, default=121)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    eager = DenseNetCXR().eval()
    scripted = torch.jit.script(eager).eval()
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        diff = float((eager(x) - scripted(x)).abs().max())
    if diff > 1e-4:
        print(f"make_bench_model: scripted differs from eager by {diff}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pt = out / "model.pt"
    scripted.save(str(pt))
    digest = hashlib.sha256(pt.read_bytes()).hexdigest()
    manifest = {
        "format_version": 1,
        "name": "bench-densenet121",
        "version": "0.0.1",
        "task": "classification",
        "labels": LABELS,
        "input": {"channels": 3, "size": [SIZE, SIZE], "ndim": 2, "spacing": None, "modalities": ["CR", "DX"]},
        "preprocess": [
            {"op": "monochrome"},
            {"op": "scale", "mode": "percentile", "low": 0.5, "high": 99.5},
            {"op": "resize", "mode": "stretch", "size": [SIZE, SIZE], "antialias": True},
            {"op": "channels", "channels": 3},
            {"op": "normalize", "mean": IMAGENET_MEAN, "std": IMAGENET_STD},
        ],
        "output": {"activation": "sigmoid"},
        "calibration": None,
        "thresholds": None,
        "explain": {"features": "features", "head": "head"},
        "segmentation": None,
        "intended_use": "Benchmarking only: random weights. Not a medical device.",
        "notice": "Benchmark model with random weights. Not for diagnostic use.",
        "provenance": {"architecture": "torchvision densenet121", "weights": f"random, torch.manual_seed({args.seed})",
                       "exported_by": "benchmarks/make_bench_model.py", "torch_export_version": torch.__version__},
        "metrics": {},
        "model_file": "model.pt",
        "sha256": digest,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    flops = count_macs(eager, torch.randn(1, 3, SIZE, SIZE))
    (out / "flops.json").write_text(json.dumps(flops, indent=2) + "\n")
    print(f"{out}: model.pt {pt.stat().st_size / 2**20:.1f} MiB, {flops['gmacs']:.3f} GMACs at {SIZE}x{SIZE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
