"""Test inputs made on the fly (no patient data; the chest X-ray is the bundled example)."""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image

from conftest import CXR_DCM

PHI = {"PatientName": "Doe^Jane^Secret", "PatientID": "PID-7731-XQ",
       "PatientBirthDate": "19610923"}


def cxr_png(path: Path, size: int = 0) -> Path:
    """The example chest X-ray as an 8-bit PNG (optionally resized to size x size)."""
    px = pydicom.dcmread(CXR_DCM).pixel_array.astype(np.float32)
    g = ((px - px.min()) / max(float(np.ptp(px)), 1.0) * 255).astype(np.uint8)
    im = Image.fromarray(g, mode="L")
    if size:
        im = im.resize((size, size))
    im.save(path)
    return path


def cxr_with_phi(path: Path) -> Path:
    """The example DICOM with a (made-up) patient name, ID and birth date."""
    ds = pydicom.dcmread(CXR_DCM)
    for k, v in PHI.items():
        setattr(ds, k, v)
    ds.BodyPartExamined = "CHEST"
    ds.save_as(path)
    return path


def bomb_png(path: Path, side: int = 60000) -> Path:
    """A 1-bit PNG that declares side x side pixels: ~0.5 MB on disk, billions of values once
    decoded (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    row = b"\x00" * (1 + (side + 7) // 8)
    z = zlib.compressobj(9)
    out = io.BytesIO()
    block = row * 256
    for _ in range(side // 256):
        out.write(z.compress(block))
    out.write(z.compress(row * (side % 256)))
    out.write(z.flush())
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0,
                                                            0)) +
           chunk(b"IDAT", out.getvalue()) + chunk(b"IEND", b""))
    path.write_bytes(png)
    return path
