#!/usr/bin/python3
"""Regenerates the pictures in docs/img/ from the bundled example (issue 16): a Grad-CAM overlay
PNG, the Secondary Capture as a viewer shows it (its DICOM pixels, read back with pydicom), and a
cxr-lungs segmentation overlay. Run from the checkout after building:

    PYTHONPATH=build/python /usr/bin/python3 scripts/make_doc_images.py
"""
import sys
import tempfile
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image as PILImage

import medvision as mv

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "data" / "cxr-example.dcm"
OUT = ROOT / "docs" / "img"


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    image = mv.load_image(EXAMPLE)
    with mv.Model("cxr-pneumonia") as m:
        e = m.explain(image)
    e.write_png(OUT / "explain-overlay.png", image)
    with tempfile.TemporaryDirectory() as tmp:
        sc_path = Path(tmp) / "sc.dcm"
        e.write_dicom_sc(sc_path, image)
        sc = pydicom.dcmread(str(sc_path))
        # What a viewer shows: the RGB pixels of the object, nothing added.
        PILImage.fromarray(np.asarray(sc.pixel_array, dtype=np.uint8)).save(OUT / "explain-sc.png")
    with mv.Model("cxr-lungs") as m:
        m.segment(image).write_overlay_png(OUT / "segment-overlay.png", image)
    for p in sorted(OUT.glob("*.png")):
        print(p.relative_to(ROOT), p.stat().st_size, "bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
