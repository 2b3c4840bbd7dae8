"""medvision's operators on oneDNN tensors (src/infer/onednn_ops.cpp, registered with LibTorch
when a model is optimised) against LibTorch's own operators on the same tensors: the fused
InstanceNorm + LeakyReLU of optimised 3D U-Nets (to_dense, instance_norm, leaky_relu, to_mkldnn)
and the in-place activations that replace LibTorch's padded-block ones (hardtanh/clamp, hardswish,
hardsigmoid). Layouts: the blocked output of a oneDNN convolution (8 or 16 channels per block, as
the CPU chooses, with padded lanes when the channels do not fill the last block) and the plain
one; volumes of several work chunks, batches of 3, a mean far from zero, with and without affine
weights, in place and dense."""
import numpy as np
import pytest
import torch
import torch.utils.mkldnn

OP = "instance_norm_leaky_relu_mkldnn"


@pytest.fixture(scope="module")
def fused(mv):
    # Loading (and so optimising) a package with an InstanceNorm U-Net registers the operator.
    with mv.Model("brain-tumour"):
        pass
    return getattr(torch.ops.medvision, OP)


def reference(x: torch.Tensor, w, b, eps: float, slope: float) -> torch.Tensor:
    y = torch.instance_norm(x.to_dense(), w, b, None, None, True, 0.1, eps, False)
    return torch.nn.functional.leaky_relu(y, slope)


def blocked(channels: int, shape, offset: float = 0.0, seed: int = 0,
            batch: int = 1) -> torch.Tensor:
    """A oneDNN convolution's output: the layout the optimised graph hands the operator."""
    g = torch.Generator().manual_seed(seed)
    conv = torch.nn.Conv3d(4, channels, 3, padding=1, bias=False).eval()
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 0.3)
    x = torch.randn((batch, 4, *shape), generator=g) + offset
    return torch.utils.mkldnn.to_mkldnn(conv)(x.to_mkldnn())


@pytest.mark.parametrize("channels", [12, 16, 32])
@pytest.mark.parametrize("dense_out", [False, True])
@pytest.mark.parametrize("affine", [True, False])
def test_blocked_layout_matches_libtorch(fused, channels, dense_out, affine):
    torch.set_num_threads(2)
    with torch.inference_mode():
        x = blocked(channels, (24, 40, 40), seed=channels)  # 38,400 voxels: several chunks
        w = torch.rand(channels) + 0.5 if affine else None
        b = torch.randn(channels) * 0.2 if affine else None
        want = reference(x, w, b, 1e-5, 0.01)
        got = fused(x, w, b, 1e-5, 0.01, dense_out)
        assert got.is_mkldnn != dense_out
        got = got.to_dense() if got.is_mkldnn else got
        assert got.shape == want.shape
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=0, atol=2e-5)


@pytest.mark.parametrize("dense_out", [False, True])
def test_batch_of_three(fused, dense_out):
    with torch.inference_mode():
        x = blocked(24, (10, 12, 14), seed=7, batch=3)
        w, b = torch.rand(24) + 0.5, torch.randn(24)
        want = reference(x, w, b, 1e-5, 0.01)
        got = fused(x, w, b, 1e-5, 0.01, dense_out)
        got = got.to_dense() if got.is_mkldnn else got
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=0, atol=2e-5)


ACTIVATIONS = [
    ("relu6", 0, 0.0, 6.0, lambda y: torch.clamp(y, 0.0, 6.0)),
    ("clamp", 0, -0.3, 0.4, lambda y: torch.clamp(y, -0.3, 0.4)),
    ("hardswish", 1, 0.0, 0.0, torch.nn.functional.hardswish),
    ("hardsigmoid", 2, 0.0, 0.0, torch.nn.functional.hardsigmoid),
]


@pytest.mark.parametrize("name,kind,lo,hi,ref", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
@pytest.mark.parametrize("channels", [24, 32])
def test_activations_in_place(fused, name, kind, lo, hi, ref, channels):
    """medvision::mkldnn_elementwise_, which replaces LibTorch's padded-block activations: in
    place on the blocked layout (24 channels leave padded lanes with AVX-512) and the plain one.
    The convolution outputs here spread about +-3, so ReLU6's upper bound is reached too."""
    op = torch.ops.medvision.mkldnn_elementwise_
    with torch.inference_mode():
        x = blocked(channels, (6, 20, 20), seed=channels + kind, batch=2)
        want = ref(x.to_dense())
        got = op(x, kind, lo, hi)
        assert got.is_mkldnn
        np.testing.assert_allclose(got.to_dense().numpy(), want.numpy(), rtol=0, atol=1e-6)
        np.testing.assert_allclose(x.to_dense().numpy(), want.numpy(), rtol=0, atol=1e-6)
        plain = blocked(channels, (6, 20, 20), seed=1).to_dense()
        got = op(plain.to_mkldnn(), kind, lo, hi)
        np.testing.assert_allclose(got.to_dense().numpy(), ref(plain).numpy(), rtol=0,
                                   atol=1e-6)
        # (N, C), as after a linear layer: LibTorch's operators on a copy, written back.
        flat = torch.randn(3, channels, generator=torch.Generator().manual_seed(kind)) * 4.0
        x = flat.to_mkldnn()
        op(x, kind, lo, hi)
        np.testing.assert_allclose(x.to_dense().numpy(), ref(flat).numpy(), rtol=0, atol=1e-6)


def test_mean_far_from_zero_and_plain_layout(fused):
    with torch.inference_mode():
        # A large offset: a naive sum-of-squares variance would lose every digit here.
        x = blocked(16, (12, 30, 30), offset=0.0, seed=3)
        shifted = (x.to_dense() + 3000.0)
        want = reference(shifted, None, None, 1e-5, 0.2)
        got = fused(shifted.to_mkldnn(), None, None, 1e-5, 0.2, True)  # plain oneDNN layout
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=0, atol=5e-4)
        # Dense (not oneDNN) input: LibTorch's own operators, same answer.
        got = fused(shifted, None, None, 1e-5, 0.2, True)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=0, atol=1e-5)


def test_bundled_unet_optimised_equals_as_loaded(mv):
    """The brain-tumour package on one 96^3 window: optimised (fused) and as loaded agree."""
    rng = np.random.default_rng(5)
    vol = rng.normal(size=(2, 96, 96, 96)).astype(np.float32)
    vol[:, 20:70, 30:60, 25:75] += 2.0
    img = mv.from_numpy(vol, spacing=(1.0, 1.0, 1.0))
    probs = {}
    for optimize in (True, False):
        with mv.Model("brain-tumour", optimize=optimize) as m:
            probs[optimize] = np.array(m.segment(img, probabilities=True).probabilities)
    np.testing.assert_allclose(probs[True], probs[False], rtol=0, atol=1e-4)
