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


def item_name(index: int) -> str:
    """A batch item's name in stored results and errors: its place in the upload ("file 3").
    Client file names are never stored; the upload's answer maps places to them."""
    return f"file {index + 1}"


def analyse_batch(spec: Dict[str, Any], models: ModelCache,
                  progress: Progress = None) -> Dict[str, Any]:
    """A batch study: every file is one image, classified on its own by every model, through
    medvision's streaming pipeline (Model.classify(list): decode workers feeding batches of
    ``spec["batch_size"]``). One bad file never fails the others: its item holds the error,
    naming it by its place ("file 2"). Returns analyse()'s shape with "image" "" (no base image)
    and per model result {"items": [{"file", "result"} | {"file", "error", "status"}],
    "failed": count}."""
    paths: List[str] = list(spec["paths"])
    names: List[str] = list(spec["models"])
    results: List[Dict[str, Any]] = []
    for mi, name in enumerate(names):
        model = models.get(name)
        if model.task != "classification":
            raise medvision.InvalidArgumentError(
                f"model '{name}' is a {model.task} model: a batch classifies each file")
        t0 = time.perf_counter()

        def step(done: int, total: int, mi: int = mi) -> None:
            if progress:
                progress((mi + done / max(total, 1)) / max(len(names), 1))

        out = model.classify(paths, batch_size=max(1, int(spec.get("batch_size", 8))),
                             errors="return", max_values=spec["max_values"], progress=step)
        items: List[Dict[str, Any]] = []
        for i, (path, r) in enumerate(zip(paths, out)):
            if isinstance(r, BaseException):
                # The library's message names the stored file (its content hash) and the
                # problem, never patient data; the path becomes the item's name.
                msg = str(r).replace(path, item_name(i))
                items.append({"file": item_name(i), "error": msg,
                              "status": getattr(r, "status_name", type(r).__name__)})
            else:
                d = r.to_dict()
                d["file"] = item_name(i)
                items.append({"file": item_name(i), "result": d})
        results.append({"model": model.name, "version": model.version, "notice": model.notice,
                        "task": model.task, "licence": licence_of(model),
                        "result": {"items": items,
                                   "failed": sum(1 for x in items if "error" in x)},
                        "artefacts": {}, "seconds": time.perf_counter() - t0})
        if progress:
            progress((mi + 1) / max(len(names), 1))
    return {"image": "", "results": results}


def analyse(spec: Dict[str, Any], models: ModelCache, progress: Progress = None) -> Dict[str, Any]:
    """spec: {"paths", "kind", "models", "explain", "out_dir", "max_values", "batch_size"}.
    Returns {"image": relpath, "results": [{model, version, notice, task, licence, result,
    artefacts, seconds}]}; artefact paths are relative to out_dir. Raises medvision errors
    unchanged. A "batch" study goes to analyse_batch()."""
    if spec["kind"] == "batch":
        return analyse_batch(spec, models, progress)
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
