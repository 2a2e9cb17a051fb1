import numpy as np
import pytest

from keras_superattn import layers

VARIANTS = {
    "standard": layers.StandardAttention,
    "optimized": layers.OptimizedAttention,
    "efficient": layers.EfficientAttention,
    "super": layers.SuperAttention,
}


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(params=list(VARIANTS))
def variant(request):
    return request.param


def padding_mask(rng, batch, length, min_real=2):
    """A `(batch, length)` mask with a random number of trailing pads per row."""
    real = rng.integers(min_real, length + 1, size=batch)
    real[0] = length - 2  # at least one row is padded
    return np.arange(length)[None, :] < real[:, None]
