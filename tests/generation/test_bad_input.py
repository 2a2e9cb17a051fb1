"""Every generation entry point refuses bad input with an error that names the argument."""

import keras
import numpy as np
import pytest

from keras_superattn import generation
from keras_superattn import models

VOCABULARY, LENGTH = 30, 8


@pytest.fixture(scope="module")
def language_model():
    keras.utils.set_random_seed(0)
    return models.language_model("efficient", VOCABULARY, LENGTH, embedding_dim=8, intermediate_dim=8, num_layers=1)


def prompts(*rows):
    ids = np.zeros((len(rows), LENGTH), "int32")
    for index, row in enumerate(rows):
        ids[index, : len(row)] = row
    return ids


# (keyword arguments of generate, error type, message pattern)
BAD_GENERATE = [
    (dict(prompt=prompts([1, 2, -3])), ValueError, r"`prompt` must hold ids in \[0, 30\).*-3"),
    (dict(prompt=prompts([1, 2, 30])), ValueError, r"`prompt` must hold ids in \[0, 30\).*30"),
    (dict(prompt=prompts([1, 2]).astype("float32")), TypeError, r"`prompt` must hold integer token ids.*float32"),
    (dict(prompt=np.ones((2, LENGTH + 1), "int32")), ValueError, r"`prompt` must have shape \(batch, 8\).*\(2, 9\)"),
    (dict(prompt=prompts([0, 4, 5])), ValueError, r"contiguous from position 0.*rows \[0\]"),
    (dict(prompt=prompts([4, 0, 5])), ValueError, r"contiguous from position 0.*rows \[0\]"),
    (dict(prompt=prompts([])), ValueError, r"at least one token"),
    (dict(prompt=prompts([1]), stop_token_ids="3"), TypeError, r"`stop_token_ids` must be None or a sequence"),
    (dict(prompt=prompts([1]), stop_token_ids=[2.5]), TypeError, r"`stop_token_ids` must hold integer"),
    (dict(prompt=prompts([1]), stop_token_ids=[99]), ValueError, r"`stop_token_ids` must hold ids in \[0, 30\)"),
    (dict(prompt=prompts([1]), padding_mask=np.ones((1, 3), bool)), ValueError, r"`padding_mask` must have"),
    (dict(prompt=prompts([1]), sampler="greedy"), TypeError, r"`sampler` must be a Sampler"),
]


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("arguments, error, match", BAD_GENERATE)
def test_keras_generator_refuses(language_model, compiled, arguments, error, match):
    with pytest.raises(error, match=match):
        generation.Generator(language_model, compiled=compiled).generate(**arguments)


def test_a_language_model_takes_no_source(language_model):
    with pytest.raises(ValueError, match=r"`source` must be given exactly for a translator"):
        generation.Generator(language_model).generate(prompts([1]), source=np.ones((1, 4), "int32"))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: generation.decode(lambda x: x, np.ones((2, 4), "float32"), 1), TypeError, r"`ids` must hold integer"),
        (lambda: generation.decode(lambda x: x, np.ones((2, 4), "int32"), 0), ValueError, r"`start` must be an int"),
        (lambda: generation.decode(lambda x: x, np.ones((2, 4), "int32"), 1, stop_id="2"), TypeError, r"`stop_id`"),
        (lambda: generation.GreedySampler()(None, np.ones((1, 4), "int32"), stop_token_ids=3), TypeError,
         r"`stop_token_ids` must be None or a sequence"),
        (lambda: generation.TopKSampler(k=0), ValueError, r"`k` must be an int >= 1"),
        (lambda: generation.TopPSampler(p=0), ValueError, r"`p` must be in \(0, 1\]"),
        (lambda: generation.RandomSampler(temperature=0), ValueError, r"`temperature` must be > 0"),
    ],
)
def test_samplers_and_decode_refuse(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_a_corrupt_tokenizer_file_and_no_text_are_refused(tmp_path):
    pytest.importorskip("sentencepiece")
    from keras_superattn import text

    (tmp_path / "broken.model").write_bytes(b"not a sentencepiece model")
    with pytest.raises(ValueError, match=r"`path`: .*broken.model' is not a SentencePiece model"):
        text.SubwordTokenizer.load(tmp_path / "broken.model", 8)
    with pytest.raises(ValueError, match=r"`path`: cannot read a SentencePiece model"):
        text.SubwordTokenizer.load(tmp_path / "missing.model", 8)
    with pytest.raises(ValueError, match=r"`texts` must hold at least one non-empty text"):
        text.SubwordTokenizer.train(["", "  "], vocabulary_size=20, sequence_length=8)
    with pytest.raises(TypeError, match=r"`texts` must be a sequence of texts, not one text"):
        text.SubwordTokenizer.train("one review", vocabulary_size=20, sequence_length=8)
    with pytest.raises(ValueError, match=r"could not learn vocabulary_size=5000"):
        text.SubwordTokenizer.train(["a tiny corpus", "of two texts"], vocabulary_size=5000, sequence_length=8)


@pytest.mark.slow
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="one conversion, on TensorFlow")
@pytest.mark.parametrize("arguments, error, match", BAD_GENERATE)
def test_tflite_generator_refuses(language_model_file, arguments, error, match):
    with pytest.raises(error, match=match):
        language_model_file.generate(**arguments)


@pytest.fixture(scope="module")
def language_model_file(language_model, tmp_path_factory):
    from keras_superattn import deploy

    path = tmp_path_factory.mktemp("file") / "cached.tflite"
    ids = np.random.default_rng(0).integers(1, VOCABULARY, (8, LENGTH)).astype("int32")
    deploy.convert_generator(language_model, path, representative_data=ids, verbose=False)
    return deploy.TFLiteGenerator(path)
