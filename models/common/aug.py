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


def cxr_augment(x, g, y=None, geometric=True, intensity=True, res_p=0.0, res_min=56, noise=0.02):
    """x [N, C, H, W] in [0, 1]; y optional integer label map [N, H, W] transformed alike
    (nearest). Returns (x, y). All ops are batched on x.device."""
    n, _, h, w = x.shape
    dev = x.device
    if geometric:
        theta = affine_matrices_2d(n, dev, g)
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
