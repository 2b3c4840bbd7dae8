"""Shared code of the checkpoint exporters: checkpoint reading, torchvision model surgery, the
TorchScript wrapper (forward + features/head for CAM), verification, and the package writer.

Needs only python3-torch and python3-torchvision (Debian 12: torch 1.13, torchvision 0.14).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

TOL = 1e-5
NOTICE = "Not for diagnostic use."
DEFAULT_INTENDED_USE = (
    "Research use only. Converted from a third-party checkpoint for use with the medvision SDK; "
    "not a medical device, not clinically validated, and must not be used for diagnosis, triage "
    "or any patient-care decision.")
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
EXPORTER_DIR = Path(__file__).resolve().parent


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------
# The packaged module: forward(x) == head(features(x)); features are the last convolutional
# feature maps before global pooling (what Grad-CAM needs), head is pool + flatten + classifier.
class Packaged(nn.Module):
    def __init__(self, body: nn.Module, classifier: nn.Module, relu_features: bool):
        super().__init__()
        self.body = body
        self.classifier = classifier
        self.relu_features = relu_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @torch.jit.export
    def features(self, x: torch.Tensor) -> torch.Tensor:
        f = self.body(x)
        if self.relu_features:
            # DenseNet applies ReLU after its last BatchNorm outside `features`.
            f = F.relu(f)
        return f

    @torch.jit.export
    def head(self, f: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(f, 1), 1))


ARCHITECTURES = ["efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
                 "efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7",
                 "resnet18", "resnet34", "resnet50", "densenet121",
                 "mobilenet_v3_small", "mobilenet_v3_large"]
# "mobilenet_v3" alone is ambiguous; the state dict decides between these.
ALIASES = {"mobilenet_v3": ["mobilenet_v3_large", "mobilenet_v3_small"]}


def build_torchvision(arch: str, num_classes: int, in_channels: int = 3) -> nn.Module:
    """A torchvision model with a `num_classes` final layer (and `in_channels` input), random
    weights: the checkpoint provides them."""
    if arch not in ARCHITECTURES:
        raise SystemExit(f"architecture {arch!r} is not one of {', '.join(ARCHITECTURES)}")
    m = getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)
    if in_channels != 3:
        if not arch.startswith("densenet"):
            raise SystemExit(f"{arch}: only densenet supports in_channels != 3 here")
        m.features.conv0 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return m


def wrap(arch: str, m: nn.Module) -> Packaged:
    """Splits a torchvision classifier into features (before pooling) and head."""
    if arch.startswith("resnet"):
        body = nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2, m.layer3,
                             m.layer4)
        return Packaged(body, m.fc, False)
    if arch.startswith("densenet"):
        return Packaged(m.features, m.classifier, True)
    if arch.startswith("efficientnet") or arch.startswith("mobilenet_v3"):
        # Both: features -> AdaptiveAvgPool2d(1) -> flatten -> classifier (dropout inactive in eval).
        return Packaged(m.features, m.classifier, False)
    raise SystemExit(f"no wrapper for {arch}")


# ------------------------------------------------------------------------------------------
# Checkpoints
def load_checkpoint(path: str) -> dict:
    ck = torch.load(path, map_location="cpu")
    if not isinstance(ck, dict):
        raise SystemExit(f"{path}: expected a dict (a state dict, or a dict holding 'state_dict'); "
                         f"got {type(ck).__name__}. Whole pickled modules are not supported: save "
                         f"model.state_dict() instead.")
    return ck


def state_dict_of(ck: dict) -> Dict[str, torch.Tensor]:
    sd = ck.get("state_dict", ck)
    if not isinstance(sd, dict) or not sd or not all(torch.is_tensor(v) for v in sd.values()):
        raise SystemExit("the checkpoint holds no state dict of tensors")
    return dict(sd)


def strip_prefixes(sd: Dict[str, torch.Tensor], prefixes: List[str]) -> Dict[str, torch.Tensor]:
    """Removes leading wrapper prefixes (nn.DataParallel's 'module.', a wrapper attribute such as
    'densenet121.'), repeatedly, as long as every key starts with one."""
    changed = True
    while changed:
        changed = False
        for p in prefixes:
            if all(k.startswith(p) for k in sd):
                sd = {k[len(p):]: v for k, v in sd.items()}
                changed = True
    return sd


# torchvision < 0.3 DenseNet keys ('denselayer1.norm.1.weight'); torchvision's own loader fixes
# them with this pattern (torchvision/models/densenet.py, _load_state_dict).
_OLD_DENSENET = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def fix_old_densenet_keys(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        m = _OLD_DENSENET.match(k)
        out[m.group(1) + m.group(2) if m else k] = v
    return out


def load_strict(model: nn.Module, sd: Dict[str, torch.Tensor], what: str) -> None:
    missing, unexpected = model.load_state_dict(sd, strict=False)
    # BatchNorm's num_batches_tracked is absent from old checkpoints and unused in eval.
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"{what}: the checkpoint does not fit the model: "
                         f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                         f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")


# ------------------------------------------------------------------------------------------
# Preprocessing steps shared by the exporters
def scale_step(mode: str, low: float = 0.5, high: float = 99.5) -> dict:
    """Map source pixels to [0, 1] as torchvision's ToTensor does for 8-bit images."""
    if mode == "fixed":
        return {"op": "scale", "mode": "fixed", "min": 0, "max": 255}
    if mode == "minmax":
        return {"op": "scale", "mode": "minmax"}
    if mode == "percentile":
        return {"op": "scale", "mode": "percentile", "low": low, "high": high}
    raise SystemExit(f"unknown scale mode {mode!r}")


def add_common_args(ap: argparse.ArgumentParser, default_name: str) -> None:
    ap.add_argument("--checkpoint", required=True, help="input checkpoint (.pt / .pth)")
    ap.add_argument("--out", required=True, help="package folder to write")
    ap.add_argument("--name", default=default_name, help="package name [a-z0-9][a-z0-9._-]*")
    ap.add_argument("--version", default="1.0.0", help="package version (semantic)")
    ap.add_argument("--intended-use", default=DEFAULT_INTENDED_USE)
    ap.add_argument("--description", default=None)
    ap.add_argument("--source", default=None,
                    help="where the checkpoint came from (URL, paper); goes into provenance")
    ap.add_argument("--license", default="unknown: check the checkpoint's licence",
                    help="licence of the weights; goes into provenance")
    ap.add_argument("--modalities", default="CR,DX", help="expected DICOM modalities, comma-separated")


def add_scale_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--scale", choices=["fixed", "minmax", "percentile"], default="fixed",
                    help="how source pixels reach [0, 1] before normalisation: 'fixed' = 0..255 "
                         "(what torchvision ToTensor does to 8-bit PNG/JPEG; 16-bit DICOM would "
                         "saturate), 'minmax' or 'percentile' (per image; for DICOM of any depth)")
    ap.add_argument("--percentile-low", type=float, default=0.5)
    ap.add_argument("--percentile-high", type=float, default=99.5)


# ------------------------------------------------------------------------------------------
def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def _diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


def verify(eager: Packaged, scripted, example: torch.Tensor) -> Dict[str, float]:
    with torch.no_grad():
        fe, fs = eager.features(example), scripted.features(example)
        return {"forward": _diff(eager(example), scripted(example)),
                "features": _diff(fe, fs),
                "head": _diff(eager.head(fe), scripted.head(fe)),
                "head(features) vs forward": _diff(scripted.head(fs), scripted(example))}


def write_package(*, eager: Packaged, out: str, name: str, version: str, labels: List[str],
                  in_channels: int, size: int, preprocess: List[dict], activation: str,
                  intended_use: str, description: Optional[str], modalities: List[str],
                  provenance: dict, exporter: str) -> dict:
    """Scripts `eager`, checks it against eager (before and after save/load), writes model.pt
    and manifest.json. Returns the manifest."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name):
        raise SystemExit(f"--name {name!r} must match [a-z0-9][a-z0-9._-]*")
    if len(set(labels)) != len(labels) or not all(labels):
        raise SystemExit("labels must be unique non-empty strings")
    eager = eager.float().eval()
    torch.manual_seed(0)
    # Scripted vs eager does not depend on the resolution (these nets pool adaptively); 128 px
    # keeps the six DenseNet passes of the check cheap on CPU.
    example = torch.randn(2, in_channels, min(size, 128), min(size, 128))
    with torch.no_grad():
        n_out = eager(example).shape[1]
    if n_out != len(labels):
        raise SystemExit(f"the model has {n_out} outputs but there are {len(labels)} labels")
    scripted = torch.jit.script(eager).eval()
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    pt = dest / "model.pt"
    scripted.save(str(pt))
    loaded = torch.jit.load(str(pt), map_location="cpu").eval()
    checks = {**verify(eager, scripted, example),
              **{f"{k} after load": v for k, v in verify(eager, loaded, example).items()}}
    for k, v in checks.items():
        log(f"[verify] {k}: max |scripted - eager| = {v:.2e}")
        if not v <= TOL:
            raise SystemExit(f"verification failed: {k} differs by {v:.3g} > {TOL}")
    for pname, p in loaded.named_parameters():
        assert p.dtype == torch.float32 and p.device.type == "cpu", pname

    manifest = {
        "format_version": 1,
        "name": name,
        "version": version,
        "task": "classification",
        "labels": list(labels),
        "input": {"channels": in_channels, "size": [size, size], "ndim": 2, "spacing": None,
                  "modalities": modalities},
        "preprocess": preprocess,
        "output": {"activation": activation},
        "calibration": None,
        "thresholds": None,
        "explain": {"features": "features", "head": "head"},
        "segmentation": None,
        "intended_use": intended_use,
        "notice": NOTICE,
        "provenance": {**provenance,
                       "exported_by": f"models/exporters/{exporter}",
                       "parameters": sum(p.numel() for p in eager.parameters()),
                       "torch_export_version": torch.__version__,
                       "torchvision_version": torchvision.__version__,
                       "scripted_vs_eager_max_abs_diff": max(checks.values())},
        "metrics": {},
        "model_file": "model.pt",
        "sha256": sha256(pt),
    }
    if description:
        manifest["description"] = description
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log(f"[export] {pt} ({pt.stat().st_size / 2 ** 20:.1f} MiB, sha256 {manifest['sha256'][:16]}...)"
        f", {len(labels)} labels, {activation}; manifest.json written")
    return manifest
