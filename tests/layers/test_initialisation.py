"""No two randomly initialised weights of a freshly built model are tied.

Keras 3 initializer instances draw their seed when created, so one instance
shared by two weights gives them the same values; these tests look for any
such pair, also when one is a reshape or a slice (e.g. the first rows) of
the other.
"""

import itertools

import keras
import numpy as np
import pytest

from keras_superattn import layers
from keras_superattn import models

ATTENTIONS = list(layers.ATTENTION_LAYERS)


def random_alignment(attention):
    """Super's default W_A, the identity, is not random: check a random one."""
    return {"attention_kwargs": {"alignment_initializer": "glorot_uniform"}} if attention == "super" else {}


def random_weights(model):
    """`{path: values}` of the weights whose values are not all alike."""
    weights = {}
    for weight in model.weights:
        values = keras.ops.convert_to_numpy(weight).ravel()
        if np.unique(values).size > 1:
            weights[weight.path] = values
    return weights


def is_tied(a, b, run=16):
    """Whether the first `run` values of the smaller flat array occur, in order,
    anywhere in the larger one: true where one is the other reshaped or a
    block of its rows, never for two independent random draws (a single value
    may repeat by chance, sixteen in a row do not)."""
    small, large = (a, b) if a.size <= b.size else (b, a)
    head = small[: min(run, small.size)]
    starts = np.flatnonzero(large[: large.size - head.size + 1] == head[0])
    return any(np.array_equal(large[i : i + head.size], head) for i in starts)


def assert_untied(model):
    weights = random_weights(model)
    assert len(weights) >= 4  # the check must have something to compare
    for (name_a, a), (name_b, b) in itertools.combinations(weights.items(), 2):
        assert not is_tied(a, b), f"{name_a} and {name_b} start with the same values"


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_text_classifier_weights_are_independent(attention):
    keras.utils.set_random_seed(0)
    assert_untied(models.text_classifier(attention, 20000, 32, num_layers=2, **random_alignment(attention)))


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_vit_weights_are_independent(attention):
    keras.utils.set_random_seed(0)
    assert_untied(
        models.vit_classifier(
            attention, (28, 28, 1), patch_size=7, num_classes=10, num_layers=2, **random_alignment(attention)
        )
    )


def test_an_initializer_instance_is_never_shared():
    # One instance passed by the user must still give every weight its own draw.
    initializer = keras.initializers.GlorotUniform()
    block = layers.TransformerEncoder(
        16, 2, attention="super", kernel_initializer=initializer, bias_initializer=initializer
    )
    block.build((None, 8, 16))
    embedding = layers.TokenAndPositionEmbedding(100, 8, 16, embeddings_initializer=initializer)
    embedding.build((None, 8))
    model = keras.Sequential([keras.Input((8,), dtype="int32"), embedding, block])
    assert_untied(model)


def test_the_check_finds_a_tied_prefix():
    # Guards the test itself: the old embedding tied its positions to the
    # first rows of the token table, and that must be caught.
    values = np.random.default_rng(0).random((100, 16)).astype("float32").ravel()
    assert is_tied(values[:128], values)
    assert is_tied(values, values[32:160])
    assert is_tied(values.reshape(16, 100).ravel(), values)
    other = np.random.default_rng(1).random((8, 16)).astype("float32").ravel()
    assert not is_tied(other, values)
