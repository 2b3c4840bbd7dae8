"""Model.classify(list): the streaming pipeline (mv_model_run_many) from Python.

Results equal the one-by-one and batch paths exactly and in input order; each bad file gets its own
exception naming it; progress is called on the calling thread and can cancel."""
import threading

import numpy as np
import pytest

from conftest import EXAMPLE_DCM, data_path, png_bytes


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("pipeline")
    rng = np.random.default_rng(5)
    good, bad = [], {}
    for i in range(7):
        p = d / f"img{i}.png"
        p.write_bytes(png_bytes(rng.integers(0, 256, (64 + 8 * i, 80), dtype=np.uint8)))
        good.append(str(p))
    truncated = d / "truncated.dcm"
    data = EXAMPLE_DCM.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    text = d / "notes.txt"
    text.write_text("not an image\n")
    bad[str(d / "missing.png")] = "MedvisionFileNotFoundError"
    bad[str(truncated)] = "CorruptDataError"
    bad[str(text)] = "UnsupportedFormatError"
    items = [good[0], str(d / "missing.png"), good[1], good[2], str(truncated), str(EXAMPLE_DCM),
             good[3], str(text), good[4], good[5], good[6]]
    return items, bad


def test_results_equal_one_by_one_in_order_with_per_file_errors(mv, pneumonia, files):
    """batch_size=1 equals one-by-one classify exactly; larger batches equal run_batch on the same
    groups of good files exactly (a batched convolution may round differently from batch 1)."""
    from medvision._results import Classification

    items, bad = files
    good = [i for i, p in enumerate(items) if p not in bad]
    want = {1: {i: pneumonia.classify(items[i]).scores for i in good}, 4: {}}
    images = [mv.load_image(items[i]) for i in good]
    for start in range(0, len(good), 4):
        group = good[start:start + 4]
        for i, r in zip(group, pneumonia._core.run_batch(images[start:start + 4])):
            want[4][i] = Classification._from_core(r, items[i]).scores
    for batch_size in (1, 4):
        out = pneumonia.classify(items, batch_size=batch_size, errors="return")
        assert len(out) == len(items)
        for i, (p, r) in enumerate(zip(items, out)):
            if p in bad:
                assert isinstance(r, mv.MedvisionError), p
                assert type(r).__name__ == bad[p]
                assert p in str(r)
                assert r.status_name.startswith("MV_ERR_")
            else:
                assert not isinstance(r, BaseException), r
                assert r.source == p
                assert r.scores == want[batch_size][i], (batch_size, p)
                assert r.model == "cxr-pneumonia"


def test_errors_raise_the_first_bad_file_after_the_run(mv, pneumonia, files):
    items, bad = files
    with pytest.raises(FileNotFoundError) as e:
        pneumonia.classify(items, batch_size=4)
    assert items[1] in str(e.value)
    with pytest.raises(ValueError):
        pneumonia.classify(items, errors="ignore")


def test_in_memory_items_and_paths_mixed(mv, pneumonia, files, example_image):
    items, bad = files
    good = [p for p in items if p not in bad]
    mixed = [example_image, good[0], EXAMPLE_DCM.read_bytes(), good[1]]
    out = pneumonia.classify(mixed, batch_size=1)
    want = [pneumonia.classify(x) for x in mixed]
    assert [r.scores for r in out] == [r.scores for r in want]


def test_progress_on_the_calling_thread_and_cancel(mv, pneumonia, files):
    items, _ = files
    calls = []
    caller = threading.get_ident()

    def progress(done, total):
        calls.append((done, total, threading.get_ident()))

    pneumonia.classify(items, batch_size=3, errors="return", progress=progress)
    assert calls and calls[-1][:2] == (len(items), len(items))
    assert all(t == caller for _, _, t in calls)
    assert [d for d, _, _ in calls] == sorted(d for d, _, _ in calls)

    with pytest.raises(mv.CancelledError):
        pneumonia.classify(items, batch_size=2, errors="return", progress=lambda d, t: False)

    def boom(done, total):
        raise KeyError("stop")

    with pytest.raises(KeyError):
        pneumonia.classify(items, batch_size=2, errors="return", progress=boom)
    # The model is still usable after a cancelled run.
    assert len(pneumonia.classify(items[:3], batch_size=4, errors="return")) == 3


def _outcome(r):
    """(type name, scores) of a classification or of the error it raised."""
    if isinstance(r, BaseException):
        return type(r).__name__, None
    return "ok", r.scores


@pytest.mark.parametrize("opts", [
    {"frame": 3},                                 # one frame of a multi-frame file
    {"max_values": 64 * 64},                      # larger files fail alone, naming themselves
    {"apply_voi": 0, "pixel_spacing": (0.5, 0.4)},  # a window preset; files without one fail
], ids=["frame", "max_values", "voi+spacing"])
def test_load_options_equal_load_image_one_by_one(mv, pneumonia, opts):
    """classify(paths, **opts) decodes every path as load_image(p, **opts) would (the options go
    to the pipeline as mv_pipeline_options.load): the same scores, and the same failures, each
    alone and naming its file."""
    items = [str(data_path("dicom/pydicom-data/data_store/data/emri_small.dcm")),
             str(data_path("dicom/pydicom-data/data_store/data/emri_small_RLE.dcm")),
             str(data_path("dicom/pydicom/src/pydicom/data/test_files/MR_small.dcm")),
             str(data_path("dicom/pydicom/src/pydicom/data/test_files/CT_small.dcm")),
             str(EXAMPLE_DCM)]
    out = pneumonia.classify(items, batch_size=1, errors="return", **opts)
    want = []
    for p in items:
        try:
            want.append(pneumonia.classify(mv.load_image(p, **opts)))
        except mv.MedvisionError as e:
            want.append(e)
    assert [_outcome(r) for r in out] == [_outcome(r) for r in want]
    failed = [p for p, r in zip(items, out) if isinstance(r, BaseException)]
    assert 0 < len(failed) < len(items), [_outcome(r) for r in out]
    for p, r in zip(items, out):
        if isinstance(r, BaseException):
            assert p in str(r)
    # Single items take the same options (load_image(p, **opts), then classify).
    assert _outcome(_try(pneumonia.classify, items[0], **opts)) == _outcome(out[0])
    # Without the options the result differs: the options did reach the decoder.
    plain = pneumonia.classify(items, batch_size=1, errors="return")
    assert [_outcome(r) for r in plain] != [_outcome(r) for r in out]


def _try(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - the outcome is compared
        return e


def test_load_options_in_the_stub():
    import ast
    from pathlib import Path

    from medvision import _core

    stub = Path(_core.__file__).with_name("_core.pyi")
    if not stub.exists():
        stub = Path(__file__).resolve().parents[1] / "medvision" / "_core.pyi"
    tree = ast.parse(stub.read_text())
    run_many = next(n for n in ast.walk(tree)
                    if isinstance(n, ast.FunctionDef) and n.name == "run_many")
    names = {a.arg for a in run_many.args.kwonlyargs}
    assert {"frame", "apply_voi", "max_values", "series_uid", "pixel_spacing"} <= names
