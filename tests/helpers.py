"""Helpers shared by the tests (fixtures live in conftest.py)."""

import keras
import numpy as np

from keras_superattn.layers import VARIANTS

# Batch, sequence length, model width and heads of the small layer tests.
B, L, D, H = 2, 8, 16, 4

__all__ = ["B", "D", "H", "L", "VARIANTS", "numpy", "padding_mask"]


def numpy(x):
    """A backend tensor as a NumPy array."""
    return keras.ops.convert_to_numpy(x)


def padding_mask(rng, batch, length, min_real=2):
    """A `(batch, length)` mask with a random number of trailing pads per row."""
    real = rng.integers(min_real, length + 1, size=batch)
    real[0] = length - 2  # at least one row is padded
    return np.arange(length)[None, :] < real[:, None]
