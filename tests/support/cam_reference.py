"""The Grad-CAM family's channel weights as pytorch-grad-cam computes them, for the parity tests
(an implementation independent of medvision's C++)."""
import numpy as np


def cam_weights(a: np.ndarray, g: np.ndarray, method: str) -> np.ndarray:
    """a, g: activations and their gradients [K, *spatial] (float64). Grad-CAM: the mean
    gradient; Grad-CAM++: sum of alpha * relu(g), alpha = g^2 / (2 g^2 + sum(A) g^3)."""
    axes = tuple(range(1, a.ndim))
    if method == "gradcam":
        return g.mean(axis=axes)
    g2, g3 = g ** 2, g ** 3
    total = a.sum(axis=axes).reshape((-1,) + (1,) * (a.ndim - 1))
    aij = g2 / (2 * g2 + total * g3 + 1e-7)
    aij = np.where(g != 0, aij, 0)
    return (np.maximum(g, 0) * aij).sum(axis=axes)
