#!/usr/bin/env python3
"""Export cxr-edema to models/cxr-edema/package/.

  python3 models/cxr-edema/export.py --weights OUT/cxr-edema.weights.npz [--metrics metrics.json]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common.export import export_package  # noqa: E402

if __name__ == "__main__":
    export_package({
        "name": "cxr-edema", "modalities": ["CR", "DX"],
        "provenance": {
            "training_data": "NIH ChestX-ray14 subsets as for cxr-findings (same patient-level split); only ~43 "
                             "Edema-positive images from 17 patients (one patient contributes 21); fine-tuned from "
                             "cxr-findings",
            "license": "NIH ChestX-ray14: unrestricted use, acknowledge NIH CC and cite Wang et al. 2017",
            "limitation": "very few positives: weak model, wide confidence intervals",
        },
    })
