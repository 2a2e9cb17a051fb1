"""Every variant against the NumPy reference of the spec."""

import keras
import numpy as np
import pytest

from keras_superattn.layers.export_mode import exporting
from tests import reference
from tests.helpers import VARIANTS
from tests.helpers import padding_mask

B, L, D, H = 3, 8, 16, 4
ATOL = 2e-5


def make_layer(variant, **kwargs):
    # Random biases and, for Super, a random W_A (its default, the identity,
    # mixes nothing), so a missing or misplaced term shows up in the numbers.
    if variant == "super":
        kwargs.setdefault("alignment_initializer", "glorot_uniform")
    return VARIANTS[variant](num_heads=H, bias_initializer="random_normal", **kwargs)


def check(variant, layer, query, value=None, key=None, causal=False, **masks):
    output, weights = layer(
        query, value, key, use_causal_mask=causal, return_attention_scores=True, **masks
    )
    fast = layer(query, value, key, use_causal_mask=causal, **masks)  # dot_product_attention path
    want, want_weights = reference.attention(
        variant, reference.weights_by_path(layer), query, value, key,
        num_heads=H, causal=causal, **masks,
    )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(output), want, atol=ATOL)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fast), want, atol=ATOL)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(weights), want_weights, atol=ATOL)


def test_self_attention(variant, rng):
    x = rng.normal(size=(B, L, D)).astype("float32")
    check(variant, make_layer(variant), x)


def test_padding_masks(variant, rng):
    x = rng.normal(size=(B, L, D)).astype("float32")
    mask = padding_mask(rng, B, L)
    check(variant, make_layer(variant), x, query_mask=mask, value_mask=mask)


def test_explicit_attention_mask(variant, rng):
    x = rng.normal(size=(B, L, D)).astype("float32")
    allowed = rng.random((B, L, L)) < 0.7
    allowed[..., 0] = True  # every query keeps one key
    check(variant, make_layer(variant), x, attention_mask=allowed)


def test_causal(variant, rng):
    x = rng.normal(size=(B, L, D)).astype("float32")
    check(variant, make_layer(variant), x, causal=True)


def test_causal_with_padding(variant, rng):
    x = rng.normal(size=(B, L, D)).astype("float32")
    mask = padding_mask(rng, B, L)
    check(variant, make_layer(variant), x, causal=True, query_mask=mask, value_mask=mask)


def test_cross_attention(variant, rng):
    query = rng.normal(size=(B, 5, D)).astype("float32")
    value = rng.normal(size=(B, L, D)).astype("float32")
    key = rng.normal(size=(B, L, D)).astype("float32")
    value_mask = padding_mask(rng, B, L)
    check(variant, make_layer(variant), query, value, key, value_mask=value_mask)


def test_super_shorter_sequence_uses_top_left_block(rng):
    layer = make_layer("super", max_length=L)
    layer(rng.normal(size=(B, L, D)).astype("float32"))  # builds W_A (L, L)
    short = rng.normal(size=(B, 5, D)).astype("float32")
    check("super", layer, short)
    check("super", layer, short, causal=True)


def test_attention_weights_are_distributions(variant, rng):
    x = rng.normal(size=(B, L, D)).astype("float32")
    _, weights = make_layer(variant)(x, return_attention_scores=True)
    weights = keras.ops.convert_to_numpy(weights)
    assert weights.shape == (B, H, L, L)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("rate", [0.0, 0.5])
def test_dropout_only_in_training(variant, rng, rate):
    x = rng.normal(size=(B, L, D)).astype("float32")
    layer = make_layer(variant, dropout=rate, seed=7)
    inference = keras.ops.convert_to_numpy(layer(x, training=False))
    trained = keras.ops.convert_to_numpy(layer(x, training=True))
    want, _ = reference.attention(variant, reference.weights_by_path(layer), x, num_heads=H)
    np.testing.assert_allclose(inference, want, atol=ATOL)
    assert np.allclose(trained, want, atol=ATOL) == (rate == 0.0)


@pytest.mark.parametrize("causal", [False, True])
def test_export_forms_compute_the_same(variant, rng, causal):
    # A TFLite file gets Super's W_A X as X^T W_A^T (a FULLY_CONNECTED), Keras
    # the broadcast matmul; and masked keys a fill below the row's highest
    # allowed score rather than its lowest score. Both must be the reference's
    # numbers.
    x = rng.normal(size=(B, L, D)).astype("float32")
    mask = padding_mask(rng, B, L)
    with exporting():
        check(variant, make_layer(variant), x, causal=causal, query_mask=mask, value_mask=mask)


def test_attention_dropout_is_the_same_in_every_core(variant, rng):
    # JAX's core divides by the softmax sum after the weighted sum; asking for
    # the weights takes the plain softmax. Seeded alike, dropout must drop the
    # same weights in both.
    x = rng.normal(size=(B, L, D)).astype("float32")
    plain, with_weights = (make_layer(variant, dropout=0.5, seed=3) for _ in range(2))
    for layer in (plain, with_weights):
        layer.build((B, L, D))
    with_weights.set_weights(plain.get_weights())
    want = keras.ops.convert_to_numpy(plain(x, training=True))
    got, _ = with_weights(x, training=True, return_attention_scores=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got), want, atol=ATOL)
    assert np.abs(want - keras.ops.convert_to_numpy(plain(x))).mean() > 0.01  # dropout did act
