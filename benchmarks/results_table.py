#!/usr/bin/python3
"""Prints the Markdown tables of docs/performance.md from benchmarks/results/{decode,e2e}.json."""
import json
import sys
from pathlib import Path

R = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent / "results")
NAMES = {"uncompressed": "uncompressed (Explicit VR LE)", "jpeg_ls": "JPEG-LS lossless",
         "jpeg_lossless": "JPEG lossless (P14 SV1)",
         "jpeg2000": "JPEG 2000 (original)"}

if (R / "decode.json").exists():
    d = json.loads((R / "decode.json").read_text())
    print(f"Decode, load average {d['load_average_1_5_15'][0][0]:.1f} → {d['load_average_1_5_15'][-1][0]:.1f}\n")
    print("| file | medvision p50 / p95 ms | pydicom p50 / p95 ms | speedup p50 | goal 3× |")
    print("|---|---|---|---|---|")
    for k, v in d["files"].items():
        m, p = v["medvision_ms"], v["pydicom_ms"]
        print(f"| {NAMES[k]} | {m['p50']:.1f} / {m['p95']:.1f} | {p['p50']:.1f} / {p['p95']:.1f} | "
              f"**{v['speedup']:.2f}×** | {'met' if v['meets_goal'] else 'not met'} |")
    print()
if (R / "e2e.json").exists():
    e = json.loads((R / "e2e.json").read_text())
    la = e["load_average_1_5_15"]
    print(f"End to end (DenseNet-121 at 224, threads {e['raw']['batch1']['medvision'].get('threads')}), "
          f"load average {la[0][0]:.1f} → {la[-1][0]:.1f}\n")
    print("| file | stage | medvision p50 / p95 ms | peer p50 / p95 ms | ratio (peer / medvision) |")
    print("|---|---|---|---|---|")
    for k, v in e["files"].items():
        m, p = v["medvision"]["stages_ms"], v["python-peer"]["stages_ms"]
        for st in ("decode", "preprocess+infer", "end_to_end"):
            print(f"| {NAMES[k] if st == 'decode' else ''} | {st} | {m[st]['p50']:.0f} / {m[st]['p95']:.0f} | "
                  f"{p[st]['p50']:.0f} / {p[st]['p95']:.0f} | {'**' if st == 'end_to_end' else ''}"
                  f"{p[st]['p50'] / m[st]['p50']:.2f}×{'**' if st == 'end_to_end' else ''} |")
    print()
    print("| file | images/s batch 1 (mv / peer) | images/s batch 16 (mv / peer) | e2e goal 2× |")
    print("|---|---|---|---|")
    for k, v in e["files"].items():
        m, p = v["medvision"], v["python-peer"]
        print(f"| {NAMES[k]} | {m['images_per_s_batch1']:.2f} / {p['images_per_s_batch1']:.2f} "
              f"({v['throughput_ratio_batch1']:.2f}×) | {m['images_per_s_batch16']:.2f} / "
              f"{p['images_per_s_batch16']:.2f} ({v['throughput_ratio_batch16']:.2f}×) | "
              f"{'met' if v['meets_goal_2x'] else 'not met'} |")
    print()
    mem, cold, eff = e["memory"], e["cold_start"], e["inference_efficiency"]
    print("| measure | medvision | peer | ratio |")
    print("|---|---|---|---|")
    for key, label in (("peak_rss_mib_batch1_process", "peak RSS, batch 1 process (MiB)"),
                       ("peak_rss_mib_batch16_process", "peak RSS, batch 16 process (MiB)"),
                       ("peak_rss_mib_cold_start_process", "peak RSS, cold start process (MiB)")):
        mv, py = mem[key]["medvision"], mem[key]["python-peer"]
        print(f"| {label} | {mv:.0f} | {py:.0f} | {mv / py:.2f}× of peer |")
    print(f"| cold start: process start → model loaded → first result (ms) | {cold['medvision']['median_ms']:.0f} | "
          f"{cold['python-peer']['median_ms']:.0f} | {cold['speedup']:.2f}× faster |")
    print(f"| inference at 224, batch 1 (ms) | {eff['medvision_infer_ms_p50 (224x224 input, preprocessing ~0)']:.0f} | "
          f"{eff['peer_infer_ms_p50']:.0f} | |")
    print(f"| ideal at the measured GEMM peak {eff['gemm_peak_gflops']:.0f} GFLOP/s, {eff['model_gflops_224']:.2f} "
          f"GFLOP (ms) | {eff['ideal_ms']:.0f} | | medvision {eff['medvision_over_ideal']:.1f}× ideal (goal ≤ 1.5×) |")
    print()
    print("GEMM (2 threads):", json.dumps(eff["gemm"]))
