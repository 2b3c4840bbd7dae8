#!/usr/bin/python3
"""How much each refer-band rule refers, through medvision (docs/calibration.md, "The refer band").

For every rule, `medvision calibrate` recalibrates a package (same method and operating point rule,
only the band differs) on the calibration CSV into a temporary folder; `medvision classify --json`
then runs it on the evaluation CSV, and this script counts, per label and overall:
  referred     fraction of images whose calibrated probability is in the label's band
  errors_in    fraction of the operating point's errors (FP + FN) that fall inside the band
  acc_out      accuracy at the operating point on the images that are not referred

  scripts/refer_band_study.py --model models/cxr-findings/package --method platt \
      --labels-dir .devdata/labels --name cxr-findings [--cli build/examples/medvision]
"""
import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RULES = {
    "fixed 0.1 (old default)": ["--refer-band", "fixed", "--refer", "0.1"],
    "fixed 0.02": ["--refer-band", "fixed", "--refer", "0.02"],
    "logit 0.4": ["--refer-band", "logit", "--refer-logit", "0.4"],
    "logit 0.2": ["--refer-band", "logit", "--refer-logit", "0.2"],
    "predictive-value 0.95/0.9 (new default)": ["--refer-band", "predictive-value"],
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--name", required=True, help="label CSV prefix: <name>-calibration.csv")
    ap.add_argument("--labels-dir", required=True)
    ap.add_argument("--method", default="temperature")
    ap.add_argument("--cli", default=str(REPO / "build" / "examples" / "medvision"))
    ap.add_argument("--out", help="write the numbers as JSON here")
    args = ap.parse_args()
    cal_csv = Path(args.labels_dir) / f"{args.name}-calibration.csv"
    eval_csv = Path(args.labels_dir) / f"{args.name}-evaluation.csv"
    with open(eval_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    truth = {r["path"]: {s.lower() for s in r["label"].split("|")} for r in rows}
    study = {"model": args.model, "method": args.method, "evaluation": str(eval_csv), "n": len(rows),
             "rules": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (rule, flags) in enumerate(RULES.items()):
            pkg = Path(tmp) / f"p{i}"
            subprocess.run([args.cli, "calibrate", "--model", args.model, "--labels", str(cal_csv),
                            "--method", args.method, "--out", str(pkg), "--device", "cpu"] + flags,
                           check=True, capture_output=True, text=True)
            proc = subprocess.run([args.cli, "classify", "--json", "--batch", "32", "--device", "cpu",
                                   "--model", str(pkg)] + [r["path"] for r in rows],
                                  check=True, capture_output=True, text=True)
            results = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
            bands = {k: v["refer_band"] for k, v in
                     json.loads((pkg / "manifest.json").read_text())["thresholds"].items()}
            per, any_ref = {}, 0
            tot_ref = tot_err = tot_err_in = tot_out = tot_out_ok = 0
            for r in results:
                any_ref += any(e["refer"] for e in r["labels"])
            for name in bands:
                ref = err = err_in = out = out_ok = 0
                for r in results:
                    e = next(x for x in r["labels"] if x["label"] == name)
                    y = name.lower() in truth[r["file"]]
                    wrong = e["decision"] != y
                    ref += e["refer"]
                    err += wrong
                    err_in += wrong and e["refer"]
                    if not e["refer"]:
                        out += 1
                        out_ok += not wrong
                per[name] = {"band": bands[name], "referred": ref / len(results),
                             "errors_in": err_in / err if err else None,
                             "acc_out": out_ok / out if out else None}
                tot_ref += ref
                tot_err += err
                tot_err_in += err_in
                tot_out += out
                tot_out_ok += out_ok
            n_pairs = len(results) * len(bands)
            study["rules"][rule] = {"referred_pairs": tot_ref / n_pairs,
                                    "images_with_any_referral": any_ref / len(results),
                                    "errors_in_band": tot_err_in / tot_err if tot_err else None,
                                    "acc_not_referred": tot_out_ok / tot_out if tot_out else None,
                                    "labels": per}
            print(f"{rule}: referred {tot_ref / n_pairs:.3f} of (image, label) pairs, "
                  f"{any_ref / len(results):.3f} of images; "
                  f"{tot_err_in}/{tot_err} errors inside the band", file=sys.stderr)
    names = list(next(iter(study["rules"].values()))["labels"])
    print(f"{args.model} on {eval_csv.name} ({len(rows)} images), calibrated with {args.method}: "
          "fraction referred per label (share of the operating point's errors inside the band)")
    print("| label | " + " | ".join(study["rules"]) + " |")
    print("|---|" + "---|" * len(study["rules"]))
    for name in names:
        cells = []
        for r in study["rules"].values():
            m = r["labels"][name]
            cells.append(f"{m['referred']:.2f} ({m['errors_in']:.2f})" if m["errors_in"] is not None
                         else f"{m['referred']:.2f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("| all (image, label) pairs | " + " | ".join(
        f"{r['referred_pairs']:.3f} ({r['errors_in_band']:.2f})" for r in study["rules"].values()) + " |")
    print("| images with any referral | " + " | ".join(
        f"{r['images_with_any_referral']:.3f}" for r in study["rules"].values()) + " |")
    print("| accuracy, not referred | " + " | ".join(
        f"{r['acc_not_referred']:.3f}" for r in study["rules"].values()) + " |")
    if args.out:
        Path(args.out).write_text(json.dumps(study, indent=1) + "\n")


if __name__ == "__main__":
    main()
