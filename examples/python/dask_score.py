#!/usr/bin/env python3
"""Scores a large folder with Dask distributed across worker processes, each worker loading the
model once. For users who outgrow one machine: point --scheduler at a cluster; without it a local
cluster on the loopback interface (127.0.0.1, no dashboard) runs --workers processes here.

    dask_score.py STUDIES/ --model cxr-pneumonia --out results.csv --workers 2

Each worker process loads the model once (a WorkerPlugin, at worker start), then scores chunks of
--chunk files with classify_folder.score_files; the client writes one CSV, sorted by path,
in exactly the format of classify_folder.py. With the same --batch and --threads the CSV is
identical to the serial one: chunks are whole batches, so every image meets the same batch. Use
Debian's python3-distributed (2022.12). Not for diagnostic use.
"""
import argparse
import os
import sys
import time

from distributed import Client, LocalCluster, WorkerPlugin, get_worker

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import classify_folder  # noqa: E402


class LoadModel(WorkerPlugin):
    """Loads the model once per worker process, when the worker starts (or joins)."""

    name = "medvision-model"

    def __init__(self, model: str, device: str, threads: int):
        self.model, self.device, self.threads = model, device, threads

    def setup(self, worker):
        import medvision

        worker.medvision_model = medvision.Model(self.model, self.device,
                                                 num_threads=self.threads)
        worker.medvision_loads = getattr(worker, "medvision_loads", 0) + 1

    def teardown(self, worker):
        worker.medvision_model.close()


def score_chunk(folder, files, batch):
    import classify_folder as cf  # shipped to the workers with Client.upload_file

    worker = get_worker()
    rows = cf.score_files(worker.medvision_model, folder, files, batch)
    return rows, worker.address, os.getpid()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--model", required=True, help="package name or folder (as workers see it)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--workers", type=int, default=2, help="local worker processes")
    ap.add_argument("--threads", type=int, default=1, help="LibTorch threads per worker")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--chunk", type=int, default=64, help="files per task (a multiple of --batch)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--limit", type=int, default=0, help="only the first N files (sorted)")
    ap.add_argument("--scheduler", help="address of an existing Dask scheduler")
    a = ap.parse_args(argv)
    if a.chunk % a.batch:
        ap.error("--chunk must be a multiple of --batch (equal batches give equal results)")

    files = classify_folder.list_files(a.folder)
    if a.limit:
        files = files[:a.limit]
    if not files:
        print(f"no files under {a.folder}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    if a.scheduler:
        cluster, client = None, Client(a.scheduler)
    else:
        # Loopback only: nothing listens beyond this machine.
        cluster = LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None)
        client = Client(cluster)
    try:
        client.upload_file(os.path.join(HERE, "classify_folder.py"))
        client.register_worker_plugin(LoadModel(a.model, a.device, a.threads))
        t1 = time.perf_counter()
        chunks = [files[i:i + a.chunk] for i in range(0, len(files), a.chunk)]
        futures = client.map(score_chunk, [a.folder] * len(chunks), chunks,
                             [a.batch] * len(chunks), pure=False)
        rows, per_worker = [], {}
        for chunk_rows, address, pid in client.gather(futures):
            rows += chunk_rows
            per_worker[address] = per_worker.get(address, 0) + len(chunk_rows)
        loads = client.run(lambda dask_worker: dask_worker.medvision_loads)
        labels = client.run(lambda dask_worker: dask_worker.medvision_model.labels)
        t2 = time.perf_counter()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    classify_folder.write_csv(a.out, next(iter(labels.values())), rows)
    errors = sum(1 for r in rows if r.get("error"))
    print(f"{len(rows)} files ({errors} errors) on {len(per_worker)} workers in {t2 - t1:.1f} s "
          f"({len(rows) / (t2 - t1):.1f} images/s; {t2 - t0:.1f} s with cluster start) -> {a.out}")
    for address, n in sorted(per_worker.items()):
        print(f"  worker {address}: {n} files, model loaded {loads.get(address, '?')} time(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
