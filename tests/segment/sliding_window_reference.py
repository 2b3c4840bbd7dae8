"""An independent Python (torch + nibabel) implementation of what `medvision segment` does for a
3D model whose manifest says reorient RAS -> (1 mm resample, identity here) -> z-score over
non-zero voxels -> Gaussian sliding window -> sigmoid/softmax, with the probabilities brought back
to the input file's voxel grid. Used by test_brats_parity.py (parity < 1e-4) and by
benchmarks/segment_bench.py (the Python peer).

The sliding window follows MONAI's sliding_window_inference: windows at stride
int(roi * (1 - overlap)) with the last one moved back to end flush with the volume
(monai.data.utils.dense_patch_slices), symmetric zero padding up to one window, sw_batch_size
windows per forward pass, raw outputs blended with a Gaussian importance map (sigma = 0.125 *
roi; as medvision documents it: centred at (roi - 1) / 2, peak 1, floored at 1e-3) and divided by
the summed weights.
"""
from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import torch


def gaussian_importance(roi, sigma_scale=0.125):
    w = None
    for p in roi:
        x = torch.arange(p, dtype=torch.float64)
        c = (p - 1) / 2.0
        s = sigma_scale * p
        g = torch.exp(-((x - c) ** 2) / (2 * s * s))
        g = g / g.max()
        w = g if w is None else w[..., None] * g
    return torch.clamp(w, min=1e-3).float()


def scan_starts(size, roi, overlap):
    interval = roi if size == roi else int(roi * (1 - overlap))
    interval = max(interval, 1)
    num = int(math.ceil(size / interval))
    n = next((d for d in range(num) if d * interval + roi >= size), num - 1) + 1
    return [i * interval - max(i * interval + roi - size, 0) for i in range(n)]


@torch.no_grad()
def sliding_window_inference(x, roi, predictor, overlap=0.5, sw_batch_size=4):
    """x: [C, *spatial] float32 tensor -> blended raw outputs [K, *spatial]."""
    spatial = list(x.shape[1:])
    pad = []
    for s, r in zip(reversed(spatial), reversed(roi)):
        d = max(r - s, 0)
        pad += [d // 2, d - d // 2]
    if any(pad):
        x = torch.nn.functional.pad(x, pad)
    full = list(x.shape[1:])
    starts = [scan_starts(full[a], roi[a], overlap) for a in range(len(roi))]
    grid = [[]]
    for s in starts:
        grid = [g + [v] for g in grid for v in s]
    weight = gaussian_importance(roi)
    acc = None
    norm = torch.zeros(full)
    for b in range(0, len(grid), sw_batch_size):
        wins = grid[b:b + sw_batch_size]
        sl = [tuple(slice(v, v + r) for v, r in zip(w, roi)) for w in wins]
        batch = torch.stack([x[(slice(None),) + s] for s in sl])
        y = predictor(batch).float()
        if acc is None:
            acc = torch.zeros([y.shape[1]] + full)
        for j, s in enumerate(sl):
            acc[(slice(None),) + s] += y[j] * weight
            norm[s] += weight
    out = acc / norm
    crop = tuple(slice(pad[2 * (len(roi) - 1 - a)], pad[2 * (len(roi) - 1 - a)] + spatial[a])
                 for a in range(len(roi)))
    return out[(slice(None),) + crop]


def zscore_nonzero(v):
    """Per channel, over non-zero voxels (population std), zeros kept at zero."""
    out = np.zeros_like(v, dtype=np.float32)
    for c in range(v.shape[0]):
        ch = v[c].astype(np.float64)
        nz = ch != 0
        mean = ch[nz].mean()
        sd = ch[nz].std()
        out[c] = np.where(nz, (ch - mean) / sd, 0.0).astype(np.float32)
    return out


def segment_files(paths, model, roi, overlap=0.5, sw_batch_size=4, activation="sigmoid"):
    """NIfTI channel files -> probabilities [K, k, j, i] on the first file's voxel grid, in the
    array order medvision uses for an image (slice, row, column)."""
    imgs = [nib.load(str(p)) for p in paths]
    ornt = nib.orientations.io_orientation(imgs[0].affine)  # file axes -> RAS
    chans = []
    for im in imgs:
        data = np.asarray(im.dataobj, dtype=np.float32)
        volumes = [data] if data.ndim == 3 else [data[..., c] for c in range(data.shape[3])]
        for v in volumes:  # a 4D file holds its channels along the 4th axis
            ras = nib.orientations.apply_orientation(v, ornt)  # [R, A, S] axes
            chans.append(ras.transpose(2, 1, 0))  # medvision's array order [S, A, R]
        del data, volumes
    x = zscore_nonzero(np.stack(chans))
    del chans
    out = sliding_window_inference(torch.from_numpy(x), roi, model, overlap, sw_batch_size)
    out = torch.softmax(out, 0) if activation == "softmax" else torch.sigmoid(out)
    prob = out.numpy()
    back = []
    undo = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt(("R", "A", "S")), ornt)
    for k in range(prob.shape[0]):
        ras = prob[k].transpose(2, 1, 0)  # back to [R, A, S]
        file_grid = nib.orientations.apply_orientation(ras, undo)  # [i, j, k] of the file
        back.append(file_grid.transpose(2, 1, 0))  # medvision order [k, j, i]
    return np.ascontiguousarray(np.stack(back))
