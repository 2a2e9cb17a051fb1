"""Cached decoding: the attention caches, the decoder's, and `Generator`,
against the full-sequence computation they replace."""

import keras
import numpy as np
import pytest

from keras_superattn import generation
from keras_superattn import layers
from keras_superattn import models
from tests.helpers import B
from tests.helpers import D
from tests.helpers import H
from tests.helpers import L
from tests.helpers import numpy
from tests.helpers import padding_mask

# Super's default (identity) would make its W_A mixing trivial here.
MIXING = {"super": {"alignment_initializer": "glorot_uniform"}}
# Tensors of width d that each variant caches per token: its maths' minimum.
CACHE_STREAMS = {"standard": 2, "optimized": 2, "efficient": 1, "super": 2}


def attention(variant):
    return layers.VARIANTS[variant](num_heads=H, **MIXING.get(variant, {}))


def test_each_variant_caches_only_what_it_needs(variant):
    layer = attention(variant)
    layer.build((B, L, D))
    assert layer.cache_streams == CACHE_STREAMS[variant]
    assert tuple(layer.empty_cache(B, L).shape) == (B, CACHE_STREAMS[variant], L, D)


def test_cached_self_attention_equals_the_causal_layer(rng, variant):
    x = rng.normal(size=(B, L, D)).astype("float32")
    layer = attention(variant)
    want = numpy(layer(x, use_causal_mask=True))
    # A prefill of 3 tokens, then one token per step.
    out, cache = layer(x[:, :3], cache=layer.empty_cache(B, L), cache_update_index=0, use_causal_mask=True)
    steps = [numpy(out)]
    for index in range(3, L):
        out, cache = layer(x[:, index : index + 1], cache=cache, cache_update_index=index, use_causal_mask=True)
        steps.append(numpy(out))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), want, atol=1e-5)


def test_cross_attention_cache_is_filled_once(rng, variant):
    x = rng.normal(size=(B, L, D)).astype("float32")
    source = rng.normal(size=(B, L + 2, D)).astype("float32")
    source_mask = padding_mask(rng, B, L + 2)
    layer = attention(variant)
    want = numpy(layer(x, source, value_mask=source_mask))
    _, cache = layer(x[:, :1], source, value_mask=source_mask, cache=layer.empty_cache(B, L + 2), cache_update_index=0)
    out, unchanged = layer(x, value_mask=source_mask, cache=cache)
    np.testing.assert_allclose(numpy(out), want, atol=1e-5)
    np.testing.assert_array_equal(numpy(unchanged), numpy(cache))


@pytest.mark.parametrize("with_encoder", [False, True])
def test_cached_decoder_block_equals_the_block(rng, variant, with_encoder):
    x = rng.normal(size=(B, L, D)).astype("float32")
    source = rng.normal(size=(B, L + 2, D)).astype("float32") if with_encoder else None
    source_mask = padding_mask(rng, B, L + 2) if with_encoder else None
    block = layers.TransformerDecoder(2 * D, H, attention=variant, attention_kwargs=MIXING.get(variant))
    want = numpy(block(x, source, encoder_padding_mask=source_mask))
    caches = dict(
        self_attention_cache=block.self_attention_layer.empty_cache(B, L), self_attention_cache_update_index=0
    )
    if with_encoder:
        caches.update(cross_attention_cache=block.cross_attention_layer.empty_cache(B, L + 2),
                      cross_attention_cache_update_index=0)
    out, *caches_out = block(x[:, :2], source, encoder_padding_mask=source_mask, **caches)
    assert len(caches_out) == (2 if with_encoder else 1)  # keras-hub's return convention
    steps = [numpy(out)]
    for index in range(2, L):
        caches = dict(self_attention_cache=caches_out[0], self_attention_cache_update_index=index)
        if with_encoder:
            caches.update(cross_attention_cache=caches_out[1])  # reused: no encoder sequence needed
        out, *caches_out = block(x[:, index : index + 1], encoder_padding_mask=source_mask, **caches)
        steps.append(numpy(out))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), want, atol=1e-5)


def prompts(length, rows):
    """Right-padded prompts of different lengths (1 to 4 tokens)."""
    ids = np.zeros((len(rows), length), "int32")
    for row, tokens in enumerate(rows):
        ids[row, : len(tokens)] = tokens
    return ids


def recorded(next_function, record):
    """`next_function`, keeping each step's logits in `record[index]`."""

    def next(prompt, cache, index):
        logits, hidden_states, cache = next_function(prompt, cache, index)
        record[index] = numpy(logits)
        return logits, hidden_states, cache

    return next


def check_cached_equals_full(model, prompt, predict, source=None):
    generator = generation.Generator(model)
    mask = prompt != 0
    cached_logits, full_logits = {}, {}
    cached = generation.GreedySampler()(
        recorded(generator.next, cached_logits), prompt, generator.build_cache(prompt, source)[2],
        int(mask.sum(1).min()), mask=mask,
    )
    full = generation.GreedySampler()(
        recorded(generation.full_sequence_next(predict), full_logits), prompt, None, int(mask.sum(1).min()), mask=mask
    )
    np.testing.assert_array_equal(cached, full)
    np.testing.assert_array_equal(cached[mask], prompt[mask])
    assert set(cached_logits) == set(full_logits) and len(cached_logits) >= 5
    for index, logits in full_logits.items():
        np.testing.assert_allclose(cached_logits[index], logits, atol=2e-4)
    np.testing.assert_array_equal(generator.generate(prompt, source=source), cached)


def test_cached_language_model_generates_what_the_full_model_does(variant):
    keras.utils.set_random_seed(3)
    model = models.language_model(
        variant, 40, 10, embedding_dim=D, num_heads=H, intermediate_dim=D, attention_kwargs=MIXING.get(variant)
    )
    prompt = prompts(10, [[5, 6], [7, 8, 9, 10], [3], [11, 12, 13]])
    check_cached_equals_full(model, prompt, lambda ids: model(ids))


def test_cached_translator_generates_what_the_full_model_does(variant):
    keras.utils.set_random_seed(4)
    model = models.translator(
        variant, 30, 40, 7, 9, embedding_dim=D, num_heads=H, intermediate_dim=D, attention_kwargs=MIXING.get(variant)
    )
    source = prompts(7, [[4, 5, 6], [7, 8, 9, 10, 11, 12, 13], [3], [20, 21]])
    prompt = prompts(9, [[2], [2, 14], [2], [2, 15, 16]])
    check_cached_equals_full(model, prompt, lambda ids: model({"source": source, "target": ids}), source)


def test_generation_stops_and_samples_reproducibly():
    keras.utils.set_random_seed(5)
    model = models.language_model("efficient", 12, 12, embedding_dim=D, num_heads=H, intermediate_dim=D)
    generator = generation.Generator(model)
    prompt = prompts(12, [[1, 2], [3], [4, 5, 6]])
    sampler = generation.TopPSampler(0.9, temperature=2.0, seed=7)
    first = generator.generate(prompt, sampler=sampler)
    np.testing.assert_array_equal(first, generator.generate(prompt, sampler=sampler))
    assert len(np.unique(first[:, 4:])) > 3  # hot sampling spreads over the vocabulary
    greedy = generator.generate(prompt)
    stop = int(greedy[0, 2])
    stopped = generator.generate(prompt, stop_token_ids=[stop])
    assert stopped[0, 2] == stop and (stopped[0, 3:] == 0).all()


def test_generator_errors():
    model = models.language_model("standard", 20, 8, embedding_dim=D, num_heads=H, intermediate_dim=D)
    generator = generation.Generator(model)
    with pytest.raises(ValueError, match=r"`prompt` must have shape \(batch, 8\).*Received: prompt.shape=\(2, 5\)"):
        generator.generate(np.ones((2, 5), "int32"))
    with pytest.raises(ValueError, match="needs at least one token"):
        generator.generate(np.zeros((2, 8), "int32"))
    with pytest.raises(ValueError, match="`source` must be given exactly for a translator.*language model"):
        generator.build_cache(np.ones((2, 8), "int32"), source=np.ones((2, 4), "int32"))
    classifier = models.text_classifier("standard", 20, 8)
    with pytest.raises(ValueError, match="`model` must be a model of `models.language_model`"):
        generation.Generator(classifier)
    mha = models.language_model("mha", 20, 8, embedding_dim=D, num_heads=H, intermediate_dim=D)
    with pytest.raises(ValueError, match="take a `cache`.*MultiHeadAttention in decoder_0"):
        generation.Generator(mha)
    block = mha.get_layer("decoder_0")
    with pytest.raises(ValueError, match="take a `cache`.*MultiHeadAttention as `attention`"):
        block(np.zeros((1, 8, D)), self_attention_cache=np.zeros((1, 2, 8, D)), self_attention_cache_update_index=0)


def test_attention_cache_errors(rng):
    layer = layers.EfficientAttention(num_heads=H)
    x = rng.normal(size=(B, 2, D)).astype("float32")
    layer(x)
    with pytest.raises(ValueError, match=r"`cache` of EfficientAttention must have shape .*\(None, 1, None, 16\).*"
                                         r"Received: cache.shape=\(2, 2, 8, 16\)"):
        layer(x, cache=np.zeros((B, 2, L, D), "float32"), cache_update_index=0)
    with pytest.raises(ValueError, match="`key` must be None"):
        layer(x, x, x, cache=layer.empty_cache(B, L), cache_update_index=0)
    with pytest.raises(ValueError, match="`return_attention_scores=True` is not supported with a `cache`"):
        layer(x, cache=layer.empty_cache(B, L), cache_update_index=0, return_attention_scores=True)
    block = layers.TransformerDecoder(D, H)
    with pytest.raises(ValueError, match="`self_attention_cache_update_index` must be given"):
        block(np.zeros((B, L, D), "float32"), self_attention_cache=np.zeros((B, 2, L, D), "float32"))


@pytest.mark.parametrize("variant", ["standard", "super"])
def test_cached_generation_under_mixed_precision_and_after_saving(tmp_path, variant):
    keras.config.set_dtype_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(6)
        model = models.language_model(
            variant, 40, 10, embedding_dim=D, num_heads=H, intermediate_dim=D, attention_kwargs=MIXING.get(variant)
        )
    finally:
        keras.config.set_dtype_policy("float32")
    prompt = prompts(10, [[5, 6], [7, 8, 9, 10], [3]])
    cached = generation.Generator(model).generate(prompt)
    full = generation.GreedySampler()(
        generation.full_sequence_next(lambda ids: model(ids)), prompt, index=1, mask=prompt != 0
    )
    np.testing.assert_array_equal(cached, full)
    model.save(tmp_path / "model.keras")
    loaded = generation.Generator(keras.saving.load_model(tmp_path / "model.keras"))
    np.testing.assert_array_equal(loaded.generate(prompt), cached)
