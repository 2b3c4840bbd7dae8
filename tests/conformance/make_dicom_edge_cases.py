#!/usr/bin/python3
"""Writes the DICOM files of issue 19's defect classes b, c and d, with what pydicom reads.

    make_dicom_edge_cases.py OUT_DIR  ->  OUT_DIR/*.dcm and OUT_DIR/manifest.json

b. group-length/: a wrong (0002,0000) File Meta Information Group Length, too long and too short,
   over native, JPEG-LS, RLE and implicit-VR data sets. pydicom reads them (it reads the meta group
   while the group number is 0002); medvision must decode the same pixels.
c. wrong-codestream/: a fragment that is not what the transfer syntax says (raw pixels in a JPEG
   Baseline file, as in the issue, and likewise for each codec family; a JPEG codestream under an
   RLE or a JPEG 2000 transfer syntax). medvision must refuse with MV_ERR_CORRUPT_DATA and a
   message naming the file, the transfer syntax UID and that the fragment holds no codestream.
d. charset/: text in each character set (Specific Character Set ISO_IR 100, 101, 109, 110, 126,
   127, 138, 144, 148, 166, 13, 192, GB18030, GBK and the ISO 2022 code extensions IR 87, 149, 58,
   13 + 87) in SeriesDescription and Manufacturer, written by pydicom's encoder; each of pydicom's
   own character set test files (pydicom.data.get_charset_files()) with its Patient Name bytes moved
   into SeriesDescription (medvision never hands out names) and a 2x2 image added; and broken text
   (bytes invalid in the declared set, an unknown set, Latin-1 without a declared set).
   The manifest carries pydicom's decoded values (`expect_meta`), or `utf8_only` where pydicom
   itself guesses (then medvision's text must be valid UTF-8 with the ASCII kept).
jpeg-ls (issue 17, JPEG-LS decoded by CharLS 2): colour in each interleave mode, bit depth,
   planar configuration, lossless and near-lossless, multi-frame; damaged codestreams
   (jpegls_cases).
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import decode_data_sequence, encapsulate
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless, generate_uid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_fragmented_dicom as frag  # noqa: E402


def base_dataset(rows, cols, arr, bits=8):
    ds = frag.native_dataset(arr.reshape(1, rows, cols), bits, False, False)
    ds.Modality = 'OT'
    ds.preamble = b'\0' * 128  # so that write_like_original=True writes a Part 10 file
    return ds


def save(ds, path, implicit=False):
    if implicit:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        ds.is_implicit_VR = True
    ds.save_as(path, write_like_original=False)


def with_group_length(path, out_path, delta):
    """Rewrites (0002,0000)'s value to its true value + delta, everything else unchanged."""
    data = bytearray(open(path, 'rb').read())
    at = data.index(b'\x02\x00\x00\x00UL\x04\x00', 128)
    true_value = struct.unpack_from('<I', data, at + 8)[0]
    struct.pack_into('<I', data, at + 8, max(0, true_value + delta))
    open(out_path, 'wb').write(bytes(data))


def pixels(path):
    return frag.reference(path)


# ---- b: group length -----------------------------------------------------------------------------

def group_length_cases(out, tmp):
    cases = []
    rng = np.random.default_rng(19)
    arr8 = rng.integers(0, 256, size=(48, 64)).astype(np.uint8)
    sources = {}
    native = os.path.join(tmp, 'native.dcm')
    save(base_dataset(48, 64, arr8), native)
    sources['explicit'] = native
    implicit = os.path.join(tmp, 'implicit.dcm')
    save(base_dataset(48, 64, arr8), implicit, implicit=True)
    sources['implicit'] = implicit
    # The case: 8-bit JPEG-LS lossless ultrasound, here 1024x768 like the held-back file.
    big = (np.add.outer(np.arange(768), np.arange(1024)) % 256).astype(np.uint8)
    us = os.path.join(tmp, 'us.dcm')
    ds = base_dataset(768, 1024, big)
    ds.Modality = 'US'
    save(ds, us)
    jls = os.path.join(tmp, 'jls.dcm')
    subprocess.run(['dcmcjpls', '+el', us, jls], check=True)
    sources['jpeg-ls'] = jls
    rle = os.path.join(tmp, 'rle.dcm')
    frag.compress(native, rle, 'rle')
    sources['rle'] = rle
    for label, src in sources.items():
        for delta in (+2, +8, +100, -2, -8, -30, -10000):
            name = f'group-length_{label}_{"plus" if delta > 0 else "minus"}{abs(delta)}.dcm'
            path = os.path.join(out, name)
            with_group_length(src, path, delta)
            ref = os.path.join(out, name[:-4] + '_ref.npy')
            # pydicom reads the file with the wrong length; its pixels are the reference.
            np.save(ref, pixels(path))
            cases.append(dict(file=name, kind='group-length', expect='ok', ref=os.path.basename(ref)))
    return cases


# ---- c: fragment that is not what the transfer syntax says --------------------------------------

def wrong_codestream_cases(out, tmp):
    cases = []
    raw = (np.add.outer(np.arange(64), np.arange(64)) % 256).astype(np.uint8)
    native = os.path.join(tmp, 'raw.dcm')
    save(base_dataset(64, 64, raw), native)
    jpeg = os.path.join(tmp, 'baseline.dcm')
    subprocess.run(['dcmcjpeg', '+eb', native, jpeg], check=True)
    jpeg_stream = decode_data_sequence(pydicom.dcmread(jpeg).PixelData)[0]
    uids = {'jpeg-baseline': frag.JPEG_BASELINE, 'jpeg-extended': frag.JPEG_EXTENDED,
            'jpeg-lossless-sv1': frag.JPEG_LOSSLESS_SV1, 'jpeg-ls': frag.JPEG_LS,
            'rle': RLELossless, 'j2k': '1.2.840.10008.1.2.4.90'}  # HTJ2K: same path as J2K
    for family, uid in uids.items():
        payloads = {'raw-pixels': raw.tobytes()}
        if family in ('rle', 'j2k'):
            payloads['jpeg-codestream'] = jpeg_stream
        for label, payload in payloads.items():
            ds = base_dataset(64, 64, raw)
            ds.file_meta.TransferSyntaxUID = uid
            ds.PixelData = encapsulate([payload + (b'\0' if len(payload) % 2 else b'')])
            ds['PixelData'].is_undefined_length = True
            ds['PixelData'].VR = 'OB'
            name = f'wrong-codestream_{family}_{label}.dcm'
            ds.save_as(os.path.join(out, name), write_like_original=False)
            cases.append(dict(file=name, kind='wrong-codestream', expect='refuse', uid=uid))
    # Damaged entropy-coded data: the scan cut short (EOI kept), and bytes of it overwritten.
    # DCMTK's IJG decoders only warn ("Corrupt JPEG data: ...") and invent the rest.
    sos = jpeg_stream.index(b'\xff\xda')
    scan = sos + 4 + struct.unpack('>H', jpeg_stream[sos + 2:sos + 4])[0]
    eoi = jpeg_stream.rindex(b'\xff\xd9')
    cut = jpeg_stream[:scan + (eoi - scan) // 3] + b'\xff\xd9'
    garbled = bytearray(jpeg_stream)
    garbled[scan + 10:scan + 40] = b'\xff\x00' * 15  # stuffed FFs: a valid-looking, wrong scan
    for label, stream in (('truncated-scan', cut), ('garbled-scan', bytes(garbled))):
        for uid_label, uid in (('jpeg-baseline', frag.JPEG_BASELINE),):
            ds = base_dataset(64, 64, raw)
            ds.file_meta.TransferSyntaxUID = uid
            ds.PixelData = encapsulate([stream + (b'\0' if len(stream) % 2 else b'')])
            ds['PixelData'].is_undefined_length = True
            ds['PixelData'].VR = 'OB'
            name = f'damaged_{uid_label}_{label}.dcm'
            ds.save_as(os.path.join(out, name), write_like_original=False)
            cases.append(dict(file=name, kind='damaged', expect='refuse', uid=uid))
    return cases


# ---- d: character sets --------------------------------------------------------------------------

TEXTS = [
    ('ISO_IR 100', 'Thorax Übersicht p.a.', 'Siemens Erlangen ÄÖÜß'),
    ('ISO_IR 101', 'Hrudník Łódź', 'Žďár'),
    ('ISO_IR 109', 'Toraċi', 'Ħamrun'),
    ('ISO_IR 110', 'Krūtinė', 'Šiauliai'),
    ('ISO_IR 126', 'Θώρακας', 'Αθήνα'),
    ('ISO_IR 127', 'صدر', 'شركة'),
    ('ISO_IR 138', 'חזה', 'חברה'),
    ('ISO_IR 144', 'Грудная клетка', 'Завод'),
    ('ISO_IR 148', 'Göğüs', 'Şirket'),
    ('ISO_IR 166', 'ทรวงอก', 'บริษัท'),
    ('ISO_IR 13', 'ｷｮｳﾌﾞ', 'ｿﾆｰ'),
    ('ISO_IR 192', 'Thorax 胸部 Übersicht Грудь', 'Ωmega ✓'),
    ('GB18030', '胸部 正位 €', '联影'),
    ('GBK', '胸部', '东软'),
    (['', 'ISO 2022 IR 87'], '胸部正面', '東芝'),
    (['ISO 2022 IR 13', 'ISO 2022 IR 87'], 'ｷｮｳﾌﾞ胸部', 'ｿﾆｰ東芝'),
    (['', 'ISO 2022 IR 149'], '흉부', '삼성'),
    (['ISO 2022 IR 100'], 'Übersicht', 'Erlangen'),
    (['ISO 2022 IR 6', 'ISO 2022 IR 126'], 'Θώρακας x', 'Αθήνα'),
]


def image_with_text(charset, series, manufacturer):
    ds = base_dataset(2, 2, np.array([[0, 1], [2, 3]], dtype=np.uint8))
    ds.SpecificCharacterSet = charset
    ds.SeriesDescription = series
    ds.Manufacturer = manufacturer
    return ds


def save_with_raw(ds, path, raw):
    """Saves `ds` with the text elements in `raw` ({keyword: bytes}) holding exactly those bytes.

    pydicom decodes and re-encodes text it writes (replacing what it cannot decode), so each
    value is written as a placeholder of the same length and the bytes are swapped in after.
    """
    placeholders = {}
    for i, (keyword, value) in enumerate(raw.items()):
        value = value + (b' ' if len(value) % 2 else b'')
        marker = (f'@{i}' * len(value))[:len(value)].encode('ascii')
        setattr(ds, keyword, marker.decode('ascii'))
        placeholders[marker] = value
    ds.save_as(path, write_like_original=False)
    data = open(path, 'rb').read()
    for marker, value in placeholders.items():
        assert data.count(marker) == 1, marker
        data = data.replace(marker, value)
    open(path, 'wb').write(data)


def charset_cases(out, tmp):
    cases = []
    for i, (charset, series, manufacturer) in enumerate(TEXTS):
        name = f'charset_written_{i:02d}.dcm'
        path = os.path.join(out, name)
        image_with_text(charset, series, manufacturer).save_as(path, write_like_original=False)
        back = pydicom.dcmread(path)
        assert back.SeriesDescription == series, (charset, back.SeriesDescription)
        cases.append(dict(file=name, kind='charset', expect='ok', charset=str(charset),
                          expect_meta={'SeriesDescription': series,
                                       'Manufacturer': manufacturer}))
    # ISO 2022 IR 58 (GB2312 in G1, PS3.5 K.2), encoded here: pydicom 2.3 writes it without the
    # escape sequence and leaves ESC $ ) A in the text it decodes, so the reference is the text
    # itself (its bytes are Python's gb2312 codec's, after the escape sequence).
    for i, text in enumerate(['胸部 CT', '东软 医疗']):
        img = image_with_text(['', 'ISO 2022 IR 58'], 'x', 'x')
        value = b''
        for part in text.split(' '):
            value += (b' ' if value else b'') + b'\x1b$)A' + part.encode('gb2312')
        name = f'charset_written_ir58_{i}.dcm'
        save_with_raw(img, os.path.join(out, name), {'SeriesDescription': value})
        cases.append(dict(file=name, kind='charset', expect='ok', charset='ISO 2022 IR 58',
                          expect_meta={'SeriesDescription': text}))
    # pydicom's own character set files: the Patient Name bytes become the Series Description.
    for src in sorted(pydicom.data.get_charset_files('*.dcm')):
        ds = pydicom.dcmread(src)
        raw = ds.get_item(Tag(0x00100010))
        if raw is None or not isinstance(raw, RawDataElement) or not raw.value:
            continue
        img = image_with_text(ds.get('SpecificCharacterSet', ''), 'x', 'x')
        if 'SpecificCharacterSet' not in ds:
            del img.SpecificCharacterSet
        del img.Manufacturer
        name = 'charset_pydicom_' + os.path.basename(src)
        path = os.path.join(out, name)
        save_with_raw(img, path, {'SeriesDescription': raw.value.rstrip(b' ')})
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            back = pydicom.dcmread(path)
            expected = str(back.SeriesDescription)
        cases.append(dict(file=name, kind='charset', expect='ok',
                          charset=str(ds.get('SpecificCharacterSet', '')),
                          expect_meta={'SeriesDescription': expected}))
    # Broken text: pydicom guesses (or warns); medvision must hand out valid UTF-8, ASCII kept.
    broken = [
        ('invalid-utf8', 'ISO_IR 192', b'Thorax \xff\xfe\xc3 end', ['Thorax ', ' end']),
        ('unknown-charset', 'ISO_IR 999', b'Thorax \xdcbersicht', ['Thorax ', 'bersicht']),
        ('gb18030-truncated', 'GB18030', b'Chest \x81', ['Chest']),
        ('iso2022-bad-escape', ['', 'ISO 2022 IR 87'], b'A \x1b$B\xff\xff\x1b(B Z', ['A ', ' Z']),
    ]
    for label, charset, value, ascii_kept in broken:
        img = image_with_text(charset, 'x', 'x')
        name = f'charset_broken_{label}.dcm'
        save_with_raw(img, os.path.join(out, name), {'SeriesDescription': value})
        cases.append(dict(file=name, kind='charset', expect='ok', charset=str(charset),
                          utf8_only={'SeriesDescription': ascii_kept}))
    # No Specific Character Set: Latin-1 bytes read as Latin-1 (pydicom's default), UTF-8 kept.
    for label, value, text in [('latin1', 'Thorax Übersicht'.encode('latin-1'), 'Thorax Übersicht'),
                               ('utf8', 'Thorax Übersicht'.encode('utf-8'), 'Thorax Übersicht')]:
        img = image_with_text('ISO_IR 100', 'x', 'x')
        del img.SpecificCharacterSet
        name = f'charset_undeclared_{label}.dcm'
        save_with_raw(img, os.path.join(out, name), {'SeriesDescription': value})
        cases.append(dict(file=name, kind='charset', expect='ok', charset='',
                          expect_meta={'SeriesDescription': text}))
    # A code string (CS, ASCII only by the standard) holding a non-ASCII byte.
    img = image_with_text('ISO_IR 100', 'x', 'x')
    save_with_raw(img, os.path.join(out, 'charset_broken_cs.dcm'), {'Modality': b'C\xd4'})
    cases.append(dict(file='charset_broken_cs.dcm', kind='charset', expect='ok',
                      charset='ISO_IR 100', expect_meta={'Modality': pydicom.dcmread(
                          os.path.join(out, 'charset_broken_cs.dcm')).Modality}))
    return cases


# ---- resource limits: headers that claim huge images ---------------------------------------------

def patch_sof(stream, rows, cols):
    """A JPEG codestream with its frame header's height and width replaced."""
    data = bytearray(stream)
    i = 2
    while i + 4 <= len(data):
        m = data[i + 1]
        if 0xc0 <= m <= 0xcf and m not in (0xc4, 0xc8, 0xcc):
            struct.pack_into('>HH', data, i + 5, rows, cols)
            return bytes(data)
        i += 2 + struct.unpack_from('>H', data, i + 2)[0]
    raise ValueError('no SOF')


def png_chunk(kind, payload):
    import zlib
    return struct.pack('>I', len(payload)) + kind + payload + \
        struct.pack('>I', zlib.crc32(kind + payload) & 0xffffffff)


def limit_cases(out, tmp):
    """Tiny files whose headers claim images far past the default limit (2^30 values)."""
    import io
    import zlib
    from PIL import Image
    cases = []

    def add(name, data, statuses):
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)
        cases.append(dict(file=name, kind='limits', expect='refuse', statuses=statuses))

    raw = (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)
    native = os.path.join(tmp, 'limits_native.dcm')
    save(base_dataset(64, 64, raw), native)
    jpeg = os.path.join(tmp, 'limits_jpeg.dcm')
    subprocess.run(['dcmcjpeg', '+eb', native, jpeg], check=True)
    stream = decode_data_sequence(pydicom.dcmread(jpeg).PixelData)[0]
    # Native: 65535 x 65535 x 1000 frames, 4 bytes of pixel data.
    ds = base_dataset(64, 64, raw)
    ds.Rows = ds.Columns = 65535
    ds.NumberOfFrames = 1000
    ds.PixelData = b'\0' * 4
    b = io.BytesIO()
    ds.save_as(b, write_like_original=False)
    add('limits_dicom_native_huge.dcm', b.getvalue(), ['MV_ERR_OUT_OF_MEMORY'])
    # JPEG Baseline whose header and codestream both claim 60000 x 60000.
    for label, header, sof in [('both', 60000, 60000), ('sof-only', 64, 65000)]:
        ds = base_dataset(64, 64, raw)
        ds.Rows = ds.Columns = header
        ds.file_meta.TransferSyntaxUID = frag.JPEG_BASELINE
        ds.PixelData = encapsulate([patch_sof(stream, sof, sof)])
        ds['PixelData'].is_undefined_length = True
        ds['PixelData'].VR = 'OB'
        b = io.BytesIO()
        ds.save_as(b, write_like_original=False)
        add(f'limits_dicom_jpeg_{label}.dcm', b.getvalue(),
            ['MV_ERR_OUT_OF_MEMORY'] if label == 'both' else ['MV_ERR_CORRUPT_DATA'])
    # PNG: IHDR 100000 x 100000 grey, one small IDAT.
    png = b'\x89PNG\r\n\x1a\n' + png_chunk(b'IHDR', struct.pack('>IIBBBBB', 100000, 100000, 8, 0, 0, 0, 0)) + \
        png_chunk(b'IDAT', zlib.compress(b'\0' * 1000)) + png_chunk(b'IEND', b'')
    add('limits_png_huge.png', png, ['MV_ERR_OUT_OF_MEMORY'])
    # JPEG (raster): SOF 65000 x 65000 on a 16 x 16 image.
    b = io.BytesIO()
    Image.fromarray(raw[:16, :16]).save(b, 'JPEG')
    add('limits_jpeg_huge.jpg', patch_sof(b.getvalue(), 65000, 65000), ['MV_ERR_OUT_OF_MEMORY'])
    # TIFF: 100000 x 100000, one 16-byte strip.
    entries = [(256, 4, 1, 100000), (257, 4, 1, 100000), (258, 3, 1, 8), (259, 3, 1, 1),
               (262, 3, 1, 1), (273, 4, 1, 8 + 2 + 12 * 8 + 4), (277, 3, 1, 1),
               (278, 4, 1, 100000), (279, 4, 1, 16)]
    tif = b'II*\0' + struct.pack('<I', 8) + struct.pack('<H', len(entries))
    for tag, typ, count, value in entries:
        tif += struct.pack('<HHII', tag, typ, count, value)
    tif += struct.pack('<I', 0) + b'\0' * 16
    entries = None
    add('limits_tiff_huge.tif', tif, ['MV_ERR_OUT_OF_MEMORY'])
    # NIfTI-1: dim = 30000 x 30000 x 30000 (int16 dims), 16 bytes of voxels.
    import nibabel as nib
    nii = os.path.join(tmp, 'limits.nii')
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.uint8), np.eye(4)), nii)
    data = bytearray(open(nii, 'rb').read())
    struct.pack_into('<hhhh', data, 40, 3, 30000, 30000, 30000)
    add('limits_nifti_huge.nii', bytes(data), ['MV_ERR_OUT_OF_MEMORY'])
    return cases


# ---- byte order: big endian samples stored as OB -----------------------------------------------

def byte_order_cases(out, tmp):
    """16-bit samples with VR OB in Explicit VR Big Endian (as pydicom-data SC_rgb_expb_16bit.dcm,
    whose values are all 0000 / FFFF and so hid a byte-order bug), with values whose two bytes
    differ; mono and RGB. pydicom reads OB pixel data of a big endian file as big endian."""
    from pydicom.uid import ExplicitVRBigEndian
    cases = []
    for label, samples in (('mono', 1), ('rgb', 3)):
        arr = (np.arange(12 * 10 * samples, dtype=np.uint16) * 517 + 3).reshape(12, 10, samples)
        ds = base_dataset(12, 10, np.zeros((12, 10), np.uint8))
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.SamplesPerPixel = samples
        if samples == 3:
            ds.PhotometricInterpretation = 'RGB'
            ds.PlanarConfiguration = 0
        ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
        ds.is_little_endian, ds.is_implicit_VR = False, False
        ds.PixelData = arr.astype('>u2').tobytes()
        ds['PixelData'].VR = 'OB'
        name = f'byte-order_ob16_{label}.dcm'
        path = os.path.join(out, name)
        ds.save_as(path, write_like_original=False)
        ref = os.path.join(out, name[:-4] + '_ref.npy')
        np.save(ref, pixels(path))
        assert np.array_equal(np.load(ref)[0], arr.astype(np.float64))
        cases.append(dict(file=name, kind='byte-order', expect='ok', ref=os.path.basename(ref)))
    return cases


# ---- JPEG-LS through CharLS (issue 17) ------------------------------------------------------------

def jls_source(rows, cols, samples, bits, planar, frames=1, seed=17):
    """A native file with gradients, a flat patch (JPEG-LS run mode) and noise; its array
    [frames, rows, cols, samples] is the ground truth of a lossless encoding."""
    rng = np.random.default_rng(seed + bits + samples + planar)
    y, x = np.mgrid[0:rows, 0:cols]
    top = (1 << bits) - 1
    planes = [(y * 37 + x * 23) % (top + 1), (y * 5 + x * 9 + 7) % (top + 1),
              rng.integers(0, top + 1, size=(rows, cols))][:samples]
    arr = np.stack(planes, -1)
    arr[rows // 4:rows // 2, cols // 5:cols // 2] = top // 3
    arr = np.stack([np.roll(arr, f * 3, axis=1) for f in range(frames)])
    dtype = np.uint8 if bits <= 8 else np.uint16
    arr = arr.astype(dtype)
    ds = frag.native_dataset(arr[..., 0], bits, False, False)
    ds.Modality = 'OT'
    ds.preamble = b'\0' * 128
    if samples == 3:
        ds.SamplesPerPixel = 3
        ds.PhotometricInterpretation = 'RGB'
        ds.PlanarConfiguration = planar
        data = np.transpose(arr, (0, 3, 1, 2)) if planar else arr
        ds.PixelData = np.ascontiguousarray(data).tobytes()
    return ds, arr.astype(np.float64)


def jpegls_cases(out, tmp):
    """JPEG-LS decoded by CharLS 2: colour 8/12/16-bit in each interleave mode (none, line, sample)
    from files with PlanarConfiguration 0 and 1, lossless and near-lossless (NEAR 2), multi-frame
    monochrome, 8 bits stored in 16 allocated, zero padding (dcmcjpls +pz); each against
    the source array (lossless) or pydicom + GDCM and the NEAR bound (near-lossless). Then damaged
    codestreams: refused with the file, the pixel tag and CharLS's words, never invented pixels."""
    cases = []
    variants = []
    for bits in (8, 12, 16):
        for planar in (0, 1):
            for ilv in ('none', 'line', 'sample'):
                for mode in ('lossless', 'near'):
                    variants.append((f'rgb{bits}_pc{planar}_{ilv}_{mode}', 3, bits, planar, 1,
                                     ['+i' + ilv[0], '+el' if mode == 'lossless' else '+en'],
                                     8 if bits <= 8 else 16))
    variants += [('mono8_3f_near', 1, 8, 0, 3, ['+en', '+md', '3'], 8),
                 ('mono16_2f_lossless_zero-padding', 1, 16, 0, 2, ['+el', '+pz'], 16),
                 ('mono12_1f_near', 1, 12, 0, 1, ['+en'], 16),
                 ('mono8_1f_lossless', 1, 8, 0, 1, ['+el'], 8),
                 ('mono8-stored_16-allocated_lossless', 1, 8, 0, 1, ['+el'], 16)]
    for label, samples, bits, planar, frames, flags, allocated in variants:
        ds, truth = jls_source(24, 30, samples, bits, planar, frames)
        if allocated > 8 >= bits:  # 8 bits stored in 16 allocated
            arr16 = truth[..., 0].astype(np.uint16)
            ds.BitsAllocated = 16
            ds.PixelData = arr16.tobytes()
        native = os.path.join(tmp, f'jls_{label}.dcm')
        ds.save_as(native, write_like_original=False)
        name = f'jpeg-ls_{label}.dcm'
        path = os.path.join(out, name)
        subprocess.run(['dcmcjpls', *flags, native, path], check=True)
        ref = os.path.join(out, name[:-4] + '_ref.npy')
        near = 0 if 'lossless' in label else (3 if '+md' in flags else 2)
        np.save(ref, truth if near == 0 else pixels(path))
        truth_path = ref
        if near:
            truth_path = os.path.join(out, name[:-4] + '_truth.npy')
            np.save(truth_path, truth)
        cases.append(dict(file=name, kind='jpeg-ls', expect='ok', ref=os.path.basename(ref),
                          near=near, truth=os.path.basename(truth_path)))
    # Damaged codestreams, from an 8-bit monochrome lossless one.
    ds, _ = jls_source(64, 64, 1, 8, 0, seed=5)
    native = os.path.join(tmp, 'jls_damaged_src.dcm')
    ds.save_as(native, write_like_original=False)
    good = os.path.join(tmp, 'jls_damaged_good.dcm')
    subprocess.run(['dcmcjpls', '+el', native, good], check=True)
    stream = decode_data_sequence(pydicom.dcmread(good).PixelData)[0]
    sof = stream.index(b'\xff\xf7')
    sos = stream.index(b'\xff\xda')
    scan = sos + 2 + struct.unpack('>H', stream[sos + 2:sos + 4])[0]
    eoi = stream.rindex(b'\xff\xd9')
    garbled = bytearray(stream)
    for i in range(scan + 20, min(eoi, scan + 200), 7):
        garbled[i] = 0xff  # marker-like bytes in the middle of the scan
    bits16 = bytearray(stream)
    bits16[sof + 4] = 16  # P: 16 bits per sample in an 8-bit (BitsAllocated 8) file
    wider = bytearray(stream)
    struct.pack_into('>H', wider, sof + 7, 65)  # X: 65 columns, the header says 64
    damaged = {'truncated-scan': stream[:scan + (eoi - scan) // 3] + b'\xff\xd9',
               'no-eoi': stream[:scan + (eoi - scan) // 2],
               'garbled-scan': bytes(garbled), 'bits-16-of-8': bytes(bits16),
               'sof-65-columns': bytes(wider),
               # one zero byte of scan data (the padding) and no EOI: CharLS 2.4.1 took 20 s
               'header-only': stream[:scan]}
    for label, payload in damaged.items():
        ds = pydicom.dcmread(good)
        ds.PixelData = encapsulate([payload + (b'\0' if len(payload) % 2 else b'')])
        ds['PixelData'].is_undefined_length = True
        name = f'damaged_jpeg-ls_{label}.dcm'
        ds.save_as(os.path.join(out, name), write_like_original=False)
        case = dict(file=name, kind='damaged-jpeg-ls', expect='refuse', uid=frag.JPEG_LS)
        if label == 'garbled-scan':  # may decode: then it must equal pydicom + GDCM (CharLS)
            try:
                np.save(os.path.join(out, name[:-4] + '_ref.npy'), pixels(os.path.join(out, name)))
                case['ref'] = name[:-4] + '_ref.npy'
            except Exception:  # noqa: BLE001 - pydicom refuses it too
                pass
            case['expect'] = 'agree-or-refuse'
        cases.append(case)
    return cases


def main(out):
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cases = group_length_cases(out, tmp) + wrong_codestream_cases(out, tmp) + \
            charset_cases(out, tmp) + limit_cases(out, tmp) + byte_order_cases(out, tmp) + \
            jpegls_cases(out, tmp)
    with open(os.path.join(out, 'manifest.json'), 'w') as f:
        json.dump(cases, f, indent=1, ensure_ascii=False)
    return cases


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: make_dicom_edge_cases.py OUT_DIR')
    print(len(main(sys.argv[1])), 'files')
