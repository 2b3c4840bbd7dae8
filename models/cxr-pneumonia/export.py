#!/usr/bin/env python3
"""Export cxr-pneumonia to models/cxr-pneumonia/package/ (model.pt + manifest.json + README.md).

  python3 models/cxr-pneumonia/export.py --weights OUT/cxr-pneumonia.weights.npz [--metrics metrics.json]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common.export import export_package  # noqa: E402

if __name__ == "__main__":
    export_package({
        "name": "cxr-pneumonia", "modalities": ["CR", "DX"],
        "provenance": {
            "training_data": "Kermany, Zhang, Goldbaum 2018 paediatric chest X-rays (Guangzhou Women and Children's "
                             "Medical Center), official training split: 1341 NORMAL / 3875 PNEUMONIA, re-saved at "
                             "224x224 RGB JPEG by github.com/waliatushar/ai-pneumonia-detection @362d6d1; "
                             "patient-level 85/15 train/validation split",
            "license": "data CC BY 4.0 (Kermany et al., doi:10.17632/rscbjbr9sj.2); cite the dataset",
            "population": "children aged 1-5 years, AP chest radiographs, one hospital",
        },
    })
