#!/usr/bin/env python3
"""Random-weight (torch.manual_seed) checkpoints in the exact input format of each exporter, so
that the exporters and their parity tests run offline.

    make_fixture_checkpoint.py torchvision OUT.pt --architecture efficientnet_b0 --classes NORMAL,PNEUMONIA
    make_fixture_checkpoint.py chexnet OUT.pt [--layout module|torchvision]
    make_fixture_checkpoint.py xrv OUT.pt

BatchNorm parameters are randomised and its running statistics calibrated on random images, so
that the outputs depend on the input (see randomise).
"""
from __future__ import annotations

import argparse
import re

import torch

import _package as P
from export_chexnet import NIH_LABELS
from export_xrv import XRV_LABELS


def synthetic_images(g: torch.Generator, n: int, in_channels: int) -> torch.Tensor:
    """Smooth random grey images in [0, 1] (mostly low frequencies, like radiographs)."""
    up = torch.nn.functional.interpolate
    x = torch.zeros(n, 1, 224, 224)
    for cells, amp in ((4, 1.0), (14, 0.25), (56, 0.08)):
        x += amp * up(torch.rand(n, 1, cells, cells, generator=g), size=(224, 224),
                      mode="bilinear", align_corners=False)
    x = (x - x.amin((2, 3), keepdim=True)) / (x.amax((2, 3), keepdim=True) -
                                               x.amin((2, 3), keepdim=True))
    return x.expand(n, in_channels, 224, 224)


def real_images(files) -> torch.Tensor:
    """Grey images in [0, 1], 224 x 224 (stretched), from PNG/JPEG files."""
    import numpy as np
    from PIL import Image
    out = []
    for f in files:
        with Image.open(f) as im:
            a = np.asarray(im.convert("L"), dtype=np.float32) / 255
        out.append(torch.nn.functional.interpolate(torch.from_numpy(a)[None, None], size=(224, 224),
                                                   mode="bilinear", antialias=True)[0])
    return torch.stack(out)


def randomise(model: torch.nn.Module, seed: int, xrv: bool = False,
              calibration_files=()) -> torch.nn.Module:
    """Random BatchNorm affine parameters; running statistics measured on synthetic images
    (train-mode passes, cumulative average); the last Linear layer rescaled so that logits
    spread over a few units. With torchvision's initialisation alone the eval-mode statistics do
    not match the activations: EfficientNet then returns the same logits for every image, or
    saturated ones, and a parity test on such a model would prove nothing."""
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    c = 1 if xrv else 3
    mean = torch.tensor([0.485, 0.456, 0.406][:c]).view(1, c, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225][:c]).view(1, c, 1, 1)

    real = real_images(calibration_files) if calibration_files else None

    def prepared(n):
        x = synthetic_images(g, n, c)
        if real is not None:
            x = torch.cat([x[: n // 2], real.expand(-1, c, -1, -1)])
        return (2 * x - 1) * 1024 if xrv else (x - mean) / std

    with torch.no_grad():
        for m in bns:
            m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 0.5 + 0.75)
            m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average over the calibration batches
        # Only BatchNorm in train mode: dropout / stochastic depth would skew the statistics.
        model.eval()
        for m in bns:
            m.train()
        model(prepared(8))
        for m in bns:
            m.momentum = 0.1
        model.eval()
        last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
        logits = model(prepared(8))
        k = 2.0 / float(logits.std().clamp_min(1e-6))
        last.weight.mul_(k)
        last.bias.mul_(k).sub_(logits.mean(0) * k)
    return model


def to_old_densenet_keys(sd):
    """torchvision < 0.3 names (norm1 -> norm.1), as in the CheXNet re-implementation's file."""
    return {re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k): v
            for k, v in sd.items()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kind", choices=["torchvision", "chexnet", "xrv"])
    ap.add_argument("out")
    ap.add_argument("--architecture", default="efficientnet_b0")
    ap.add_argument("--classes", default="NORMAL,PNEUMONIA")
    ap.add_argument("--layout", choices=["module", "torchvision"], default="module",
                    help="chexnet: 'module' = module.densenet121.* with old DenseNet keys and a "
                         "Sequential(Linear, Sigmoid) classifier; 'torchvision' = plain keys")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--calibrate", nargs="*", default=[],
                    help="PNG/JPEG images whose statistics the BatchNorm layers and the logit "
                         "scale are fitted to (besides synthetic ones): a random network fitted "
                         "to real radiographs gives unsaturated, input-dependent outputs on them")
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)

    if args.kind == "torchvision":
        classes = [c for c in args.classes.split(",") if c]
        arch = P.ALIASES.get(args.architecture, [args.architecture])[0]
        m = randomise(P.build_torchvision(arch, len(classes)), args.seed,
                      calibration_files=args.calibrate)
        ck = {"state_dict": m.state_dict(), "class_names": classes,
              "architecture": args.architecture}
    elif args.kind == "chexnet":
        m = randomise(P.build_torchvision("densenet121", len(NIH_LABELS)), args.seed,
                      calibration_files=args.calibrate)
        sd = m.state_dict()
        if args.layout == "module":
            sd = to_old_densenet_keys(sd)
            sd = {"module.densenet121." + (k.replace("classifier.", "classifier.0.", 1)
                                           if k.startswith("classifier.") else k): v
                  for k, v in sd.items() if not k.endswith("num_batches_tracked")}
            ck = {"epoch": 0, "arch": "densenet121", "state_dict": sd, "best_loss": 0.0}
        else:
            ck = sd
    else:
        m = randomise(P.build_torchvision("densenet121", len(XRV_LABELS), in_channels=1),
                      args.seed, xrv=True,
                      calibration_files=args.calibrate)
        sd = m.state_dict()
        sd["op_threshs"] = torch.rand(len(XRV_LABELS))
        ck = sd
    torch.save(ck, args.out)
    P.log(f"[fixture] {args.kind} checkpoint -> {args.out}")


if __name__ == "__main__":
    main()
