#!/usr/bin/env python3
"""Export cxr-findings to models/cxr-findings/package/.

  python3 models/cxr-findings/export.py --weights OUT/cxr-findings.weights.npz [--metrics metrics.json]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common.export import export_package  # noqa: E402

if __name__ == "__main__":
    export_package({
        "name": "cxr-findings", "modalities": ["CR", "DX"],
        "provenance": {
            "training_data": "NIH ChestX-ray14 (Wang et al., CVPR 2017): 416 images (one per patient, 320 px; "
                             "github.com/jrzech/reproduce-chexnet @a011a9a) + 995 images at 64x64 "
                             "(github.com/dinbe0527/kcr2019d1 @ab26402); patient-level 75/25 split stratified by "
                             "Edema; backbone initialised from cxr-pneumonia (Kermany, CC BY 4.0)",
            "license": "NIH ChestX-ray14: released by the NIH Clinical Center for unrestricted use, acknowledge "
                       "NIH CC and cite Wang et al. 2017",
            "label_note": "NIH labels were mined from radiology reports by NLP and are noisy",
        },
    })
