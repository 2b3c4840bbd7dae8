"""No leak over 10,000 calls: the resident set size stays flat once warm (read from
/proc/self/status). Cheap paths run 10,000 times; inference and explanation a few hundred."""
import gc

import numpy as np
import pytest

from conftest import png_bytes

MB = 1024 * 1024


def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    pytest.skip("no /proc/self/status")


def growth(fn, calls: int, warmup: int) -> int:
    for _ in range(warmup):
        fn()
    gc.collect()
    before = rss()
    for _ in range(calls):
        fn()
    gc.collect()
    return rss() - before


def test_decode_views_and_errors_10000_calls(mv):
    png = png_bytes((np.arange(64 * 64) % 256).astype(np.uint8).reshape(64, 64))
    pixels = np.zeros((32, 32), np.uint16)

    def once():
        img = mv.load_image(png)
        view = img.array
        img.spacing, img.origin, img.direction, img.metadata, img.windows, img.warnings
        img.close()
        del view
        mv.from_numpy(pixels).array
        try:
            mv.load_image(b"not an image at all, just some bytes")
        except mv.UnsupportedFormatError as e:
            str(e), e.status

    grew = growth(once, 10_000, 500)
    print(f"RSS growth over 10,000 decode + view + error calls: {grew / MB:.2f} MiB")
    assert grew < 4 * MB  # a leaked 16 KiB image per call would be 160 MiB


def test_classify_and_explain_300_calls(mv, pneumonia, example_image):
    def once():
        r = pneumonia.classify(example_image)
        r.to_dict()

    grew = growth(once, 300, 20)
    print(f"RSS growth over 300 classify calls: {grew / MB:.2f} MiB")
    assert grew < 4 * MB

    def explain():
        e = pneumonia.explain(example_image)
        e.heatmap.sum()

    grew = growth(explain, 60, 5)
    print(f"RSS growth over 60 explain calls: {grew / MB:.2f} MiB")
    assert grew < 4 * MB  # a leaked 224x224 map + gradients would be far more
