#!/usr/bin/python3
"""Writes the reference outputs that tests/unit/preprocess compares medvision's preprocessing
against, computed independently with numpy / torch / torchvision.

Usage: make_preprocess_reference.py OUT_DIR DATA_ROOT
Run by CTest as the fixture of unit_preprocess. Needs /usr/bin/python3 with numpy, torch,
torchvision and cv2 (Debian 12: python3-torch, python3-torchvision, python3-opencv).
"""
import os
import sys

import cv2
import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms as T


def load(path):
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise SystemExit(f"cannot read {path}")
    if img.ndim == 3:  # as the C++ test: BGR(A) -> grey is not wanted, keep the first plane
        img = img[:, :, 0]
    return img.astype(np.float32)


def resize(img, size, antialias):
    t = torch.from_numpy(img)[None, None]
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False,
                         antialias=antialias)[0, 0].numpy()


def main():
    out, data = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    save = lambda name, a: np.save(os.path.join(out, name + ".npy"),
                                   np.ascontiguousarray(a, dtype=np.float32))
    nih = os.path.join(data, "nih14", "images", "00000075_000.png")
    jsrt = os.path.join(data, "jsrt", "images", "JPCLN001.png")
    a, b = load(nih), load(jsrt)

    save("nih_resize224_aa", resize(a, (224, 224), True))
    save("nih_resize224_noaa", resize(a, (224, 224), False))
    save("nih_resize500x410_aa", resize(a, (500, 410), True))
    save("jsrt_resize224x200_aa", resize(b, (224, 200), True))
    save("jsrt_resize97x131_aa", resize(b, (97, 131), True))

    # numpy.percentile (linear) and the scale step built on it.
    lo, hi = np.percentile(a, [0.5, 99.5])
    save("nih_percentile", np.array([lo, hi]))
    save("nih_scale_percentile", np.clip((a - np.float32(lo)) / np.float32(hi - lo), 0, 1))

    # torchvision Resize(shorter side) + CenterCrop on a non-square image (JSRT, 384 x 300).
    c = b[:, :300]
    tv = T.Compose([T.Resize(224, antialias=True), T.CenterCrop(224)])
    save("jsrt300_centercrop224", tv(torch.from_numpy(np.ascontiguousarray(c))[None])[0].numpy())
    # Letterbox: scale to fit (224 x 175), pad (224 - 175) // 2 = 24 left, 25 right.
    r = resize(np.ascontiguousarray(c), (224, 175), True)
    save("jsrt300_letterbox224", np.pad(r, ((0, 0), (24, 25))))

    # Trilinear resampling of a synthetic volume, spacing (2.5, 0.8, 0.8) -> (1.5, 1.2, 1.0).
    rng = np.random.default_rng(7)
    vol = rng.random((7, 20, 30), dtype=np.float32) * 100
    size = [int(round(n * s / t)) for n, s, t in zip(vol.shape, (2.5, 0.8, 0.8), (1.5, 1.2, 1.0))]
    save("vol_input", vol)
    save("vol_resampled", F.interpolate(torch.from_numpy(vol)[None, None], size=size,
                                        mode="trilinear", align_corners=False)[0, 0].numpy())
    # z-score over non-zero voxels (MONAI NormalizeIntensity(nonzero=True)), population std.
    v = vol.copy()
    v[:, :5] = 0
    save("vol_zero_rows", v)
    nz = v != 0
    z = np.zeros_like(v)
    z[nz] = (v[nz] - v[nz].mean(dtype=np.float64)) / v[nz].std(dtype=np.float64)
    save("vol_zscore_nonzero", z)


if __name__ == "__main__":
    main()
