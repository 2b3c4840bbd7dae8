"""Batched, on-device training augmentation (torch only). Training-time only: nothing here is
part of the manifest. Inputs are float tensors in [0, 1] (2D CXR) or z-scored volumes (3D)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _rand(n, lo, hi, g, device):
    """Uniform [lo, hi) on `device`; `g` is a torch.Generator living on that same device."""
    return lo + (hi - lo) * torch.rand(n, generator=g, device=device)


def _u(g, device, *shape):
    return torch.rand(*shape, generator=g, device=device)


def affine_matrices_2d(n, device, g, rot_deg=10.0, scale=(0.85, 1.15), shift=0.08, shear_deg=5.0,
                       aspect=(0.9, 1.1), p=0.9):
    """Random [n, 2, 3] theta for F.affine_grid (output->input mapping, normalised coords)."""
    a = _rand(n, -rot_deg, rot_deg, g, device) * math.pi / 180
    sh = _rand(n, -shear_deg, shear_deg, g, device) * math.pi / 180
    s = _rand(n, math.log(scale[0]), math.log(scale[1]), g, device).exp()
    asp = _rand(n, math.log(aspect[0]), math.log(aspect[1]), g, device).exp().sqrt()
    sx, sy = s * asp, s / asp
    tx, ty = _rand(n, -shift, shift, g, device) * 2, _rand(n, -shift, shift, g, device) * 2
    cos, sin = torch.cos(a), torch.sin(a)
    # input = R * Shear * (1/S) * output + t   (zoom in when s > 1)
    m00 = cos / sx
    m01 = (-sin + cos * torch.tan(sh)) / sy
    m10 = sin / sx
    m11 = (cos + sin * torch.tan(sh)) / sy
    theta = torch.stack([torch.stack([m00, m01, tx], 1), torch.stack([m10, m11, ty], 1)], 1)
    keep = _u(g, device, n) >= p
    ident = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]], device=device).expand(n, 2, 3)
    return torch.where(keep[:, None, None], ident, theta)


def cxr_augment(x, g, y=None, geometric=True, intensity=True, res_p=0.0, res_min=56, noise=0.02, site=None):
    """x [N, C, H, W] in [0, 1]; y optional integer label map [N, H, W] transformed alike
    (nearest). Returns (x, y). All ops are batched on x.device.
    site: None (default: the augmentation every CXR model was trained with) or a dict of the
    site-shift extras (SITE_DEFAULTS; cxr-pneumonia 2.0): wider zoom, window/LUT curves,
    blur/sharpen, black/white frames, burnt-in text markers. Image-only (y must be None)."""
    n, _, h, w = x.shape
    dev = x.device
    if site is not None:
        if y is not None:
            raise ValueError("site-shift augmentation is for image-only batches")
        site = {**SITE_DEFAULTS, **site}
    if geometric:
        theta = (affine_matrices_2d(n, dev, g) if site is None else
                 affine_matrices_2d(n, dev, g, scale=site["scale"], p=0.9))
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if y is not None:
            y = F.grid_sample(y[:, None].float(), grid, mode="nearest", padding_mode="zeros",
                              align_corners=False)[:, 0].round().long()
    if res_p > 0:  # resolution augmentation: down- then up-sample a random subset
        sel = (_u(g, dev, n) < res_p).cpu()
        if bool(sel.any()):
            idx = sel.nonzero()[:, 0].to(dev)
            r = int(res_min + float(_u(g, dev, 1)) * (h - res_min))
            lo = F.interpolate(x[idx], size=(r, int(round(r * w / h))), mode="bilinear", align_corners=False,
                               antialias=True)
            x = x.clone()
            x[idx] = F.interpolate(lo, size=(h, w), mode="bilinear", align_corners=False)
    if site is not None:
        x = site_shift_augment(x, g, site)
    if intensity:
        c = _rand(n, 0.75, 1.3, g, dev).view(n, 1, 1, 1)
        b = _rand(n, -0.12, 0.12, g, dev).view(n, 1, 1, 1)
        gam = _rand(n, math.log(0.7), math.log(1.4), g, dev).exp().view(n, 1, 1, 1)
        x = x.clamp(0, 1).pow(gam)
        x = (x - 0.5) * c + 0.5 + b
        if noise > 0:
            sig = _rand(n, 0, noise, g, dev).view(n, 1, 1, 1)
            x = x + sig * torch.randn(x.shape, generator=g, device=dev)
        x = x.clamp(0, 1)  # the runtime's scale step clips to [0, 1]
    return x, y


# ------------------------------------------------------------------ site-shift extras (cxr-pneumonia 2.0)

SITE_DEFAULTS = {
    "scale": (0.75, 1.3),      # affine zoom range (crops / zoomed-out with a black surround)
    "p_window": 0.3,           # a different window: clip at per-image quantiles, rescale
    "p_lut": 0.3,              # log / exp LUT (lifted darks or compressed brights)
    "p_blur": 0.35,            # unsharp mask with amount in [-1, 1.5]: -1 = Gaussian blur, > 0 = sharpen
    "p_frame": 0.25,           # black or white frame of 0-15 % per side
    "p_text": 0.35,            # burnt-in markers (L/R, short label lines)
}

# 5x7 bitmap glyphs for burnt-in markers (rows top to bottom, 5 bits each)
_GLYPHS = {
    "L": [16, 16, 16, 16, 16, 16, 31], "R": [30, 17, 17, 30, 20, 18, 17], "A": [14, 17, 17, 31, 17, 17, 17],
    "P": [30, 17, 17, 30, 16, 16, 16], "S": [15, 16, 16, 14, 1, 1, 30], "U": [17, 17, 17, 17, 17, 17, 14],
    "E": [31, 16, 16, 30, 16, 16, 31], "T": [31, 4, 4, 4, 4, 4, 4], "C": [14, 17, 16, 16, 16, 17, 14],
    "0": [14, 17, 19, 21, 25, 17, 14], "1": [4, 12, 4, 4, 4, 4, 14], "2": [14, 17, 1, 2, 4, 8, 31],
    "3": [31, 2, 4, 2, 1, 17, 14], "7": [31, 1, 2, 4, 8, 8, 8], "/": [1, 1, 2, 4, 8, 16, 16],
}
_GLYPH_KEYS = list(_GLYPHS)


_GLYPH_CACHE: dict = {}


def _glyph_mask(ch, s, device):
    """Bool mask [7s, 5s] of a glyph at font pixel size s (cached)."""
    key = (ch, s, str(device))
    if key not in _GLYPH_CACHE:
        rows = _GLYPHS[ch]
        gl = torch.tensor([[(r >> (4 - b)) & 1 for b in range(5)] for r in rows], dtype=torch.bool)
        _GLYPH_CACHE[key] = gl.repeat_interleave(s, 0).repeat_interleave(s, 1).to(device)
    return _GLYPH_CACHE[key]


def _stamp_text(x, i, g, dev):
    """Burn 1-2 markers into image i of x (in place): an L/R letter near a top corner, sometimes a
    short label line near the bottom; white mostly, sometimes grey or black."""
    _, _, h, w = x.shape
    r = torch.rand(12, generator=g, device=dev).tolist()
    val = 1.0 if r[0] < 0.75 else (0.6 if r[0] < 0.9 else 0.0)
    px = max(1, int(round(h / 224 * (2 + 3 * r[1]))))  # font pixel size: 2-5 px at 224
    items = [("L" if r[2] < 0.5 else "R", int((0.03 + 0.06 * r[3]) * h),
              int((0.03 + 0.08 * r[4]) * w) if r[5] < 0.5 else int((0.82 + 0.08 * r[4]) * w))]
    if r[6] < 0.5:
        k = torch.randint(0, len(_GLYPH_KEYS), (int(3 + 5 * r[7]),), generator=g, device=dev).tolist()
        items.append(("".join(_GLYPH_KEYS[j] for j in k), int((0.85 + 0.08 * r[8]) * h), int((0.03 + 0.3 * r[9]) * w)))
    spx = max(1, px // 2) if len(items) > 1 else px
    for txt, y0, x0 in items:
        s = px if len(txt) == 1 else spx
        for c_i, ch in enumerate(txt):
            gl = _glyph_mask(ch, s, dev)
            gy, gx = gl.shape
            xs = x0 + c_i * 6 * s
            if y0 + gy > h or xs + gx > w:
                break
            x[i, :, y0:y0 + gy, xs:xs + gx].masked_fill_(gl, val)


def site_shift_augment(x, g, site):
    """The site-shift extras on x [N, C, H, W] in [0, 1] (see SITE_DEFAULTS)."""
    n, c, h, w = x.shape
    dev = x.device
    x = x.clamp(0, 1)
    # different window: clip at quantiles lo in [0, 8 %], hi in [88, 100 %] of the image, rescale
    sel = _u(g, dev, n) < site["p_window"]
    ql = _rand(n, 0.0, 0.08, g, dev)
    qh = _rand(n, 0.88, 1.0, g, dev)
    if bool(sel.any()):
        idx = sel.nonzero()[:, 0]
        flat = x[idx].reshape(len(idx), -1)
        sub = flat[:, ::7]  # quantiles of a strided subsample are plenty for a window
        srt = sub.sort(1).values
        m = sub.shape[1] - 1
        lo = srt.gather(1, (ql[idx] * m).long()[:, None])
        hi = srt.gather(1, (qh[idx] * m).long()[:, None])
        x = x.clone()
        x[idx] = ((flat - lo) / (hi - lo).clamp(min=1e-3)).clamp(0, 1).view(len(idx), c, h, w)
    # log LUT (a > 0) or its inverse (a < 0): lifted darks / compressed brights, or the opposite
    sel = _u(g, dev, n) < site["p_lut"]
    a_all = _rand(n, 1.0, 6.0, g, dev).view(n, 1, 1, 1)
    inv_all = (_u(g, dev, n) < 0.4).view(n, 1, 1, 1)
    if bool(sel.any()):
        idx = sel.nonzero()[:, 0]
        a, inv, xs = a_all[idx], inv_all[idx], x[idx]
        lg = torch.log1p(a * xs) / torch.log1p(a)
        ex = torch.expm1(xs * torch.log1p(a)) / a
        x = x.clone()
        x[idx] = torch.where(inv, ex, lg)
    # blur / sharpen: x + amount * (x - gauss_sigma(x)), amount in [-1, 1.5], sigma 0.7-2.5 px @224
    sel = _u(g, dev, n) < site["p_blur"]
    sig = _rand(n, 0.7, 2.5, g, dev) * (h / 224)
    amt = _rand(n, -1.0, 1.5, g, dev)
    if bool(sel.any()):
        idx = sel.nonzero()[:, 0]
        k_n = len(idx)
        r = int(math.ceil(3 * 2.5 * h / 224))
        t = torch.arange(-r, r + 1, device=dev, dtype=x.dtype)
        k = torch.exp(-0.5 * (t[None] / sig[idx][:, None]) ** 2)
        k = k / k.sum(1, keepdim=True)  # [k_n, 2r+1]
        xs = x[idx]
        xx = xs.reshape(1, k_n * c, h, w)
        kk = k.repeat_interleave(c, 0)
        b = F.conv2d(F.pad(xx, (r, r, 0, 0), mode="reflect"), kk.view(k_n * c, 1, 1, -1), groups=k_n * c)
        b = F.conv2d(F.pad(b, (0, 0, r, r), mode="reflect"), kk.view(k_n * c, 1, -1, 1), groups=k_n * c)
        x = x.clone()
        x[idx] = (xs + amt[idx].view(k_n, 1, 1, 1) * (xs - b.view(k_n, c, h, w))).clamp(0, 1)
    # frames: black or white borders of 0-15 % on each side
    sel = (_u(g, dev, n) < site["p_frame"]).cpu()
    if bool(sel.any()):
        x = x.clone()
        fr = _u(g, dev, n, 5).cpu()
        for i in sel.nonzero()[:, 0].tolist():
            v = 1.0 if fr[i, 4] < 0.4 else 0.0
            t_, b_, l_, r_ = (int(fr[i, j] * 0.15 * (h if j < 2 else w)) for j in range(4))
            if t_:
                x[i, :, :t_] = v
            if b_:
                x[i, :, h - b_:] = v
            if l_:
                x[i, :, :, :l_] = v
            if r_:
                x[i, :, :, w - r_:] = v
    sel = (_u(g, dev, n) < site["p_text"]).cpu()
    if bool(sel.any()):
        x = x.clone()
        for i in sel.nonzero()[:, 0].tolist():
            _stamp_text(x, i, g, dev)
    return x


def brain_augment(x, y, g, p_affine=0.3, rot_deg=15.0, scale=(0.9, 1.1)):
    """x [N, C, D, H, W] z-scored, y [N, 1, D, H, W] float {0,1}: mirroring on all axes, small
    rotation/scaling (trilinear / nearest), per-channel intensity scale/shift, noise."""
    n = x.shape[0]
    dev = x.device
    for ax in (2, 3, 4):
        f = (_u(g, dev, n) < 0.5).view(n, 1, 1, 1, 1)
        x = torch.where(f, x.flip(ax), x)
        y = torch.where(f, y.flip(ax), y)
    sel = (_u(g, dev, n) < p_affine).cpu()
    if bool(sel.any()):
        rnd = _u(g, dev, n, 4).cpu()
        th = torch.zeros(n, 3, 4, device=dev)
        for i in range(n):
            if not bool(sel[i]):
                th[i, :, :3] = torch.eye(3, device=dev)
                continue
            ang = (rnd[i, :3] * 2 - 1) * rot_deg * math.pi / 180
            s = scale[0] + float(rnd[i, 3]) * (scale[1] - scale[0])
            ca, sa = torch.cos(ang), torch.sin(ang)
            rx = torch.tensor([[1, 0, 0], [0, ca[0], -sa[0]], [0, sa[0], ca[0]]])
            ry = torch.tensor([[ca[1], 0, sa[1]], [0, 1, 0], [-sa[1], 0, ca[1]]])
            rz = torch.tensor([[ca[2], -sa[2], 0], [sa[2], ca[2], 0], [0, 0, 1]])
            th[i, :, :3] = (rx @ ry @ rz / s).to(dev)
        grid = F.affine_grid(th, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        y = F.grid_sample(y, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    c = x.shape[1]
    mul = _rand(n * c, 0.9, 1.1, g, dev).view(n, c, 1, 1, 1)
    add = _rand(n * c, -0.1, 0.1, g, dev).view(n, c, 1, 1, 1)
    nz = (x != 0).to(x.dtype)
    x = (x * mul + add) * nz  # background stays exactly 0, as after the runtime's zscore
    sig = _rand(n, 0, 0.05, g, dev).view(n, 1, 1, 1, 1)
    x = x + sig * torch.randn(x.shape, generator=g, device=dev) * nz
    return x, y
