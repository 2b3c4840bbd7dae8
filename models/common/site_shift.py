"""Site-shift simulation: what another hospital's chest X-rays plausibly look like to a model
trained at one site. numpy only (PIL for the burnt-in text, imported lazily).

Each shift is a function `f(img, rng) -> img` on a grey float image in [0, 1] (any size; applied to
the *raw* image, before medvision's preprocessing), deterministic given the numpy RandomState
`rng`. `apply_shift(img, name, seed)` seeds one RandomState per (shift, image) so a shifted copy
of a dataset is reproducible image by image.

Shifts (SHIFTS, name -> (function, what it mimics)):
  gamma_bright / gamma_dark      exposure / detector response curve (gamma 0.7 / 1.45)
  contrast_low                   flatter soft-tissue contrast (S-curve toward mid grey, log-ish LUT)
  window_narrow                  a narrower display window baked into the exported image (clips ~8 %)
  sharpen                        vendor edge enhancement (unsharp mask, sigma 2 px @224, amount 1.2)
  blur                           softer detector / more scatter (Gaussian sigma 1.2 px @224)
  noise                          quantum noise (Poisson-like, signal-dependent, sigma ~0.035)
  lowres                         lower source resolution (down to 96 px, back up)
  zoom_in                        tighter collimation (central 82 % crop)
  pad_black / pad_white          smaller field in a frame (image shrunk 0.8x in a black / white border)
  text                           burnt-in markers: an L or R letter and a label line (site, date-like text)
  combo                          a random 3 of the above per image (seeded)
"""
from __future__ import annotations

import numpy as np


def _gauss_kernel(sigma: float) -> np.ndarray:
    r = max(1, int(round(3 * sigma)))
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur with reflected borders."""
    k = _gauss_kernel(sigma)
    r = len(k) // 2
    p = np.pad(img, ((r, r), (r, r)), mode="reflect")
    tmp = sum(k[i] * p[:, i:i + img.shape[1]] for i in range(len(k)))
    return sum(k[i] * tmp[i:i + img.shape[0], :] for i in range(len(k))).astype(np.float32)


def _scale_px(img, px_at_224):
    return px_at_224 * min(img.shape) / 224.0


def _resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Area-average down / bilinear up (PIL when present, else a numpy bilinear)."""
    try:
        from PIL import Image
        im = Image.fromarray(img.astype(np.float32), mode="F")
        return np.asarray(im.resize((w, h), Image.BILINEAR if h >= img.shape[0] else Image.BOX), np.float32)
    except ImportError:  # pragma: no cover
        ys = (np.arange(h) + 0.5) * img.shape[0] / h - 0.5
        xs = (np.arange(w) + 0.5) * img.shape[1] / w - 0.5
        y0 = np.clip(np.floor(ys).astype(int), 0, img.shape[0] - 1)
        x0 = np.clip(np.floor(xs).astype(int), 0, img.shape[1] - 1)
        y1, x1 = np.minimum(y0 + 1, img.shape[0] - 1), np.minimum(x0 + 1, img.shape[1] - 1)
        wy, wx = np.clip(ys - y0, 0, 1)[:, None], np.clip(xs - x0, 0, 1)[None]
        return ((1 - wy) * ((1 - wx) * img[y0][:, x0] + wx * img[y0][:, x1])
                + wy * ((1 - wx) * img[y1][:, x0] + wx * img[y1][:, x1])).astype(np.float32)


def gamma(img, rng, g=None):
    return np.clip(img, 0, 1) ** g


def contrast_low(img, rng):
    # log-like LUT: lifts the dark end, compresses the bright end (lower lung/bone contrast)
    a = 4.0
    return np.log1p(a * np.clip(img, 0, 1)) / np.log1p(a)


def window_narrow(img, rng):
    lo, hi = np.percentile(img, [6.0, 90.0])
    return np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1)


def sharpen(img, rng):
    s = _scale_px(img, 2.0)
    return np.clip(img + 1.2 * (img - gaussian_blur(img, s)), 0, 1)


def blur(img, rng):
    return np.clip(gaussian_blur(img, _scale_px(img, 1.2)), 0, 1)


def noise(img, rng):
    sig = 0.035 * np.sqrt(np.clip(img, 0.02, 1) / 0.5)
    return np.clip(img + sig * rng.standard_normal(img.shape).astype(np.float32), 0, 1)


def lowres(img, rng):
    h, w = img.shape
    r = 96.0 / 224.0
    lo = _resize(img, max(8, int(round(h * r))), max(8, int(round(w * r))))
    return np.clip(_resize(lo, h, w), 0, 1)


def zoom_in(img, rng, frac=0.82):
    h, w = img.shape
    ch, cw = int(round(h * frac)), int(round(w * frac))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return np.clip(_resize(img[y0:y0 + ch, x0:x0 + cw], h, w), 0, 1)


def pad(img, rng, value=0.0, frac=0.8):
    h, w = img.shape
    ih, iw = int(round(h * frac)), int(round(w * frac))
    out = np.full_like(img, value)
    y0, x0 = (h - ih) // 2, (w - iw) // 2
    out[y0:y0 + ih, x0:x0 + iw] = np.clip(_resize(img, ih, iw), 0, 1)
    return out


def text(img, rng):
    """Burn an L or R marker near a top corner and a label line at the bottom, white, as
    modalities do. PIL's built-in font, scaled with the image."""
    from PIL import Image, ImageDraw, ImageFont
    h, w = img.shape
    im = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8), mode="L")
    d = ImageDraw.Draw(im)
    size = max(10, int(round(min(h, w) * 0.09)))
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: bitmap font only
        font = ImageFont.load_default()
    letter = "L" if rng.rand() < 0.5 else "R"
    x = int(w * (0.05 + 0.05 * rng.rand())) if rng.rand() < 0.5 else int(w * (0.85 + 0.04 * rng.rand()))
    d.text((x, int(h * (0.04 + 0.05 * rng.rand()))), letter, fill=255, font=font)
    small = max(8, size // 2)
    try:
        font2 = ImageFont.load_default(size=small)
    except TypeError:
        font2 = ImageFont.load_default()
    label = rng.choice(["PORTABLE", "AP SUPINE", "ERECT", "SITE B  CR", "MOBILE AP"])
    d.text((int(w * 0.04), int(h * 0.90)), f"{label} {rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}",
           fill=255, font=font2)
    return np.asarray(im, np.float32) / 255.0


SHIFTS = {
    "gamma_bright": (lambda i, r: gamma(i, r, 0.7), "exposure curve, gamma 0.7 (brighter mid-tones)"),
    "gamma_dark": (lambda i, r: gamma(i, r, 1.45), "exposure curve, gamma 1.45 (darker mid-tones)"),
    "contrast_low": (contrast_low, "log LUT: lifted darks, compressed brights"),
    "window_narrow": (window_narrow, "narrower window, ~6 % clipped dark / ~10 % clipped bright"),
    "sharpen": (sharpen, "unsharp mask, sigma 2 px, amount 1.2 (vendor edge enhancement)"),
    "blur": (blur, "Gaussian blur, sigma 1.2 px"),
    "noise": (noise, "signal-dependent noise, sigma ~0.035"),
    "lowres": (lowres, "96 px source resolution, upsampled"),
    "zoom_in": (zoom_in, "central 82 % crop (tighter collimation)"),
    "pad_black": (lambda i, r: pad(i, r, 0.0), "image at 0.8x inside a black frame"),
    "pad_white": (lambda i, r: pad(i, r, 1.0), "image at 0.8x inside a white frame"),
    "text": (text, "burnt-in L/R marker and label text"),
}
COMBO_POOL = [k for k in SHIFTS]


def combo(img, rng):
    names = rng.choice(COMBO_POOL, size=3, replace=False)
    for n in names:
        img = SHIFTS[n][0](img, rng)
    return img


SHIFTS["combo"] = (combo, "3 of the above, chosen per image")


def _seed(name: str, seed: int) -> int:
    h = 2166136261
    for ch in f"{name}:{seed}".encode():
        h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
    return h


def apply_shift(img: np.ndarray, name: str, seed: int) -> np.ndarray:
    """img: grey float [0, 1] HxW. Deterministic in (name, seed)."""
    if name not in SHIFTS:
        raise KeyError(f"unknown shift {name!r}; known: {', '.join(SHIFTS)}")
    rng = np.random.RandomState(_seed(name, seed))
    return np.clip(SHIFTS[name][0](img.astype(np.float32), rng), 0, 1).astype(np.float32)
