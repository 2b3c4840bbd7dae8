"""A small synthetic CT series written with pydicom, shared by the Python tests that need DICOM
sources (writers' read-back, `medvision segment` outputs). No real patient data: the patient
module is whatever the test passes."""
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid


def write_ct_series(folder, stored_slices, origin, spacing, patient):
    """Writes one CT file per slice (stored int16 values, RescaleIntercept -1024), axial, slice k
    at origin + k * spacing[2] along z; `spacing` is (column, row, slice) in mm. Files are named
    against position order so that readers must sort. Returns the datasets in position order."""
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    n = len(stored_slices)
    out = []
    for k, pixels in enumerate(stored_slices):
        pixels = np.asarray(pixels, dtype=np.int16)
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = pydicom.uid.CTImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SOPClassUID = pydicom.uid.CTImageStorage
        ds.SpecificCharacterSet = "ISO_IR 100"
        for key, value in patient.items():
            setattr(ds, key, value)
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.StudyID = "20240102", "101500", "A1", "S1"
        ds.ReferringPhysicianName = "Ref^Doc"
        ds.StudyDescription = "CT CHEST"
        ds.Modality, ds.InstanceNumber, ds.SeriesNumber = "CT", n - k, 1
        ds.ImagePositionPatient = [float(origin[0]), float(origin[1]),
                                   float(origin[2]) + float(spacing[2]) * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [spacing[1], spacing[0]], spacing[2]
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.PixelData = pixels.tobytes()
        ds.save_as(str(folder / f"img{n - 1 - k:02d}.dcm"), write_like_original=False)
        out.append(ds)
    return out
