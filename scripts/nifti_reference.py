#!/usr/bin/env python3
"""Reference decodes for medvision's NIfTI and raster conformance tests.

NIfTI through nibabel (get_fdata() and the affine nibabel picks, converted from RAS to LPS),
raster through PIL (ImageOps.exif_transpose applied), both in medvision's layout:
float32 [channels][depth][height][width], spacing = affine column norms, direction = normalised
columns, origin = translation.

Used as a module by tests/conformance/test_nifti_and_raster.py, or from the command line:
    nifti_reference.py INPUT OUT_PREFIX   -> OUT_PREFIX.npy and OUT_PREFIX.json
"""
import json
import sys

import numpy as np


def nifti_reference(path):
    """Returns (pixels [C, D, H, W] float32, geometry dict) as nibabel reads `path`."""
    import gzip

    import nibabel as nib

    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        head = f.read(4)
    # Pick the NIfTI class from sizeof_hdr rather than nib.load(), which turns CIFTI-2 files
    # into Cifti2Image: the voxel array and affine are what nibabel's NIfTI reader gives.
    sizeof_hdr = int.from_bytes(head, "little")
    if sizeof_hdr not in (348, 540):
        sizeof_hdr = int.from_bytes(head, "big")
    cls = {348: nib.Nifti1Image, 540: nib.Nifti2Image}.get(sizeof_hdr)
    if cls is None:
        raise ValueError(f"{path}: not a NIfTI-1/2 header (sizeof_hdr {sizeof_hdr})")
    img = cls.from_filename(path)
    data = np.asarray(img.get_fdata())
    shape = list(data.shape) + [1] * max(0, 3 - data.ndim)
    x, y, z = shape[:3]
    c = int(np.prod(shape[3:])) if len(shape) > 3 else 1
    # NIfTI is x-fastest (Fortran order); dims 4..7 fold into channels, t fastest.
    pixels = data.reshape((x, y, z, c), order="F").transpose(3, 2, 1, 0).astype(np.float32)
    return pixels, geometry_from_affine(img.affine)


def geometry_from_affine(affine):
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(affine, dtype=np.float64)
    m = lps[:3, :3]
    spacing = np.linalg.norm(m, axis=0)
    direction = m / np.where(spacing > 0, spacing, 1.0)
    return {
        "spacing": spacing.tolist(),
        "origin": lps[:3, 3].tolist(),
        "direction": direction.reshape(-1).tolist(),  # row-major, columns = index axes
    }


def raster_reference(path):
    """Returns pixels [C, 1, H, W] float32 as PIL reads `path`, EXIF orientation applied.

    Grey (L, I;16, I, LA, and palettes whose colours are all grey are NOT special-cased: palette
    images are colour) gives one channel; colour gives RGB with alpha dropped.
    """
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        if im.mode == "LA":
            im = im.getchannel("L")
        if im.mode in ("RGBA", "CMYK", "YCbCr"):
            im = im.convert("RGB") if im.mode != "RGBA" else im
        a = np.asarray(im)
    if a.ndim == 2:
        a = a[:, :, None]
    a = a[:, :, :3]
    return a.transpose(2, 0, 1)[:, None, :, :].astype(np.float32), None


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    src, prefix = argv[1], argv[2]
    if src.endswith((".nii", ".nii.gz")):
        pixels, geom = nifti_reference(src)
    else:
        pixels, geom = raster_reference(src)
    np.save(prefix + ".npy", pixels)
    with open(prefix + ".json", "w") as f:
        json.dump({"shape": list(pixels.shape), "geometry": geom}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
