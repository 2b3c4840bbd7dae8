"""Text from DICOM files reaches Python as str, converted by Specific Character Set (issue 19):
a Latin-1 Series Description raised UnicodeDecodeError in Image.metadata, and bytes that are
not valid in any declared set must come out as U+FFFD, never as an exception."""
import io

import numpy as np
import pytest

pydicom = pytest.importorskip('pydicom')


def dicom_bytes(charset, series_description_bytes, from_memory=True):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian
    ds = Dataset()
    ds.SOPClassUID = '1.2.840.10008.5.1.4.1.1.7'
    ds.SOPInstanceUID = '1.2.3.4'
    ds.Modality = 'OT'
    if charset is not None:
        ds.SpecificCharacterSet = charset
    placeholder = 'Q' * (len(series_description_bytes) + len(series_description_bytes) % 2)
    ds.SeriesDescription = placeholder
    ds.Rows = ds.Columns = 2
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, 'MONOCHROME2'
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.arange(4, dtype=np.uint8).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.is_little_endian, ds.is_implicit_VR = True, False
    out = io.BytesIO()
    ds.save_as(out, write_like_original=False)
    value = series_description_bytes.ljust(len(placeholder), b' ')
    return out.getvalue().replace(placeholder.encode(), value)


@pytest.mark.parametrize('charset, raw, text', [
    ('ISO_IR 100', 'Thorax Übersicht p.a.'.encode('latin-1'), 'Thorax Übersicht p.a.'),
    ('ISO_IR 144', 'Грудная клетка'.encode('iso8859-5'), 'Грудная клетка'),
    ('ISO_IR 192', 'Thorax 胸部'.encode('utf-8'), 'Thorax 胸部'),
    (['', 'ISO 2022 IR 87'], b'\x1b$B6;It\x1b(B', '胸部'),
    (None, 'Thorax Übersicht'.encode('latin-1'), 'Thorax Übersicht'),
])
def test_metadata_is_decoded_by_character_set(mv, charset, raw, text):
    img = mv.load_image(dicom_bytes(charset, raw))
    assert img.metadata['SeriesDescription'] == text
    assert img.meta('SeriesDescription') == text


def test_invalid_bytes_become_replacement_characters(mv):
    img = mv.load_image(dicom_bytes('ISO_IR 192', b'Thorax \xff\xfe end'))
    assert img.metadata['SeriesDescription'] == 'Thorax \ufffd\ufffd end'
    assert any('SpecificCharacterSet' in w for w in img.warnings)


def test_error_quoting_file_bytes_is_valid_text(mv):
    data = dicom_bytes('ISO_IR 100', b'x')
    # A Photometric Interpretation of Latin-1 garbage is quoted in the error message.
    data = data.replace(b'MONOCHROME2 ', b'MONO\xc9\xd6ROME2 ')
    with pytest.raises(mv.MedvisionError) as e:
        mv.load_image(data)
    assert 'MONO\ufffd\ufffdROME2' in str(e.value)
