"""Generative models as one int8 file with `prefill` and `decode` signatures."""

import functools

import keras
import numpy as np
import pytest

from keras_superattn import deploy
from keras_superattn import generation
from keras_superattn import layers
from keras_superattn import models
from tests.helpers import CONVERTED_HERE
from tests.helpers import VOCABULARY
from tests.helpers import counting_sequences
from tests.helpers import trained

pytestmark = pytest.mark.slow  # trains, converts or spawns processes

LENGTH = 12
MIXING = {"super": {"alignment_initializer": "glorot_uniform"}}


@pytest.fixture(scope="module")
def language_models(tmp_path_factory):
    """Per variant: a briefly trained two-block language model, its prompts,
    and its full-sequence int8 file and cached int8 and float32 files."""
    rng = np.random.default_rng(0)
    sequences = counting_sequences(rng, 512, LENGTH)
    inputs, labels = sequences[:, :-1], sequences[:, 1:]
    prompts = np.where(np.arange(LENGTH) < 3, inputs[300:364], 0)
    prompts[::2, 1:3] = 0  # prompts of one and of three tokens in one batch
    files = {}
    for variant in CONVERTED_HERE:
        build = functools.partial(
            models.language_model, variant, VOCABULARY, LENGTH, embedding_dim=32, num_layers=2,
            attention_kwargs=MIXING.get(variant),
        )
        model = trained(build, inputs, labels)
        folder = tmp_path_factory.mktemp(variant)
        calibration = dict(
            representative_data=inputs[:200], num_calibration_samples=200, validation_data=inputs[300:364],
            verbose=False,
        )
        full = deploy.convert(model, folder / "full.tflite", representative_data=inputs[:200], verbose=False)
        int8 = deploy.convert_generator(model, folder / "cached_int8.tflite", **calibration)
        float32 = deploy.convert_generator(model, folder / "cached_float32.tflite", quantization="float32",
                                           **calibration)
        files[variant] = model, prompts, full, int8, float32
    return files


@pytest.mark.parametrize("variant", CONVERTED_HERE)
def test_cached_files_generate_what_keras_does(language_models, variant):
    model, prompts, full, int8, float32 = language_models[variant]
    want = generation.Generator(model).generate(prompts)
    float_ids, _ = deploy.TFLiteGenerator(float32.path).generate(prompts)
    assert generation.sequence_agreement(float_ids, want) == 1.0
    int8_ids, seconds = deploy.TFLiteGenerator(int8.path).generate(prompts)
    mask = prompts != 0
    full_ids = generation.GreedySampler()(
        generation.full_sequence_next(deploy.TFLiteModel(full.path).predict), prompts, index=1, mask=mask
    )
    # The cached int8 file follows Keras as closely as the full-sequence one.
    assert generation.sequence_agreement(int8_ids, want) >= generation.sequence_agreement(full_ids, want) - 0.05
    assert generation.sequence_agreement(int8_ids, want) >= 0.9 and seconds > 0
    assert int8.greedy_agreement >= 0.9 and int8.num_checked == 64
    assert (want[:, :3][mask[:, :3]] == prompts[:, :3][mask[:, :3]]).all()


@pytest.mark.parametrize("variant", CONVERTED_HERE)
def test_int8_cache_is_full_integer_with_one_scale_per_tensor(language_models, variant):
    _, _, _, int8, _ = language_models[variant]
    with open(int8.path, "rb") as f:
        deploy.check_full_integer(f.read())  # every signature
    generator = deploy.TFLiteGenerator(int8.path)
    prefill_outputs = generator.prefill.get_output_details()
    decode_inputs, decode_outputs = generator.decode.get_input_details(), generator.decode.get_output_details()
    names = [name for name in decode_inputs if name.startswith("cache_")]
    assert len(names) == 2 * (1 if variant == "efficient" else 2)  # two blocks; Efficient caches keys only
    for name in names:
        entries = decode_outputs[name.replace("cache", "entries", 1)]
        assert decode_inputs[name]["dtype"] == np.int8
        assert decode_inputs[name]["quantization"] == prefill_outputs[name]["quantization"] == entries["quantization"]
    width = 32
    assert int8.cache_bytes_per_token == len(names) * width  # int8: one byte per number


def test_efficient_caches_half_of_standard(language_models):
    if "standard" not in language_models:
        pytest.skip("Standard and Efficient convert on TensorFlow")
    bytes_per_token = {variant: files[3].cache_bytes_per_token for variant, files in language_models.items()}
    assert bytes_per_token["efficient"] * 2 == bytes_per_token["standard"]
    assert language_models["standard"][4].cache_bytes_per_token == 4 * bytes_per_token["standard"]  # float32


@pytest.fixture(scope="module")
def cached_translator(reversing_translator, tmp_path_factory):
    """The reversing translator's cached int8 file, calibrated on the same 200
    pairs as its full-sequence file (`translator_file`)."""
    model, inputs, _, _ = reversing_translator
    return deploy.convert_generator(
        model, tmp_path_factory.mktemp("translator") / "cached_int8.tflite",
        representative_data={name: x[:200] for name, x in inputs.items()}, num_calibration_samples=200,
        verbose=False,
    )


def test_cached_int8_translator_translates_as_keras(cached_translator, translator_file):
    model, full_path, _, source, target = translator_file
    prompt = np.zeros((len(source), 7), "int32")
    prompt[:, 0] = 1
    want = generation.Generator(model).generate(prompt, source=source, stop_token_ids=[2])
    # `generate_greedy` runs either kind of file, each as it is meant to run.
    got, _ = deploy.generate_greedy(cached_translator.path, prompt, 1, stop_id=2, source=source)
    full, _ = deploy.generate_greedy(full_path, prompt, 1, stop_id=2, source=source)
    # The cached int8 file follows Keras as closely as the full-sequence one
    # (issue 18). Measured on an AVX2-only machine, cached against full:
    # TensorFlow 0.97 / 0.97, JAX 1.00 / 1.00, PyTorch 0.97 / 0.99; PyTorch
    # gave 0.89 before the decoding step was calibrated at position 0, where
    # every translation's first step runs (`cached._calibration_samples`).
    assert generation.sequence_agreement(got, want) >= generation.sequence_agreement(full, want) - 0.05
    assert generation.sequence_agreement(got, want) >= 0.9
    assert generation.sequence_agreement(want, target[:, :-1]) >= 0.8  # it learned the task: the check means something
    decode_inputs = deploy.TFLiteGenerator(cached_translator.path).decode.get_input_details()
    assert {"source", "cross_k_0", "cross_v_0"} <= set(decode_inputs)


def test_cached_conversion_errors(language_models, tmp_path):
    variant = CONVERTED_HERE[0]
    model, _, full, _, _ = language_models[variant]
    with pytest.raises(ValueError, match=r"`quantization` must be one of \('int8', 'float32'\). Received: "
                                         r"quantization='int16x8'"):
        deploy.convert_generator(model, tmp_path / "x.tflite", quantization="int16x8")
    with pytest.raises(ValueError, match=r"needs the signatures \['prefill', 'decode'\]"):
        deploy.TFLiteGenerator(full.path)


class QueryOnlyAttention(layers.BaseAttention):
    """A fifth variant, as a user adds one: only queries and output are
    projected, and the cache keeps the one stream that serves as keys and values."""

    projects_key = False
    projects_value = False
    cache_streams = 1


@pytest.fixture(scope="module")
def fifth_variant():
    rng = np.random.default_rng(1)
    sequences = counting_sequences(rng, 256, LENGTH)
    inputs, labels = sequences[:, :-1], sequences[:, 1:]
    build = functools.partial(
        models.language_model, QueryOnlyAttention, VOCABULARY, LENGTH, embedding_dim=32, num_layers=1
    )
    prompts = np.where(np.arange(LENGTH) < 3, inputs[200:232], 0)
    return trained(build, inputs, labels), inputs, prompts


def test_a_fifth_variant_generates_with_its_cache_as_without(fifth_variant):
    model, _, prompts = fifth_variant
    cached = generation.Generator(model).generate(prompts)
    uncached = generation.decode(lambda ids: keras.ops.convert_to_numpy(model(ids)), prompts, start=3)
    np.testing.assert_array_equal(cached, uncached)
    assert model.get_layer("decoder_0").self_attention_layer.empty_cache(1, LENGTH).shape == (1, 1, LENGTH, 32)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="the TensorFlow process cannot import a class defined in a test"
)
def test_a_fifth_variant_converts_to_cached_files(fifth_variant, tmp_path):
    model, inputs, prompts = fifth_variant
    want = generation.Generator(model).generate(prompts)
    float32 = deploy.convert_generator(
        model, tmp_path / "float32.tflite", quantization="float32", validation_data=inputs[200:232], verbose=False
    )
    int8 = deploy.convert_generator(model, tmp_path / "int8.tflite", representative_data=inputs[:64], verbose=False)
    assert float32.greedy_agreement == 1.0
    np.testing.assert_array_equal(deploy.TFLiteGenerator(float32.path).generate(prompts)[0], want)
    assert generation.sequence_agreement(deploy.TFLiteGenerator(int8.path).generate(prompts)[0], want) >= 0.9
    assert (float32.cache_bytes_per_token, int8.cache_bytes_per_token) == (32 * 4, 32)
