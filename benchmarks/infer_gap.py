#!/usr/bin/python3
"""The C++ vs Python inference call path on the same TorchScript file, run alternately in
separate processes (infer_bench from the build vs infer_peer.py, Debian's torch on the same
LibTorch), same threads, same input, same graph optimisation; prints per model, graph and batch
the two medians and their ratio, and writes benchmarks/results/infer_gap.json.
docs/performance.md ("Inference graph"). Tests never assert timings; this is a report.

  infer_gap.py --build build [--models cxr-pneumonia,cxr-findings]
               [--graphs none,freeze,optimize_for_inference] [--batches 1,16] [--rounds 3]
               [--repeat 10] [--threads 2] [--out benchmarks/results/infer_gap.json]
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PY = "/usr/bin/python3"


def input_shape(package: Path) -> str:
    m = json.loads((package / "manifest.json").read_text())
    return ",".join(str(v) for v in [m["input"]["channels"]] + list(m["input"]["size"]))


def run(cmd) -> dict:
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"infer_gap: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--models", default="cxr-pneumonia,cxr-findings")
    ap.add_argument("--graphs", default="none,freeze,optimize_for_inference")
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "results" / "infer_gap.json"))
    a = ap.parse_args()
    bench = Path(a.build) / "benchmarks" / "infer_bench"
    if not bench.exists():
        sys.exit(f"infer_gap: {bench} not found (cmake --build {a.build} --target medvision_infer_bench)")
    results = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
               "threads": a.threads, "rounds": a.rounds, "repeat": a.repeat,
               "loadavg_before": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "runs": []}
    print(f"{'model':14s} {'graph':23s} {'batch':>5s} {'C++ p50 ms':>11s} {'Python p50 ms':>14s} "
          f"{'C++/Python':>10s}")
    for name in a.models.split(","):
        package = REPO / "models" / name / "package"
        model = str(package / "model.pt")
        shape = input_shape(package)
        for graph in a.graphs.split(","):
            args = [model, graph, str(a.threads), shape, a.batches, str(a.repeat), str(a.warmup)]
            samples = {"cpp": [], "py": []}
            for r in range(a.rounds):
                order = [("cpp", [str(bench)] + args), ("py", [PY, str(HERE / "infer_peer.py")] + args)]
                if r % 2:
                    order.reverse()  # alternate which side runs first
                for side, cmd in order:
                    samples[side].append(run(cmd))
            for b in a.batches.split(","):
                med = {s: statistics.median(x for res in samples[s] for x in res["batches"][b]["samples"])
                       for s in samples}
                first = {s: [res["batches"][b]["first"] for res in samples[s]] for s in samples}
                ratio = med["cpp"] / med["py"]
                print(f"{name:14s} {graph:23s} {b:>5s} {med['cpp']:11.1f} {med['py']:14.1f} {ratio:10.2f}",
                      flush=True)
                results["runs"].append({"model": name, "graph": graph, "batch": int(b),
                                        "cpp_p50_ms": med["cpp"], "python_p50_ms": med["py"],
                                        "ratio_cpp_over_python": ratio, "first_calls_ms": first,
                                        "load_ms": {s: [res["load_ms"] for res in samples[s]] for s in samples}})
    results["loadavg_after"] = os.getloadavg()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(results, indent=1) + "\n")
    print(f"load average before {results['loadavg_before']}, after {results['loadavg_after']}; "
          f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
