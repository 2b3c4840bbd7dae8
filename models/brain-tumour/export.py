#!/usr/bin/env python3
"""Export brain-tumour to models/brain-tumour/package/.

  python3 models/brain-tumour/export.py --weights OUT/brain-tumour.weights.npz [--metrics metrics.json]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common.export import export_package  # noqa: E402

if __name__ == "__main__":
    export_package({
        "name": "brain-tumour", "modalities": ["MR"],
        "segmentation": {"overlap": 0.5, "blend": "gaussian", "regions": {"whole_tumour": ["whole_tumour"]},
                         # DICOM SEG codes (CID 7150 / 7151)
                         "codes": {"whole_tumour": {
                             "category": {"value": "49755003", "scheme": "SCT",
                                          "meaning": "Morphologically Altered Structure"},
                             "type": {"value": "108369006", "scheme": "SCT", "meaning": "Neoplasm"}}}},
        "provenance": {
            "training_data": "BraTS 2018 training cases (FLAIR, T1, whole-tumour mask), 7 cases via "
                             "github.com/JeroenBertels/deepvoxnet2 @0388376 (demos/brats_2018); 5 train / 2 "
                             "validation",
            "license": "BraTS challenge data: research use; cite Menze et al. TMI 2015, Bakas et al. Sci Data 2017 "
                       "and arXiv:1811.02629",
            "input_note": "channel 0 = FLAIR, channel 1 = T1 (same grid, skull-stripped, co-registered, as BraTS)",
        },
    })
