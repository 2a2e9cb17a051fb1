"""Quantization-aware training: the fake-quantized copy, its training, saving and int8 file."""

import keras
import numpy as np
import pytest

from keras_superattn import deploy
from keras_superattn import models
from keras_superattn import quantization
from keras_superattn.layers import VARIANTS
from keras_superattn.layers import LayerNormalization
from keras_superattn.layers.fake_quant import ActivationQuantizer
from tests.helpers import numpy

VOCABULARY, LENGTH = 40, 12
# How far an int8 file may be from the quantization-aware model it came from,
# in steps of the file's output scale. The fake-quantized model rounds where
# the file rounds, but not always to the same side: a matmul requantized in
# fixed point and the same sum in float differ by one step now and then, and
# the softmax turns one step of its input (the scores' range holding the
# masked keys' fill, 16 below the row's top allowed score) into several of
# its output. Measured on these briefly trained models (TensorFlow): mean
# 0.2-0.4 steps and at most 1-2 for the classifiers' probabilities, mean
# 0.5-0.7 and at most 6-11 for the language models' logits (two runs; with
# the fill 30 below the row's lowest score: mean 0.5-0.6, at most 6-12).
MEAN_STEPS = 1.0
MAX_STEPS = {"classifier": 3, "language_model": 24}


def classifier(variant):
    """A briefly trained masked text classifier (README's kind of model)."""
    rng = np.random.default_rng(0)
    x = rng.integers(1, VOCABULARY, (256, LENGTH))
    x[::3, 8:] = 0
    y = (x[:, 0] > VOCABULARY // 2).astype("float32")
    model = models.text_classifier(variant, VOCABULARY, LENGTH, embedding_dim=16, mask_zero=True)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y, epochs=2, verbose=0)
    return model, x, y


def language_model(variant):
    """A briefly trained causal language model with padded sequences."""
    rng = np.random.default_rng(1)
    x = rng.integers(1, VOCABULARY, (256, LENGTH))
    x[::4, 9:] = 0
    y = np.roll(x, -1, axis=1)
    model = models.language_model(
        variant, VOCABULARY, LENGTH, embedding_dim=16, num_heads=2, intermediate_dim=32, num_layers=1
    )
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=2, verbose=0)
    return model, x, y


def fine_tuned(model, x, y):
    """The quantization-aware copy of `model`, fine-tuned for 8 steps."""
    quantized = quantization.quantize_model(model, x[:128])
    quantized.compile(optimizer=keras.optimizers.Adam(1e-4), loss=model.loss)
    quantized.fit(x, y, batch_size=32, epochs=1, verbose=0)
    return quantized


def ranges(model):
    return {q.path: (float(numpy(q.range_min)), float(numpy(q.range_max))) for q in quantization._quantizers(model)}


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_the_copy_keeps_the_weights_and_computes_nearly_the_float_model(variant):
    model, x, _ = language_model(variant)
    quantized = quantization.quantize_model(model, x[:128])
    weights = {v.path: numpy(v) for v in quantized.weights}
    for variable in model.weights:
        np.testing.assert_array_equal(weights[variable.path], numpy(variable))
    assert len(quantized.weights) > len(model.weights)  # the ranges
    assert len(quantized.trainable_weights) == len(model.trainable_weights)
    # Every range holds zero and was measured (no quantizer left at [0, 0]).
    for path, (low, high) in ranges(quantized).items():
        assert low <= 0 <= high and high > low, path
    want, got = numpy(model(x[:64])), numpy(quantized(x[:64]))
    # Rounding moves the logits a little, not the predictions much.
    assert np.abs(got - want).mean() < 0.1 * np.abs(want).mean()
    assert np.mean(got.argmax(-1) == want.argmax(-1)) > 0.8


@pytest.mark.slow
def test_ranges_follow_training_and_are_not_trained():
    model, x, y = classifier("super")
    quantized = quantization.quantize_model(model, x[:128])
    before = ranges(quantized)
    quantized.compile(optimizer="adam", loss="binary_crossentropy")
    quantized.fit(x, y, batch_size=32, epochs=1, verbose=0)
    after = ranges(quantized)
    moved = [path for path in before if before[path] != after[path]]
    assert len(moved) > len(before) // 2, moved
    # Inference leaves them alone.
    quantized.predict(x, verbose=0)
    assert ranges(quantized) == after


def test_a_row_of_tiny_variance_keeps_the_layer_norm_finite():
    # Its variance rounds to 0 on the int8 grid that the other rows' set, and
    # rsqrt(0) is inf: a training step then made every weight NaN (the Super
    # translator's quantization-aware fine-tune, batch 19). The floor at one
    # step of the grid is what the int8 file computes too.
    rng = np.random.default_rng(0)
    x = 10 * rng.normal(size=(64, 8, 16)).astype("float32")
    inputs = keras.Input((8, 16))
    model = keras.Model(inputs, LayerNormalization()(inputs))
    quantized = quantization.quantize_model(model, x)
    flat = x[:8].copy()
    flat[0, 0] = 1.0 + 1e-3 * rng.normal(size=16)  # variance about 1e-6, plus epsilon 1e-3
    for training in (False, True):
        assert np.all(np.isfinite(numpy(quantized(flat, training=training)))), training


@pytest.mark.slow
def test_saving_and_loading_keeps_the_model(tmp_path):
    model, x, y = language_model("super")
    quantized = fine_tuned(model, x, y)
    quantized.save(tmp_path / "qat.keras")
    loaded = keras.saving.load_model(tmp_path / "qat.keras")
    np.testing.assert_array_equal(numpy(loaded(x[:16])), numpy(quantized(x[:16])))
    assert quantization.is_quantization_aware(loaded)


def test_a_sequential_model_comes_back_functional():
    rng = np.random.default_rng(0)
    model = keras.Sequential(
        [keras.Input((8, 16)), keras.layers.Dense(16, activation="gelu"), keras.layers.GlobalAveragePooling1D()]
    )
    x = rng.normal(size=(64, 8, 16)).astype("float32")
    quantized = quantization.quantize_model(model, x)
    names = [type(layer).__name__ for layer in quantized.layers]
    assert names == ["InputLayer", "ActivationQuantizer", "QuantizedDense", "GlobalAveragePooling1D",
                     "ActivationQuantizer"]
    np.testing.assert_allclose(numpy(quantized(x)), numpy(model(x)), atol=0.05)


def test_bad_input_is_refused():
    x = np.random.default_rng(0).integers(1, VOCABULARY, (64, LENGTH))
    model = models.text_classifier("standard", VOCABULARY, LENGTH, embedding_dim=16, mask_zero=True)
    quantized = quantization.quantize_model(model, x[:64])
    with pytest.raises(ValueError, match="already quantization-aware"):
        quantization.quantize_model(quantized, x[:64])
    mha = models.text_classifier("mha", VOCABULARY, LENGTH, embedding_dim=16)
    with pytest.raises(quantization.NoQuantizationAwareForm, match=r"attention='mha', quantization_aware=True"):
        quantization.quantize_model(mha, x[:64])
    with pytest.raises(ValueError, match="no activation quantizers"):
        quantization.calibrate(model, x[:64])
    with pytest.raises(ValueError, match="momentum"):
        ActivationQuantizer(momentum=1.0)
    with pytest.raises(ValueError, match="quantization_aware"):
        LayerNormalization(quantization_aware="yes")


def file_against_model(tmp_path, quantized, x):
    """The int8 file's outputs and the model's, in steps of the file's output scale."""
    conversion = deploy.convert(quantized, tmp_path / "qat.tflite", verbose=False)
    runtime = deploy.TFLiteModel(conversion.path)
    scale = runtime.output["quantization"][0]
    got, want = runtime.predict(x), quantized.predict(x, verbose=0)
    return np.abs(got - want.reshape(got.shape)) / scale, scale


# Conversion runs in TensorFlow whatever the backend: there every variant's
# classifier and the causal language model of Standard and Super (the one
# variant that mixes values); on JAX and PyTorch, Super's, for the training
# and the hand-over.
ON_TENSORFLOW = keras.backend.backend() == "tensorflow"
CONVERTED = [
    *(("classifier", variant) for variant in (VARIANTS if ON_TENSORFLOW else ("super",))),
    *(("language_model", variant) for variant in (("standard", "super") if ON_TENSORFLOW else ("super",))),
]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:The int8 file")
@pytest.mark.parametrize("kind, variant", CONVERTED)
def test_the_int8_file_computes_what_the_model_computes(tmp_path, kind, variant):
    model, x, y = (classifier if kind == "classifier" else language_model)(variant)
    quantized = fine_tuned(model, x, y)
    steps, scale = file_against_model(tmp_path, quantized, x[:64])
    print(f"{kind} {variant}: mean {steps.mean():.2f} steps, max {steps.max():.0f}")
    assert steps.mean() <= MEAN_STEPS
    assert steps.max() <= MAX_STEPS[kind]
    # The file's output scale is the trained range of the logits (a sigmoid's is fixed).
    if kind == "language_model":
        logits = quantized.get_layer("logits").output_quantizer
        low, high = float(numpy(logits.range_min)), float(numpy(logits.range_max))
        assert scale == pytest.approx((high - low) / 255, rel=1e-5)
    else:
        assert scale == 1 / 256
