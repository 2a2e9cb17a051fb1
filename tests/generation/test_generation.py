"""Tokenizer, next-token loss, decoding, perplexity and BLEU."""

import math

import keras
import numpy as np
import pytest

from keras_superattn import generation
from keras_superattn import text
from tests.helpers import numpy

VOCABULARY = 7


def test_token_crossentropy_leaves_padding_out(rng):
    labels = np.array([[3, 1, 0, 0], [2, 5, 6, 0]])
    logits = rng.normal(size=(2, 4, VOCABULARY)).astype("float32")
    log_probabilities = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_probabilities, labels[..., None], -1)[..., 0]
    want = -picked[labels != 0].mean()
    assert float(numpy(generation.token_crossentropy(labels, logits))) == pytest.approx(want, rel=1e-5)
    rows = [tuple(row) for row in labels]

    def predict(ids):  # the logits of the given rows
        return logits[[rows.index(tuple(row)) for row in ids]]

    assert generation.mean_token_loss(predict, labels, labels, batch_size=1) == pytest.approx(want, rel=1e-6)
    assert generation.perplexity(predict, labels, labels) == pytest.approx(math.exp(want), rel=1e-6)
    # The same summed loss (5 real tokens), in bits, over the characters they spell.
    bits = generation.bits_per_character(predict, labels, labels, characters=17, batch_size=1)
    assert bits == pytest.approx(5 * want / (17 * math.log(2)), rel=1e-6)


def counting_model(ids):
    """Logits that favour `previous token + 1` (mod V): a known greedy path."""
    logits = np.zeros((*ids.shape, VOCABULARY))
    rows, columns = np.indices(ids.shape)
    logits[rows, columns, (ids + 1) % VOCABULARY] = 5.0
    return logits


def test_greedy_decoding_follows_the_argmax_and_stops():
    prompt = np.zeros((2, 8), "int32")
    prompt[:, 0] = [1, 3]
    ids = generation.decode(counting_model, prompt, 1)
    np.testing.assert_array_equal(ids[0], [1, 2, 3, 4, 5, 6, 0, 1])
    stopped = generation.decode(counting_model, prompt, 1, stop_id=5)
    np.testing.assert_array_equal(stopped, [[1, 2, 3, 4, 5, 0, 0, 0], [3, 4, 5, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(prompt[:, 1:], 0)  # the prompt array is not modified


def test_decoding_never_shows_the_model_later_tokens():
    seen = []

    def model(ids):
        seen.append(ids.copy())
        return counting_model(ids)

    prompt = np.full((1, 6), 4, "int32")  # junk after the prompt must be cleared
    generation.decode(model, prompt, 2)
    for step, ids in enumerate(seen):
        assert (ids[0, 2 + step :] == 0).all()


def test_sampling_is_seeded_and_follows_the_temperature():
    prompt = np.zeros((64, 4), "int32")
    first = generation.decode(counting_model, prompt, 1, temperature=1.0, seed=3)
    np.testing.assert_array_equal(first, generation.decode(counting_model, prompt, 1, temperature=1.0, seed=3))
    assert len(np.unique(first[:, 1])) > 1  # e^5 vs 6 others: not always the favourite
    cold = generation.decode(counting_model, prompt, 1, temperature=0.05, seed=3)
    np.testing.assert_array_equal(cold, generation.decode(counting_model, prompt, 1))


def test_decode_rejects_a_bad_start():
    with pytest.raises(ValueError, match=r"`start` must be an int in \[1, 4\]. Received: start=0"):
        generation.decode(counting_model, np.zeros((1, 4), "int32"), 0)


def test_corpus_bleu():
    assert generation.corpus_bleu(["el gato come pescado"], ["el gato come pescado"]) == pytest.approx(100.0)
    assert generation.corpus_bleu(["un perro"], ["el gato come pescado"]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match=r"one reference per hypothesis. Received: 1 hypotheses, 2"):
        generation.corpus_bleu(["a"], ["a", "b"])


def test_tokenizer_round_trip(tmp_path):
    texts = ["[start] ¿Dónde está el gato? [end]", "[start] El gato, aquí. [end]", "Un perro."]
    tokenizer = text.Tokenizer.adapt(texts, vocabulary_size=20, sequence_length=8)
    ids = tokenizer(texts)
    assert ids.shape == (3, 8) and ids.dtype == np.int32
    assert tokenizer.decode(ids)[0] == "[start] dónde está el gato [end]"
    assert tokenizer.decode(ids, stop_at=text.END)[1] == "[start] el gato aquí"
    assert tokenizer.decode(tokenizer(["un caballo"]))[0] == "un [UNK]"
    tokenizer.save(tmp_path / "vocabulary.json")
    loaded = text.Tokenizer.load(tmp_path / "vocabulary.json")
    np.testing.assert_array_equal(loaded(texts), ids)
    assert text.standardize_text("¡Hola,   Mundo!") == "hola mundo"
    with pytest.raises(ValueError, match=r"`vocabulary` must start with \['', '\[UNK\]'\]"):
        text.Tokenizer(["gato", "perro"], 8)
    with pytest.raises(ValueError, match=r"Token 'caballo' is not in the vocabulary"):
        tokenizer.token_id("caballo")


def test_token_crossentropy_trains_a_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,), dtype="int32"), keras.layers.Embedding(VOCABULARY, 8),
                              keras.layers.Dense(VOCABULARY)])
    ids = np.tile(np.arange(1, 5), (32, 1))
    model.compile(keras.optimizers.Adam(0.05), generation.token_crossentropy)
    history = model.fit(ids, (ids + 1) % VOCABULARY, epochs=30, verbose=0)
    assert history.history["loss"][-1] < 0.1 * history.history["loss"][0]


def test_top_k_and_top_p_keep_only_the_likely_tokens():
    probabilities = np.array([[0.5, 0.3, 0.15, 0.05]] * 400)
    logits = np.log(probabilities)

    def constant(prompt, cache, index):
        return logits[: len(prompt)], None, cache

    prompt = np.zeros((400, 2), "int32")
    top_2 = generation.TopKSampler(2, seed=0)(constant, prompt)[:, 1]
    assert set(top_2) == {0, 1} and abs(np.mean(top_2 == 0) - 0.5 / 0.8) < 0.06
    nucleus = generation.TopPSampler(0.7, seed=0)(constant, prompt)[:, 1]  # 0.5 + 0.3 cross 0.7
    assert set(nucleus) == {0, 1}
    assert set(generation.TopPSampler(0.5, seed=0)(constant, prompt)[:, 1]) == {0}
    everything = generation.RandomSampler(seed=0)(constant, prompt)[:, 1]
    assert set(everything) == {0, 1, 2, 3}
    hot = generation.RandomSampler(temperature=100.0, seed=0)(constant, prompt)[:, 1]
    assert np.mean(hot == 3) > 0.15  # near uniform


def test_sampler_keeps_each_prompt_and_fills_the_rest():
    prompt = np.array([[1, 0, 0, 0, 0, 0], [1, 3, 4, 0, 0, 0]], "int32")
    ids = generation.GreedySampler()(generation.full_sequence_next(counting_model), prompt, mask=prompt != 0)
    np.testing.assert_array_equal(ids, [[1, 2, 3, 4, 5, 6], [1, 3, 4, 5, 6, 0]])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: generation.TopKSampler(0), r"`k` must be an int >= 1. Received: k=0"),
        (lambda: generation.TopPSampler(1.5), r"`p` must be in \(0, 1\]. Received: p=1.5"),
        (lambda: generation.RandomSampler(temperature=0), r"`temperature` must be > 0. Received: temperature=0"),
    ],
)
def test_sampler_arguments_are_checked(make, message):
    with pytest.raises(ValueError, match=message):
        make()
