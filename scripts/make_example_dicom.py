#!/usr/bin/python3
"""Makes examples/data/cxr-example.dcm, the chest X-ray the README quick start classifies.

Source: one paediatric chest X-ray from the Kermany et al. (2018) data set, CC BY 4.0
(doi:10.17632/rscbjbr9sj.2), read from $MEDVISION_DATA/kermany. The image is converted to
8-bit grey and wrapped as a DICOM CR image (Explicit VR Little Endian) with fresh UIDs and no
patient data at all (the source JPEG carries none either).

Usage: scripts/make_example_dicom.py [--source PNEUMONIA/person1017_bacteria_2948.jpeg] [--out PATH]
"""
import argparse
import hashlib
import os
import sys

import numpy as np
from PIL import Image
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

ROOT_UID = "1.2.826.0.1.3680043.10.1234."  # a private, example-only UID root


def uid_from(text: str) -> str:
    digits = str(int(hashlib.sha256(text.encode()).hexdigest()[:24], 16))
    return (ROOT_UID + digits)[:64]


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--source", default="PNEUMONIA/person1017_bacteria_2948.jpeg",
                    help="path under $MEDVISION_DATA/kermany")
    ap.add_argument("--out", default=os.path.join(here, "..", "examples", "data", "cxr-example.dcm"))
    args = ap.parse_args()
    data = os.environ.get("MEDVISION_DATA", os.path.join(here, "..", "..", "shared", "data"))
    src = os.path.join(data, "kermany", args.source)
    grey = np.asarray(Image.open(src).convert("L"), dtype=np.uint8)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # CR Image Storage
    meta.MediaStorageSOPInstanceUID = uid_from("sop:" + args.source)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = ROOT_UID + "1"
    ds = FileDataset(args.out, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian = True
    ds.is_implicit_VR = False
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = uid_from("study:" + args.source)
    ds.SeriesInstanceUID = uid_from("series:" + args.source)
    ds.Modality = "CR"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "AP"
    ds.SeriesDescription = "medvision example (Kermany et al. 2018, CC BY 4.0)"
    ds.PatientName = ""
    ds.PatientID = ""
    ds.Rows, ds.Columns = grey.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.WindowCenter = 128
    ds.WindowWidth = 256
    ds.PixelData = grey.tobytes()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    ds.save_as(args.out, write_like_original=False)
    print(f"wrote {args.out} ({grey.shape[1]}x{grey.shape[0]}) from {src}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
