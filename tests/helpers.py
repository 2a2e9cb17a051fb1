"""Helpers shared by the tests (fixtures live in conftest.py)."""

import functools
import os

import keras
import numpy as np

from keras_superattn import generation
from keras_superattn import models
from keras_superattn.layers import VARIANTS

# The repository's root folder.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Batch, sequence length, model width and heads of the small layer tests.
B, L, D, H = 2, 8, 16, 4
# Token ids of the small generative models (0 pads).
VOCABULARY = 24
# The variants the generative conversion tests convert on this backend: every
# variant once over the three backends, and every backend converts some (JAX
# and PyTorch through the TensorFlow process), so that none is paid for twice.
CONVERTED_HERE = {"tensorflow": ["standard", "efficient"], "jax": ["optimized"], "torch": ["super"]}[
    keras.backend.backend()
]

__all__ = [
    "B", "CONVERTED_HERE", "D", "H", "L", "ROOT", "VARIANTS", "VOCABULARY", "counting_sequences", "numpy",
    "padding_mask", "train_reversing_translator", "trained",
]


def numpy(x):
    """A backend tensor as a NumPy array."""
    return keras.ops.convert_to_numpy(x)


def padding_mask(rng, batch, length, min_real=2):
    """A `(batch, length)` mask with a random number of trailing pads per row."""
    real = rng.integers(min_real, length + 1, size=batch)
    real[0] = length - 2  # at least one row is padded
    return np.arange(length)[None, :] < real[:, None]


def counting_sequences(rng, count, length):
    """Rows `a, a+1, ..., a+length` (mod the vocabulary, skipping the padding
    id 0): a task a small model learns to predict confidently in a few epochs."""
    starts = rng.integers(1, VOCABULARY, size=(count, 1))
    return ((starts + np.arange(length + 1) - 1) % (VOCABULARY - 1) + 1).astype("int32")


def trained(build, inputs, labels, epochs=8):
    """`build()`'s model, briefly trained. Seeded before it is built, so that
    its initial weights do not depend on the tests that ran before."""
    keras.utils.set_random_seed(0)
    model = build()
    model.compile(keras.optimizers.Adam(0.01), generation.token_crossentropy)
    model.fit(inputs, labels, epochs=epochs, batch_size=32, verbose=0)
    return model


def train_reversing_translator():
    """A Super translator trained to copy its source (ids 3.., padded with 0)
    in reverse between a start (1) and an end token (2); returns the model,
    its inputs and the source and target arrays (the `reversing_translator`
    fixture trains it once a session)."""
    rng = np.random.default_rng(3)
    source = rng.integers(3, VOCABULARY, size=(1024, 6)).astype("int32")
    lengths = rng.integers(3, 7, size=1024)
    source[np.arange(6)[None] >= lengths[:, None]] = 0
    target = np.zeros((1024, 8), "int32")
    target[:, 0] = 1  # start
    for row, n in enumerate(lengths):
        target[row, 1 : n + 1] = source[row, :n][::-1]
        target[row, n + 1] = 2  # end
    inputs = {"source": source, "target": target[:, :-1]}
    build = functools.partial(models.translator, "super", VOCABULARY, VOCABULARY, 6, 7, embedding_dim=32, dropout=0.0)
    return trained(build, inputs, target[:, 1:], epochs=25), inputs, source, target
