#!/usr/bin/python3
"""Shifted copies of a labelled image set, as another hospital's images might look
(models/common/site_shift.py), and their scores through medvision.

  # 1. shifted PNG copies of the calibration and evaluation halves + labels CSVs (path,label)
  models/tools/make_label_csv.py cxr-pneumonia --out .devdata/labels
  models/tools/site_shift_data.py write --labels .devdata/labels/cxr-pneumonia-calibration.csv \
      .devdata/labels/cxr-pneumonia-evaluation.csv --out .devdata/site-shift [--shifts blur,text] [--seed 1]
  # -> .devdata/site-shift/<shift>/<part>/*.png and .devdata/site-shift/<shift>/<part>.csv
  #    (<part> = the CSV's stem after the model name: calibration, evaluation); 'none' = unshifted PNGs
  # 2. one CSV over all shifted calibration sets (what `medvision calibrate` fits 2.0's operating point on)
  models/tools/site_shift_data.py pool --root .devdata/site-shift --part calibration
  # 3. score a package on every shifted evaluation set through `medvision classify`
  #    (models/tools/evaluate_medvision.py), one table
  models/tools/site_shift_data.py score --model models/cxr-pneumonia/package --root .devdata/site-shift \
      --part evaluation --out .devdata/site-shift/scores-1.2.3.json

The CSVs are what `medvision calibrate --labels` and `medvision evaluate --labels` read. Images are
decoded to grey (BT.601 luma, as medvision does), shifted at their own resolution, written as 8-bit
PNG. Deterministic: image i of a set gets seed hash(shift, seed, file name).
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common.site_shift import SHIFTS, apply_shift  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def read_grey(path) -> np.ndarray:
    from PIL import Image
    with Image.open(path) as im:
        im.load()
        a = np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im, np.float32)
    if a.ndim == 3:
        a = 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]
    return a / 255.0


def write_png(path, img):
    from PIL import Image
    Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8), mode="L").save(path)


def part_name(csv_path: Path) -> str:
    stem = csv_path.stem
    return stem.rsplit("-", 1)[-1] if "-" in stem else stem


def cmd_write(args):
    shifts = ["none"] + list(SHIFTS) if args.shifts == "all" else args.shifts.split(",")
    for s in shifts:
        if s != "none" and s not in SHIFTS:
            sys.exit(f"unknown shift {s!r}; known: none, {', '.join(SHIFTS)}")
    out = Path(args.out)
    for lab_csv in map(Path, args.labels):
        with open(lab_csv, newline="") as f:
            rows = list(csv.DictReader(f))
        part = part_name(lab_csv)
        imgs = {}

        def load(r):
            imgs[r["path"]] = read_grey(r["path"])
        with ThreadPoolExecutor(args.workers) as ex:
            list(ex.map(load, rows))
        for s in shifts:
            d = out / s / part
            d.mkdir(parents=True, exist_ok=True)

            def one(ir):
                i, r = ir
                src = Path(r["path"])
                name = f"{i:04d}_{src.parent.name}_{src.stem}.png"
                seed = zlib.crc32(f"{args.seed}:{src.name}".encode())
                img = imgs[r["path"]] if s == "none" else apply_shift(imgs[r["path"]], s, seed)
                write_png(d / name, img)
                return [str((d / name).resolve()), r["label"]]
            with ThreadPoolExecutor(args.workers) as ex:
                new = list(ex.map(one, enumerate(rows)))
            with open(out / s / f"{part}.csv", "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["path", "label"])
                w.writerows(new)
            print(f"wrote {out / s / part}.csv: {len(new)} images ({s})", flush=True)
    (out / "shifts.json").write_text(json.dumps({k: v[1] for k, v in SHIFTS.items()}, indent=1) + "\n")


def cmd_score(args):
    root = Path(args.root)
    shifts = sorted(p.name for p in root.iterdir() if (p / f"{args.part}.csv").exists())
    shifts = (["none"] if "none" in shifts else []) + [s for s in shifts if s != "none"]
    if args.shifts != "all":
        shifts = [s for s in shifts if s in args.shifts.split(",")]
    res = {}
    tmp = Path(args.out).with_suffix("")
    tmp.mkdir(parents=True, exist_ok=True)
    for s in shifts:
        o = tmp / f"{s}.json"
        preds = tmp / f"{s}.predictions.csv"
        cmd = [sys.executable, str(REPO / "models/tools/evaluate_medvision.py"), "--model", args.model,
               "--labels", str(root / s / f"{args.part}.csv"), "--out", str(o), "--predictions", str(preds)]
        if args.cli:
            cmd += ["--cli", args.cli]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        m = json.loads(o.read_text())
        res[s] = {"model": f"{m['model']['name']} {m['model']['version']}", **next(iter(m["labels"].values()))}
        r = res[s]
        print(f"{s:14s} AUROC {r['auroc']:.4f} acc {r['accuracy']:.3f} sens {r['sensitivity']:.3f} "
              f"spec {r['specificity']:.3f} ECE {r['ece15']:.3f}/{r.get('ece15_calibrated', float('nan')):.3f} "
              f"referred {r['referred']}", flush=True)
    Path(args.out).write_text(json.dumps({"model": args.model, "part": args.part, "shifts": res}, indent=1) + "\n")
    print("| shift | AUROC | acc | sens | spec | ECE raw | ECE cal | referred |")
    print("|---|---|---|---|---|---|---|---|")
    for s, r in res.items():
        print(f"| {s} | {r['auroc']:.4f} | {r['accuracy']:.3f} | {r['sensitivity']:.3f} | {r['specificity']:.3f} | "
              f"{r['ece15']:.3f} | {r.get('ece15_calibrated', float('nan')):.3f} | {r['referred']} |")


def cmd_pool(args):
    """One CSV of a part over 'none' and every shift: what the 2.0 operating point is fitted on."""
    root = Path(args.root)
    rows = []
    for d in sorted(p for p in root.iterdir() if (p / f"{args.part}.csv").exists()):
        with open(d / f"{args.part}.csv", newline="") as f:
            rows += list(csv.DictReader(f))
    out = Path(args.out or root / f"pooled-{args.part}.csv")
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        w.writerows([r["path"], r["label"]] for r in rows)
    print(f"wrote {out}: {len(rows)} images")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write", help="write shifted PNG copies + labels CSVs")
    w.add_argument("--labels", nargs="+", required=True, help="CSV(s) path,label")
    w.add_argument("--out", default=".devdata/site-shift")
    w.add_argument("--shifts", default="all", help="comma list, or all (includes 'none')")
    w.add_argument("--seed", type=int, default=1)
    w.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    s = sub.add_parser("score", help="score a package on each shifted set through medvision")
    s.add_argument("--model", required=True)
    s.add_argument("--root", default=".devdata/site-shift")
    s.add_argument("--part", default="evaluation")
    s.add_argument("--shifts", default="all")
    s.add_argument("--cli", default=None)
    s.add_argument("--out", required=True)
    pl = sub.add_parser("pool", help="one labels CSV of a part over all shifted sets (incl. 'none')")
    pl.add_argument("--root", default=".devdata/site-shift")
    pl.add_argument("--part", default="calibration")
    pl.add_argument("--out", default=None)
    args = ap.parse_args()
    {"write": cmd_write, "score": cmd_score, "pool": cmd_pool}[args.cmd](args)


if __name__ == "__main__":
    main()
