#!/usr/bin/env python3
"""Pack the training data of one reference model into .devdata/<name>/pack.npz.

Runs on the workstation (needs numpy, torch, PIL, nibabel). The packed file is what a GPU run
carries (see models/run_gpu.sh); it holds images already put through the manifest steps up to,
but not including, `channels`/`normalize` (scale percentile 0.5/99.5 + clip, antialiased resize),
quantised to uint8; labels; the deterministic patient-level split; ids.

  python3 models/tools/pack_data.py cxr-pneumonia   # Kermany, DCT q85 (lossy, ~52 dB)   run A
  python3 models/tools/pack_data.py cxr-lungs       # JSRT 256x256 + 4-class label maps  run A
  python3 models/tools/pack_data.py cxr-findings    # NIH 224 (+64px set); cxr-edema too run B
  python3 models/tools/pack_data.py brain-tumour    # BraTS 7 cases, brain bbox, lossless run B
  python3 models/tools/pack_data.py all
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import data_root, devdata_dir, log  # noqa: E402
from common.packio import save_pack, load_pack, pack_summary  # noqa: E402
from common.preprocess import cxr_pack_image  # noqa: E402
from common.splits import patient_split, kermany_patient  # noqa: E402

SEED = 20240611
NIH_FINDINGS = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Effusion", "Emphysema", "Fibrosis",
                "Hernia", "Infiltration", "Mass", "Nodule", "Pleural_Thickening", "Pneumonia", "Pneumothorax"]


def _read_csv(p):
    with open(p, newline="") as f:
        return list(csv.DictReader(f))


def _imread(p):
    from PIL import Image
    with Image.open(p) as im:
        im.load()
        if im.mode in ("I;16", "I;16B", "I"):
            return np.asarray(im, dtype=np.float32)
        if im.mode not in ("L", "RGB", "RGBA"):
            im = im.convert("RGB")
        return np.asarray(im)


def _pool_map(fn, items, workers):
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(workers) as ex:
        return list(ex.map(fn, items))


def pack_pneumonia(root: Path, out: Path, args):
    rows = _read_csv(root / "kermany" / "labels.csv")
    paths = [r["path"] for r in rows]
    label = np.array([1 if r["label"] == "PNEUMONIA" else 0 for r in rows], np.uint8)
    subtype = [r.get("pneumonia_subtype", "") for r in rows]
    patients = [kermany_patient(p) for p in paths]
    is_val = patient_split(patients, 0.15, SEED, strata=label)
    t = time.time()
    imgs = np.stack(_pool_map(lambda p: cxr_pack_image(_imread(root / "kermany" / p), (224, 224)), paths, args.workers))
    log(f"  decoded+preprocessed {len(imgs)} images in {time.time() - t:.0f}s")
    meta = {"name": "cxr-pneumonia", "source": "kermany", "labels": ["Pneumonia"], "size": [224, 224],
            "ids": paths, "patients": patients, "subtype": subtype, "seed": SEED, "val_frac": 0.15,
            "preprocess": "grey(BT.601) -> scale percentile 0.5/99.5 clip -> resize 224 stretch antialias -> uint8",
            "codec_note": f"images stored with the lossy DCT codec, quality {args.quality}"}
    save_pack(out, meta, {"images": imgs, "label": label, "is_val": is_val.astype(np.uint8)},
              codecs={"images": "dct" if args.quality < 100 else "lzma"}, quality=args.quality)
    _report_split("cxr-pneumonia", label[:, None], is_val, patients, ["Pneumonia"])
    if args.check:
        _, a = load_pack(out, names=["images"])
        err = a["images"].astype(np.float64) - imgs
        log(f"  DCT check: PSNR {10 * np.log10(255 ** 2 / max((err ** 2).mean(), 1e-12)):.1f} dB, max abs {np.abs(err).max():.0f}")


def pack_lungs(root: Path, out: Path, args):
    from PIL import Image
    rows = _read_csv(root / "jsrt" / "labels.csv")
    size = (256, 256)
    classes = ["background", "left_lung", "right_lung", "heart"]
    import torch
    import torch.nn.functional as F

    def one(r):
        img = cxr_pack_image(_imread(root / "jsrt" / r["image"]), size)
        ms = []
        for key in ("mask_left_lung", "mask_right_lung", "mask_heart"):
            m = (np.asarray(Image.open(root / "jsrt" / r[key]).convert("L")) > 127).astype(np.float32)
            ms.append(m)
        t = torch.from_numpy(np.stack(ms))[None]
        t = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)[0].numpy()
        lab = np.zeros(size, np.uint8)
        best = np.argmax(t, 0)
        lab[t.max(0) >= 0.5] = (best + 1)[t.max(0) >= 0.5]
        return img, lab

    res = _pool_map(one, rows, args.workers)
    imgs = np.stack([r[0] for r in res])
    labs = np.stack([r[1] for r in res])
    cases = [r["case"] for r in rows]
    nodule = np.array([int(r["nodule"]) for r in rows], np.uint8)
    is_val = patient_split(cases, 0.2, SEED, strata=nodule)  # one image per patient in JSRT
    meta = {"name": "cxr-lungs", "source": "jsrt", "classes": classes, "size": list(size), "ids": cases,
            "seed": SEED, "val_frac": 0.2, "pixel_mm_at_256": 0.175 * 2048 / 256,
            "mask_note": "SCR masks (patient left/right) resized with antialiased bilinear, label = argmax of "
                         "left/right/heart coverage where max coverage >= 0.5, else background",
            "preprocess": "scale percentile 0.5/99.5 clip -> resize 256 stretch antialias -> uint8"}
    save_pack(out, meta, {"images": imgs, "labels": labs, "nodule": nodule, "is_val": is_val.astype(np.uint8)},
              codecs={"images": "lzma", "labels": "lzma"})
    log(f"  cxr-lungs: {len(cases)} cases, val {int(is_val.sum())}; class pixel fractions "
        f"{[round(float((labs == k).mean()), 3) for k in range(4)]}")


def pack_findings(root: Path, out: Path, args):
    """NIH ChestX-ray14: nih14/ (320 px -> 224) and nih14-64px/ (64 px kept; the trainer upsamples
    it to 224 exactly as the runtime's resize step would). Shared by cxr-findings and cxr-edema."""
    ra = _read_csv(root / "nih14" / "labels.csv")
    rb = _read_csv(root / "nih14-64px" / "labels.csv")
    names_a = {r["image"] for r in ra}
    rb = [r for r in rb if r["image_index"] not in names_a]  # drop the images present in both sets
    ids = [r["image"] for r in ra] + [r["image_index"] for r in rb]
    patients = [i[:8] for i in ids]
    src = np.array([0] * len(ra) + [1] * len(rb), np.uint8)
    fl = [r["labels"] for r in ra] + [r["finding_labels"] for r in rb]
    Y = np.array([[1 if f in s.split("|") else 0 for f in NIH_FINDINGS] for s in fl], np.uint8)
    counts = Y.sum(0)
    train_labels = [f for f, c in zip(NIH_FINDINGS, counts) if c >= args.min_pos]
    for must in ("Edema", "Pneumonia"):
        if must not in train_labels:
            train_labels.append(must)
    train_labels = [f for f in NIH_FINDINGS if f in train_labels]
    edema = Y[:, NIH_FINDINGS.index("Edema")]
    is_val = patient_split(patients, 0.25, SEED, strata=edema)
    imgs_a = np.stack(_pool_map(lambda r: cxr_pack_image(_imread(root / "nih14" / "images" / r["image"]), (224, 224)),
                                ra, args.workers))
    imgs_b = np.stack(_pool_map(lambda r: cxr_pack_image(_imread(root / "nih14-64px" / r["path"]), (64, 64)),
                                rb, args.workers))
    meta = {"name": "cxr-findings", "sources": ["nih14 (320px -> 224)", "nih14-64px (64px, upsample to 224 at load)"],
            "findings": NIH_FINDINGS, "train_labels": train_labels, "counts": dict(zip(NIH_FINDINGS, counts.tolist())),
            "size": [224, 224], "ids": ids, "patients": patients, "seed": SEED, "val_frac": 0.25,
            "split_note": "patient-level over the union of both sets, stratified by Edema; 3 images present in both "
                          "sets kept once (320px version)",
            "preprocess": "grey(BT.601) -> scale percentile 0.5/99.5 clip -> resize (224 | 64) antialias -> uint8"}
    save_pack(out, meta, {"images_a": imgs_a, "images_b": imgs_b, "labels": Y, "source": src,
                          "is_val": is_val.astype(np.uint8)},
              codecs={"images_a": "lzma", "images_b": "lzma"})
    _report_split("cxr-findings", Y, is_val, patients, NIH_FINDINGS)
    log(f"  train labels (>= {args.min_pos} positives + Edema, Pneumonia): {train_labels}")


def pack_brain(root: Path, out: Path, args):
    import nibabel as nib
    base = root / "brats" / "bratsreg2018-flair-t1"
    cases = sorted(p.name for p in base.iterdir() if p.is_dir() and (p / "GT_W.nii.gz").exists())
    arrays, recs = {}, []
    for c in cases:
        vols = []
        for m in ("FLAIR", "T1", "GT_W"):
            im = nib.as_closest_canonical(nib.load(str(base / c / f"{m}.nii.gz")))  # -> RAS
            a = np.asarray(im.dataobj, dtype=np.float32).transpose(2, 1, 0)  # [z, y, x] = [D, H, W]
            vols.append(a)
            zooms = [float(z) for z in im.header.get_zooms()[:3]][::-1]
        f, t1, gt = vols
        nz = (f != 0) | (t1 != 0)
        idx = np.argwhere(nz)
        lo, hi = idx.min(0), idx.max(0) + 1
        sl = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
        img = np.stack([f[sl], t1[sl]])
        assert np.all(img == np.round(img)) and img.min() >= 0 and img.max() < 65536, "expected integer intensities"
        assert not (gt[~nz] > 0).any(), "tumour outside the brain bbox"
        arrays[f"img_{c}"] = img.astype(np.uint16)
        arrays[f"gt_{c}"] = gt[sl] > 0.5
        sid = (base / c / "subject_id.txt").read_text().split()[-1] if (base / c / "subject_id.txt").exists() else c
        recs.append({"case": c, "subject": sid, "full_shape": list(f.shape), "bbox_lo": lo.tolist(),
                     "bbox_hi": hi.tolist(), "spacing_zyx": zooms, "tumour_voxels": int((gt > 0.5).sum())})
        log(f"  {c} {sid}: bbox {(hi - lo).tolist()} tumour {recs[-1]['tumour_voxels']}")
    rng = np.random.RandomState(SEED)
    val_cases = sorted(np.array(cases)[rng.permutation(len(cases))[:args.brain_val]].tolist())
    meta = {"name": "brain-tumour", "cases": recs, "val_cases": val_cases, "channels": ["FLAIR", "T1"],
            "seed": SEED, "orientation": "nibabel as_closest_canonical (RAS) then array [z, y, x] = [D, H, W]",
            "note": "raw integer intensities cropped to the FLAIR|T1 nonzero bbox (lossless uint16); "
                    "z-score per channel over nonzero voxels is done by the trainer, as in the manifest"}
    codecs = {k: ("lzma-planes" if k.startswith("img_") else "bits") for k in arrays}
    save_pack(out, meta, arrays, codecs=codecs)
    log(f"  brain-tumour: {len(cases)} cases, validation {val_cases}")


def _report_split(name, Y, is_val, patients, labels):
    p = np.asarray(patients)
    log(f"  {name}: {len(Y)} images, {len(set(p.tolist()))} patients; val {int(is_val.sum())} images "
        f"/ {len(set(p[is_val].tolist()))} patients; train/val patient overlap "
        f"{len(set(p[is_val].tolist()) & set(p[~is_val].tolist()))}")
    for j, lab in enumerate(labels):
        log(f"    {lab:20s} positives train {int(Y[~is_val, j].sum()):5d} val {int(Y[is_val, j].sum()):5d}")


PACKERS = {"cxr-pneumonia": pack_pneumonia, "cxr-lungs": pack_lungs, "cxr-findings": pack_findings,
           "brain-tumour": pack_brain}
RUNS = {"A": ["cxr-pneumonia", "cxr-lungs"], "B": ["cxr-findings", "brain-tumour"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", choices=list(PACKERS) + ["all", "sizes"])
    ap.add_argument("--data-root", default=None, help="default: $MEDVISION_DATA or ../shared/data")
    ap.add_argument("--outdir", default=str(devdata_dir()))
    ap.add_argument("--quality", type=int, default=85, help="DCT quality for Kermany (100 = lossless lzma)")
    ap.add_argument("--min-pos", type=int, default=30, help="NIH findings kept as labels need this many positives")
    ap.add_argument("--brain-val", type=int, default=2, help="BraTS cases held out for validation")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--check", action="store_true", help="decode again and report the codec error")
    args = ap.parse_args()
    root = Path(args.data_root) if args.data_root else data_root()
    names = list(PACKERS) if args.name == "all" else ([] if args.name == "sizes" else [args.name])
    for n in names:
        d = Path(args.outdir) / n
        d.mkdir(parents=True, exist_ok=True)
        t = time.time()
        log(f"[pack] {n} from {root}")
        PACKERS[n](root, d / "pack.npz", args)
        log(f"[pack] {n}: {d / 'pack.npz'} {(d / 'pack.npz').stat().st_size / 2 ** 20:.2f} MiB in {time.time() - t:.0f}s")
        (d / "pack_info.json").write_text(json.dumps(pack_summary(d / "pack.npz"), indent=1) + "\n")
    # per-run carry sizes
    for run, members in RUNS.items():
        tot = 0.0
        parts = []
        for n in members:
            f = Path(args.outdir) / n / "pack.npz"
            if f.exists():
                s = f.stat().st_size / 2 ** 20
                tot += s
                parts.append(f"{n} {s:.1f}")
        init = Path(args.outdir) / "init"
        if run == "B" and init.exists():
            s = sum(f.stat().st_size for f in init.glob("*")) / 2 ** 20
            tot += s
            parts.append(f"init {s:.1f}")
        log(f"[sizes] run {run}: {tot:.1f} MiB ({', '.join(parts)})")


if __name__ == "__main__":
    main()
