"""DICOM conformance: medvision against pydicom 2.3 (+ GDCM, Pillow) over the public corpus.

Run by ctest (label `conformance`). Environment: MEDVISION_DATA (corpus root), MV_DICOM_DUMP
(the batch decoder tests/conformance/dicom_dump.cpp), MV_SOURCE_DIR, MV_DICOM_REF (build-tree folder for the references). The references
come from scripts/make_dicom_reference.py and are rebuilt when the script is newer than them.

Comparison (see docs/decoders.md): exact for integer data; 1e-5 relative for rescaled or float
data; lossy transfer syntaxes (JPEG baseline/extended/progressive, JPEG-LS near-lossless, lossy
J2K/HTJ2K) within a small tolerance, as medvision (DCMTK's IJG, OpenJPEG) and pydicom (GDCM,
Pillow's libjpeg-turbo) use different decoders; YCbCr->RGB conversion of lossy data likewise.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

DATA = os.environ.get('MEDVISION_DATA', '')
SRC = os.environ.get('MV_SOURCE_DIR', os.path.join(os.path.dirname(__file__), '..', '..'))
REF = os.environ.get('MV_DICOM_REF', '')
DUMP = os.environ.get('MV_DICOM_DUMP', '')
SCRIPT = os.path.join(SRC, 'scripts', 'make_dicom_reference.py')
EXPECTED = os.path.join(SRC, 'tests', 'conformance', 'dicom_expected.tsv')
# Lossy: mean |diff| within 0.5% of the value range (min 1 grey level) and no pixel further than
# 5% of the range (min 8). Loose enough for a different JPEG decoder, or for a lossy file against
# its uncompressed twin; tight enough to catch a wrong colour space, sign or bit depth.
LOSSY_MEAN_FRACTION, LOSSY_MAX_FRACTION = 0.005, 0.05


def load_expected():
    out = {}
    for line in open(EXPECTED):
        if line.startswith('#') or not line.strip():
            continue
        path, kind, value, reason = line.rstrip('\n').split('\t')
        out[path] = (kind, value, reason)
    return out


@pytest.fixture(scope='session')
def manifest():
    if not DATA or not os.path.isdir(os.path.join(DATA, 'dicom')):
        if os.environ.get('CI') == 'true':
            pytest.fail(f'test data missing in CI: {DATA}')
        pytest.skip(f'SKIPPED: DICOM corpus not found under {DATA!r} (set MEDVISION_DATA)')
    path = os.path.join(REF, 'manifest.tsv')
    if not os.path.exists(path) or os.path.getmtime(path) < os.path.getmtime(SCRIPT):
        subprocess.run([sys.executable, SCRIPT, DATA, REF], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = [line.rstrip('\n').split('\t') for line in open(path)]
    return {r[0]: dict(status=r[1], ts=r[2], lossy=r[3] == '1', colour=r[4], detail=r[5])
            for r in rows}


@pytest.fixture(scope='session')
def decoded(manifest):
    """Decodes every corpus file in one dicom_dump process; returns {path: result}."""
    out_dir = os.path.join(REF, 'medvision')
    os.makedirs(out_dir, exist_ok=True)
    rels = sorted(manifest)
    list_path = os.path.join(out_dir, 'list.txt')
    with open(list_path, 'w') as f:
        f.writelines(os.path.join(DATA, rel) + '\n' for rel in rels)
    proc = subprocess.run([DUMP, list_path, out_dir], capture_output=True, timeout=600)
    assert proc.returncode == 0, f'dicom_dump exited with {proc.returncode}'
    stderr = proc.stderr.decode(errors='replace')
    results = {}
    for index, rel in enumerate(rels):
        with open(os.path.join(out_dir, f'{index}.json')) as f:
            results[rel] = json.load(f)
        results[rel]['npy'] = os.path.join(out_dir, f'{index}.npy')
        results[rel]['stderr'] = stderr  # one process: any output fails test_nothing_printed
    return results


def compare(mv, ref, lossy):
    """Returns None when `mv` matches `ref`, else a description of the difference."""
    if mv.shape != ref.shape:
        return f'shape {mv.shape} != reference {ref.shape}'
    diff = np.abs(mv.astype(np.float64) - ref.astype(np.float64))
    if lossy:
        span = float(np.ptp(ref))
        if (diff.mean() <= max(1.0, LOSSY_MEAN_FRACTION * span) and
                diff.max() <= max(8.0, LOSSY_MAX_FRACTION * span)):
            return None
    elif np.array_equal(mv, ref):
        return None
    elif not np.all(np.mod(ref, 1) == 0) and np.allclose(
            mv, ref, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(ref).max()))):
        return None
    return f'max |diff| {diff.max():g}, mean {diff.mean():g} (lossy={lossy})'


def test_nothing_printed(decoded):
    printed = next(iter(decoded.values()))['stderr']
    assert not printed.strip(), f'medvision printed to stderr: {printed[:2000]}'


def test_failures_name_the_file(decoded):
    bad = [rel for rel, r in decoded.items()
           if r['status'] != 'MV_OK' and os.path.basename(rel) not in r['message']]
    assert not bad, f'error messages that do not name the file: {bad}'


def test_expected_list_is_current(manifest):
    stale = [p for p in load_expected() if p not in manifest]
    assert not stale, f'dicom_expected.tsv lists files not in the corpus: {stale}'


def test_conformance(manifest, decoded):
    expected = load_expected()
    failures, counts = [], dict(compared=0, passed=0, no_image=0, mv_fails=0, pydicom_fails=0)
    for rel, ref in sorted(manifest.items()):
        mv = decoded[rel]
        kind, value, reason = expected.get(rel, ('', '', ''))
        if kind == 'mv-fails':
            counts['mv_fails'] += 1
            if mv['status'] != value:
                failures.append(f'{rel}: expected {value} ({reason}), got {mv["status"]}')
            continue
        if ref['status'] == 'no-pixel-data' and kind == '':
            counts['no_image'] += 1
            if mv['status'] != 'MV_ERR_UNSUPPORTED_FORMAT':
                failures.append(f'{rel}: no pixel data, medvision says {mv["status"]}')
            continue
        if mv['status'] != 'MV_OK':
            failures.append(f'{rel}: medvision failed: {mv["status"]} {mv["message"]}')
            continue
        if kind == 'pydicom-fails':
            counts['pydicom_fails'] += 1
            if ref['status'] == 'ok':
                failures.append(f'{rel}: listed as pydicom-fails but pydicom decodes it now')
            if not np.isfinite(np.load(mv['npy'])).all():
                failures.append(f'{rel}: non-finite values')
            continue
        src = manifest[value] if kind == 'twin' else ref
        if src['status'] != 'ok':
            failures.append(f'{rel}: pydicom cannot decode it ({ref["detail"]}); not listed')
            continue
        counts['compared'] += 1
        lossy = ref['lossy'] or (src['lossy'] if kind == 'twin' else False) or (
            kind == 'twin' and ref['ts'] != src['ts'] and ref['ts'].startswith('1.2.840.10008.1.2.4'))
        problem = compare(np.load(mv['npy']), np.load(os.path.join(REF, src['detail'])), lossy)
        if problem:
            failures.append(f'{rel}: {problem}')
        else:
            counts['passed'] += 1
    print(f'\nDICOM conformance: {len(manifest)} files; {counts}')
    assert not failures, '\n'.join(failures)
