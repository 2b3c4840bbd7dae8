#!/usr/bin/python3
"""Bounded load on the reference service over loopback, against `medvision classify` on the same
files in the same run.

Makes two inputs in OUT (default build-bench/server-load, git-ignored):
  cxr_2048.dcm  $MEDVISION_DATA/cxr-dicom/pydicom-data/RG1_J2KI.dcm (CR, 1955x1841, 15-bit,
                JPEG 2000) decoded with pydicom + gdcm, resized to 2048 x 2048 (OpenCV, area),
                written as 16-bit Explicit VR Little Endian (as make_bench_dicoms.py does)
  cxr_224.png   the bundled examples/data/cxr-example.dcm as an 8-bit 224 x 224 PNG
then starts `python3 -m medvision_server serve` on 127.0.0.1 and a free port (--model-threads
THREADS), and for each input runs CLIENTS concurrent clients x REQUESTS requests of
POST /api/v1/predict with the image as the raw body (after WARMUP requests; also 1 client
alone, and 1 client sending the multipart form): p50/p95/mean latency, throughput, errors, the
server's peak RSS (VmHWM). Then `medvision classify --threads THREADS` on REQUESTS x CLIENTS
copies of the same path (one process, model loaded once; --batch 1 and the default 8).
Writes JSON to --out (default benchmarks/results/server_load.json).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "benchmark password"


def make_inputs(data: Path, out: Path) -> Dict[str, Path]:
    import cv2
    import numpy as np
    import pydicom
    from PIL import Image
    from pydicom.uid import ExplicitVRLittleEndian

    out.mkdir(parents=True, exist_ok=True)
    dcm, png = out / "cxr_2048.dcm", out / "cxr_224.png"
    if not dcm.exists():
        ds = pydicom.dcmread(data / "cxr-dicom" / "pydicom-data" / "RG1_J2KI.dcm")
        px = ds.pixel_array.astype(np.float32)
        big = cv2.resize(px, (2048, 2048), interpolation=cv2.INTER_AREA)
        big = np.clip(np.rint(big), 0, 2 ** int(ds.BitsStored) - 1).astype("<u2")
        ds.Rows, ds.Columns = 2048, 2048
        ds.PixelData = big.tobytes()
        ds["PixelData"].VR = "OW"
        ds["PixelData"].is_undefined_length = False
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.is_little_endian, ds.is_implicit_VR = True, False
        for kw in ("LossyImageCompressionRatio",):
            if kw in ds:
                del ds[kw]
        ds.save_as(dcm, write_like_original=False)
        back = pydicom.dcmread(dcm)
        assert back.pixel_array.shape == (2048, 2048) and back.BitsAllocated == 16
    if not png.exists():
        px = pydicom.dcmread(ROOT / "examples" / "data" / "cxr-example.dcm").pixel_array
        g = ((px - px.min()) / max(float(np.ptp(px)), 1.0) * 255).astype(np.uint8)
        Image.fromarray(g).resize((224, 224)).save(png)
    return {"dicom_2048_16bit": dcm, "png_224": png}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def pct(xs: List[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))]


def load(url: str, token: str, path: Path, clients: int, requests: int,
         warmup: int, form: bool = False) -> Dict[str, Any]:
    import httpx

    body = path.read_bytes()
    h = {"Authorization": f"Bearer {token}"}

    def send(c: Any) -> Any:
        if form:
            return c.post(url + "/api/v1/predict", headers=h, files={"file": (path.name, body)})
        return c.post(url + "/api/v1/predict", content=body,
                      headers={**h, "Content-Type": "application/octet-stream"})

    with httpx.Client(timeout=120) as c:
        for _ in range(warmup):
            send(c).raise_for_status()
    lat: List[float] = []
    errors: List[str] = []
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(timeout=120) as c:
            for _ in range(requests):
                t0 = time.perf_counter()
                try:
                    r = send(c)
                    ok = r.status_code == 200 and r.json().get("notice")
                    err = None if ok else f"HTTP {r.status_code}: {r.text[:200]}"
                except Exception as e:  # counted, reported
                    err = f"{type(e).__name__}: {e}"
                dt = time.perf_counter() - t0
                with lock:
                    (errors.append(err) if err else lat.append(dt))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"bytes": len(body), "clients": clients, "requests_per_client": requests,
            "ok": len(lat), "errors": len(errors), "error_samples": errors[:3],
            "p50_ms": 1000 * statistics.median(lat) if lat else None,
            "p95_ms": 1000 * pct(lat, 0.95) if lat else None,
            "mean_ms": 1000 * statistics.fmean(lat) if lat else None,
            "throughput_per_s": len(lat) / wall, "wall_s": wall}


def cli_wall(cli: Path, path: Path, n: int, threads: int, batch: int) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([str(cli), "classify", "--model", "cxr-pneumonia", "--threads",
                        str(threads), "--batch", str(batch), "--json", *[str(path)] * n],
                       capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"medvision classify failed: {r.stderr[-500:]}")
    lines = [x for x in r.stdout.splitlines() if x.strip()]
    assert len(lines) == n, (len(lines), n)
    return wall


def cli_rate(cli: Path, path: Path, n: int, threads: int, batch: int) -> Dict[str, Any]:
    """One process classifying n copies; steady state = (n - 1) / (t(n) - t(1)), which takes
    out the process start and the model load that a server pays once."""
    one = cli_wall(cli, path, 1, threads, batch)
    wall = cli_wall(cli, path, n, threads, batch)
    return {"images": n, "batch": batch, "threads": threads, "wall_s": wall,
            "startup_and_one_image_s": one, "throughput_per_s": n / wall,
            "steady_throughput_per_s": (n - 1) / max(wall - one, 1e-9)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("MEDVISION_DATA",
                                                     str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--work", default=str(ROOT / "build-bench" / "server-load"))
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=25)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the model")
    ap.add_argument("--workers", type=int, default=1, help="server job workers (idle here)")
    ap.add_argument("--predict-concurrency", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "server_load.json"))
    a = ap.parse_args()
    build = Path(a.build)
    inputs = make_inputs(Path(a.data), Path(a.work))
    env = {**os.environ, "PYTHONPATH": f"{build / 'python'}:{ROOT / 'examples' / 'server'}"}
    tmp = Path(tempfile.mkdtemp(prefix="mv-load-"))
    data = tmp / "data"
    subprocess.run([sys.executable, "-m", "medvision_server", "user", "add", "bench", "--role",
                    "clinician", "--data", str(data)], input=PASSWORD + "\n", text=True,
                   env=env, check=True, capture_output=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "medvision_server", "serve", "--data",
                             str(data), "--port", str(port), "--model-threads", str(a.threads),
                             "--workers", str(a.workers), "--predict-concurrency",
                             str(a.predict_concurrency)], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "serve.log", "wb"))
    import httpx
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        token = httpx.post(url + "/api/v1/auth/token",
                           data={"username": "bench", "password": PASSWORD}).json()["access_token"]
        results: Dict[str, Any] = {}
        for name, path in inputs.items():
            results[name] = {
                "server_1_client": load(url, token, path, 1, a.requests, a.warmup),
                "server": load(url, token, path, a.clients, a.requests, 0),
                "server_1_client_multipart": load(url, token, path, 1, a.requests, 0, True)}
        rss = peak_rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
    cli = build / "examples" / "medvision"
    n = a.clients * a.requests
    for name, path in inputs.items():
        r = results[name]
        r["cli_batch1"] = cli_rate(cli, path, n, a.threads, 1)
        r["cli_batch8"] = cli_rate(cli, path, n, a.threads, 8)
        r["server_vs_cli_batch1_steady"] = (r["server"]["throughput_per_s"] /
                                            r["cli_batch1"]["steady_throughput_per_s"])
    out = {"benchmark": "server_load", "model": "cxr-pneumonia", "route": "/api/v1/predict",
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                       "python": platform.python_version()},
           "threads": a.threads, "predict_concurrency": a.predict_concurrency,
           "clients": a.clients, "requests_per_client": a.requests,
           "server_peak_rss_mib": rss, "inputs": results,
           "note": "loopback; shared 2-core machine; the CLI is one process classifying the "
                   "same path n times with the model loaded once"}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    for name, r in results.items():
        s1, s = r["server_1_client"], r["server"]
        print(f"{name}: 1 client p50 {s1['p50_ms']:.1f} ms p95 {s1['p95_ms']:.1f} ms "
              f"{s1['throughput_per_s']:.2f}/s | {a.clients} clients p50 {s['p50_ms']:.1f} ms "
              f"p95 {s['p95_ms']:.1f} ms {s['throughput_per_s']:.2f}/s errors "
              f"{s1['errors'] + s['errors']} | CLI steady batch 1 "
              f"{r['cli_batch1']['steady_throughput_per_s']:.2f}/s, batch 8 "
              f"{r['cli_batch8']['steady_throughput_per_s']:.2f}/s (server/CLI-1 "
              f"{r['server_vs_cli_batch1_steady']:.2f}) | multipart 1 client p50 "
              f"{r['server_1_client_multipart']['p50_ms']:.1f} ms")
    print(f"server peak RSS {rss:.0f} MiB -> {a.out}")
    return 0 if all(v["errors"] == 0 for r in results.values() for k, v in r.items()
                    if k.startswith("server_") and isinstance(v, dict)) else 1


if __name__ == "__main__":
    sys.exit(main())
