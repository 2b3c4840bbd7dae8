"""The GIL is released around decoding, inference, explanation and calibration, and one Model
serves many Python threads at once.

How the release is proven without timing anything: the switch interval is raised to 1000 s, so
the interpreter never takes the GIL away from a thread by force. A worker thread marks itself "in
call" and makes one native call; the main thread wakes every half millisecond and counts the
wake-ups it sees while the mark is set. If the call held the GIL, the main thread could not run a
single bytecode until the worker had cleared the mark, and would count 0. A pure-Python busy loop
in the worker (the control) must count 0; every medvision call must count more.
"""
import sys
import threading
import time

import numpy as np
import pytest

from conftest import EXAMPLE_DCM, kermany, png_bytes


def ticks_during(fn) -> int:
    state = {"in_call": False, "done": False, "error": None}
    ticks = 0

    def worker():
        state["in_call"] = True
        try:
            fn()
        except BaseException as e:  # surfaced in the main thread
            state["error"] = e
        state["in_call"] = False
        state["done"] = True

    old = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        t = threading.Thread(target=worker)
        t.start()
        while not state["done"]:
            if state["in_call"]:
                ticks += 1
            time.sleep(0.0005)  # sleeping releases the GIL, so the worker can always go on
        t.join()
    finally:
        sys.setswitchinterval(old)
    if state["error"] is not None:
        raise state["error"]
    return ticks


def test_control_pure_python_holds_the_gil():
    assert ticks_during(lambda: sum(i * i for i in range(2_000_000))) == 0


@pytest.fixture(scope="module")
def big_png():
    rng = np.random.default_rng(1)
    return png_bytes(rng.integers(0, 65535, (3000, 3000), dtype=np.uint16))


@pytest.fixture(scope="module")
def batch(mv):
    return [mv.load_image(p) for p in kermany(8, "PNEUMONIA")]


def test_decode_releases_the_gil(mv, big_png):
    assert ticks_during(lambda: mv.Image.load_memory(big_png)) > 0


def test_from_pixels_releases_the_gil(mv):
    big = np.ones((1, 64, 512, 512), np.float64)
    assert ticks_during(lambda: mv.Image.from_pixels(big)) > 0


def test_model_load_releases_the_gil(mv):
    assert ticks_during(lambda: mv._core.Model("cxr-pneumonia")) > 0


def test_inference_releases_the_gil(mv, pneumonia, batch):
    assert ticks_during(lambda: pneumonia._core.run_batch(batch)) > 0
    assert ticks_during(lambda: pneumonia._core.run(batch[0])) > 0


def test_explain_releases_the_gil(mv, pneumonia, batch):
    assert ticks_during(lambda: mv._core.explain(pneumonia._core, batch[0], "gradcam", -1)) > 0


def test_calibrate_releases_the_gil(mv, pneumonia, tmp_path):
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 2_000).astype(np.int32).reshape(-1, 1)
    logits = (rng.normal(size=labels.shape) + 2.0 * labels).astype(np.float32)
    options = mv._core.CalibrateOptions()
    options.method = "isotonic"
    assert ticks_during(lambda: mv._core.calibrate(
        pneumonia._core, logits, labels, str(tmp_path / "cal"), options)) > 0


def test_threads_share_one_model(mv, pneumonia, batch):
    """Four threads classify through one Model at once: each gets exactly the serial answer."""
    serial = [pneumonia.classify(img).scores for img in batch]
    results = {}

    def work(k):
        results[k] = [pneumonia.classify(img).scores for img in batch[k % 2::2]]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        assert results[k] == serial[k % 2::2]


def test_close_while_another_thread_runs(mv, batch):
    """close() during a call in another thread: the call finishes (it holds its own reference)."""
    model = mv.Model("cxr-pneumonia")
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", model._core.run_batch(batch)))
    t.start()
    model.close()
    t.join()
    assert len(out["r"]) == len(batch)
    with pytest.raises(ValueError):
        model.classify(EXAMPLE_DCM)
