#!/usr/bin/python3
"""Builds the seed corpora of the fuzz harnesses (tests/fuzz/fuzz_*.cpp) outside git.

    make_corpus.py OUT_DIR [DATA_DIR]   ->  OUT_DIR/<harness>/<files>

Sources: the public test data (MEDVISION_DATA, default ../shared/data beside the checkout; small
files only, as libFuzzer mutates small inputs best), the conformance tests' generated DICOM files
(make_fragmented_dicom.py, make_dicom_edge_cases.py), synthetic NIfTI / PNG / JPEG / TIFF / BMP
images, small DICOM series, the bundled models' manifests, package archives and labels CSVs made
here. Nothing is copied into the repository.
"""
import glob
import gzip
import io
import json
import os
import random
import shutil
import sys
import tarfile
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'conformance'))

SEP = b'MVSLICE|'


def small_files(pattern, limit_bytes, count, rng):
    files = [f for f in glob.glob(pattern, recursive=True)
             if os.path.isfile(f) and os.path.getsize(f) <= limit_bytes]
    files.sort()
    rng.shuffle(files)
    return files[:count]


def put(out, harness, name, data):
    d = os.path.join(out, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


def dicom_seeds(out, data, rng):
    n = 0
    for f in small_files(os.path.join(data, 'dicom', '**', '*'), 96 * 1024, 120, rng) + \
            small_files(os.path.join(data, 'cxr-dicom', '**', '*'), 400 * 1024, 4, rng):
        put(out, 'load_dicom', f'data_{n:03d}', open(f, 'rb').read())
        n += 1
    import make_dicom_edge_cases
    import make_fragmented_dicom
    with tempfile.TemporaryDirectory() as tmp:
        make_fragmented_dicom.main(os.path.join(tmp, 'frag'))
        make_dicom_edge_cases.main(os.path.join(tmp, 'edge'))
        gen = sorted(glob.glob(os.path.join(tmp, '*', '*.dcm')))
        rng.shuffle(gen)
        for f in gen[:80]:
            if os.path.getsize(f) <= 64 * 1024:
                put(out, 'load_dicom', 'gen_' + os.path.basename(f), open(f, 'rb').read())
    return n


def explicit_le_bytes(ds):
    """`ds` as a DICOM file in Explicit VR Little Endian, file meta made from its SOP UIDs."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.is_little_endian, ds.is_implicit_VR = True, False
    b = io.BytesIO()
    ds.save_as(b, write_like_original=False)
    return b.getvalue()


def series_seeds(out, rng):
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid
    for case in range(6):
        series, slices = generate_uid(), []
        for k in range(3):
            ds = Dataset()
            ds.SOPClassUID = '1.2.840.10008.5.1.4.1.1.2'
            ds.SOPInstanceUID = generate_uid()
            ds.SeriesInstanceUID = series if case != 5 or k < 2 else generate_uid()
            ds.StudyInstanceUID = '1.2.3'
            ds.Modality = 'CT'
            ds.Rows = ds.Columns = 4 + case % 2
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, 'MONOCHROME2'
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 1
            ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
            ds.PixelSpacing = [0.5, 0.5]
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            if case != 3:
                ds.ImagePositionPatient = [0, 0, k * (2.5 if case != 4 or k < 2 else 7.5)]
            ds.InstanceNumber = k + 1
            ds.PixelData = np.full((ds.Rows, ds.Columns), k * 10, np.int16).tobytes()
            slices.append(explicit_le_bytes(ds))
        put(out, 'dicom_series', f'series_{case}', SEP.join(slices))


def label_map_seeds(out):
    """DICOM SEGs with the series they refer to (fuzz_label_map.cpp): a control byte, the slices
    and the SEG joined by SEP. BINARY and FRACTIONAL, frames placed by reference and by position,
    overlapping segments, labels mapped or not (the control byte)."""
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid
    sys.path.insert(0, os.path.join(ROOT, 'tests', 'segment'))
    from test_seg_reference import make_seg
    rows, cols, n = 6, 5, 3
    series, frame_of_ref, slices, sources = generate_uid(), generate_uid(), [], []
    for k in range(n):
        ds = Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID = '1.2.840.10008.5.1.4.1.1.4', generate_uid()
        ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.FrameOfReferenceUID = series, '1.2.3', frame_of_ref
        ds.Modality, ds.Rows, ds.Columns = 'MR', rows, cols
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, 'MONOCHROME2'
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelSpacing, ds.SliceThickness = [0.8, 0.7], 2.5
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-10, 20, 30 + 2.5 * k]
        ds.InstanceNumber = k + 1
        ds.PixelData = (np.arange(rows * cols, dtype=np.uint16) + 100 * k).tobytes()
        slices.append(explicit_le_bytes(ds))
        sources.append(ds)
    rng = np.random.default_rng(11)
    lab = rng.integers(0, 3, (n, rows, cols)).astype(np.uint8)
    pos = lambda k: [-10.0, 20.0, 30.0 + 2.5 * k]  # noqa: E731
    ref = lambda k: (sources[k].SOPClassUID, sources[k].SOPInstanceUID)  # noqa: E731
    common = dict(spacing=(0.8, 0.7), thickness=2.5, for_uid=frame_of_ref)
    entries = [(v, k) for v in (1, 2) for k in range(n)]
    variants = {
        'binary_refs': (0x08, dict(refs=[ref(k) for _, k in entries])),
        'binary_positions': (0x18, dict(positions=[pos(k) for _, k in entries])),
        'binary_both': (0x00, dict(refs=[ref(k) for _, k in entries], positions=[pos(k) for _, k in entries])),
        'fractional_refs': (0x04, dict(refs=[ref(k) for _, k in entries], fractional=True)),
        'overlap_highest': (0x02, dict(refs=[ref(k) for _, k in entries], overlap=True)),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, (control, kw) in variants.items():
            overlap = kw.pop('overlap', False)
            frac = kw.get('fractional', False)
            frames = []
            for v, k in entries:
                m = (lab[k] == v) | ((lab[k] == 3 - v) & overlap)
                frames.append((m * (rng.integers(1, 256, m.shape) if frac else 1)).astype(np.uint8))
            path = os.path.join(tmp, name + '.dcm')
            make_seg(path, frames, [v for v, _ in entries], ['Dense Bone', 'soft'], rows, cols,
                     **kw, **common)
            body = SEP.join(slices + [open(path, 'rb').read()])
            put(out, 'label_map', name, bytes([control]) + body)
            if overlap:  # the same SEG under the default rule: refused
                put(out, 'label_map', 'overlap_refused', bytes([0x00]) + body)


def nifti_seeds(out, data, rng):
    for i, f in enumerate(small_files(os.path.join(data, 'nifti', '**', '*'), 256 * 1024, 12, rng)):
        put(out, 'load_nifti', f'data_{i:02d}', open(f, 'rb').read())
    import nibabel as nib
    dtypes = [np.uint8, np.int16, np.float32, np.float64, np.int32, np.uint16, np.int8]
    for i, dt in enumerate(dtypes):
        arr = (np.arange(4 * 5 * (2 + i % 3)) % 97).astype(dt).reshape(4, 5, 2 + i % 3)
        img = (nib.Nifti1Image if i % 2 == 0 else nib.Nifti2Image)(arr, np.diag([1.5, 1, 2, 1]))
        if i == 2:
            img.header.set_qform(np.diag([-1, 1, 3, 1]), code=1)
            img.header['scl_slope'], img.header['scl_inter'] = 2.0, -5.0
        with tempfile.TemporaryDirectory() as tmp:
            p = os.path.join(tmp, 'x.nii' + ('.gz' if i % 3 == 0 else ''))
            nib.save(img, p)
            put(out, 'load_nifti', f'synthetic_{i}', open(p, 'rb').read())


def raster_seeds(out, data, rng):
    from PIL import Image
    picks = small_files(os.path.join(data, 'nih14-64px', '**', '*.png'), 32 * 1024, 10, rng) + \
        small_files(os.path.join(data, 'kermany', '**', '*.jpeg'), 24 * 1024, 6, rng) + \
        small_files(os.path.join(data, 'jsrt', '**', '*.png'), 48 * 1024, 4, rng)
    for i, f in enumerate(picks):
        put(out, 'load_raster', f'data_{i:02d}', open(f, 'rb').read())
    grey = Image.fromarray((np.add.outer(np.arange(24), np.arange(32)) * 5 % 256).astype(np.uint8))
    rgb = Image.merge('RGB', [grey, grey.rotate(90), grey.transpose(Image.FLIP_LEFT_RIGHT)])
    grey16 = Image.fromarray((np.arange(24 * 32).reshape(24, 32) * 80).astype(np.uint16))
    variants = [(grey, 'PNG', {}), (rgb, 'PNG', {}), (grey16, 'PNG', {}),
                (rgb.convert('P'), 'PNG', {}), (rgb.convert('RGBA'), 'PNG', {}),
                (grey, 'JPEG', {}), (rgb, 'JPEG', {'quality': 80}),
                (rgb, 'JPEG', {'progressive': True}), (grey, 'TIFF', {}),
                (grey16, 'TIFF', {}), (rgb, 'TIFF', {'compression': 'tiff_deflate'}),
                (grey, 'BMP', {}), (rgb, 'BMP', {})]
    for i, (img, fmt, kw) in enumerate(variants):
        b = io.BytesIO()
        if fmt == 'JPEG' and i == 6:  # EXIF orientation
            exif = Image.Exif()
            exif[274] = 6
            kw = dict(kw, exif=exif.tobytes())
        img.save(b, fmt, **kw)
        put(out, 'load_raster', f'synthetic_{i:02d}.{fmt.lower()}', b.getvalue())


def manifest_seeds(out):
    for i, f in enumerate(sorted(glob.glob(os.path.join(ROOT, 'models', '*', 'package', 'manifest.json')))):
        put(out, 'manifest', f'model_{i}.json', open(f, 'rb').read())
    put(out, 'manifest', 'empty.json', b'{}')
    put(out, 'manifest', 'labels.json', json.dumps(
        {'name': 'x', 'version': '1.0.0', 'task': 'classification', 'labels': ['a', 'b'],
         'model': {'file': 'm.pt', 'sha256': '0' * 64}}).encode())


def archive_seeds(out):
    manifest = open(sorted(glob.glob(os.path.join(ROOT, 'models', '*', 'package', 'manifest.json')))[0],
                    'rb').read()
    for i, (mode, folder) in enumerate([('w', ''), ('w:gz', ''), ('w', 'pkg/'), ('w:gz', 'p/')]):
        b = io.BytesIO()
        with tarfile.open(fileobj=b, mode=mode) as t:
            for name, data in [('manifest.json', manifest), ('model.pt', b'\0' * 64),
                               ('README.md', b'# x\n')]:
                info = tarfile.TarInfo(folder + name)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
        put(out, 'package_archive', f'pkg_{i}.mvpkg', b.getvalue())


def csv_seeds(out):
    seeds = [b'\x00path,label\na.png,pneumonia\nb.png,normal\nc.dcm,Effusion|pneumonia\n',
             b'\x01path,label\na.png,pneumonia\nsub/b.png,normal\n',
             b'\x00path,normal,pneumonia,Effusion\na.png,0,1,0\n/abs/b.png,1,0,1\n',
             b'\x00path,label\r\n"a b.png",none\r\nc.png,No Finding\r\n']
    for i, s in enumerate(seeds):
        put(out, 'labels_csv', f'csv_{i}', s)


def main(out, data):
    rng = random.Random(19)
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    if os.path.isdir(os.path.join(data, 'dicom')):
        dicom_seeds(out, data, rng)
    else:
        print(f'no test data under {data}: DICOM/NIfTI/raster seeds are synthetic only')
        import make_fragmented_dicom
        with tempfile.TemporaryDirectory() as tmp:
            make_fragmented_dicom.main(tmp)
            for f in sorted(glob.glob(os.path.join(tmp, '*.dcm')))[:60]:
                put(out, 'load_dicom', os.path.basename(f), open(f, 'rb').read())
    series_seeds(out, rng)
    label_map_seeds(out)
    nifti_seeds(out, data, rng)
    raster_seeds(out, data, rng)
    manifest_seeds(out)
    archive_seeds(out)
    csv_seeds(out)
    for h in sorted(os.listdir(out)):
        files = os.listdir(os.path.join(out, h))
        size = sum(os.path.getsize(os.path.join(out, h, f)) for f in files)
        print(f'{h}: {len(files)} seeds, {size // 1024} KiB')


if __name__ == '__main__':
    if len(sys.argv) not in (2, 3):
        sys.exit('usage: make_corpus.py OUT_DIR [DATA_DIR]')
    default = os.environ.get('MEDVISION_DATA', os.path.join(ROOT, '..', 'shared', 'data'))
    main(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else default)
