"""Frames split over fragments: medvision against pydicom (issue 19, defect class a).

make_fragmented_dicom.py writes, at test time, RLE / JPEG baseline / extended / lossless /
JPEG-LS / JPEG 2000 files whose frames are cut into fragments in every legal way (with and
without a Basic Offset Table, with an Extended Offset Table). The codestream bytes never change,
so each variant must decode to exactly what medvision decodes from the one-fragment-per-frame
original, and that must equal pydicom's pixels (exactly for lossless codecs, within the lossy
tolerance of test_dicom_conformance.py for JPEG baseline / extended). Where the frame boundaries
cannot be known (multi-frame RLE, no offset table, more fragments than frames), medvision must
refuse with MV_ERR_CORRUPT_DATA rather than guess.

Environment: MV_DICOM_DUMP (tests/conformance/dicom_dump.cpp), MV_FRAGMENT_DIR (build-tree
folder for the generated files). Needs pydicom, GDCM, numpy and DCMTK's dcmcjpeg / dcmcjpls.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_fragmented_dicom  # noqa: E402

DUMP = os.environ.get('MV_DICOM_DUMP', '')
OUT = os.environ.get('MV_FRAGMENT_DIR', '')


@pytest.fixture(scope='module')
def results():
    if not DUMP or not OUT:
        pytest.fail('MV_DICOM_DUMP and MV_FRAGMENT_DIR must be set (run through ctest)')
    manifest = make_fragmented_dicom.main(OUT)
    names = sorted({m['file'] for m in manifest} | {m['base'] for m in manifest})
    dump_dir = os.path.join(OUT, 'medvision')
    os.makedirs(dump_dir, exist_ok=True)
    list_path = os.path.join(dump_dir, 'list.txt')
    with open(list_path, 'w') as f:
        f.writelines(os.path.join(OUT, n) + '\n' for n in names)
    proc = subprocess.run([DUMP, list_path, dump_dir], capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode(errors='replace')
    assert proc.stderr == b'', 'the library printed: ' + proc.stderr.decode(errors='replace')
    decoded = {}
    for i, n in enumerate(names):
        with open(os.path.join(dump_dir, f'{i}.json')) as f:
            r = json.load(f)
        if r['status'] == 'MV_OK':
            r['pixels'] = np.load(os.path.join(dump_dir, f'{i}.npy'))
        decoded[n] = r
    return manifest, decoded


def as_reference_layout(mv):
    """medvision's [C, D, H, W] as the reference's [frames, rows, cols, samples]."""
    return np.transpose(mv, (1, 2, 3, 0)).astype(np.float64)


def test_every_family_and_split_is_generated(results):
    manifest, _ = results
    families = {m['family'] for m in manifest}
    assert families == {'rle', 'jpeg-baseline', 'jpeg-extended', 'jpeg-lossless',
                        'jpeg-lossless-sv1', 'jpeg-ls', 'j2k'}
    assert any(m['fragments'] > 2 * m['frames'] for m in manifest)
    assert any(m['expect'] == 'refuse' for m in manifest)


def test_bases_match_pydicom(results):
    manifest, decoded = results
    bad = []
    for base in sorted({m['base'] for m in manifest}):
        m = next(x for x in manifest if x['base'] == base)
        r = decoded[base]
        if r['status'] != 'MV_OK':
            bad.append(f"{base}: {r['status']} {r['message']}")
            continue
        ref = np.load(os.path.join(OUT, m['ref']))
        mv = as_reference_layout(r['pixels'])
        if mv.shape != ref.shape:
            bad.append(f'{base}: shape {mv.shape} != {ref.shape}')
        elif m['lossy']:
            span = max(1.0, float(ref.max() - ref.min()))
            diff = np.abs(mv - ref)
            if diff.mean() > max(1.0, 0.005 * span) or diff.max() > max(8.0, 0.05 * span):
                bad.append(f'{base}: lossy mean {diff.mean():.3f} max {diff.max():.1f}')
        elif not np.array_equal(mv, ref):
            bad.append(f'{base}: {int((mv != ref).sum())} of {ref.size} values differ')
    assert not bad, '\n'.join(bad)


def test_every_split_decodes_like_its_base(results):
    manifest, decoded = results
    bad = []
    for m in manifest:
        r = decoded[m['file']]
        where = f"{m['file']} ({m['fragments']} fragments, {m['frames']} frames)"
        if m['expect'] == 'refuse':
            if r['status'] != 'MV_ERR_CORRUPT_DATA' or 'fragment' not in r['message']:
                bad.append(f"{where}: expected a refusal, got {r['status']} {r['message']}")
            continue
        if r['status'] != 'MV_OK':
            bad.append(f"{where}: {r['status']} {r['message']}")
            continue
        base = decoded[m['base']]
        if base['status'] == 'MV_OK' and not np.array_equal(r['pixels'], base['pixels']):
            diff = int((r['pixels'] != base['pixels']).sum())
            bad.append(f'{where}: {diff} of {base["pixels"].size} values differ from the base')
    assert not bad, f'{len(bad)} of {len(manifest)} files:\n' + '\n'.join(bad)


def test_refusals_name_the_file_and_the_problem(results):
    manifest, decoded = results
    for m in manifest:
        if m['expect'] == 'refuse':
            msg = decoded[m['file']]['message']
            assert m['file'] in msg and 'Offset Table' in msg and 'frame boundaries' in msg, msg
