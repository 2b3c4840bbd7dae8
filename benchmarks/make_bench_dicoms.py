#!/usr/bin/python3
"""Makes the three 16-bit chest X-ray inputs of the benchmarks from cxr-dicom RG1.

$MEDVISION_DATA/cxr-dicom/pydicom-data/RG1_J2KI.dcm (CR, MONOCHROME1, 1955x1841, 16 allocated /
15 stored bits, JPEG 2000) becomes, in OUT (default build-bench/bench-data, git-ignored):

  rg1_uncompressed.dcm  pydicom + gdcm decode, written as Explicit VR Little Endian
  rg1_jpeg_lossless.dcm dcmcjpeg +e1 (JPEG lossless, process 14, selection value 1) of the uncompressed one
  rg1_jpeg_ls.dcm       dcmcjpls (JPEG-LS lossless, the issue's second syntax) of the uncompressed one
  rg1_j2k.dcm           a copy of the original JPEG 2000 file

The script checks that both lossless files decode (pydicom) to exactly the uncompressed pixels.
Needs /usr/bin/python3 (pydicom 2.3 + python3-gdcm) and DCMTK's dcmcjpeg and dcmcjpls.
"""
import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import ExplicitVRLittleEndian


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("MEDVISION_DATA", "/work/shared/data"))
    ap.add_argument("--out", default="build-bench/bench-data")
    args = ap.parse_args()
    src = Path(args.data) / "cxr-dicom" / "pydicom-data" / "RG1_J2KI.dcm"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    unc, j2k = out / "rg1_uncompressed.dcm", out / "rg1_j2k.dcm"
    jll, jls = out / "rg1_jpeg_lossless.dcm", out / "rg1_jpeg_ls.dcm"

    if not j2k.exists() or j2k.stat().st_size != src.stat().st_size:
        shutil.copyfile(src, j2k)
    if not unc.exists():
        ds = pydicom.dcmread(src)
        px = ds.pixel_array  # gdcm (or another J2K-capable handler) decodes it
        ds.PixelData = np.ascontiguousarray(px).astype(px.dtype.newbyteorder("<")).tobytes()
        ds["PixelData"].VR = "OW"
        ds["PixelData"].is_undefined_length = False
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.is_little_endian, ds.is_implicit_VR = True, False
        # J2K-only attributes that no longer describe the pixels.
        for kw in ("LossyImageCompressionRatio",):
            if kw in ds:
                del ds[kw]
        ds.save_as(unc, write_like_original=False)
    if not jll.exists():
        subprocess.run(["dcmcjpeg", "+e1", str(unc), str(jll)], check=True)
    if not jls.exists():
        subprocess.run(["dcmcjpls", str(unc), str(jls)], check=True)

    a = pydicom.dcmread(unc).pixel_array
    for p in (jll, jls):
        if not np.array_equal(a, pydicom.dcmread(p).pixel_array):
            print(f"make_bench_dicoms: {p.name} pixels differ from the uncompressed ones", file=sys.stderr)
            return 1
    for p in (unc, jll, jls, j2k):
        d = pydicom.dcmread(p, stop_before_pixels=True)
        print(f"{p}  {d.file_meta.TransferSyntaxUID.name}  {p.stat().st_size / 2**20:.2f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
