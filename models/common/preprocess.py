"""The preprocessing ops of docs/model-package.md, in Python, exactly as the models were trained.

Every function takes float32 pixels in physical units, shape [C, H, W] (2D) or [C, D, H, W] (3D),
like the C++ runtime. `apply_steps(x, steps)` runs a manifest `preprocess` list; pack_data.py uses
the same functions, so packed training images == apply_steps(raw image, manifest steps minus the
final normalize) up to uint8 rounding (and the lossy DCT codec for Kermany).

Definitions the C++ side must match (documented in the report / model cards):
  * grey from RGB(A): ITU-R BT.601 luma 0.299 R + 0.587 G + 0.114 B in float, alpha ignored.
  * scale/percentile: numpy.percentile default ("linear", type 7: rank = p/100 * (n-1),
    linear interpolation between the sorted neighbours) over all pixels of the image (all
    channels), y = (x - lo) / (hi - lo), clipped to [0, 1]; hi <= lo gives all zeros.
  * resize/stretch: bilinear, half-pixel centres (align_corners=False), antialias = triangle
    filter widened by the scale factor when shrinking (torch interpolate antialias=True == PIL).
  * normalize/zscore nonzero: mean/std (population, ddof=0) over voxels != 0 of each channel;
    those voxels become (x-mean)/std, zero voxels STAY 0 (nnU-Net convention).
"""
from __future__ import annotations

import numpy as np

LUMA = (0.299, 0.587, 0.114)
CXR_MEAN = 0.5
CXR_STD = 0.25


def to_grey(a: np.ndarray) -> np.ndarray:
    """[H, W] or [H, W, 3|4] (as decoded by PIL/cv2 in RGB order) -> float32 [H, W]."""
    a = np.asarray(a)
    if a.ndim == 2:
        return a.astype(np.float32)
    rgb = a[..., :3].astype(np.float32)
    return (rgb[..., 0] * LUMA[0] + rgb[..., 1] * LUMA[1] + rgb[..., 2] * LUMA[2]).astype(np.float32)


def scale(x: np.ndarray, mode: str = "percentile", low: float = 0.5, high: float = 99.5,
          clip: bool = True, min: float | None = None, max: float | None = None) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if mode == "percentile":
        lo, hi = np.percentile(x.astype(np.float64), [low, high])
    elif mode == "minmax":
        lo, hi = float(x.min()), float(x.max())
    elif mode == "fixed":
        lo, hi = float(min), float(max)
    else:
        raise ValueError(mode)
    if not hi > lo:
        return np.zeros_like(x, np.float32)
    y = ((x.astype(np.float64) - lo) / (hi - lo)).astype(np.float32)
    return np.clip(y, 0.0, 1.0) if clip else y


def resize(x: np.ndarray, size, mode: str = "stretch", antialias: bool = True) -> np.ndarray:
    """x [C, H, W] float32 -> [C, size[0], size[1]] (bilinear, antialiased when shrinking)."""
    import torch
    import torch.nn.functional as F
    if mode != "stretch":
        raise NotImplementedError("only resize mode 'stretch' is used by the reference models")
    x = np.asarray(x, np.float32)
    if tuple(x.shape[-2:]) == tuple(size):
        return x.copy()
    t = torch.from_numpy(np.ascontiguousarray(x))[None]
    y = F.interpolate(t, size=tuple(int(s) for s in size), mode="bilinear", align_corners=False,
                      antialias=bool(antialias))
    return y[0].numpy()


def channels(x: np.ndarray, n: int) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if x.shape[0] == n:
        return x
    if x.shape[0] == 1:
        return np.repeat(x, n, axis=0)
    if x.shape[0] in (3, 4) and n == 1:
        return (x[0] * LUMA[0] + x[1] * LUMA[1] + x[2] * LUMA[2])[None].astype(np.float32)
    raise ValueError(f"channels: {x.shape[0]} -> {n}")


def normalize(x: np.ndarray, mean=None, std=None, mode: str | None = None, nonzero: bool = False,
              **kw) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if mode is None:
        c = x.shape[0]
        m = np.broadcast_to(np.asarray(mean, np.float32).reshape(-1), (c,))
        s = np.broadcast_to(np.asarray(std, np.float32).reshape(-1), (c,))
        sh = (c,) + (1,) * (x.ndim - 1)
        return ((x - m.reshape(sh)) / s.reshape(sh)).astype(np.float32)
    if mode == "zscore":
        return zscore(x, nonzero=nonzero)
    raise ValueError(mode)


def zscore(x: np.ndarray, nonzero: bool = True) -> np.ndarray:
    x = np.asarray(x, np.float32)
    out = np.zeros_like(x) if nonzero else np.empty_like(x)
    for c in range(x.shape[0]):
        v = x[c]
        m = v != 0 if nonzero else np.ones(v.shape, bool)
        vals = v[m].astype(np.float64)
        if vals.size == 0:
            continue
        mu, sd = vals.mean(), vals.std()
        out[c][m] = ((vals - mu) / max(sd, 1e-8)).astype(np.float32)
    return out


def apply_steps(x: np.ndarray, steps: list) -> np.ndarray:
    """Reference implementation of a manifest preprocess list (the subset the models use)."""
    for st in steps:
        op = st["op"]
        kw = {k: v for k, v in st.items() if k != "op"}
        if op == "monochrome":
            pass  # inputs here are MONOCHROME2-like already (PNG/JPEG/NIfTI)
        elif op == "scale":
            x = scale(x, **kw)
        elif op == "resize":
            x = resize(x, kw["size"], kw.get("mode", "stretch"), kw.get("antialias", True))
        elif op == "channels":
            x = channels(x, kw["channels"])
        elif op == "normalize":
            x = normalize(x, **kw)
        elif op in ("reorient", "resample"):
            pass  # BraTS volumes: reoriented with nibabel at pack time; 1 mm iso already
        else:
            raise NotImplementedError(op)
    return x


def cxr_steps(size, n_channels: int = 1) -> list:
    return [
        {"op": "monochrome"},
        {"op": "scale", "mode": "percentile", "low": 0.5, "high": 99.5, "clip": True},
        {"op": "resize", "mode": "stretch", "size": [int(size[0]), int(size[1])], "antialias": True},
        {"op": "channels", "channels": int(n_channels)},
        {"op": "normalize", "mean": [CXR_MEAN] * n_channels, "std": [CXR_STD] * n_channels},
    ]


def brain_steps(spacing=(1.0, 1.0, 1.0)) -> list:
    return [
        {"op": "reorient", "to": "RAS"},
        {"op": "resample", "spacing": [float(s) for s in spacing], "order": 1},
        {"op": "normalize", "mode": "zscore", "nonzero": True},
    ]


def cxr_pack_image(a: np.ndarray, size) -> np.ndarray:
    """Decoded 2D image (grey or RGB[A]) -> uint8 [H, W]: the manifest steps up to (not incl.)
    channels/normalize, quantised to 0..255. Training does x = u8 / 255, aug, (x - .5) / .25."""
    g = to_grey(a)[None]
    g = scale(g, "percentile", 0.5, 99.5, True)
    g = resize(g, size, "stretch", True)
    return np.clip(np.round(g[0] * 255.0), 0, 255).astype(np.uint8)
