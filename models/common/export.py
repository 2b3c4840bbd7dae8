"""TorchScript export + manifest writer (runs on the workstation with the runtime's torch 1.13).

export_package(spec) reads a weights .npz written by train.py, rebuilds the eager network,
scripts it (classification: forward + @torch.jit.export features/head for Grad-CAM;
segmentation: explain_forward -> (logits, bottleneck) for the segmentation Grad-CAM), checks the
scripted module against eager (forward, features, head or explain_forward; before and after save/load) to 1e-5,
saves model.pt (CPU, float32), writes manifest.json (docs/model-package.md, format 1) with the
sha256 of model.pt, calibration/thresholds null, and copies the model card README.md.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import torch

from . import MODELS_DIR, REPO_DIR, log
from .nets import build, n_params
from .train_utils import load_weights

TOL = 1e-5
INTENDED = ("Research use only: a reference model for testing and demonstrating the medvision SDK. "
            "Not a medical device; it has not been clinically validated and must not be used for diagnosis, "
            "triage or any patient-care decision.")
NOTICE = "Not for diagnostic use."


def _finite(o):
    """NaN/inf -> null, numpy scalars -> Python: the manifest must be strict JSON for the C++ loader."""
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    if isinstance(o, (np.floating, float)):
        return float(o) if np.isfinite(o) else None
    if isinstance(o, np.integer):
        return int(o)
    return o


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def _max_diff(a, b) -> float:
    return float((a.float() - b.float()).abs().max())


def verify(eager, scripted, example, classification: bool) -> dict:
    with torch.no_grad():
        res = {"forward": _max_diff(eager(example), scripted(example))}
        if classification:
            fe, fs = eager.features(example), scripted.features(example)
            res["features"] = _max_diff(fe, fs)
            res["head"] = _max_diff(eager.head(fe), scripted.head(fe))
            res["head_of_features_vs_forward"] = _max_diff(scripted.head(scripted.features(example)), scripted(example))
        else:
            out, act = scripted.explain_forward(example)
            res["explain_forward_vs_forward"] = _max_diff(out, scripted(example))
            res["explain_activations"] = _max_diff(eager.explain_forward(example)[1], act)
    return res


def summarize_metrics(m: dict | None) -> dict:
    if not m:
        return {"status": "not measured yet (fill from metrics.json / evaluation.json)"}
    if "training_run" in m:  # evaluation.json from tools/evaluate.py
        keep = {"source": "tools/evaluate.py on the internal validation split"}
        if "labels" in m:
            keep["mean_auroc"] = m.get("mean_auroc")
            keep["val"] = {lab: {k: r[k] for k in ("n", "positives", "auroc", "auroc_ci95", "accuracy", "sensitivity",
                                                   "specificity", "ece15", "brier", "baseline") if k in r}
                           for lab, r in m["labels"].items()}
            if m.get("init_model_val_from_training"):
                keep["init_model_val"] = m["init_model_val_from_training"]
        for k in ("structures", "mean_dice_fg_classes", "pixel_mm", "cases", "mean_dice", "mean_hd95_mm"):
            if k in m:
                keep[k] = m[k]
        keep["training_run"] = m["training_run"]
        keep["note"] = "internal patient-level validation split; see the model card"
        return keep
    keep = {}
    for k in ("val_mean_auroc", "val_mean_dice", "val_dice_lungs_union", "val_images", "val_cases", "train_images",
              "train_cases", "selected", "selected_epoch", "epochs_run", "device_name", "smoke"):
        if k in m:
            keep[k] = m[k]
    if isinstance(m.get("val"), dict):
        keep["val"] = {lab: {kk: r[kk] for kk in ("auroc", "auroc_ci95", "accuracy", "sensitivity", "specificity",
                                                   "ece15", "n", "positives") if kk in r}
                       for lab, r in m["val"].items() if isinstance(r, dict)}
    if "val_dice" in m:
        keep["val_dice"] = m["val_dice"]
    for k in ("hd95", "evaluation"):
        if isinstance(m.get(k), dict):
            keep[k] = m[k]
    keep["note"] = "internal patient-level validation split; see the model card"
    return keep


def export_package(spec: dict):
    ap = argparse.ArgumentParser(description=f"Export {spec['name']} to a medvision model package")
    ap.add_argument("--weights", required=True, help="best.weights.npz from train.py")
    ap.add_argument("--metrics", default=None, help="metrics.json (or evaluation.json) to copy into the manifest")
    ap.add_argument("--out", default=str(MODELS_DIR / spec["name"] / "package"))
    ap.add_argument("--version", default="1.0.0")
    ap.add_argument("--check", default=None,
                    help="<name>.results.tar (or dir) of the training run: re-run the exported model.pt here on up "
                         "to 64 validation images of the pack and compare with the logged predictions")
    ap.add_argument("--data", default=None, help="pack for --check (default .devdata/<pack>/pack.npz)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)

    cfg, sd = load_weights(args.weights)
    if cfg.get("name") != spec["name"]:
        raise SystemExit(f"weights are for {cfg.get('name')!r}, not {spec['name']!r}")
    eager = build(cfg["arch"])
    eager.load_state_dict(sd)
    eager = eager.float().eval()
    classification = cfg["task"] == "classification"
    scripted = torch.jit.script(eager)
    scripted.eval()

    shape = [1, cfg["input"]["channels"]] + list(cfg["input"]["size"])
    if classification:
        shape[0] = 2
    example = torch.randn(*shape)
    res = verify(eager, scripted, example, classification)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pt = out / "model.pt"
    scripted.save(str(pt))
    loaded = torch.jit.load(str(pt), map_location="cpu").eval()
    res_loaded = verify(eager, loaded, example, classification)
    for k, v in {**res, **{f"{k}_after_load": v for k, v in res_loaded.items()}}.items():
        ok = v <= TOL
        log(f"[verify] {k}: max |scripted - eager| = {v:.2e} {'OK' if ok else 'FAIL'}")
        if not ok:
            raise SystemExit(f"verification failed: {k} differs by {v} > {TOL}")
    for name, p in loaded.named_parameters():
        assert p.dtype == torch.float32 and p.device.type == "cpu", name

    metrics = None
    if args.metrics and Path(args.metrics).exists():
        metrics = json.loads(Path(args.metrics).read_text())
    inp = cfg["input"]
    manifest = {
        "format_version": 1,
        "name": spec["name"],
        "version": args.version,
        "task": cfg["task"],
        "labels": list(cfg["labels"]),
        "input": {"channels": int(inp["channels"]), "size": [int(s) for s in inp["size"]], "ndim": int(inp["ndim"]),
                  "spacing": inp.get("spacing"), "modalities": spec["modalities"]},
        "preprocess": cfg["preprocess"],
        "output": {"activation": cfg["activation"]},
        "calibration": None,
        "thresholds": None,
        "explain": ({"features": "features", "head": "head"} if classification else
                    {"activations": "explain_forward", "target_layer": "bottleneck (deepest encoder block, 1/16)"}),
        "segmentation": spec.get("segmentation") if not classification else None,
        "intended_use": spec.get("intended_use", INTENDED),
        "notice": NOTICE,
        "provenance": {**spec["provenance"], "trained_by": f"models/{spec['name']}/train.py",
                       "exported_by": f"models/{spec['name']}/export.py",
                       "architecture": cfg["arch"], "parameters": n_params(eager),
                       "training": cfg.get("train", {}),
                       **({"input_channels": cfg["channel_names"]} if "channel_names" in cfg else {}),
                       "torch_export_version": torch.__version__},
        "metrics": summarize_metrics(metrics),
        "model_file": "model.pt",
        "sha256": sha256(pt),
    }
    manifest = _finite(manifest)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, allow_nan=False) + "\n")
    card = MODELS_DIR / spec["name"] / "README.md"
    if card.exists():
        shutil.copyfile(card, out / "README.md")
    if args.check:
        check_against_run(loaded, cfg, spec["name"], args.check, args.data)
    log(f"[export] {out}/model.pt {pt.stat().st_size / 2 ** 20:.2f} MiB sha256 {manifest['sha256'][:16]}... "
        f"params {n_params(eager) / 1e6:.2f}M; manifest.json written")
    return manifest


def check_against_run(module, cfg, name, results, data=None, n=64):
    """Exported model.pt (CPU, torch here) vs the GPU run's own validation outputs."""
    import csv
    import tarfile
    import tempfile
    from .packio import load_pack
    from .preprocess import CXR_MEAN, CXR_STD
    from . import devdata_dir
    src = Path(results)
    tmp = None
    if src.is_file():
        tmp = tempfile.TemporaryDirectory()
        with tarfile.open(src) as t:
            t.extractall(tmp.name)
        src = Path(tmp.name)
    pack_name = {"cxr-edema": "cxr-findings"}.get(name, name)
    pack = Path(data) if data else devdata_dir() / pack_name / "pack.npz"
    if name == "brain-tumour":
        log("[check] brain-tumour: skipped (a CPU sliding window over full volumes is too slow here)")
        return
    meta, a = load_pack(pack)
    ids = list(meta["ids"])
    with torch.no_grad():
        if cfg["task"] == "classification":
            rows = list(csv.DictReader(open(src / "val_predictions.csv")))[:n]
            labels = cfg["labels"]
            if "images" in a:
                imgs = a["images"]
                get = lambda i: imgs[i]
            else:
                import torch.nn.functional as F
                na = len(a["images_a"])
                def get(i):
                    if i < na:
                        return a["images_a"][i]
                    t = torch.from_numpy(a["images_b"][i - na]).float()[None, None] / 255.0
                    t = F.interpolate(t, size=tuple(meta["size"]), mode="bilinear", align_corners=False, antialias=True)
                    return t[0, 0].mul(255).round().clamp(0, 255).to(torch.uint8).numpy()
            x = torch.stack([torch.from_numpy(get(ids.index(r["id"])).astype(np.float32)) for r in rows])[:, None]
            x = (x / 255.0 - CXR_MEAN) / CXR_STD
            got = module(x).numpy()
            ref = np.array([[float(r[f"logit_{lab}"]) for lab in labels] for r in rows])
            d = float(np.abs(got - ref).max())
            log(f"[check] {len(rows)} val images: max |logit(model.pt, CPU torch {torch.__version__}) - logit(GPU run)| "
                f"= {d:.2e} {'OK' if d < 1e-2 else 'LARGE'}")
        else:
            z = np.load(src / "val_predictions.npz")
            vids = [str(s) for s in z["ids"]][:16]
            x = torch.stack([torch.from_numpy(a["images"][ids.index(i)].astype(np.float32)) for i in vids])[:, None]
            x = (x / 255.0 - CXR_MEAN) / CXR_STD
            pred = module(x).argmax(1).numpy()
            agree = float((pred == z["pred"][:len(vids)]).mean())
            log(f"[check] {len(vids)} val images: pixel agreement of model.pt (CPU) with the GPU run's masks "
                f"{agree:.6f} {'OK' if agree > 0.999 else 'LOW'}")
    if tmp:
        tmp.cleanup()
