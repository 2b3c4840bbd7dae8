#!/usr/bin/python3
"""Writes encapsulated DICOM files whose frames are split over fragments in every legal way.

    make_fragmented_dicom.py OUT_DIR   ->  OUT_DIR/*.dcm and OUT_DIR/manifest.json

For each codec family medvision decodes (RLE, JPEG baseline / extended / lossless / lossless SV1,
JPEG-LS, JPEG 2000) a synthetic image (8 or 16 bits, signed with Rescale Intercept -1024, one or
three frames) is compressed by an independent encoder (pydicom's RLE encoder, DCMTK's dcmcjpeg
and dcmcjpls, GDCM for JPEG 2000), then its pixel sequence is rewritten with the frame's
codestream cut at even offsets into 1..n fragments: halves, a 2-byte first fragment, the RLE
header alone, cuts on the RLE segment boundaries, many small fragments; with an empty or a
filled Basic Offset Table, or an Extended Offset Table. The codestream bytes never change, so
every variant must decode to the pixels of the one-fragment-per-frame original.

The manifest lists, per file: the family, whether the codec is lossy, the original (`base`) it
was cut from, the reference pixels (`ref`, .npy: pydicom's decoding of the base, [frames, rows,
cols, samples] with the modality LUT applied) and `expect`: "ok", or "refuse" where the frame
boundaries cannot be known (a multi-frame RLE file without offset table and more fragments than
frames: PS3.5 A.4 gives no marker to find them, and guessing could give wrong pixels).
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import decode_data_sequence
from pydicom.uid import (ExplicitVRLittleEndian, JPEG2000Lossless, RLELossless,
                         generate_uid)

JPEG_BASELINE = '1.2.840.10008.1.2.4.50'
JPEG_EXTENDED = '1.2.840.10008.1.2.4.51'
JPEG_LOSSLESS = '1.2.840.10008.1.2.4.57'
JPEG_LOSSLESS_SV1 = '1.2.840.10008.1.2.4.70'
JPEG_LS = '1.2.840.10008.1.2.4.80'


def synthetic(rows, cols, frames, bits, signed, seed):
    """Smooth ramps (long runs for RLE) plus noise and a sharp disc (literal runs)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols]
    out = []
    for f in range(frames):
        base = (x * 7 + y * 3 + f * 50) % 200
        disc = ((x - cols / 2) ** 2 + (y - rows / 2) ** 2) < (rows / 4) ** 2
        img = base + disc * 300 + rng.integers(0, 40, size=(rows, cols)) * (x > cols // 2)
        img[: rows // 6] = 5  # a flat band: replicate runs
        if bits == 8:
            img = img % 256
        elif signed:
            img = img * 9 - 1024
        else:
            img = (img * 13) % (1 << bits)
        out.append(img)
    dtype = {(8, False): np.uint8, (16, False): np.uint16, (16, True): np.int16}[(8 if bits == 8 else 16, signed)]
    return np.stack(out).astype(dtype)


def native_dataset(arr, bits_stored, signed, rescale):
    frames, rows, cols = arr.shape
    ds = Dataset()
    ds.SOPClassUID = '1.2.840.10008.5.1.4.1.1.7'  # Secondary Capture
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = 'OT'
    ds.PatientName = 'Fragment^Test'
    ds.PatientID = 'FRAG'
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = 'MONOCHROME2'
    ds.BitsAllocated = arr.dtype.itemsize * 8
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if frames > 1:
        ds.NumberOfFrames = frames
    if rescale:
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.RescaleType = 'HU'
    ds.PixelData = arr.tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.is_little_endian, ds.is_implicit_VR = True, False
    return ds


def compress(native_path, out_path, family):
    if family == 'rle':
        ds = pydicom.dcmread(native_path)
        ds.compress(RLELossless, encoding_plugin='pydicom')
        ds.save_as(out_path, write_like_original=False)
    elif family in ('jpeg-baseline', 'jpeg-extended', 'jpeg-lossless', 'jpeg-lossless-sv1'):
        flag = {'jpeg-baseline': '+eb', 'jpeg-extended': '+ee', 'jpeg-lossless': '+el',
                'jpeg-lossless-sv1': '+e1'}[family]
        subprocess.run(['dcmcjpeg', flag, native_path, out_path], check=True)
    elif family == 'jpeg-ls':
        subprocess.run(['dcmcjpls', '+el', native_path, out_path], check=True)
    elif family == 'j2k':
        # GDCM writes multi-frame Secondary Capture only with the multi-frame SC modules; encode
        # each frame as its own image and assemble the fragments here.
        ds = pydicom.dcmread(native_path)
        frames = int(getattr(ds, 'NumberOfFrames', 1) or 1)
        if frames > 1:
            arr = ds.pixel_array
            codestreams = []
            with tempfile.TemporaryDirectory() as tmp:
                for f in range(frames):
                    one = native_dataset(arr[f:f + 1], int(ds.BitsStored),
                                         int(ds.PixelRepresentation) == 1, 'RescaleSlope' in ds)
                    src, dst = os.path.join(tmp, 'n.dcm'), os.path.join(tmp, 'c.dcm')
                    one.save_as(src, write_like_original=False)
                    compress(src, dst, 'j2k')
                    codestreams.append(b''.join(decode_data_sequence(pydicom.dcmread(dst).PixelData)))
            ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
            ds.PixelData = pixel_sequence(codestreams, b'')
            ds['PixelData'].is_undefined_length = True
            ds['PixelData'].VR = 'OB'
            ds.is_implicit_VR = False
            ds.save_as(out_path, write_like_original=False)
            return
        import gdcm
        reader = gdcm.ImageReader()
        reader.SetFileName(native_path)
        if not reader.Read():
            raise RuntimeError('GDCM cannot read ' + native_path)
        change = gdcm.ImageChangeTransferSyntax()
        change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEG2000Lossless))
        change.SetInput(reader.GetImage())
        if not change.Change():
            raise RuntimeError('GDCM cannot encode J2K')
        writer = gdcm.ImageWriter()
        writer.SetFileName(out_path)
        writer.SetFile(reader.GetFile())
        writer.SetImage(change.GetOutput())
        if not writer.Write():
            raise RuntimeError('GDCM cannot write ' + out_path)
    else:
        raise ValueError(family)


def item(tag_bytes, value):
    return tag_bytes + struct.pack('<I', len(value)) + value


def pixel_sequence(fragments, bot):
    """Encapsulated PixelData value: BOT item and fragment items (pydicom writes the delimiter)."""
    out = item(b'\xfe\xff\x00\xe0', bot)
    for frag in fragments:
        assert len(frag) % 2 == 0 and len(frag) > 0
        out += item(b'\xfe\xff\x00\xe0', frag)
    return out


def even_cuts(n, cuts):
    """Sorted, de-duplicated even cut positions strictly inside (0, n)."""
    out = sorted({c - c % 2 for c in cuts if 0 < c - c % 2 < n})
    return out


def split(frame, cuts):
    cuts = [0] + even_cuts(len(frame), cuts) + [len(frame)]
    return [frame[a:b] for a, b in zip(cuts, cuts[1:])]


def rle_segment_offsets(frame):
    count = struct.unpack('<I', frame[:4])[0]
    return list(struct.unpack('<15I', frame[4:64]))[:count]


def strategies(family, frame):
    n = len(frame)
    s = {'whole': [], 'halves': [n // 2], 'tiny-first': [2], 'thirds': [n // 3, 2 * n // 3],
         'many': list(range(max(2, n // 9), n, max(2, n // 9))), 'last-two': [n - 2]}
    if family == 'rle':
        s['header-alone'] = [64]
        s['inside-header'] = [10, 40]
        s['segment-boundaries'] = rle_segment_offsets(frame)[1:]
    else:
        s['after-marker'] = [4]
    return s


def frames_of(path):
    ds = pydicom.dcmread(path)
    items = decode_data_sequence(ds.PixelData)
    frames = int(getattr(ds, 'NumberOfFrames', 1) or 1)
    fragments = items  # decode_data_sequence skips the Basic Offset Table
    if len(fragments) != frames:
        raise RuntimeError(f'{path}: encoder wrote {len(fragments)} fragments for {frames} frames')
    return ds, fragments


def write_variant(ds, frames, name, cuts_for, table, out_dir):
    """Rewrites ds's pixel data with each frame cut by cuts_for(frame); table: none, bot, eot."""
    fragments, offsets, lengths, pos = [], [], [], 0
    for frame in frames:
        pieces = split(frame, cuts_for(frame))
        offsets.append(pos)
        lengths.append(len(frame))
        for p in pieces:
            fragments.append(p)
            pos += 8 + len(p)
    bot = b''
    out = ds.copy()
    if table == 'bot':
        bot = struct.pack(f'<{len(offsets)}I', *offsets)
    elif table == 'eot':
        out.ExtendedOffsetTable = struct.pack(f'<{len(offsets)}Q', *offsets)
        out.ExtendedOffsetTableLengths = struct.pack(f'<{len(lengths)}Q', *lengths)
    out.PixelData = pixel_sequence(fragments, bot)
    out['PixelData'].is_undefined_length = True
    out['PixelData'].VR = 'OB'
    path = os.path.join(out_dir, name + '.dcm')
    out.save_as(path, write_like_original=False)
    return path, len(fragments)


def reference(path):
    """pydicom's pixels with the modality LUT, as [frames, rows, cols, samples] float64."""
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array.astype(np.float64)
    frames = int(getattr(ds, 'NumberOfFrames', 1) or 1)
    if frames == 1:
        arr = arr[None]
    if int(ds.SamplesPerPixel) == 1:
        arr = arr[..., None]
    if 'RescaleSlope' in ds and 'RescaleIntercept' in ds:
        arr = arr * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    return arr


IMAGES = [
    # family, label, rows, cols, frames, bits stored, signed, rescale, lossy
    ('rle', 'ct16s', 48, 64, 1, 16, True, True, False),
    ('rle', 'ct16s', 48, 64, 3, 16, True, True, False),
    ('rle', 'mono8', 40, 50, 1, 8, False, False, False),
    ('rle', 'mono8', 40, 50, 3, 8, False, False, False),
    ('jpeg-baseline', 'mono8', 48, 64, 1, 8, False, False, True),
    ('jpeg-baseline', 'mono8', 48, 64, 3, 8, False, False, True),
    ('jpeg-extended', 'mono12', 48, 64, 1, 12, False, False, True),
    ('jpeg-extended', 'mono12', 48, 64, 3, 12, False, False, True),
    ('jpeg-lossless', 'ct16s', 48, 64, 1, 16, True, True, False),
    ('jpeg-lossless-sv1', 'ct16s', 48, 64, 1, 16, True, True, False),
    ('jpeg-lossless-sv1', 'ct16s', 48, 64, 3, 16, True, True, False),
    ('jpeg-lossless-sv1', 'mono8', 40, 50, 3, 8, False, False, False),
    ('jpeg-ls', 'ct16s', 48, 64, 1, 16, True, True, False),
    ('jpeg-ls', 'ct16s', 48, 64, 3, 16, True, True, False),
    ('jpeg-ls', 'mono8', 40, 50, 3, 8, False, False, False),
    ('j2k', 'ct16s', 48, 64, 1, 16, True, True, False),
    ('j2k', 'ct16s', 48, 64, 3, 16, True, True, False),
]


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    manifest = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed, (family, label, rows, cols, frames, bits, signed, rescale, lossy) in \
                enumerate(IMAGES):
            stem = f'{family}_{label}_{frames}f'
            arr = synthetic(rows, cols, frames, bits, signed, seed)
            native = os.path.join(tmp, stem + '_native.dcm')
            native_dataset(arr, bits, signed, rescale).save_as(native, write_like_original=False)
            base = os.path.join(out_dir, stem + '_base.dcm')
            compress(native, base, family)
            ref = os.path.join(out_dir, stem + '_ref.npy')
            ref_pixels = reference(base)
            if not lossy:  # the encoders are lossless: the base decodes to the original pixels
                truth = reference(native)
                assert np.array_equal(ref_pixels, truth), f'{stem}: pydicom != original pixels'
            else:
                diff = np.abs(ref_pixels - reference(native)).mean()
                assert diff < 0.01 * (1 << bits), f'{stem}: lossy base off by {diff} on average'
            np.save(ref, ref_pixels)
            ds, frames_bytes = frames_of(base)
            for strategy in strategies(family, frames_bytes[0]):
                def cuts_for(frame, strategy=strategy):
                    return strategies(family, frame)[strategy]
                for table in (('none', 'bot', 'eot') if frames > 1 else ('none', 'bot')):
                    name = f'{stem}_{strategy}_{table}'
                    path, count = write_variant(ds, frames_bytes, name, cuts_for, table, out_dir)
                    ambiguous = frames > 1 and table == 'none' and count > frames
                    expect = 'refuse' if ambiguous and family == 'rle' else 'ok'
                    manifest.append(dict(file=os.path.basename(path), family=family,
                                         lossy=lossy, base=os.path.basename(base),
                                         ref=os.path.basename(ref), fragments=count,
                                         frames=frames, expect=expect))
    with open(os.path.join(out_dir, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
    return manifest


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: make_fragmented_dicom.py OUT_DIR')
    print(len(main(sys.argv[1])), 'files')
