"""The identities of docs/paper.md, and the match with keras MultiHeadAttention."""

import keras
import numpy as np
import pytest

from keras_superattn import layers
from tests.helpers import B
from tests.helpers import D
from tests.helpers import H
from tests.helpers import L
from tests.helpers import numpy
from tests.helpers import padding_mask

ATOL = 2e-5


def built(layer_class, x, **kwargs):
    layer = layer_class(num_heads=H, bias_initializer="random_normal", **kwargs)
    layer(x)
    return layer


def copy_shared_weights(source, target, overrides=()):
    """Copies the weights `target` has from `source`; `overrides` lists paths to skip."""
    by_path = {w.path.split("/", 1)[1]: w for w in source.weights}
    for w in target.weights:
        path = w.path.split("/", 1)[1]
        if path not in overrides:
            w.assign(by_path[path])


@pytest.mark.parametrize("causal", [False, True])
def test_standard_equals_multi_head_attention(rng, causal):
    x = rng.normal(size=(B, L, D)).astype("float32")
    mask = padding_mask(rng, B, L)
    ours = built(layers.StandardAttention, x)
    mha = keras.layers.MultiHeadAttention(num_heads=H, key_dim=D // H)
    mha(x, x)
    head_dim = D // H
    ours_by_path = {w.path.split("/", 1)[1]: numpy(w) for w in ours.weights}
    for w in mha.weights:
        path = w.path.split("/", 1)[1]
        w.assign(ours_by_path[path].reshape(w.shape))
    assert mha.weights[0].shape == (D, H, head_dim)  # (d, h, d_k): heads own column blocks

    kwargs = dict(use_causal_mask=causal, return_attention_scores=True)
    got, got_weights = ours(x, x, query_mask=mask, value_mask=mask, **kwargs)
    want, want_weights = mha(x, x, query_mask=mask, value_mask=mask, **kwargs)
    real = mask  # MHA fills fully masked rows differently; compare real queries
    np.testing.assert_allclose(numpy(got)[real], numpy(want)[real], atol=ATOL)
    np.testing.assert_allclose(
        numpy(got_weights).transpose(0, 2, 1, 3)[real],
        numpy(want_weights).transpose(0, 2, 1, 3)[real],
        atol=ATOL,
    )


@pytest.mark.parametrize(
    "larger, projection, smaller",
    [
        (layers.StandardAttention, "value_dense", layers.OptimizedAttention),  # Wv = I
        (layers.OptimizedAttention, "key_dense", layers.EfficientAttention),  # Wk = I
    ],
)
def test_an_identity_projection_is_the_smaller_variant(rng, larger, projection, smaller):
    x = rng.normal(size=(B, L, D)).astype("float32")
    source = built(larger, x)
    getattr(source, projection).kernel.assign(np.eye(D))
    getattr(source, projection).bias.assign(np.zeros(D))
    target = built(smaller, x)
    copy_shared_weights(source, target)
    np.testing.assert_allclose(numpy(target(x)), numpy(source(x)), atol=ATOL)


@pytest.mark.parametrize("causal", [False, True])
def test_super_equals_efficient_with_identity_alignment(rng, causal):
    x = rng.normal(size=(B, L, D)).astype("float32")
    mask = padding_mask(rng, B, L)
    efficient = built(layers.EfficientAttention, x)
    sup = built(layers.SuperAttention, x, alignment_initializer="identity")
    np.testing.assert_array_equal(numpy(sup.alignment), np.eye(L))
    copy_shared_weights(efficient, sup, overrides=("alignment",))
    got = numpy(sup(x, query_mask=mask, use_causal_mask=causal))
    want = numpy(efficient(x, query_mask=mask, use_causal_mask=causal))
    np.testing.assert_allclose(got[mask], want[mask], atol=ATOL)
