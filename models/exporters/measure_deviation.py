#!/usr/bin/env python3
"""How far medvision's declared preprocessing is from the originals it cannot express exactly
(numbers quoted in docs/exporters.md). Uses packages made by the exporters.

    measure_deviation.py xrv PKG FILES...   xrv's XRayCenterCrop + skimage XRayResizer (emulated)
                                            vs resize center_crop (torch antialiased bilinear)
    measure_deviation.py pil PKG FILES...   PIL Resize on the 8-bit image before ToTensor vs
                                            resizing the float tensor (what medvision does)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms as T

import reference as R


def main() -> None:
    mode, pkg, files = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    torch.set_num_threads(2)
    man = json.loads((pkg / "manifest.json").read_text())
    model = torch.jit.load(str(pkg / "model.pt")).eval()
    if mode == "xrv":
        ours = torch.stack([R.xrv_input(f) for f in files])
        theirs = torch.stack([R.xrv_faithful_input(f) for f in files])
        unit = "xrv units of [-1024, 1024]"
    else:
        from PIL import Image
        ours = torch.stack([R.torchvision_input(f) for f in files])
        tf = T.Compose([T.Resize((224, 224)), T.ToTensor(),
                        T.Normalize(R.IMAGENET_MEAN, R.IMAGENET_STD)])
        theirs = torch.stack([tf(Image.open(f).convert("RGB")) for f in files])
        unit = "normalised units"
    px = (ours - theirs).abs()
    with torch.no_grad():
        p0 = R.probabilities(model(ours), man["output"]["activation"])
        p1 = R.probabilities(model(theirs), man["output"]["activation"])
    dp = (p0 - p1).abs()
    print(f"{mode}: {len(files)} images; input pixels: max |diff| {px.max():.4g}, "
          f"mean {px.mean():.4g} ({unit}); probabilities: max |diff| {dp.max():.3g}, "
          f"mean {dp.mean():.3g}")
    for f, a, b in zip(files, px.flatten(1).max(1).values, dp.max(1).values):
        print(f"  {Path(f).name}: pixel max {a:.4g}, probability max {b:.3g}")


if __name__ == "__main__":
    main()
