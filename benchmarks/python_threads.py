#!/usr/bin/env python3
"""Throughput of N Python threads sharing one medvision.Model against one thread: the bindings
release the GIL around inference, so threads run the model at the same time.

    PYTHONPATH=build/python /usr/bin/python3 benchmarks/python_threads.py [--images 64]

The model is loaded with num_threads=1 (LibTorch's intra-op pool at one thread), so that the
only parallelism is the Python threads'; with T cores, up to T threads can then overlap. Each
configuration classifies the same decoded images (one image per call) --repeat times; the median
wall time is reported. Writes benchmarks/results/python_threads.json. Load from other processes
on the machine lowers the speedup: the load average is recorded with the numbers.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

import medvision

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MEDVISION_DATA", ROOT.parent / "shared" / "data"))


def run(model, images, threads: int) -> float:
    parts = [images[k::threads] for k in range(threads)]

    def work(part):
        for img in part:
            model.classify(img)

    workers = [threading.Thread(target=work, args=(p,)) for p in parts]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", default="1,2,4")
    ap.add_argument("--model", default="cxr-pneumonia")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "python_threads.json"))
    a = ap.parse_args()

    folder = DATA / "kermany" / "PNEUMONIA"
    files = sorted(folder.glob("*.jpeg"))[:a.images]
    if not files:
        print(f"no images under {folder}", file=sys.stderr)
        return 1
    images = [medvision.load_image(p) for p in files]
    load_before = os.getloadavg()
    rows = []
    with medvision.Model(a.model, "cpu", num_threads=1) as model:
        for img in images[:4]:
            model.classify(img)  # warm up
        for n in [int(x) for x in a.threads.split(",")]:
            times = [run(model, images, n) for _ in range(a.repeat)]
            wall = statistics.median(times)
            rows.append({"threads": n, "wall_s": round(wall, 3),
                         "images_per_s": round(len(images) / wall, 1)})
            print(f"{n} thread(s): {wall:.2f} s, {len(images) / wall:.1f} images/s")
    base = rows[0]["images_per_s"]
    for r in rows:
        r["speedup"] = round(r["images_per_s"] / base, 2)
    out = {
        "benchmark": "python_threads", "model": a.model, "images": len(images),
        "image_size": list(images[0].shape), "libtorch_threads": 1, "repeat": a.repeat,
        "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(), "medvision": medvision.__version__,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "results": rows,
    }
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    summary = ", ".join(f"{r['threads']}T x{r['speedup']}" for r in rows)
    print(f"speedup: {summary} -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
