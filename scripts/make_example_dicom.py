#!/usr/bin/python3
"""Makes the bundled chest X-ray examples in examples/data/.

cxr-example.dcm (the tests' small example): one paediatric chest X-ray from the Kermany et al.
(2018) data set, CC BY 4.0 (doi:10.17632/rscbjbr9sj.2), read from $MEDVISION_DATA/kermany. The
image is converted to 8-bit grey and wrapped as a DICOM CR image (Explicit VR Little Endian) with
fresh UIDs and no patient data at all (the source JPEG carries none either).

cxr-example-full.dcm (--full; the image the README quick start classifies): a full-size adult
chest CR as scanners write it: 1841 x 1955 pixels, 15 bits stored in 16, MONOCHROME1, JPEG 2000,
a window of 15000/30000. Source: NEMA's compression sample RG1 (Philips CR, 1995), as distributed
in pydicom-data (MIT licence), read from $MEDVISION_DATA/cxr-dicom/pydicom-data/RG1_J2KI.dcm. The
JPEG 2000 code stream is kept byte for byte (no re-encoding); the header gets fresh UIDs and loses
every patient, institution, device and reference attribute (the sample's own are fictitious, but
the example shows what a de-identified file looks like).

Usage: scripts/make_example_dicom.py [--source PNEUMONIA/person1017_bacteria_2948.jpeg] [--out PATH]
       scripts/make_example_dicom.py --full [--out PATH]
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


# Attributes dropped from the full-size example: patient, institution, device and workflow
# identifiers, and references to the sample's predecessor instance.
FULL_DROP = (
    "PatientName", "PatientID", "PatientBirthDate", "OtherPatientIDs", "ReferringPhysicianName",
    "AccessionNumber", "InstitutionName", "InstitutionalDepartmentName", "StationName",
    "DeviceSerialNumber", "StudyID", "SourceImageSequence", "InstanceCreatorUID",
    "SourceApplicationEntityTitle", "DateOfLastCalibration", "TimeOfLastCalibration",
)


def make_full(data: str, out: str) -> int:
    src = os.path.join(data, "cxr-dicom", "pydicom-data", "RG1_J2KI.dcm")
    ds = pydicom.dcmread(src)
    pixels = ds.PixelData
    for keyword in FULL_DROP:
        if keyword in ds:
            delattr(ds, keyword)
        if keyword in ds.file_meta:
            delattr(ds.file_meta, keyword)
    # Type 2 attributes of the Patient and General Study modules stay, empty.
    ds.PatientName = ""
    ds.PatientID = ""
    ds.PatientBirthDate = ""
    ds.ReferringPhysicianName = ""
    ds.AccessionNumber = ""
    ds.StudyID = ""
    key = "full:RG1_J2KI"
    ds.SOPInstanceUID = uid_from("sop:" + key)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.ImplementationClassUID = ROOT_UID + "1"
    ds.StudyInstanceUID = uid_from("study:" + key)
    ds.SeriesInstanceUID = uid_from("series:" + key)
    ds.SeriesDescription = "medvision example (NEMA RG1 via pydicom-data, MIT)"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "medvision example: identifiers removed, fresh UIDs"
    # The sample's Pixel Spacing is zero, which PS3.3 forbids (dciodvfy: "Value is zero"); the
    # attribute is optional in the CR module, so the example leaves it out rather than invent one.
    if "PixelSpacing" in ds and any(float(v) == 0 for v in ds.PixelSpacing):
        del ds.PixelSpacing
    assert ds.PixelData == pixels  # the code stream is unchanged
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    ds.save_as(out, write_like_original=False)
    print(f"wrote {out} ({ds.Columns}x{ds.Rows}, {ds.BitsStored} bits stored, "
          f"{ds.file_meta.TransferSyntaxUID.name}) from {src}")
    return 0


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--source", default="PNEUMONIA/person1017_bacteria_2948.jpeg",
                    help="path under $MEDVISION_DATA/kermany")
    ap.add_argument("--full", action="store_true",
                    help="make cxr-example-full.dcm (the quick start's full-size 16-bit CR)")
    ap.add_argument("--out", help="output path (default: examples/data/cxr-example[-full].dcm)")
    args = ap.parse_args()
    data = os.environ.get("MEDVISION_DATA", os.path.join(here, "..", "..", "shared", "data"))
    name = "cxr-example-full.dcm" if args.full else "cxr-example.dcm"
    args.out = args.out or os.path.join(here, "..", "examples", "data", name)
    if args.full:
        return make_full(data, args.out)
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
