"""Python reference preprocessing for the exported packages: what each checkpoint's own Python
pipeline does (PIL + torchvision transforms for PNG/JPEG, pydicom for DICOM), used by
tests/exporters/test_exporter_parity.py and for the deviation numbers in docs/exporters.md.

Where the original pipeline and medvision's steps differ, the function follows medvision and the
difference is written next to it (and measured in the docs).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torchvision.transforms as T

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
DICOM_SUFFIXES = {".dcm", ".dicom"}


def is_dicom(path) -> bool:
    p = Path(path)
    if p.suffix.lower() in DICOM_SUFFIXES:
        return True
    with open(p, "rb") as f:
        head = f.read(132)
    return head[128:132] == b"DICM"


def read_dicom(path) -> np.ndarray:
    """pydicom pixel_array + Modality LUT, MONOCHROME1 inverted as max + min - x (medvision's
    `monochrome` step; xrv's read_xray_dcm uses (2**BitsStored - 1) - x instead), float32 [H, W]."""
    import pydicom
    from pydicom.pixel_data_handlers.util import apply_modality_lut
    ds = pydicom.dcmread(str(path), force=True)
    if "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
        # A file without File Meta Information (fo-dicom's CR-MONO1-10-chest.dcm): pydicom's
        # force=True parses it as implicit VR little endian, which is what it is.
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    x = apply_modality_lut(ds.pixel_array, ds).astype(np.float32)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        x = (x.max() + x.min()) - x
    return x


def _scale(x: np.ndarray, mode: str, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    if mode == "fixed":
        lo, hi = 0.0, 255.0
    elif mode == "minmax":
        lo, hi = float(x.min()), float(x.max())
    else:
        lo, hi = (float(v) for v in np.percentile(x, [low, high]))
    return np.clip((x - np.float32(lo)) / np.float32(hi - lo), 0, 1).astype(np.float32)


def torchvision_input(path, scale: str = "fixed", crop: Optional[int] = None,
                      size: int = 224) -> torch.Tensor:
    """The seed service's / CheXNet's transform: RGB in [0, 1], Resize, Normalize(ImageNet).

    PNG/JPEG: PIL convert("RGB") + ToTensor (/255); `scale` minmax/percentile then apply to the
    0..255 values. DICOM: read_dicom + `scale`. The resize runs on the float tensor
    (antialias=True), which is what medvision computes; resizing the 8-bit PIL image first (the
    classic Resize-before-ToTensor order) rounds to 8 bits, see docs/exporters.md.
    crop=None: Resize((size, size)); crop=256: Resize(256) + CenterCrop(size)."""
    if is_dicom(path):
        g = _scale(read_dicom(path), scale)
        t = torch.from_numpy(g)[None].expand(3, -1, -1).contiguous()
    else:
        from PIL import Image
        with Image.open(path) as im:
            rgb = im.convert("RGB")
        if scale == "fixed":
            t = T.ToTensor()(rgb)
        else:
            a = np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1)
            t = torch.from_numpy(_scale(a, scale).copy())
    if crop is None:
        tf = [T.Resize([size, size], antialias=True)]
    else:
        tf = [T.Resize(crop, antialias=True), T.CenterCrop(size)]
    tf.append(T.Normalize(IMAGENET_MEAN, IMAGENET_STD))
    return T.Compose(tf)(t)


def xrv_normalize(img: np.ndarray, maxval: float) -> np.ndarray:
    """xrv.datasets.normalize: (2 * img / maxval - 1) * 1024. xrv raises above maxval; medvision
    clips, and so does this (identical for valid inputs)."""
    img = np.clip(img.astype(np.float32), 0, maxval)
    return (2 * (img / np.float32(maxval)) - 1.0) * 1024


def xrv_grey(path) -> np.ndarray:
    """One channel as xrv's examples read it: skimage.io.imread (here PIL) and img.mean(2) for
    colour (alpha dropped). medvision uses BT.601 luma: identical for grey stored as RGB."""
    if is_dicom(path):
        return read_dicom(path)
    from PIL import Image
    with Image.open(path) as im:
        a = np.asarray(im)
    if a.ndim == 3:
        a = a[..., :3].astype(np.float32).mean(2)
    return a.astype(np.float32)


def xrv_input(path, maxval: float = 255.0, size: int = 224) -> torch.Tensor:
    """[1, size, size]: xrv normalize, then torchvision Resize(size) + CenterCrop(size) with
    antialias=True, the same resampling as medvision's resize center_crop. (xrv: XRayCenterCrop
    then XRayResizer(skimage); see xrv_faithful_input.)"""
    x = torch.from_numpy(xrv_normalize(xrv_grey(path), maxval))[None]
    return T.Compose([T.Resize(size, antialias=True), T.CenterCrop(size)])(x)


def xrv_faithful_input(path, maxval: float = 255.0, size: int = 224) -> torch.Tensor:
    """xrv's own geometry, following its published code: XRayCenterCrop (crop the centre square
    first) then XRayResizer = skimage.transform.resize(img, (1, size, size), mode='constant',
    preserve_range=True) with skimage's defaults (anti_aliasing: Gaussian, sigma = (factor-1)/2;
    order 1). skimage is not installed here, so its resize (skimage >= 0.19) is re-implemented
    with the scipy.ndimage calls it makes. Used only to measure the deviation, not for parity."""
    from scipy import ndimage as ndi
    img = xrv_normalize(xrv_grey(path), maxval)[None]
    _, y, x = img.shape  # XRayCenterCrop.crop_center
    c = min(y, x)
    sx, sy = x // 2 - c // 2, y // 2 - c // 2
    img = img[:, sy:sy + c, sx:sx + c].astype(np.float64)
    factors = np.array(img.shape, float) / np.array((1, size, size), float)
    sigma = np.maximum(0, (factors - 1) / 2)
    if np.any(factors > 1):
        img = ndi.gaussian_filter(img, sigma, cval=0, mode="constant")
    out = ndi.zoom(img, 1 / factors, order=1, mode="grid-constant", cval=0, grid_mode=True)
    return torch.from_numpy(out.astype(np.float32))


def probabilities(logits: torch.Tensor, activation: str) -> torch.Tensor:
    return torch.softmax(logits, -1) if activation == "softmax" else torch.sigmoid(logits)
