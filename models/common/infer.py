"""Sliding-window inference with Gaussian blending (torch only), as the runtime's
`segmentation: {overlap, blend: gaussian}` is expected to do: windows of the model's patch size
at stride patch*(1-overlap) (first/last window flush with the volume edges), logits weighted by an
isotropic Gaussian (sigma = patch/8 per axis, peak 1, floored at 1e-3) and divided by
the summed weights. Volumes smaller than the patch are zero-padded at the end."""
from __future__ import annotations

import math

import torch


def gaussian_weight(patch, device, sigma_scale=0.125):
    axes = []
    for p in patch:
        c = (p - 1) / 2.0
        s = p * sigma_scale
        x = torch.arange(p, device=device, dtype=torch.float32)
        axes.append(torch.exp(-((x - c) ** 2) / (2 * s * s)))
    w = axes[0]
    for a in axes[1:]:
        w = w[..., None] * a
    w = w / w.max()
    return w.clamp_(min=1e-3)


def _starts(dim, p, overlap):
    if dim <= p:
        return [0]
    step = p * (1 - overlap)
    n = int(math.ceil((dim - p) / step)) + 1
    return [int(round(i * (dim - p) / (n - 1))) for i in range(n)]


@torch.no_grad()
def sliding_window(model, vol, patch, overlap=0.5, batch=4, amp_ctx=None):
    """vol [C, *spatial] on the model's device -> logits [K, *spatial] (float32)."""
    import contextlib
    nd = len(patch)
    spatial = list(vol.shape[1:])
    pad = [max(p - s, 0) for p, s in zip(patch, spatial)]
    if any(pad):
        pads = []
        for q in reversed(pad):
            pads += [0, q]
        vol = torch.nn.functional.pad(vol, pads)
    full = list(vol.shape[1:])
    w = gaussian_weight(patch, vol.device)
    grids = [_starts(full[i], patch[i], overlap) for i in range(nd)]
    coords = [[]]
    for g in grids:
        coords = [c + [s] for c in coords for s in g]
    acc, norm = None, torch.zeros(full, device=vol.device)
    ctx = amp_ctx if amp_ctx is not None else contextlib.nullcontext()
    for i in range(0, len(coords), batch):
        cs = coords[i:i + batch]
        xs = torch.stack([vol[(slice(None),) + tuple(slice(c, c + p) for c, p in zip(co, patch))] for co in cs])
        with ctx:
            y = model(xs).float()
        if acc is None:
            acc = torch.zeros([y.shape[1]] + full, device=vol.device)
        for j, co in enumerate(cs):
            sl = tuple(slice(c, c + p) for c, p in zip(co, patch))
            acc[(slice(None),) + sl] += y[j] * w
            norm[sl] += w
    out = acc / norm
    return out[(slice(None),) + tuple(slice(0, s) for s in spatial)]
