#!/usr/bin/python3
"""decode_peer: the pydicom side of the decode benchmark. The same work as mv_image_load:
dcmread + pixel_array (gdcm/pylibjpeg/... as pydicom picks) + apply_modality_lut -> float32.
Prints one JSON object: per file, every repetition's time in ms.

  decode_peer.py [--repeat N] [--warmup N] FILE...
"""
import argparse
import json
import time

import numpy as np
import pydicom
from pydicom.pixel_data_handlers.util import apply_modality_lut


def decode(path: str) -> np.ndarray:
    ds = pydicom.dcmread(path)
    return apply_modality_lut(ds.pixel_array, ds).astype(np.float32, copy=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    out = {"tool": "pydicom", "version": pydicom.__version__, "files": {}}
    checksum = 0.0
    for f in a.files:
        for _ in range(a.warmup):
            decode(f)
        times = []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            px = decode(f)
            times.append((time.perf_counter() - t0) * 1e3)
            checksum += float(px.flat[0])
        out["files"][f] = times
    out["checksum"] = checksum
    print(json.dumps(out))


if __name__ == "__main__":
    main()
