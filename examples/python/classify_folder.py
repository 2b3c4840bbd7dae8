#!/usr/bin/env python3
"""Classifies every image under a folder (DICOM, NIfTI, PNG, JPEG, ...) into a CSV file.

    classify_folder.py STUDIES/ --model cxr-pneumonia --out results.csv

One row per file, sorted by path (relative to the folder): for each label of the model its
probability, calibrated probability, decision at the operating point and refer flag, then the
most probable label, the labels positive at their operating points ("|"-separated), or the error that stopped the file (the rest go on). Files are decoded one by
one and run in batches of --batch. Results support clinicians and never replace them: not for
diagnostic use.

The same code scores one chunk of files on each Dask worker in dask_score.py, so the two give the
same CSV when they use the same --batch and --threads (batches of equal composition).
"""
import argparse
import csv
import os
import sys
import time
from typing import Dict, List, Sequence

import medvision


def list_files(folder: str) -> List[str]:
    """Every non-hidden file under `folder`, sorted (the order does not depend on the disk)."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += [os.path.join(root, f) for f in files if not f.startswith(".")]
    return sorted(out)


def columns(labels: Sequence[str]) -> List[str]:
    cols = ["path"]
    for label in labels:
        cols += [f"{label}:probability", f"{label}:calibrated", f"{label}:decision",
                 f"{label}:refer"]
    return cols + ["top_label", "positive", "error"]


def _row(path: str, result: "medvision.Classification") -> Dict[str, object]:
    positive = "|".join(s.label for s in result.scores if s.decision)
    row: Dict[str, object] = {"path": path, "top_label": result.top.label, "positive": positive,
                              "error": ""}
    for s in result.scores:
        row[f"{s.label}:probability"] = repr(s.probability)
        row[f"{s.label}:calibrated"] = "" if s.calibrated is None else repr(s.calibrated)
        row[f"{s.label}:decision"] = "" if s.decision is None else int(s.decision)
        row[f"{s.label}:refer"] = int(s.refer)
    return row


def score_files(model: "medvision.Model", folder: str, files: Sequence[str],
                batch: int = 16) -> List[Dict[str, object]]:
    """Rows for `files` (absolute), in order, run through `model` in batches of `batch`."""
    rows = []
    for start in range(0, len(files), batch):
        images, names = [], []
        for path in files[start:start + batch]:
            rel = os.path.relpath(path, folder)
            try:
                images.append(medvision.load_image(path))
                names.append(rel)
            except medvision.MedvisionError as e:
                rows.append({"path": rel, "error": f"{e.status_name}: {e}"})
        if images:
            for rel, result in zip(names, model.classify(images, batch_size=len(images))):
                rows.append(_row(rel, result))
    return rows


def write_csv(path: str, labels: Sequence[str], rows: Sequence[Dict[str, object]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns(labels))
        w.writeheader()
        for row in sorted(rows, key=lambda r: str(r["path"])):
            w.writerow(row)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--model", required=True, help="package name or folder")
    ap.add_argument("--out", required=True, help="CSV file to write")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0, help="LibTorch threads (0: its default)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--limit", type=int, default=0, help="only the first N files (sorted)")
    a = ap.parse_args(argv)

    files = list_files(a.folder)
    if a.limit:
        files = files[:a.limit]
    if not files:
        print(f"no files under {a.folder}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    with medvision.Model(a.model, a.device, num_threads=a.threads) as model:
        rows = score_files(model, a.folder, files, a.batch)
        write_csv(a.out, model.labels, rows)
    dt = time.perf_counter() - t0
    errors = sum(1 for r in rows if r.get("error"))
    print(f"{len(rows)} files ({errors} errors) in {dt:.1f} s ({len(rows) / dt:.1f} images/s) "
          f"-> {a.out}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
