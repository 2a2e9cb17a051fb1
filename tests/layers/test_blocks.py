"""LayerNormalization, embeddings and TransformerEncoder."""

import keras
import numpy as np
import pytest

from keras_superattn import layers
from tests import reference
from tests.helpers import B
from tests.helpers import D
from tests.helpers import H
from tests.helpers import L
from tests.helpers import numpy


def test_layer_normalization_matches_keras(rng):
    x = (rng.normal(size=(B, L, D)) * 3 + 1).astype("float32")
    ours, theirs = layers.LayerNormalization(epsilon=1e-6), keras.layers.LayerNormalization(epsilon=1e-6)
    ours.build(x.shape)
    theirs.build(x.shape)
    weights = [rng.normal(size=(D,)).astype("float32") for _ in range(2)]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    np.testing.assert_allclose(numpy(ours(x)), numpy(theirs(x)), atol=1e-5)
    assert [w.path.split("/")[-1] for w in ours.weights] == ["gamma", "beta"]


def test_layer_normalization_rejects_bad_epsilon():
    with pytest.raises(ValueError, match=r"`epsilon`.*Received: epsilon=0"):
        layers.LayerNormalization(epsilon=0)


def test_token_and_position_embedding(rng):
    embed = layers.TokenAndPositionEmbedding(50, L, D, mask_zero=True)
    tokens = rng.integers(1, 50, size=(B, L))
    tokens[0, :3] = 0
    out = numpy(embed(tokens))
    table = numpy(embed.token_embedding.embeddings)
    positions = numpy(embed.position_embedding)
    np.testing.assert_allclose(out, table[tokens] + positions[None], atol=1e-6)
    np.testing.assert_array_equal(numpy(embed.compute_mask(tokens)), tokens != 0)
    short = numpy(embed(tokens[:, :5]))
    np.testing.assert_allclose(short, table[tokens[:, :5]] + positions[None, :5], atol=1e-6)
    with pytest.raises(ValueError, match=r"sequence_length=8"):
        layers.TokenAndPositionEmbedding(50, L, D)(np.zeros((B, L + 1), "int32"))


def test_patch_embedding_is_a_linear_map_of_flattened_patches(rng):
    images = rng.random((B, 8, 8, 3)).astype("float32")
    embed = layers.PatchEmbedding(patch_size=4, embedding_dim=D)
    out = numpy(embed(images))
    assert out.shape == (B, 4, D)
    kernel = numpy(embed.projection.kernel).reshape(4 * 4 * 3, D)
    bias = numpy(embed.projection.bias)
    patches = images.reshape(B, 2, 4, 2, 4, 3).transpose(0, 1, 3, 2, 4, 5).reshape(B, 4, 48)
    want = patches @ kernel + bias + numpy(embed.position_embedding)[None]
    np.testing.assert_allclose(out, want, atol=1e-5)
    with pytest.raises(ValueError, match=r"`patch_size` must divide.*patch_size=3"):
        layers.PatchEmbedding(3, D)(images)


@pytest.mark.parametrize("attention", list(layers.ATTENTION_LAYERS))
@pytest.mark.parametrize("normalize_first", [False, True])
def test_encoder_matches_its_definition(rng, attention, normalize_first):
    x = rng.normal(size=(B, L, D)).astype("float32")
    mask = np.arange(L)[None] < np.array([[L], [5]])
    block = layers.TransformerEncoder(2 * D, H, attention=attention, dropout=0.3, normalize_first=normalize_first)
    out = numpy(block(x, padding_mask=mask))
    # The NumPy reference shares no code with the block, only its weights.
    weights = {w.path.split("/", 1)[1]: np.asarray(numpy(w), np.float64) for w in block.weights}
    want = reference.encoder(attention, weights, x, num_heads=H, padding_mask=mask, normalize_first=normalize_first)
    # Keras' MultiHeadAttention fills fully masked (padding) query rows its
    # own way; there only the real tokens' outputs are defined.
    rows = mask if attention == "mha" else np.ones_like(mask)
    np.testing.assert_allclose(out[rows], want[rows], atol=1e-5)
    assert not np.allclose(numpy(block(x, padding_mask=mask, training=True)), out, atol=1e-3)


def test_encoder_takes_the_keras_mask(rng):
    tokens = np.array([[3, 4, 5, 6, 0, 0, 0, 0]] * B)
    embedded = keras.layers.Embedding(10, D, mask_zero=True)(tokens)
    block = layers.TransformerEncoder(D, H, attention="super")
    np.testing.assert_allclose(
        numpy(block(embedded)), numpy(block(numpy(embedded), padding_mask=tokens != 0)), atol=1e-6
    )


def test_encoder_config_round_trip_with_a_class():
    block = layers.TransformerEncoder(32, 4, attention=layers.EfficientAttention, normalize_first=True)
    block.build((None, L, D))
    clone = layers.TransformerEncoder.from_config(block.get_config())
    clone.build((None, L, D))
    assert type(clone.attention_layer) is layers.EfficientAttention
    assert clone.get_config() == block.get_config()


def test_encoder_rejects_unknown_attention():
    with pytest.raises(ValueError, match=r"`attention` must be one of .*Received: attention='linear'"):
        layers.TransformerEncoder(32, 4, attention="linear")
