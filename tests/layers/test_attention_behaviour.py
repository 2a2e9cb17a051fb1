"""Causality, padding, lengths, masks, weight layout and input validation."""

import keras
import numpy as np
import pytest
from keras.src.backend.common.masking import get_keras_mask

from keras_superattn import layers
from tests.helpers import VARIANTS
from tests.helpers import B
from tests.helpers import D
from tests.helpers import H
from tests.helpers import L
from tests.helpers import numpy
from tests.helpers import padding_mask


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_causal_mask_hides_the_future(variant, rng, dropout):
    layer = VARIANTS[variant](num_heads=H, dropout=dropout, seed=3)
    x = rng.normal(size=(B, L, D)).astype("float32")
    layer(x)
    for t in range(L - 1):
        changed = x.copy()
        changed[:, t + 1 :] = rng.normal(size=changed[:, t + 1 :].shape)
        outputs = []
        for inputs in (x, changed):
            # The same dropout mask for both calls: restore the seed state.
            state = None if not dropout else numpy(layer.dropout_layer.seed_generator.state)
            outputs.append(numpy(layer(inputs, use_causal_mask=True, training=True)))
            if state is not None:
                layer.dropout_layer.seed_generator.state.assign(state)
        np.testing.assert_allclose(outputs[0][:, : t + 1], outputs[1][:, : t + 1], atol=1e-5)
        assert not np.allclose(outputs[0][:, t + 1 :], outputs[1][:, t + 1 :], atol=1e-3)


def test_super_without_causal_mask_mixes_the_future(rng):
    # The control for the test above: W_A alone does leak later tokens (a
    # random one: the default, the identity, mixes nothing yet).
    layer = layers.SuperAttention(num_heads=H, alignment_initializer="glorot_uniform")
    x = rng.normal(size=(B, L, D)).astype("float32")
    changed = x.copy()
    changed[:, -1] += 1.0
    attention_mask = np.tril(np.ones((B, L, L), bool))  # scores causal, W_A not
    before = numpy(layer(x, attention_mask=attention_mask))
    after = numpy(layer(changed, attention_mask=attention_mask))
    assert not np.allclose(before[:, 0], after[:, 0], atol=1e-4)


def test_padded_content_never_reaches_real_positions(variant, rng):
    layer = VARIANTS[variant](num_heads=H)
    x = rng.normal(size=(B, L, D)).astype("float32")
    mask = padding_mask(rng, B, L)
    changed = np.where(mask[..., None], x, rng.normal(size=x.shape) * 100).astype("float32")
    before = numpy(layer(x, query_mask=mask))
    after = numpy(layer(changed, query_mask=mask))
    np.testing.assert_allclose(before[mask], after[mask], atol=1e-5)


def test_query_without_allowed_keys_weighs_every_key_alike(variant, rng):
    # The convention the docstring states (MultiHeadAttention zeros the row).
    x = rng.normal(size=(B, L, D)).astype("float32")
    allowed = np.ones((B, L, L), bool)
    allowed[:, 2] = False
    layer = VARIANTS[variant](num_heads=H)
    output, weights = layer(x, attention_mask=allowed, return_attention_scores=True)
    np.testing.assert_allclose(numpy(weights)[:, :, 2], np.full((B, H, L), 1 / L), atol=1e-6)
    # Without the weights PyTorch takes its fused kernel: the same row, no NaN.
    np.testing.assert_allclose(numpy(layer(x, attention_mask=allowed)), numpy(output), atol=1e-5)


def test_keras_mask_is_used_and_propagated(variant, rng):
    tokens = rng.integers(1, 50, size=(B, L))
    tokens[0, -3:] = 0
    embed = keras.layers.Embedding(50, D, mask_zero=True)
    layer = VARIANTS[variant](num_heads=H)
    embedded = embed(tokens)
    output = layer(embedded)
    np.testing.assert_array_equal(numpy(get_keras_mask(output)), tokens != 0)
    explicit = layer(numpy(embedded), query_mask=tokens != 0)
    np.testing.assert_allclose(numpy(output), numpy(explicit), atol=1e-6)
    unmasked = layer(numpy(embedded))
    assert not np.allclose(numpy(output)[0, :2], numpy(unmasked)[0, :2], atol=1e-4)


def test_sequential_with_embedding_mask(variant):
    model = keras.Sequential(
        [
            keras.Input((L,), dtype="int32"),
            keras.layers.Embedding(100, D, mask_zero=True),
            VARIANTS[variant](num_heads=H),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    tokens = np.array([[5, 6, 7, 0, 0, 0, 0, 0], [5, 6, 7, 9, 9, 9, 0, 0]])
    changed = tokens.copy()
    changed[1, 3:6] = 0  # row 1 becomes row 0
    out = numpy(model(tokens))
    np.testing.assert_allclose(numpy(model(changed))[1], out[0], atol=1e-6)


def test_super_shorter_sequences_and_too_long(rng):
    layer = layers.SuperAttention(num_heads=H, max_length=L)
    assert layer(rng.normal(size=(B, 5, D)).astype("float32")).shape == (B, 5, D)
    assert tuple(layer.alignment.shape) == (L, L)
    with pytest.raises(ValueError, match=rf"max_length={L}.*length {L + 1}"):
        layer(rng.normal(size=(B, L + 1, D)).astype("float32"))


def test_super_dynamic_length_with_max_length(rng):
    inputs = keras.Input((None, D))
    model = keras.Model(inputs, layers.SuperAttention(num_heads=H, max_length=L)(inputs))
    for length in (3, L):
        x = rng.normal(size=(B, length, D)).astype("float32")
        assert model.predict(x, verbose=0).shape == (B, length, D)


def test_super_takes_max_length_from_static_shape():
    layer = layers.SuperAttention(num_heads=H)
    layer.build((None, 12, D))
    assert layer.max_length == 12
    assert layer.get_config()["max_length"] == 12


@pytest.mark.parametrize(
    "variant_name, weights",
    [
        ("standard", ["query", "key", "value", "attention_output"]),
        ("optimized", ["query", "key", "attention_output"]),
        ("efficient", ["query", "attention_output"]),
        ("super", ["query", "attention_output"]),
    ],
)
def test_weight_paths_and_shapes(variant_name, weights):
    layer = VARIANTS[variant_name](num_heads=H)
    layer.build((None, L, D))
    shapes = {w.path.split("/", 1)[1]: tuple(w.shape) for w in layer.weights}
    want = {f"{name}/kernel": (D, D) for name in weights}
    want.update({f"{name}/bias": (D,) for name in weights})
    if variant_name == "super":
        want["alignment"] = (L, L)
    assert shapes == want


def test_no_bias(variant):
    layer = VARIANTS[variant](num_heads=H, use_bias=False)
    layer.build((None, L, D))
    assert not [w for w in layer.weights if w.path.endswith("bias")]


def test_return_attention_scores_in_functional_model(variant):
    query, value = keras.Input((5, D)), keras.Input((L, D))
    output, weights = VARIANTS[variant](num_heads=H)(query, value, return_attention_scores=True)
    assert output.shape == (None, 5, D)
    assert weights.shape == (None, H, 5, L)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: layers.StandardAttention(num_heads=0), r"`num_heads`.*Received: num_heads=0"),
        (lambda: layers.StandardAttention(num_heads=-2), r"`num_heads`.*Received: num_heads=-2"),
        (lambda: layers.StandardAttention(num_heads=2.0), r"`num_heads`.*Received: num_heads=2.0"),
        (lambda: layers.StandardAttention(num_heads=2, dropout=1.0), r"`dropout`.*Received: dropout=1.0"),
        (lambda: layers.SuperAttention(num_heads=2, max_length=0), r"`max_length`.*Received: max_length=0"),
    ],
)
def test_bad_constructor_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "shapes, match",
    [
        (dict(query=(B, L, 30)), r"multiple of `num_heads`.*query.shape=\(2, 8, 30\), num_heads=4"),
        (dict(query=(B, D)), r"`query` must have rank 3.*Received: query.shape=\(2, 16\)"),
        (dict(query=(B, L, D), value=(B, L, D, 1)), r"`value` must have rank 3"),
        (
            dict(query=(B, L, D), value=(B, L, 8)),
            r"`value` must have the same last dimension as `query` \(16\).*value.shape=\(2, 8, 8\)",
        ),
        (
            dict(query=(B, L, D), value=(B, L, D), key=(B, 5, D)),
            r"same sequence length.*key.shape=\(2, 5, 16\), value.shape=\(2, 8, 16\)",
        ),
    ],
)
def test_bad_input_shapes(variant, shapes, match):
    inputs = {name: np.zeros(shape, "float32") for name, shape in shapes.items()}
    with pytest.raises(ValueError, match=match):
        VARIANTS[variant](num_heads=H)(**inputs)


@pytest.mark.parametrize(
    "mask_name, shape",
    [("query_mask", (B, L + 1)), ("value_mask", (B, 3)), ("key_mask", (B, L, 1)), ("attention_mask", (B, L, 3))],
)
def test_bad_mask_shapes(variant, mask_name, shape):
    x = np.zeros((B, L, D), "float32")
    layer = VARIANTS[variant](num_heads=H)
    received = rf"Received: {mask_name}.shape=\({shape[0]}, {shape[1]}"
    with pytest.raises(ValueError, match=rf"`{mask_name}` must have shape .*{received}"):
        layer(x, x, x, **{mask_name: np.ones(shape, bool)})
    symbolic = keras.Input((L, D))
    with pytest.raises(ValueError, match=rf"`{mask_name}` must have shape"):
        layer(symbolic, symbolic, symbolic, **{mask_name: keras.Input(shape[1:], dtype="bool")})


def test_super_needs_a_length():
    with pytest.raises(ValueError, match=r"`max_length`.*Received: max_length=None"):
        layers.SuperAttention(num_heads=H)(keras.Input((None, D)))
