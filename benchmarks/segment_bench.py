#!/usr/bin/python3
"""3D sliding-window segmentation: `medvision segment` against the Python peer
(benchmarks/segment_peer.py: nibabel + torch with MONAI's sliding window) on a 240 x 240 x 155
four-channel volume, same TorchScript, same intra-op threads, same windows per batch, one run
each (alternating when --repeat > 1): wall time and peak RSS (wait4), and the label maps compared.

The volume is the BraTS 2018 case_5 FLAIR and T1 (the only sequences in ../shared/data), each
used twice, written as one 4D NIfTI; the model is the brain-tumour UNet3D architecture with four
input channels and three sigmoid outputs (whole tumour / core / enhancing, as a four-sequence
BraTS model has), seeded random weights: speed and memory do not depend on the weights.

  benchmarks/segment_bench.py [--build build-bench] [--threads 2] [--batch 4] [--repeat 1] [--out F]
Writes benchmarks/results/segment.json (or --out).
"""
import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "models"))
from run_bench import run_rss  # noqa: E402
from common.nets import UNet3D  # noqa: E402

PY = "/usr/bin/python3"


def make_inputs(data_dir: Path, out: Path):
    out.mkdir(parents=True, exist_ok=True)
    vol = out / "brats4.nii.gz"
    if not vol.exists():
        case = data_dir / "brats" / "bratsreg2018-flair-t1" / "case_5"
        flair, t1 = nib.load(str(case / "FLAIR.nii.gz")), nib.load(str(case / "T1.nii.gz"))
        f, t = np.asarray(flair.dataobj, np.float32), np.asarray(t1.dataobj, np.float32)
        nib.save(nib.Nifti1Image(np.stack([f, t, f, t], axis=-1), flair.affine), str(vol))
    pkg = out / "seg4"
    if not (pkg / "manifest.json").exists():
        pkg.mkdir(exist_ok=True)
        torch.manual_seed(0)
        net = UNet3D(in_ch=4, num_classes=3, widths=(16, 32, 64, 128, 128)).eval()
        torch.jit.script(net).save(str(pkg / "model.pt"))
        base = json.loads((ROOT / "models" / "brain-tumour" / "package" / "manifest.json").read_text())
        m = {k: base[k] for k in ("format_version", "task", "preprocess", "output", "segmentation",
                                   "notice")}
        m.update({"name": "seg4-bench", "version": "0.0.0",
                  "labels": ["whole_tumour", "tumour_core", "enhancing"],
                  "input": dict(base["input"], channels=4),
                  "description": "benchmark only: random weights"})
        m["segmentation"] = {"overlap": 0.5, "blend": "gaussian"}
        import hashlib
        m["sha256"] = hashlib.sha256((pkg / "model.pt").read_bytes()).hexdigest()
        (pkg / "manifest.json").write_text(json.dumps(m, indent=2))
    return vol, pkg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--out", default=str(HERE / "results" / "segment.json"))
    ap.add_argument("--bundled", action="store_true",
                    help="the bundled brain-tumour package (its trained weights, 2 inputs: "
                         "FLAIR and T1 as two files) instead of the 4-channel random-weight net")
    a = ap.parse_args()
    data_dir = Path(os.environ.get("MEDVISION_DATA", ROOT.parent / "shared" / "data"))
    work = ROOT / a.build / "bench-data" / "segment"
    if a.bundled:
        case = data_dir / "brats" / "bratsreg2018-flair-t1" / "case_5"
        vols, pkg = [case / "FLAIR.nii.gz", case / "T1.nii.gz"], ROOT / "models" / "brain-tumour" / "package"
        roi = json.loads((pkg / "manifest.json").read_text())["input"]["size"]
    else:
        vol, pkg = make_inputs(data_dir, work)
        vols, roi = [vol], [96, 96, 96]
    cli = str(ROOT / a.build / "examples" / "medvision")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    runs = {"medvision": [], "python_peer": []}
    for _ in range(a.repeat):
        out_m = work / ("out-medvision-bundled" if a.bundled else "out-medvision")
        _, wall, rss = run_rss([cli, "segment", *map(str, vols), *(["--stack"] if a.bundled else []),
                                "-m", str(pkg), "--device", "cpu",
                                "--threads", str(a.threads), "--batch", str(a.batch),
                                "--out", str(out_m), "--npy", "--json"], env)
        runs["medvision"].append({"wall_s": wall, "peak_rss_mib": rss})
        out_p = work / "out-peer.npy"
        _, wall, rss = run_rss([PY, str(HERE / "segment_peer.py"), *map(str, vols), "--model",
                                str(pkg / "model.pt"), "--roi", *map(str, roi), "--threads",
                                str(a.threads), "--batch", str(a.batch), "--out", str(out_p)], env)
        runs["python_peer"].append({"wall_s": wall, "peak_rss_mib": rss})
    ours = np.load(next(out_m.glob("*.mask.npy")))
    peer = np.load(work / "out-peer.npy")
    agree = float((ours == peer).mean())
    med = {k: {m: float(np.median([r[m] for r in v])) for m in ("wall_s", "peak_rss_mib")}
           for k, v in runs.items()}
    res = {
        "what": "3D sliding-window segmentation, 240x240x155x4 NIfTI -> label map (.npy), one "
                "process per run",
        "volume": ("BraTS 2018 case_5 FLAIR, T1 (two NIfTI files)" if a.bundled else
                   "BraTS 2018 case_5 FLAIR,T1,FLAIR,T1 (4D NIfTI)"),
        "model": ("bundled brain-tumour package (trained UNet3D, 2 in / 1 sigmoid out), roi "
                  f"{roi}, overlap 0.5, gaussian" if a.bundled else
                  "UNet3D widths 16-128, 4 in / 3 sigmoid out, roi 96^3, overlap 0.5, gaussian"),
        "threads": a.threads, "windows_per_batch": a.batch, "repeat": a.repeat,
        "runs": runs, "median": med,
        "speedup_wall": med["python_peer"]["wall_s"] / med["medvision"]["wall_s"],
        "rss_ratio_medvision_over_peer": med["medvision"]["peak_rss_mib"] / med["python_peer"]["peak_rss_mib"],
        "label_maps_equal_fraction": agree,
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "loadavg_after": os.getloadavg()},
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
