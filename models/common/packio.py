"""Compact single-file container for packed training data ("medvision pack", version 1).

A pack is an *uncompressed* .npz (a zip, readable with numpy alone) whose entries are byte
arrays compressed with the standard-library lzma module, plus a JSON header. It needs only
numpy + the Python standard library to read (torch is used for the DCT codec when present).

Codecs (per array):
  raw          bytes as they are
  lzma         lzma of the C-order bytes
  lzma-planes  multi-byte ints split into byte planes (low, high, ...) then lzma: better for
               12..16-bit medical intensities
  bits         np.packbits of a boolean mask, then lzma
  dct          LOSSY, for uint8 images [N, H, W] with H, W multiples of 8: orthonormal 8x8 block
               DCT, quantised with the JPEG luminance table at a given quality (default 85),
               coefficients stored planar by frequency: DC as int16, the 63 AC planes as int8
               (the rare |AC| > 127 kept exactly in a sparse escape list), each stream lzma'd. The Kermany
               JPEGs are already lossy with an aligned 8x8 grid, so q85 costs ~52 dB PSNR (close
               to uint8 rounding noise) at ~1/8 of the raw size; decoding is a batched matmul.

Large arrays are cut into independent lzma streams so that compression here and
decompression on the GPU machine's 16 cores run in parallel threads (lzma releases the GIL).
"""
from __future__ import annotations

import io
import json
import lzma
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

FORMAT = "medvision-pack-1"
_CHUNK = 16 << 20  # bytes per independent lzma stream

JPEG_LUMA_Q50 = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
     14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
     18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99],
    dtype=np.float32).reshape(8, 8)


def _threads() -> int:
    return max(1, min(16, int(os.environ.get("MEDVISION_PACK_THREADS", os.cpu_count() or 1))))


def dct_matrix() -> np.ndarray:
    k = np.arange(8)
    c = np.sqrt(2.0 / 8.0) * np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / 16.0)
    c[0] /= np.sqrt(2.0)
    return c.astype(np.float64)


def jpeg_qtable(quality: int) -> np.ndarray:
    quality = int(min(max(quality, 1), 100))
    s = (200 - 2 * quality) / 100.0 if quality >= 50 else 50.0 / quality
    return np.maximum(np.floor(JPEG_LUMA_Q50 * s + 0.5), 1).astype(np.float32)


def dct_encode(img: np.ndarray, quality: int = 85, chunk: int = 256) -> np.ndarray:
    """uint8 [N, H, W] -> int16 coefficients [64, N, H/8, W/8] (planar by frequency)."""
    assert img.dtype == np.uint8 and img.ndim == 3
    n, h, w = img.shape
    assert h % 8 == 0 and w % 8 == 0, "dct codec needs H, W multiples of 8"
    c = dct_matrix()
    q = jpeg_qtable(quality).astype(np.float64)
    out = np.empty((64, n, h // 8, w // 8), np.int16)
    for s in range(0, n, chunk):
        b = img[s:s + chunk].astype(np.float64) - 128.0
        m = b.shape[0]
        b = b.reshape(m, h // 8, 8, w // 8, 8).transpose(0, 1, 3, 2, 4)  # m, hb, wb, 8, 8
        d = c @ b @ c.T
        z = np.clip(np.round(d / q), -32768, 32767).astype(np.int16)
        out[:, s:s + m] = z.reshape(m, h // 8, w // 8, 64).transpose(3, 0, 1, 2)
    return out


def dct_decode(coef: np.ndarray, quality: int, device: str = "cpu", chunk: int = 512) -> np.ndarray:
    """int16 [64, N, hb, wb] -> uint8 [N, hb*8, wb*8]; torch (any device) if importable, else numpy."""
    _, n, hb, wb = coef.shape
    q = jpeg_qtable(quality)
    c = dct_matrix().astype(np.float32)
    out = np.empty((n, hb * 8, wb * 8), np.uint8)
    try:
        import torch
    except ImportError:  # pragma: no cover
        torch = None
    for s in range(0, n, chunk):
        z = coef[:, s:s + chunk]
        m = z.shape[1]
        if torch is not None:  # float64: bit-identical results on CPU and GPU (no TF32 matmuls)
            t = torch.from_numpy(np.ascontiguousarray(z)).to(device).double()
            t = t.permute(1, 2, 3, 0).reshape(m, hb, wb, 8, 8) * torch.from_numpy(q).to(device).double()
            ct = torch.from_numpy(c).to(device).double()
            r = ct.t() @ t @ ct + 128.0
            r = r.permute(0, 1, 3, 2, 4).reshape(m, hb * 8, wb * 8)
            out[s:s + m] = r.round_().clamp_(0, 255).to(torch.uint8).cpu().numpy()
        else:
            t = z.transpose(1, 2, 3, 0).reshape(m, hb, wb, 8, 8).astype(np.float64) * q
            r = c.T.astype(np.float64) @ t @ c.astype(np.float64) + 128.0
            r = r.transpose(0, 1, 3, 2, 4).reshape(m, hb * 8, wb * 8)
            out[s:s + m] = np.clip(np.round(r), 0, 255).astype(np.uint8)
    return out


def _lzma_chunks(buf: bytes, preset: int) -> list:
    parts = [buf[i:i + _CHUNK] for i in range(0, len(buf), _CHUNK)] or [b""]
    with ThreadPoolExecutor(_threads()) as ex:
        return list(ex.map(lambda p: lzma.compress(p, preset=preset), parts))


def _unlzma_chunks(parts: list) -> bytes:
    with ThreadPoolExecutor(_threads()) as ex:
        return b"".join(ex.map(lzma.decompress, parts))


def _planes(a: np.ndarray) -> bytes:
    b = np.ascontiguousarray(a).view(np.uint8).reshape(-1, a.dtype.itemsize)
    return np.ascontiguousarray(b.T).tobytes()


def _unplanes(buf: bytes, dtype, shape) -> np.ndarray:
    dtype = np.dtype(dtype)
    b = np.frombuffer(buf, np.uint8).reshape(dtype.itemsize, -1)
    return np.ascontiguousarray(b.T).view(dtype).reshape(shape)


def save_pack(path, meta: dict, arrays: dict, codecs: dict | None = None, quality: int = 85,
              preset: int = 6) -> dict:
    """Write arrays (numpy) + meta (JSON-serialisable) to `path` (.npz). Returns size info."""
    codecs = codecs or {}
    entries, info = {}, {}
    for name, arr in arrays.items():
        arr = np.asarray(arr)
        codec = codecs.get(name, "lzma")
        rec = {"codec": codec, "dtype": str(arr.dtype), "shape": list(arr.shape)}
        if codec == "raw":
            parts = [np.ascontiguousarray(arr).tobytes()]
        elif codec == "lzma":
            parts = _lzma_chunks(np.ascontiguousarray(arr).tobytes(), preset)
        elif codec == "lzma-planes":
            parts = _lzma_chunks(_planes(arr), preset)
        elif codec == "bits":
            rec["dtype"] = "bool"
            parts = _lzma_chunks(np.packbits(arr.astype(bool).reshape(-1)).tobytes(), preset)
        elif codec == "dct":
            coef = dct_encode(arr, quality)
            rec["quality"] = int(quality)
            rec["coef_shape"] = list(coef.shape)
            ac = coef[1:]
            esc = np.flatnonzero((ac > 127) | (ac < -128))
            streams = {"dc": np.ascontiguousarray(coef[0]).tobytes(),
                       "ac": np.clip(ac, -128, 127).astype(np.int8).tobytes(),
                       "esc_idx": esc.astype(np.int64).tobytes(),
                       "esc_val": ac.reshape(-1)[esc].astype(np.int16).tobytes()}
            rec["streams"] = {}
            parts = []
            for k, b in streams.items():
                ps = _lzma_chunks(b, preset)
                rec["streams"][k] = [len(parts), len(ps)]
                parts += ps
        else:
            raise ValueError(f"unknown codec {codec}")
        rec["parts"] = len(parts)
        rec["bytes"] = int(sum(len(p) for p in parts))
        for i, p in enumerate(parts):
            entries[f"{name}.{i}"] = np.frombuffer(p, np.uint8)
        info[name] = rec
    header = {"format": FORMAT, "meta": meta, "arrays": info}
    entries["__header__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    tmp = str(path) + ".tmp.npz"
    np.savez(tmp, **entries)
    os.replace(tmp, path)
    return info


def load_pack(path, names=None, device: str = "cpu"):
    """Read a pack. Returns (meta, {name: numpy array}). `device` is used for DCT decoding."""
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(bytes(z["__header__"]).decode())
        if header.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} file")
        out = {}
        for name, rec in header["arrays"].items():
            if names is not None and name not in names:
                continue
            parts = [bytes(z[f"{name}.{i}"]) for i in range(rec["parts"])]
            codec, shape, dtype = rec["codec"], tuple(rec["shape"]), rec["dtype"]
            if codec == "raw":
                arr = np.frombuffer(parts[0], dtype).reshape(shape).copy()
            elif codec == "lzma":
                arr = np.frombuffer(_unlzma_chunks(parts), dtype).reshape(shape).copy()
            elif codec == "lzma-planes":
                arr = _unplanes(_unlzma_chunks(parts), dtype, shape)
            elif codec == "bits":
                n = int(np.prod(shape))
                arr = np.unpackbits(np.frombuffer(_unlzma_chunks(parts), np.uint8))[:n].astype(bool).reshape(shape)
            elif codec == "dct":
                cs = tuple(rec["coef_shape"])
                st = {k: _unlzma_chunks(parts[a:a + n]) for k, (a, n) in rec["streams"].items()}
                coef = np.empty(cs, np.int16)
                coef[0] = np.frombuffer(st["dc"], np.int16).reshape(cs[1:])
                ac = np.frombuffer(st["ac"], np.int8).astype(np.int16)
                ac[np.frombuffer(st["esc_idx"], np.int64)] = np.frombuffer(st["esc_val"], np.int16)
                coef[1:] = ac.reshape((cs[0] - 1,) + cs[1:])
                del ac, st
                arr = dct_decode(coef, rec["quality"], device=device)
            else:
                raise ValueError(f"unknown codec {codec}")
            out[name] = arr
    return header["meta"], out


def pack_summary(path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(bytes(z["__header__"]).decode())
    return {k: {kk: v[kk] for kk in ("codec", "shape", "bytes")} for k, v in header["arrays"].items()}
