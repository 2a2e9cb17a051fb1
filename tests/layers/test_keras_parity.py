"""The behaviours of `keras.layers.MultiHeadAttention` and keras-hub's
`TransformerEncoder` / `TokenAndPositionEmbedding` that this package shares.

Each test states one behaviour that Keras' or keras-hub's own tests check
for those classes, written for this package's layers. Behaviours that have
no counterpart here, and why:

- `key_dim`, `value_dim`, `output_shape`: the variants fix the head width to
  `d / num_heads` and the output width to `d` (docs/paper.md).
- `attention_axes` (attention over several axes): the paper's layers attend
  over the sequence axis only; inputs are rank 3.
- `flash_attention`: a backend kernel switch; the core is chosen per backend.
- LoRA (`enable_lora`) and int8/float8 weight quantization of the Dense
  sub-layers (`quantize()`): training-time Keras features outside this
  package's scope; int8 deployment goes through `deploy.convert`.
- keras-hub's `TransformerEncoder` with `kernel_initializer` given as an
  invalid string: Keras' own `initializers.get` raises for it, unchanged.
- keras-hub's `TokenAndPositionEmbedding(tie_weights=...)` / reversible
  embeddings: the classifiers here have no output over the vocabulary.
"""

import keras
import numpy as np
import pytest

from keras_superattn import layers
from keras_superattn import models
from tests.helpers import VARIANTS
from tests.helpers import numpy

# --- MultiHeadAttention: shapes ---------------------------------------------


@pytest.mark.parametrize(
    "shapes, match",
    [
        (((2, 4, 8), (2, 2, 7), (2,)), r"`key` must have rank 3"),
        (((2, 4, 8), (2, 2, 7)), r"`value` must have the same last dimension"),
        (((2, 4, 2, 3, 8),), r"`query` must have rank 3"),
        (((2, 4, 8), (2, 3, 8), (2, 2, 8)), r"same sequence length"),
    ],
)
def test_compute_output_shape_rejects_what_call_rejects(variant, shapes, match):
    layer = VARIANTS[variant](num_heads=2, max_length=8) if variant == "super" else VARIANTS[variant](num_heads=2)
    with pytest.raises(ValueError, match=match):
        layer.compute_output_shape(*shapes)


def test_compute_output_shape_for_cross_attention(variant):
    layer = VARIANTS[variant](num_heads=2, max_length=8) if variant == "super" else VARIANTS[variant](num_heads=2)
    assert layer.compute_output_shape((2, 4, 8), (2, 6, 8)) == (2, 4, 8)


def test_symbolic_call_with_scores_and_cross_lengths(variant):
    query, value = keras.Input((5, 8)), keras.Input((7, 8))
    output, scores = VARIANTS[variant](num_heads=2)(query, value, return_attention_scores=True)
    assert output.shape == (None, 5, 8) and scores.shape == (None, 2, 5, 7)


# --- MultiHeadAttention: masks ----------------------------------------------


@pytest.mark.parametrize("shape", ["(l, s)", "(1, l, s)"])
def test_attention_mask_broadcasts_over_the_batch(variant, rng, shape):
    x = rng.normal(size=(3, 6, 8)).astype("float32")
    allowed = rng.random((6, 6)) > 0.3
    allowed[:, 0] = True
    layer = VARIANTS[variant](num_heads=2)
    want = numpy(layer(x, attention_mask=np.broadcast_to(allowed, (3, 6, 6))))
    mask = allowed if shape == "(l, s)" else allowed[None]
    np.testing.assert_allclose(numpy(layer(x, attention_mask=mask)), want, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 6, 6), (6,), (3, 6, 5)])
def test_attention_mask_that_does_not_broadcast_is_refused(variant, rng, shape):
    x = rng.normal(size=(3, 6, 8)).astype("float32")
    with pytest.raises(ValueError, match=r"`attention_mask` must have shape \(batch, l, s\), \(1, l, s\) or \(l, s\)"):
        VARIANTS[variant](num_heads=2)(x, attention_mask=np.ones(shape, bool))


def test_super_key_mask_alone_keeps_padded_values_out(rng):
    # Cross-attention with only a key mask: the padded value rows must not
    # reach real tokens through W_A (docs/paper.md: key/value padding mask).
    query, value = rng.normal(size=(2, 4, 8)).astype("float32"), rng.normal(size=(2, 6, 8)).astype("float32")
    key_mask = np.arange(6)[None] < np.array([[4], [5]])
    layer = layers.SuperAttention(num_heads=2)
    want = numpy(layer(query, value, key_mask=key_mask))
    noisy = np.where(key_mask[:, :, None], value, 100.0).astype("float32")
    np.testing.assert_allclose(numpy(layer(query, noisy, key=value, key_mask=key_mask)), want, atol=1e-5)


def test_super_dynamic_length_beyond_max_length_names_it():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("only a TensorFlow graph has sequence lengths unknown until run time")
    import tensorflow as tf

    layer = layers.SuperAttention(num_heads=2, max_length=4)
    layer.build((None, None, 8))
    run = tf.function(lambda x: layer(x), input_signature=[tf.TensorSpec((None, None, 8))])
    assert run(tf.zeros((1, 4, 8))).shape == (1, 4, 8)
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_length=4"):
        run(tf.zeros((1, 6, 8)))


# --- MultiHeadAttention: dtype policies ---------------------------------------


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_every_sub_layer_follows_the_dtype_policy(variant, policy):
    layer = VARIANTS[variant](num_heads=2, dropout=0.1, dtype=policy)
    layer.build((None, 4, 8))
    for sub_layer in layer._flatten_layers(include_self=False):
        assert sub_layer.dtype_policy.name == policy, sub_layer.name
    assert all(w.dtype == "float32" for w in layer.weights)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_result_does_not_depend_on_returning_scores(variant, rng, policy):
    x = rng.normal(size=(2, 6, 8)).astype("float32")
    layer = VARIANTS[variant](num_heads=2, dtype=policy)
    plain = numpy(layer(x)).astype("float32")
    with_scores, scores = layer(x, return_attention_scores=True)
    assert keras.backend.standardize_dtype(scores.dtype) == layer.compute_dtype
    np.testing.assert_array_equal(plain, numpy(with_scores).astype("float32"))


# --- MultiHeadAttention: constructor arguments --------------------------------


def test_numpy_integers_are_accepted(variant):
    layer = VARIANTS[variant](num_heads=np.int64(2))
    assert type(layer.num_heads) is int and layer.get_config()["num_heads"] == 2


@pytest.mark.parametrize("dropout", [None, "0.1", -0.1, 1.0])
def test_bad_dropout_is_named(variant, dropout):
    with pytest.raises(ValueError, match=rf"`dropout` must be a float in \[0, 1\). Received: dropout={dropout!r}"):
        VARIANTS[variant](num_heads=2, dropout=dropout)


def test_constraints_reach_every_kernel(variant):
    layer = VARIANTS[variant](num_heads=2, kernel_constraint="non_neg", bias_constraint="non_neg")
    layer.build((None, 4, 8))
    dense = [sub for sub in layer._flatten_layers(include_self=False) if isinstance(sub, keras.layers.Dense)]
    assert dense and all(isinstance(d.kernel.constraint, keras.constraints.NonNeg) for d in dense)
    assert all(isinstance(d.bias.constraint, keras.constraints.NonNeg) for d in dense)


# --- keras-hub TransformerEncoder ---------------------------------------------


@pytest.mark.parametrize("attention", [*VARIANTS, "mha"])
def test_encoder_returns_attention_scores(rng, attention):
    x = rng.normal(size=(2, 5, 8)).astype("float32")
    block = layers.TransformerEncoder(16, 2, attention=attention)
    output, scores = block(x, return_attention_scores=True)
    assert output.shape == (2, 5, 8) and scores.shape == (2, 2, 5, 5)
    np.testing.assert_allclose(numpy(output), numpy(block(x)), atol=1e-6)
    np.testing.assert_allclose(numpy(scores).sum(-1), 1.0, atol=1e-5)
    symbolic, symbolic_scores = block(keras.Input((5, 8)), return_attention_scores=True)
    assert symbolic.shape == (None, 5, 8) and symbolic_scores.shape == (None, 2, 5, 5)


def test_encoder_variable_sequence_length(rng):
    block = layers.TransformerEncoder(16, 2, attention="efficient")
    model = keras.Sequential([keras.Input((None, 8)), block])
    for length in (3, 7):
        assert model(rng.normal(size=(2, length, 8)).astype("float32")).shape == (2, length, 8)


@pytest.mark.parametrize("attention", [*VARIANTS, "mha"])
def test_encoder_in_mixed_precision(rng, attention):
    x = rng.normal(size=(2, 4, 8)).astype("float32")
    block = layers.TransformerEncoder(8, 2, attention=attention, dropout=0.1, dtype="mixed_float16")
    output = block(x, training=True)
    assert keras.backend.standardize_dtype(output.dtype) == "float16"
    assert np.isfinite(numpy(output).astype("float32")).all()
    for sub_layer in block._flatten_layers(include_self=False):
        assert sub_layer.dtype_policy.name == "mixed_float16", sub_layer.name


def test_encoder_mha_needs_a_divisible_width(rng):
    with pytest.raises(ValueError, match=r"multiple of `num_heads`.*num_heads=3"):
        layers.TransformerEncoder(8, 3, attention="mha")(rng.normal(size=(1, 4, 8)).astype("float32"))


class _Unregistered(layers.StandardAttention):
    pass


@keras.saving.register_keras_serializable(package="parity_test")
class _Registered(layers.StandardAttention):
    pass


def test_encoder_with_an_unregistered_class_fails_at_save_not_at_load(tmp_path):
    model = keras.Sequential([keras.Input((4, 8)), layers.TransformerEncoder(8, 2, attention=_Unregistered)])
    with pytest.raises(ValueError, match=r"cannot save `attention=_Unregistered`.*register_keras_serializable"):
        model.save(tmp_path / "m.keras")


@pytest.mark.parametrize("attention", [_Registered, keras.layers.MultiHeadAttention])
def test_encoder_with_a_class_saves_and_loads(tmp_path, rng, attention):
    model = keras.Sequential([keras.Input((4, 8)), layers.TransformerEncoder(8, 2, attention=attention)])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.layers[0].attention_layer) is attention
    x = rng.normal(size=(2, 4, 8)).astype("float32")
    np.testing.assert_allclose(numpy(loaded(x)), numpy(model(x)), atol=1e-6)


def test_encoder_argument_errors():
    with pytest.raises(ValueError, match=r"`dropout` must be a float in \[0, 1\). Received: dropout=None"):
        layers.TransformerEncoder(8, 2, dropout=None)
    with pytest.raises(ValueError, match=r"`intermediate_dim` must be a positive integer"):
        layers.TransformerEncoder(0, 2)
    with pytest.raises(ValueError, match=r"rank 3"):
        layers.TransformerEncoder(8, 2)(np.zeros((2, 8), "float32"))


# --- keras-hub TokenAndPositionEmbedding, and masked pooling ---------------------


def test_embedding_mask_and_shorter_inputs():
    embed = layers.TokenAndPositionEmbedding(10, 6, 4, mask_zero=True)
    tokens = np.array([[3, 4, 0, 0], [1, 0, 0, 0]])
    output = embed(tokens)
    assert output.shape == (2, 4, 4)
    np.testing.assert_array_equal(numpy(embed.compute_mask(tokens)), tokens != 0)


def test_all_padding_review_is_finite_and_trains(rng):
    keras.utils.set_random_seed(0)
    model = models.text_classifier("super", 50, 8, embedding_dim=8, num_heads=2, intermediate_dim=8, mask_zero=True)
    tokens = rng.integers(1, 50, (16, 8)).astype("int32")
    tokens[3] = 0  # an empty review
    assert np.isfinite(numpy(model(tokens))).all()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(tokens, rng.integers(0, 2, 16), batch_size=16, epochs=2, verbose=0)
    assert all(np.isfinite(numpy(w)).all() for w in model.weights)


def test_masked_average_pooling_equals_keras_where_defined(rng):
    x = rng.normal(size=(3, 5, 4)).astype("float32")
    mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], bool)
    ours = numpy(layers.MaskedAveragePooling()(x, mask=mask))
    keras_pooling = numpy(keras.layers.GlobalAveragePooling1D()(x, mask=mask))
    np.testing.assert_allclose(ours[:2], keras_pooling[:2], atol=1e-6)
    assert np.isnan(keras_pooling[2]).all()  # Keras' 0 / 0, the reason for the layer
    np.testing.assert_array_equal(ours[2], 0.0)
    np.testing.assert_allclose(numpy(layers.MaskedAveragePooling()(x)), x.mean(1), atol=1e-6)
