#!/usr/bin/env python3
"""Throughput of N Python threads sharing one medvision.Model against one thread: the bindings
release the GIL around inference, so threads run the model at the same time.

    PYTHONPATH=build/python /usr/bin/python3 benchmarks/python_threads.py [--images 64]

The model is loaded with num_threads=1 (LibTorch's intra-op pool at one thread), so that the
only parallelism is the Python threads'; with T cores, up to T threads can then overlap. Each
configuration classifies the same decoded images (one image per call) --repeat times; the median
wall time is reported. As controls, the same work also runs in N separate processes (no GIL at
all), and N threads hash buffers with hashlib (which releases the GIL): the threads' speedup
should match theirs, which is what the machine allows at that moment.
Writes benchmarks/results/python_threads.json. Load from other processes on the machine lowers
both: the load average is recorded with the numbers.
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


def _process_worker(files, model_name, barrier, queue):
    import medvision as mv

    images = [mv.load_image(p) for p in files]
    with mv.Model(model_name, "cpu", num_threads=1) as model:
        for img in images[:4]:
            model.classify(img)
        barrier.wait()
        t0 = time.perf_counter()
        for img in images:
            model.classify(img)
        queue.put(time.perf_counter() - t0)


def run_processes(files, model_name: str, n: int) -> float:
    """The same work in n processes (no GIL at all): what the machine allows at that moment."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_process_worker, args=(files[k::n], model_name, barrier, queue))
             for k in range(n)]
    for p in procs:
        p.start()
    times = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    return max(times)


def hashlib_speedup(n: int) -> float:
    """Control: threads hashing 64 MiB buffers (hashlib releases the GIL), n threads vs 1."""
    import hashlib

    data = b"x" * (64 << 20)

    def rate(k: int) -> float:
        def work():
            for _ in range(3):
                hashlib.sha256(data).digest()

        ts = [threading.Thread(target=work) for _ in range(k)]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return 3 * k / (time.perf_counter() - t0)

    return round(rate(n) / rate(1), 2)


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
            pwall = statistics.median(
                [run_processes([str(f) for f in files], a.model, n) for _ in range(a.repeat)])
            rows.append({"threads": n, "wall_s": round(wall, 3),
                         "control_hashlib_speedup": hashlib_speedup(n),
                         "images_per_s": round(len(images) / wall, 1),
                         "processes_images_per_s": round(len(images) / pwall, 1)})
            print(f"{n} thread(s): {wall:.2f} s, {len(images) / wall:.1f} images/s; "
                  f"{n} process(es): {len(images) / pwall:.1f} images/s")
    base = rows[0]["images_per_s"]
    for r in rows:
        r["speedup"] = round(r["images_per_s"] / base, 2)
        r["processes_speedup"] = round(r["processes_images_per_s"] / base, 2)
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
    summary = ", ".join(f"{r['threads']}T x{r['speedup']} ({r['processes_speedup']} as processes)"
                        for r in rows)
    print(f"speedup: {summary} -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
