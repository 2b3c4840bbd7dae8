#!/usr/bin/env python3
"""Export cxr-lungs to models/cxr-lungs/package/.

  python3 models/cxr-lungs/export.py --weights OUT/cxr-lungs.weights.npz [--metrics metrics.json]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common.export import export_package  # noqa: E402

ANATOMY = {"value": "123037004", "scheme": "SCT", "meaning": "Anatomical Structure"}

if __name__ == "__main__":
    export_package({
        "name": "cxr-lungs", "modalities": ["CR", "DX"],
        "segmentation": {"overlap": 0.5, "blend": "gaussian",
                         "regions": {"lungs": ["left_lung", "right_lung"], "left_lung": ["left_lung"],
                                     "right_lung": ["right_lung"], "heart": ["heart"]},
                         # DICOM SEG codes (CID 7150 / 7151), SNOMED CT
                         "codes": {lab: {"category": ANATOMY, "type": {"value": v, "scheme": "SCT", "meaning": m}}
                                   for lab, v, m in (("left_lung", "44029006", "Left lung"),
                                                     ("right_lung", "3341006", "Right lung"),
                                                     ("heart", "80891009", "Heart"))}},
        "provenance": {
            "training_data": "JSRT database (Shiraishi et al., AJR 2000), 197 PA chest radiographs here, with SCR "
                             "masks (van Ginneken et al., Med Image Anal 2006) via "
                             "github.com/AnishHota/JSRT-Segmentation @047d319, downsampled to 384x384; 80/20 split",
            "license": "JSRT: free for research/education after registration, non-commercial; SCR masks: research "
                       "use. Redistribution of the images is not sanctioned: internal research use only, do not "
                       "republish the data",
            "label_note": "left/right are the patient's sides (SCR convention): left lung appears on the image right",
        },
    })
