"""The DICOM VOI transformation (PS3.3 C.11.2.1.2) against pydicom, on files written here.

Each case is a small synthetic DICOM file whose pixel values straddle the formula's break points
(the window's ends, the half-unit shifts of LINEAR, the ends of a VOI LUT). pydicom's
apply_modality_lut + apply_windowing / apply_voi give the reference, scaled to [0, 1] by the
output range pydicom uses (2^BitsStored - 1 through the rescale for windows, 2^bits - 1 of the
LUT Descriptor for tables). medvision's two call sites are compared, both through voi_dump: the
load option apply_voi = 0 and the preprocessing step {"op": "window"} ('dicom' mode).

Environment: MV_VOI_DUMP (tests/conformance/voi_dump.cpp), MV_VOI_DIR (a build-tree folder).
"""
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.pixel_data_handlers.util import apply_modality_lut, apply_voi, apply_windowing
from pydicom.sequence import Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_fragmented_dicom as frag  # noqa: E402  (native_dataset: a minimal valid file)

DUMP = os.environ.get('MV_VOI_DUMP', '')
OUT = os.environ.get('MV_VOI_DIR', '')


def windowed(values, bits=16, signed=False, center=None, width=None, function=None,
             slope=None, intercept=None):
    dtype = {(16, False): np.uint16, (16, True): np.int16}[(16, signed)]
    arr = np.asarray(values, dtype=dtype).reshape(1, 1, -1)
    ds = frag.native_dataset(arr, bits, signed, False)
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if center is not None:
        ds.WindowCenter, ds.WindowWidth = center, width
    if function is not None:
        ds.VOILUTFunction = function
    return ds


def with_lut(ds, first, table, bits):
    item = Dataset()
    item.add_new(0x00283002, 'US', [len(table), first, bits])  # LUT Descriptor
    item.add_new(0x00283006, 'OW', np.asarray(table, dtype='<u2').tobytes())  # LUT Data
    ds.VOILUTSequence = Sequence([item])
    return ds


def integers_around(*points, spread=3):
    """Every integer within `spread` of each point, plus the ends of a 12-bit range."""
    v = {0, 4095}
    for p in points:
        v.update(range(int(np.floor(p)) - spread, int(np.ceil(p)) + spread + 1))
    return sorted(x for x in v if 0 <= x <= 4095)


def cases():
    c, w = 2048, 1001  # LINEAR: 0 at or below 1547.5 - 0 ... ends at c - 0.5 -+ (w - 1) / 2
    yield 'linear', windowed(integers_around(c - 0.5 - (w - 1) / 2, c - 0.5, c - 0.5 + (w - 1) / 2),
                             12, center=c, width=w)
    yield 'linear-width-1', windowed(integers_around(100), 12, center=100, width=1)
    yield 'linear-even-width', windowed(integers_around(900, 1000, 1100), 12, center=1000,
                                        width=200)
    # Fractional inputs after the rescale: the half-unit shifts matter.
    yield 'linear-rescaled', windowed(list(range(0, 4096, 7)), 12, center=-500, width=300,
                                      slope=0.5, intercept=-1024.25)
    yield 'linear-exact', windowed(integers_around(1000.5 - 18.5, 1000.5, 1000.5 + 18.5), 12,
                                   center=1000.5, width=37, function='LINEAR_EXACT')
    yield 'sigmoid', windowed(list(range(0, 4096, 13)), 12, center=1000, width=400,
                              function='SIGMOID')
    yield 'signed-ct', windowed(list(range(-1024, 2000, 11)), 16, signed=True, center=40,
                                width=400, slope=1, intercept=-1024)
    table = [int(65535 * (k / 255) ** 0.5) for k in range(256)]
    yield 'voi-lut', with_lut(windowed(list(range(0, 600, 3)), 12), 100, table, 16)
    # pydicom 2.3 indexes an 8-bit table through a uint8 array, so x - first >= 256 wraps round
    # to entry 0 instead of clamping to the last entry (as C.11.2.1.1 and medvision do): the
    # inputs stop short of that, still past the table's end (first + 200).
    yield 'voi-lut-8bit', with_lut(windowed(list(range(0, 300, 2)), 12), 50,
                                   [(k * 7) % 256 for k in range(200)], 8)
    # A fractional rescale before the table: entry floor(x - first), as pydicom indexes it.
    yield 'voi-lut-rescaled', with_lut(windowed(list(range(0, 1200, 5)), 12, slope=0.5,
                                                intercept=0.25), 100, table, 16)


def reference(ds):
    arr = apply_modality_lut(ds.pixel_array, ds)
    if 'VOILUTSequence' in ds:
        bits = ds.VOILUTSequence[0].LUTDescriptor[2]
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # "a VOI LUT on a float input array": intended here
            return apply_voi(arr, ds).astype(np.float64) / (2 ** bits - 1)
    if ds.PixelRepresentation == 0:
        y_min, y_max = 0, 2 ** ds.BitsStored - 1
    else:
        y_min, y_max = -2 ** (ds.BitsStored - 1), 2 ** (ds.BitsStored - 1) - 1
    if 'RescaleSlope' in ds:
        y_min = y_min * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        y_max = y_max * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    return (apply_windowing(arr, ds) - y_min) / (y_max - y_min)


@pytest.fixture(scope='module')
def results():
    if not DUMP or not os.path.exists(DUMP):
        pytest.fail('MV_VOI_DUMP is not set to the voi_dump tool')
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    names, refs, paths = [], [], []
    for name, ds in cases():
        path = os.path.join(OUT, name + '.dcm')
        ds.save_as(path, write_like_original=False)
        names.append(name)
        refs.append(reference(pydicom.dcmread(path)).reshape(-1))
        paths.append(path)
    with open(os.path.join(OUT, 'list.txt'), 'w') as f:
        f.write('\n'.join(paths) + '\n')
    proc = subprocess.run([DUMP, os.path.join(OUT, 'list.txt'), OUT], capture_output=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors='replace')
    out = {}
    for i, name in enumerate(names):
        status = open(os.path.join(OUT, f'{i}.txt')).read().strip()
        assert status == 'ok', f'{name}: {status}'
        out[name] = (refs[i], np.load(os.path.join(OUT, f'{i}.load.npy')).reshape(-1),
                     np.load(os.path.join(OUT, f'{i}.window.npy')).reshape(-1))
    return out


@pytest.mark.parametrize('name', [n for n, _ in cases()])
def test_voi_matches_pydicom(results, name):
    ref, loaded, window = results[name]
    assert ref.min() >= 0 and ref.max() <= 1
    # float32 output of a double computation: a few ulps of 1.
    np.testing.assert_allclose(loaded, ref, rtol=0, atol=2e-6, err_msg=f'{name}: apply_voi')
    np.testing.assert_allclose(window, ref, rtol=0, atol=2e-6, err_msg=f'{name}: window step')


def test_cases_cover_every_branch(results):
    """Each window case has values on both clamps and in between, so no branch goes untested."""
    for name, (ref, _, _) in results.items():
        if name.startswith('voi-lut') or name == 'linear-width-1':
            continue
        assert (ref == 0).any() and (ref == 1).any() or name == 'sigmoid', name
        assert ((ref > 0) & (ref < 1)).any(), name
