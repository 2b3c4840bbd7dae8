#!/usr/bin/env python3
"""Reference pixels for the DICOM conformance test, decoded with pydicom (2.3, + GDCM, Pillow).

    make_dicom_reference.py DATA_ROOT OUT_DIR

Walks DATA_ROOT/dicom and DATA_ROOT/cxr-dicom and, for every candidate file, writes
OUT_DIR/<n>.npy (float32, medvision layout [C, D, H, W]) and one row of OUT_DIR/manifest.tsv:

    relpath  status  transfer_syntax  lossy  colour  detail

status is `ok`, `no-pixel-data` or `pydicom-error` (detail: the exception, shortened).

What the reference means, so that it is comparable with medvision (docs/decoders.md):
- BitsStored masking and sign extension (PS3.5 8.1.1) are applied to integer data. pydicom 2.3
  leaves unused high bits as stored; medvision, pydicom 3 and DCMTK mask them.
- Monochrome data then goes through pydicom's apply_modality_lut. Enhanced objects that keep
  Rescale Slope/Intercept only in the shared Pixel Value Transformation functional group get the
  same rescale (pydicom 2.3 reads only the top level; medvision reads both).
- PALETTE COLOR goes through pydicom's apply_color_lut.
- pydicom 2.3 (numpy, GDCM and Pillow handlers alike) returns YBR_FULL / YBR_FULL_422 data in
  YCbCr; it is converted with pydicom's convert_color_space(arr, 'YBR_FULL', 'RGB'), which is what
  medvision reports (RGB). JPEG 2000 YBR_ICT / YBR_RCT come back as RGB from the decoders already.
- Values are computed in float64 and stored as float32, medvision's output type.
"""
import multiprocessing
import os
import sys
import time
import warnings

import numpy as np
import pydicom
from pydicom.pixel_data_handlers.util import (apply_color_lut, apply_modality_lut,
                                              convert_color_space)

# Files in the corpus folders that are documentation, scripts or raw (non-DICOM) codestreams.
SKIP_SUFFIXES = ('.py', '.txt', '.TXT', '.tsv', '.json', '.md', '.sh', '.rst', '.icc', '.SRC',
                 '.dump', '.JLS', '.JPG', '.j2k', '.gz', '.zip')
SKIP_NAMES = ('LICENSE', 'README', 'INVENTORY.tsv', 'PROVENANCE.txt', 'DUPLICATES_REMOVED.txt')

LOSSY = {'1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51', '1.2.840.10008.1.2.4.53',
         '1.2.840.10008.1.2.4.55', '1.2.840.10008.1.2.4.81', '1.2.840.10008.1.2.4.91',
         '1.2.840.10008.1.2.4.203'}


def candidates(root):
    out = []
    for top in ('dicom', 'cxr-dicom'):
        for d, _, files in os.walk(os.path.join(root, top)):
            for f in files:
                if f in SKIP_NAMES or f.endswith(SKIP_SUFFIXES):
                    continue
                out.append(os.path.relpath(os.path.join(d, f), root))
    return sorted(out)


def mask_bits(arr, bits, signed):
    """BitsStored masking and sign extension of integer samples."""
    if arr.dtype.kind not in 'iu' or bits <= 0 or bits >= arr.dtype.itemsize * 8:
        return arr
    v = arr.astype(np.int64) & ((1 << bits) - 1)
    if signed:
        v = np.where(v >= (1 << (bits - 1)), v - (1 << bits), v)
    return v


def modality(arr, ds):
    if 'ModalityLUTSequence' not in ds and 'RescaleSlope' not in ds:
        shared = ds.get('SharedFunctionalGroupsSequence')
        pvt = shared[0].get('PixelValueTransformationSequence') if shared else None
        if pvt and 'RescaleSlope' in pvt[0] and 'RescaleIntercept' in pvt[0]:
            return arr.astype(np.float64) * float(pvt[0].RescaleSlope) + float(
                pvt[0].RescaleIntercept)
    return apply_modality_lut(arr, ds)


def to_medvision_layout(arr, ds):
    """pydicom (frames, rows, cols, samples) with the frame/sample axes optional -> [C, D, H, W]."""
    frames = int(getattr(ds, 'NumberOfFrames', 1) or 1)
    if arr.ndim == 2:
        arr = arr[None, :, :, None]
    elif arr.ndim == 3:
        arr = arr[:, :, :, None] if frames > 1 else arr[None, :, :, :]
    return np.ascontiguousarray(arr.transpose(3, 0, 1, 2))


def fix_file_meta(ds):
    """Files without a meta header: tell pydicom the transfer syntax it parsed them with."""
    meta = ds.file_meta
    if 'TransferSyntaxUID' not in meta:
        if not ds.is_little_endian:
            meta.TransferSyntaxUID = pydicom.uid.ExplicitVRBigEndian
        elif ds.is_implicit_VR:
            meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
        else:
            meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian


def reference(ds):
    # Read before decoding: pydicom's J2K correction rewrites PixelRepresentation.
    bits = int(getattr(ds, 'BitsStored', 0) or 0)
    signed = int(getattr(ds, 'PixelRepresentation', 0) or 0) == 1
    arr = ds.pixel_array
    pi = str(getattr(ds, 'PhotometricInterpretation', '')).strip()
    colour = ''
    arr = mask_bits(arr, bits, signed)
    if pi == 'PALETTE COLOR':
        arr = apply_color_lut(arr.astype(np.uint16), ds)
        colour = 'palette'
    elif pi in ('YBR_FULL', 'YBR_FULL_422'):
        arr = convert_color_space(arr, 'YBR_FULL', 'RGB')
        colour = 'ybr'
    elif int(getattr(ds, 'SamplesPerPixel', 1)) == 1:
        arr = modality(arr, ds)
    return to_medvision_layout(np.asarray(arr, dtype=np.float64), ds).astype(np.float32), colour


def one(job):
    index, root, rel, out_dir = job
    path = os.path.join(root, rel)
    ts = ''
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            ds = pydicom.dcmread(path, force=True)
            fix_file_meta(ds)
            ts = str(ds.file_meta.TransferSyntaxUID)
            if not any(t in ds for t in ('PixelData', 'FloatPixelData', 'DoubleFloatPixelData')):
                return [rel, 'no-pixel-data', ts, '0', '', '']
            arr, colour = reference(ds)
    except Exception as e:  # pydicom's own failures are data for the test
        detail = f'{type(e).__name__}: {e}'.replace('\t', ' ').replace('\n', ' ')[:200]
        return [rel, 'pydicom-error', ts, '0', '', detail]
    np.save(os.path.join(out_dir, f'{index}.npy'), arr)
    return [rel, 'ok', ts, '1' if ts in LOSSY else '0', colour, f'{index}.npy']


def receive(conn):
    """The row a child sent, or None when it has not answered (or died without answering)."""
    if not conn.poll(0.01):
        return None
    try:
        return conn.recv()
    except EOFError:
        return None


def run_isolated(jobs, workers=2, timeout=300):
    """One forked process per file: a decoder that crashes or hangs costs one row, not the run."""
    ctx = multiprocessing.get_context('fork')
    rows, running, pending = {}, [], list(jobs)
    while pending or running:
        while pending and len(running) < workers:
            job = pending.pop(0)
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=lambda j=job, s=send: s.send(one(j)))
            proc.start()
            send.close()
            running.append((job, proc, recv, time.monotonic()))
        for entry in list(running):
            job, proc, recv, start = entry
            alive = proc.is_alive()  # checked before polling, so an answer is never missed
            row = receive(recv)
            if row is None:
                if alive and time.monotonic() - start < timeout:
                    continue
                proc.kill()
                proc.join()
                why = 'timed out' if alive else f'exit code {proc.exitcode}'
                row = [job[2], 'pydicom-error', '', '0', '', f'decoder crashed ({why})']
            rows[job[0]] = row
            proc.join()
            recv.close()
            running.remove(entry)
    return [rows[j[0]] for j in jobs]


def main():
    root, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    jobs = [(i, root, rel, out_dir) for i, rel in enumerate(candidates(root))]
    rows = run_isolated(jobs, workers=min(2, os.cpu_count() or 1))
    with open(os.path.join(out_dir, 'manifest.tsv.tmp'), 'w') as f:
        for row in rows:
            f.write('\t'.join(row) + '\n')
    os.replace(os.path.join(out_dir, 'manifest.tsv.tmp'), os.path.join(out_dir, 'manifest.tsv'))
    print(f'{len(rows)} files, {sum(r[1] == "ok" for r in rows)} decoded by pydicom')


if __name__ == '__main__':
    main()
