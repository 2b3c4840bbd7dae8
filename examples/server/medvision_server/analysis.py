"""The medvision calls of one job: decode the stored files, run the routed models, write the
artefacts (base image, heat maps, overlays, label map). Runs in a server thread or on a Dask
worker; the models are loaded once per process and kept warm (ModelCache)."""
from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import medvision
import numpy as np
from PIL import Image as PILImage

Progress = Optional[Callable[[float], None]]


class ModelCache:
    """One medvision.Model per name, loaded on first use and shared by the threads of this
    process (a Model is thread-safe and releases the GIL)."""

    def __init__(self, num_threads: int = 0):
        self._models: Dict[str, medvision.Model] = {}
        self._lock = threading.Lock()
        self._threads = num_threads

    def get(self, name: str) -> medvision.Model:
        with self._lock:
            m = self._models.get(name)
            if m is None:
                m = medvision.Model(name, num_threads=self._threads)
                self._models[name] = m
            return m

    def loaded(self) -> List[str]:
        with self._lock:
            return sorted(self._models)

    def close(self) -> None:
        with self._lock:
            for m in self._models.values():
                m.close()
            self._models.clear()


def installed_models() -> Dict[str, str]:
    """Model name -> package folder, for every package on medvision's search path."""
    import json

    out: Dict[str, str] = {}
    for folder in medvision.list_models():
        try:
            with open(os.path.join(folder, "manifest.json")) as f:
                out.setdefault(str(json.load(f)["name"]), folder)
        except (OSError, ValueError, KeyError):
            continue
    return out


def safe_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", label)[:64] or "label"


def licence_of(model: medvision.Model) -> str:
    man = model.manifest
    return str(man.get("license") or (man.get("provenance") or {}).get("license") or "")


def load_study(spec: Dict[str, Any]) -> medvision.Image:
    paths = spec["paths"]
    kind = spec["kind"]
    if kind == "dicom-series":
        return medvision.load_series(paths)
    if kind.endswith("-stack"):
        return medvision.stack([medvision.load_image(p, max_values=spec["max_values"])
                                for p in paths])
    return medvision.load_image(paths[0], max_values=spec["max_values"])


def write_base_png(img: medvision.Image, path: Path, slice_index: int) -> None:
    """Channel 0 of one slice as 8-bit grey (0.5-99.5 percentile window), white = dense."""
    a = np.asarray(img.array[0, min(slice_index, img.depth - 1)], dtype=np.float32)
    lo, hi = np.percentile(a, [0.5, 99.5]) if a.size else (0.0, 1.0)
    g = np.clip((a - lo) / max(float(hi - lo), 1e-6), 0, 1)
    if img.photometric == "MONOCHROME1":
        g = 1.0 - g
    PILImage.fromarray((g * 255 + 0.5).astype(np.uint8), mode="L").save(path)


def analyse(spec: Dict[str, Any], models: ModelCache, progress: Progress = None) -> Dict[str, Any]:
    """spec: {"paths", "kind", "models", "explain", "out_dir", "max_values"}. Returns
    {"image": relpath, "results": [{model, version, notice, task, licence, result, artefacts,
    seconds}]}; artefact paths are relative to out_dir. Raises medvision errors unchanged."""
    out = Path(spec["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    names: List[str] = list(spec["models"])
    results: List[Dict[str, Any]] = []
    show_slice = 0
    with load_study(spec) as img:
        for i, name in enumerate(names):
            model = models.get(name)
            t0 = time.perf_counter()
            mdir = out / safe_name(name)
            mdir.mkdir(exist_ok=True)
            art: Dict[str, Any] = {}
            if model.task == "classification":
                r = model.classify(img)
                d = r.to_dict()
                if spec.get("explain") and img.depth == 1:
                    art["heatmaps"], art["overlays"] = {}, {}
                    for s in r.scores:
                        if s.decision:
                            e = model.explain(img, label=s.label)
                            rel = f"{safe_name(name)}/heatmap/{safe_name(s.label)}.png"
                            (out / rel).parent.mkdir(exist_ok=True)
                            # The page's heat-map layer: the coloured map alone, on the
                            # image's grid. The library's PNG adds a margin below the picture
                            # (model, notice, colour bar; the picture itself unchanged); the page
                            # shows those itself, so the layer keeps the picture rows only.
                            e.write_png(str(out / rel))
                            with PILImage.open(out / rel) as im:
                                if im.height > img.height:
                                    im.crop((0, 0, im.width, img.height)).save(out / rel)
                            orel = f"{safe_name(name)}/overlay/{safe_name(s.label)}.png"
                            (out / orel).parent.mkdir(exist_ok=True)
                            # Blended over the image, with the margin (downloads, the PDF).
                            e.write_png(str(out / orel), img)
                            art["heatmaps"][s.label] = rel
                            art["overlays"][s.label] = orel
            else:
                seg = model.segment(img)
                d = seg.to_dict()
                seg.write_nifti(str(mdir / "mask.nii.gz"))
                art["mask"] = f"{safe_name(name)}/mask.nii.gz"
                seg.write_overlay_png(str(mdir / "overlay.png"), img)
                art["overlay"] = f"{safe_name(name)}/overlay.png"
                if img.depth > 1:
                    fg = (np.asarray(seg.mask) > 0).reshape(seg.mask.shape[0], -1).sum(axis=1)
                    show_slice = int(np.argmax(fg)) if fg.size else 0
            d.pop("file", None)
            results.append({"model": model.name, "version": model.version,
                            "notice": model.notice, "task": model.task,
                            "licence": licence_of(model), "result": d, "artefacts": art,
                            "seconds": time.perf_counter() - t0})
            if progress:
                progress((i + 1) / max(len(names), 1))
        write_base_png(img, out / "image.png", show_slice)
    return {"image": "image.png", "results": results}


def analyse_on_dask_worker(spec: Dict[str, Any], model_threads: int = 0) -> Dict[str, Any]:
    """The Dask task: the models stay warm on the worker between tasks (kept on the worker
    object, not in a module global)."""
    from distributed import get_worker

    w = get_worker()
    cache = getattr(w, "_medvision_models", None)
    if cache is None:
        cache = ModelCache(model_threads)
        setattr(w, "_medvision_models", cache)
    os.environ.setdefault("OMP_NUM_THREADS", str(model_threads or 1))
    return analyse(spec, cache)
