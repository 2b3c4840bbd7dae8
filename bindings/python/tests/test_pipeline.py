"""Model.classify(list): the streaming pipeline (mv_model_run_many) from Python.

Results equal the one-by-one and batch paths exactly and in input order; each bad file gets its own
exception naming it; progress is called on the calling thread and can cancel."""
import threading

import numpy as np
import pytest

from conftest import EXAMPLE_DCM, png_bytes


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
