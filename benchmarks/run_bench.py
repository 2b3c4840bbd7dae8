#!/usr/bin/python3
"""Runs medvision and its Python peers alternately (so both see the same machine load) and writes
benchmarks/results/decode.json and e2e.json. Called by benchmarks/run_all.sh; see docs/performance.md.

  run_bench.py --build build-bench --data build-bench/bench-data [--quick] [decode] [e2e]
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PY = "/usr/bin/python3"
FILES = {"uncompressed": "rg1_uncompressed.dcm", "jpeg_ls": "rg1_jpeg_ls.dcm",
         "jpeg_lossless": "rg1_jpeg_lossless.dcm", "jpeg2000": "rg1_j2k.dcm"}


def run(cmd, env=None):
    """Runs cmd; returns (stdout, wall seconds)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out, err = p.communicate()
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"run_bench: {' '.join(cmd)} failed ({p.returncode}):\n{err[-3000:]}")
    return out, wall


def run_rss(cmd, env=None):
    """Runs cmd; returns (stdout, wall seconds from spawn to exit, peak RSS in MiB via wait4)."""
    r_fd, w_fd = os.pipe()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.close(r_fd)
        os.dup2(w_fd, 1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.execvpe(cmd[0], cmd, env or os.environ)
    os.close(w_fd)
    chunks = []
    with os.fdopen(r_fd) as f:
        chunks.append(f.read())
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"run_bench: {' '.join(cmd)} failed ({status})")
    return "".join(chunks), wall, ru.ru_maxrss / 1024.0


def pct(v, q):
    return float(np.percentile(np.asarray(v, dtype=float), q))


def loadavg():
    return list(os.getloadavg())


def machine():
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    info = {"cpu": cpu, "logical_cpus": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version()}
    try:
        import ctypes
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        info["openblas_core"] = lib.openblas_get_corename().decode()
    except OSError:
        pass
    info["OPENBLAS_CORETYPE"] = os.environ.get("OPENBLAS_CORETYPE")
    return info


def versions():
    import pydicom
    import torch
    return {"pydicom": pydicom.__version__, "numpy": np.__version__, "torch (Python and LibTorch)": torch.__version__}


# ---------------------------------------------------------------------------------------------
def bench_decode(a, files):
    rounds, rep = (2, 3) if a.quick else (4, 5)
    mv_cmd = [str(Path(a.build) / "benchmarks" / "decode_bench"), "--repeat", str(rep)] + list(files.values())
    py_cmd = [PY, str(HERE / "decode_peer.py"), "--repeat", str(rep)] + list(files.values())
    samples = {"medvision": {k: [] for k in files}, "pydicom": {k: [] for k in files}}
    loads = [loadavg()]
    for r in range(rounds):
        order = [("medvision", mv_cmd), ("pydicom", py_cmd)]
        if r % 2:
            order.reverse()
        for tool, cmd in order:
            out, _ = run(cmd)
            j = json.loads(out)
            for k, path in files.items():
                samples[tool][k] += j["files"][path]
        loads.append(loadavg())
    res = {}
    for k in files:
        m, p = samples["medvision"][k], samples["pydicom"][k]
        res[k] = {"file": files[k], "medvision_ms": {"p50": pct(m, 50), "p95": pct(m, 95), "n": len(m)},
                  "pydicom_ms": {"p50": pct(p, 50), "p95": pct(p, 95), "n": len(p)},
                  "speedup": pct(p, 50) / pct(m, 50), "speedup_p95": pct(p, 95) / pct(m, 95),
                  "goal": 3.0}
        res[k]["meets_goal"] = res[k]["speedup"] >= 3.0
    return {"benchmark": "decode: file -> float32 physical units (Modality LUT applied)",
            "method": f"{rounds} alternating rounds of one medvision process (decode_bench, C API) and one pydicom "
                      f"process (dcmread + pixel_array + apply_modality_lut + astype(float32)), {rep} timed "
                      "repetitions per file and round after 1 warm-up (warm file cache); speedup = pydicom p50 / "
                      "medvision p50",
            "machine": machine(), "versions": versions(), "load_average_1_5_15": loads, "files": res,
            "samples_ms": samples}


# ---------------------------------------------------------------------------------------------
def gemm_peak(threads):
    code = f"""
import torch, time, json
torch.set_num_threads({threads})
res = {{}}
for n in (1024, 2048):
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2): a @ b
    ts = []
    for _ in range(5):
        t = time.perf_counter(); a @ b; ts.append(time.perf_counter() - t)
    res[f"mm{{n}}_ms"] = min(ts) * 1e3
    res[f"mm{{n}}_gflops"] = 2 * n ** 3 / min(ts) / 1e9
# oneDNN's GEMM (what the convolutions use): a 1x1 convolution = [3136 x 1024] x [1024 x 1024]
x, w = torch.randn(1, 1024, 56, 56), torch.randn(1024, 1024, 1, 1)
with torch.inference_mode():
    for _ in range(2): torch.nn.functional.conv2d(x, w)
    ts = []
    for _ in range(5):
        t = time.perf_counter(); torch.nn.functional.conv2d(x, w); ts.append(time.perf_counter() - t)
res["conv1x1_gflops"] = 2 * 56 * 56 * 1024 * 1024 / min(ts) / 1e9
print(json.dumps(res))
"""
    out = {}
    for label, extra in (("default", {}), ("OPENBLAS_CORETYPE=SkylakeX", {"OPENBLAS_CORETYPE": "SkylakeX"})):
        env = dict(os.environ, **extra)
        o, _ = run([PY, "-c", code], env=env)
        out[label] = json.loads(o)
    return out


def bench_e2e(a, files, model):
    threads = a.threads
    rep1, rep16 = (3, 1) if a.quick else (5, 2)
    warm = 3  # TorchScript's profiling executor optimises on the 2nd/3rd call
    mv = str(Path(a.build) / "examples" / "medvision")
    paths = list(files.values())
    loads = [loadavg()]
    raw = {}

    def mv_bench(batch, rep, fs):
        return [mv, "bench", "--model", model, "--threads", str(threads), "--batch", str(batch),
                "--repeat", str(rep), "--warmup", str(warm), "--json"] + fs

    def py_bench(batch, rep, fs):
        return [PY, str(HERE / "e2e_peer.py"), "--model", model, "--threads", str(threads), "--batch", str(batch),
                "--repeat", str(rep), "--warmup", str(warm)] + fs

    # Cold start: process start -> model loaded -> first result, then exit (alternating).
    cold = {"medvision": [], "python-peer": []}
    rss_cold = {"medvision": [], "python-peer": []}
    for r in range(1 if a.quick else 2):
        order = [("medvision", [mv, "classify", "--model", model, "--threads", str(threads), "--batch", "1",
                                "--json", paths[0]]),
                 ("python-peer", [PY, str(HERE / "e2e_peer.py"), "--model", model, "--threads", str(threads),
                                  "--cold", paths[0]])]
        if r % 2:
            order.reverse()
        for tool, cmd in order:
            _, wall, rss = run_rss(cmd)
            cold[tool].append(wall * 1e3)
            rss_cold[tool].append(rss)
        loads.append(loadavg())

    # Batch 1, all files, one process each (peak RSS of the steady-state process).
    b1 = {}
    for tool, cmd in (("medvision", mv_bench(1, rep1, paths)), ("python-peer", py_bench(1, rep1, paths))):
        out, wall, rss = run_rss(cmd)
        b1[tool] = {"result": json.loads(out), "peak_rss_mib": rss, "wall_s": wall}
        loads.append(loadavg())
    # Batch 16 on the uncompressed file: the model run does not depend on the codec; the other files'
    # throughput is 16 / (16 x their decode p50 + this run p50).
    b16 = {}
    for tool, cmd in (("python-peer", py_bench(16, rep16, paths[:1])), ("medvision", mv_bench(16, rep16, paths[:1]))):
        out, wall, rss = run_rss(cmd)
        b16[tool] = {"result": json.loads(out), "peak_rss_mib": rss, "wall_s": wall}
        loads.append(loadavg())

    per_file = {}
    for k, path in files.items():
        row = {"file": path}
        for tool in ("medvision", "python-peer"):
            f1 = next(f for f in b1[tool]["result"]["files"] if f["file"] == path)
            run16 = b16[tool]["result"]["files"][0]["run_ms"]["p50"]
            stages = {"decode": {"p50": f1["decode_ms"]["p50"], "p95": f1["decode_ms"]["p95"]},
                      "preprocess+infer": {"p50": f1["run_ms"]["p50"], "p95": f1["run_ms"]["p95"]},
                      "end_to_end": {"p50": f1["e2e_ms"]["p50"], "p95": f1["e2e_ms"]["p95"]}}
            if "preprocess_ms" in f1:
                stages["preprocess"] = {"p50": f1["preprocess_ms"]["p50"], "p95": f1["preprocess_ms"]["p95"]}
                stages["infer"] = {"p50": f1["infer_ms"]["p50"], "p95": f1["infer_ms"]["p95"]}
            row[tool] = {"stages_ms": stages,
                         "images_per_s_batch1": 1000.0 / f1["e2e_ms"]["p50"],
                         "images_per_s_batch16": 16000.0 / (16 * f1["decode_ms"]["p50"] + run16)}
        m, p = row["medvision"], row["python-peer"]
        row["speedup_end_to_end_p50"] = p["stages_ms"]["end_to_end"]["p50"] / m["stages_ms"]["end_to_end"]["p50"]
        row["speedup_end_to_end_p95"] = p["stages_ms"]["end_to_end"]["p95"] / m["stages_ms"]["end_to_end"]["p95"]
        row["speedup_decode"] = p["stages_ms"]["decode"]["p50"] / m["stages_ms"]["decode"]["p50"]
        row["speedup_preprocess+infer"] = (p["stages_ms"]["preprocess+infer"]["p50"] /
                                           m["stages_ms"]["preprocess+infer"]["p50"])
        row["throughput_ratio_batch1"] = m["images_per_s_batch1"] / p["images_per_s_batch1"]
        row["throughput_ratio_batch16"] = m["images_per_s_batch16"] / p["images_per_s_batch16"]
        row["meets_goal_2x"] = row["speedup_end_to_end_p50"] >= 2.0
        per_file[k] = row

    flops = json.loads((Path(model) / "flops.json").read_text())
    peak = gemm_peak(threads)
    loads.append(loadavg())
    best_peak = max(max(v["mm2048_gflops"], v["conv1x1_gflops"]) for v in peak.values())
    mv_inf = b1["medvision"]["result"]["model_224_ms"]["p50"]
    py_inf = next(iter(b1["python-peer"]["result"]["files"]))["infer_ms"]["p50"]
    ideal_ms = flops["gflops"] / best_peak * 1e3
    efficiency = {"model_gflops_224": flops["gflops"], "gemm_peak_gflops": best_peak, "ideal_ms": ideal_ms,
                  "medvision_infer_ms_p50 (224x224 input, preprocessing ~0)": mv_inf,
                  "peer_infer_ms_p50": py_inf,
                  "medvision_over_ideal": mv_inf / ideal_ms, "peer_over_ideal": py_inf / ideal_ms,
                  "goal": "within 1.5x of ideal", "meets_goal": mv_inf / ideal_ms <= 1.5,
                  "gemm": peak}
    mem = {"peak_rss_mib_batch1_process": {t: b1[t]["peak_rss_mib"] for t in b1},
           "peak_rss_mib_batch16_process": {t: b16[t]["peak_rss_mib"] for t in b16},
           "peak_rss_mib_cold_start_process": {t: min(v) for t, v in rss_cold.items()}}
    mem["medvision_uses_less_memory"] = all(
        mem[k]["medvision"] < mem[k]["python-peer"] for k in ("peak_rss_mib_batch1_process",
                                                               "peak_rss_mib_batch16_process",
                                                               "peak_rss_mib_cold_start_process"))
    cold_res = {t: {"median_ms": pct(v, 50), "samples_ms": v} for t, v in cold.items()}
    cold_res["speedup"] = cold_res["python-peer"]["median_ms"] / cold_res["medvision"]["median_ms"]
    return {"benchmark": "end to end: DICOM file -> 14 sigmoid probabilities, DenseNet-121 at 224x224",
            "method": (f"threads={threads} on both sides; medvision = `medvision bench` (public API: decode = "
                       "mv_image_load, preprocess+infer = mv_model_run/run_batch); peer = benchmarks/e2e_peer.py "
                       "(pydicom + numpy + torchvision.transforms + torch.jit.load of the same model.pt); "
                       f"{warm} warm-up runs then {rep1} (batch 1) / {rep16} (batch 16) timed runs per stage, one "
                       "process per tool and batch size, run back to back; cold start = wall time from spawn to "
                       "exit of `medvision classify` / `e2e_peer.py --cold` on one file (2 alternating runs); "
                       "peak RSS = ru_maxrss of that process (wait4)"),
            "machine": machine(), "versions": versions(), "load_average_1_5_15": loads,
            "files": per_file, "cold_start": cold_res, "memory": mem, "inference_efficiency": efficiency,
            "raw": {"batch1": {t: v["result"] for t, v in b1.items()},
                    "batch16": {t: v["result"] for t, v in b16.items()}}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("--data", default="build-bench/bench-data")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    ap.add_argument("which", nargs="*", default=["decode", "e2e"])
    a = ap.parse_args()
    data = Path(a.data)
    files = {k: str(data / v) for k, v in FILES.items()}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if "decode" in a.which:
        r = bench_decode(a, files)
        (out / "decode.json").write_text(json.dumps(r, indent=2) + "\n")
        for k, v in r["files"].items():
            print(f"decode {k:14s} medvision {v['medvision_ms']['p50']:8.1f} ms  pydicom {v['pydicom_ms']['p50']:8.1f} ms"
                  f"  speedup {v['speedup']:.2f}x (goal 3x)")
    if "e2e" in a.which:
        r = bench_e2e(a, files, str(data / "densenet121"))
        (out / "e2e.json").write_text(json.dumps(r, indent=2) + "\n")
        for k, v in r["files"].items():
            print(f"e2e {k:14s} speedup p50 {v['speedup_end_to_end_p50']:.2f}x  (goal 2x); throughput ratio "
                  f"b1 {v['throughput_ratio_batch1']:.2f}x b16 {v['throughput_ratio_batch16']:.2f}x")
        print("memory", json.dumps(r["memory"]))
        print("cold start", {t: round(v["median_ms"]) for t, v in r["cold_start"].items() if isinstance(v, dict)},
              f"speedup {r['cold_start']['speedup']:.2f}x")
        e = r["inference_efficiency"]
        print(f"inference: medvision {e['medvision_infer_ms_p50 (224x224 input, preprocessing ~0)']:.0f} ms, ideal "
              f"{e['ideal_ms']:.0f} ms at {e['gemm_peak_gflops']:.0f} GFLOP/s -> {e['medvision_over_ideal']:.2f}x")


if __name__ == "__main__":
    main()
