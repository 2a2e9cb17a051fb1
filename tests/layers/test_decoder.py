"""TransformerDecoder: its definition, causality, masks, saving and errors."""

import keras
import numpy as np
import pytest

from keras_superattn import layers
from tests import reference
from tests.helpers import VARIANTS
from tests.helpers import B
from tests.helpers import D
from tests.helpers import H
from tests.helpers import L
from tests.helpers import numpy
from tests.helpers import padding_mask

S = L + 2  # encoder length, unlike the decoder's so that no shape mix-up passes


def weights_of(block):
    return {w.path.split("/", 1)[1]: np.asarray(numpy(w), np.float64) for w in block.weights}


@pytest.mark.parametrize("attention", list(layers.ATTENTION_LAYERS))
@pytest.mark.parametrize("normalize_first", [False, True])
def test_decoder_matches_its_definition(rng, attention, normalize_first):
    x = rng.normal(size=(B, L, D)).astype("float32")
    source = rng.normal(size=(B, S, D)).astype("float32")
    source_mask = padding_mask(rng, B, S)
    block = layers.TransformerDecoder(2 * D, H, attention=attention, normalize_first=normalize_first, dropout=0.3)
    out = numpy(block(x, source, encoder_padding_mask=source_mask))
    want = reference.decoder(
        attention, weights_of(block), x, source, num_heads=H, encoder_padding_mask=source_mask,
        normalize_first=normalize_first,
    )
    np.testing.assert_allclose(out, want, atol=1e-5)
    assert not np.allclose(numpy(block(x, source, encoder_padding_mask=source_mask, training=True)), out, atol=1e-3)


@pytest.mark.parametrize("cross_attention", ["standard", "super"])
def test_decoder_cross_attention_is_its_own_choice(rng, cross_attention):
    x, source = rng.normal(size=(B, L, D)), rng.normal(size=(B, S, D))
    block = layers.TransformerDecoder(D, H, attention="efficient", cross_attention=cross_attention)
    out = numpy(block(x, source))
    assert type(block.self_attention_layer) is layers.EfficientAttention
    assert type(block.cross_attention_layer) is layers.VARIANTS[cross_attention]
    want = reference.decoder("efficient", weights_of(block), x, source, num_heads=H,
                             cross_attention_name=cross_attention)
    np.testing.assert_allclose(out, want, atol=1e-5)
    if cross_attention == "super":  # W_A mixes the encoder sequence
        assert tuple(block.cross_attention_layer.alignment.shape) == (S, S)


def test_decoder_only_block_matches_its_definition(rng):
    x = rng.normal(size=(B, L, D)).astype("float32")
    mask = padding_mask(rng, B, L)
    block = layers.TransformerDecoder(2 * D, H, attention="super")
    out = numpy(block(x, decoder_padding_mask=mask))
    assert block.cross_attention_layer is None
    want = reference.decoder("super", weights_of(block), x, num_heads=H, decoder_padding_mask=mask)
    np.testing.assert_allclose(out, want, atol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("with_encoder", [False, True])
def test_no_token_sees_a_later_one(rng, variant, with_encoder):
    """Changing the tokens after position t leaves positions 0..t unchanged:
    neither the softmax nor Super's W_A lets the future in."""
    source = rng.normal(size=(B, S, D)).astype("float32") if with_encoder else None
    block = layers.TransformerDecoder(2 * D, H, attention=variant)
    x = rng.normal(size=(B, L, D)).astype("float32")
    block(x, source)
    # Trained kernels are not what initialisers give; make W_A dense and large.
    for weight in block.weights:
        weight.assign(rng.normal(size=weight.shape).astype("float32"))
    out = numpy(block(x, source))
    for t in range(L - 1):
        changed = x.copy()
        changed[:, t + 1 :] = rng.normal(size=(B, L - t - 1, D)) * 10
        got = numpy(block(changed, source))
        np.testing.assert_allclose(got[:, : t + 1], out[:, : t + 1], atol=1e-5, err_msg=f"position {t}")
        assert not np.allclose(got[:, t + 1], out[:, t + 1], atol=1e-3)


# Parameters of a decoder block with d = 32, 4 heads, FFN 64, on 10 target and
# 12 source tokens: attention (with biases) + FFN 4,192 + 64 per layer norm.
PARAMS = {
    # variant: (decoder-only, with cross-attention)
    "standard": (4224 + 4192 + 128, 2 * 4224 + 4192 + 192),
    "optimized": (3168 + 4192 + 128, 2 * 3168 + 4192 + 192),
    "efficient": (2112 + 4192 + 128, 2 * 2112 + 4192 + 192),
    "super": (2112 + 10**2 + 4192 + 128, 2112 + 10**2 + 2112 + 12**2 + 4192 + 192),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_decoder_parameter_counts(variant):
    alone = layers.TransformerDecoder(64, 4, attention=variant)
    alone.build((None, 10, 32))
    crossing = layers.TransformerDecoder(64, 4, attention=variant)
    crossing.build((None, 10, 32), (None, 12, 32))
    assert (alone.count_params(), crossing.count_params()) == PARAMS[variant]


def test_decoder_takes_the_keras_masks(rng):
    target = np.array([[3, 4, 5, 0, 0, 0, 0, 0]] * B)
    source = np.array([[3, 4, 5, 6, 7, 0, 0, 0, 0, 0]] * B)
    embed = keras.layers.Embedding(10, D, mask_zero=True)
    block = layers.TransformerDecoder(D, H, attention="super")
    got = numpy(block(embed(target), embed(source)))
    want = numpy(block(
        numpy(embed(target)), numpy(embed(source)),
        decoder_padding_mask=target != 0, encoder_padding_mask=source != 0,
    ))
    np.testing.assert_allclose(got, want, atol=1e-6)
    unmasked = numpy(block(numpy(embed(target)), numpy(embed(source))))
    assert not np.allclose(unmasked[:, :3], got[:, :3], atol=1e-4)  # the encoder's padding was hidden


def test_decoder_saves_and_loads_in_a_model(tmp_path, rng):
    target, source = keras.Input((L, D)), keras.Input((S, D))
    output = layers.TransformerDecoder(D, H, attention="super", cross_attention="optimized", name="decoder")(
        target, source
    )
    model = keras.Model([target, source], output)
    inputs = [rng.normal(size=(B, L, D)).astype("float32"), rng.normal(size=(B, S, D)).astype("float32")]
    path = tmp_path / "decoder.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(numpy(loaded(inputs)), numpy(model(inputs)), atol=1e-6)
    assert loaded.get_layer("decoder").get_config() == model.get_layer("decoder").get_config()


def test_decoder_only_block_in_sequential(rng):
    model = keras.Sequential([
        keras.Input((L,), dtype="int32"),
        layers.TokenAndPositionEmbedding(20, L, D),
        layers.TransformerDecoder(D, H, attention="super"),
    ])
    tokens = rng.integers(0, 20, size=(B, L))
    changed = tokens.copy()
    changed[:, 4:] = (tokens[:, 4:] + 1) % 20
    np.testing.assert_allclose(numpy(model(changed))[:, :4], numpy(model(tokens))[:, :4], atol=1e-5)


def test_decoder_under_mixed_precision(rng):
    block = layers.TransformerDecoder(D, H, attention="super", dtype="mixed_float16")
    x, source = rng.normal(size=(B, L, D)), rng.normal(size=(B, S, D))
    out = block(x, source)
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    want = reference.decoder("super", weights_of(block), x, source, num_heads=H)
    np.testing.assert_allclose(numpy(out).astype("float64"), want, atol=0.05)


def test_decoder_errors(rng):
    block = layers.TransformerDecoder(D, H)
    block(rng.normal(size=(B, L, D)))
    with pytest.raises(ValueError, match=r"exactly when it was built with one \(it was built without one\)"):
        block(rng.normal(size=(B, L, D)), rng.normal(size=(B, S, D)))
    crossing = layers.TransformerDecoder(D, H)
    crossing(rng.normal(size=(B, L, D)), rng.normal(size=(B, S, D)))
    with pytest.raises(ValueError, match=r"it was built with one\). Received: encoder_sequence=None"):
        crossing(rng.normal(size=(B, L, D)))
    with pytest.raises(ValueError, match=r"`encoder_sequence` must have the width.*\(2, 10, 8\)"):
        layers.TransformerDecoder(D, H)(rng.normal(size=(B, L, D)), rng.normal(size=(B, S, D // 2)))
    with pytest.raises(ValueError, match=r"`decoder_sequence` must be a multiple of `num_heads`.*num_heads=3"):
        layers.TransformerDecoder(D, 3)(rng.normal(size=(B, L, D)))
    with pytest.raises(ValueError, match=r"`cross_attention` must be one of .*Received: cross_attention='linear'"):
        layers.TransformerDecoder(D, H, cross_attention="linear")
