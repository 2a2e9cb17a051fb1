"""Model builders: pinned sizes, the reference setting, saving."""

import keras
import numpy as np
import pytest

from keras_superattn import experiments
from keras_superattn import layers
from keras_superattn import models

# IMDB reference setting (docs/paper.md): vocabulary 20,000, l = d = 32, 4 heads.
# 640,000 token + 1,024 position embedding; attention; 2 x 64 layer norm;
# FFN 2 x 1,056; head 198 + 7.
IMDB_TOTAL = {"standard": 647693, "optimized": 646637, "efficient": 645581, "super": 646605, "mha": 647693}
IMDB_ATTENTION = {"standard": 4224, "optimized": 3168, "efficient": 2112, "super": 3136, "mha": 4224}


@pytest.mark.parametrize("attention", list(IMDB_TOTAL))
def test_imdb_reference_setting(attention):
    model = models.text_classifier(attention, vocabulary_size=20000, sequence_length=32)
    assert model.count_params() == IMDB_TOTAL[attention]
    assert experiments.attention_params(model) == IMDB_ATTENTION[attention]
    (encoder,) = [layer for layer in model.layers if isinstance(layer, layers.TransformerEncoder)]
    assert (encoder.normalize_first, encoder.layer_norm_epsilon, encoder.dropout) == (False, 1e-6, 0.1)
    assert model.output_shape == (None, 1)
    assert model.layers[-1].activation.__name__ == "sigmoid"


def test_vit_classifier_shapes_and_super_kernel():
    model = models.vit_classifier("super", (28, 28, 1), patch_size=7, num_classes=10, num_layers=2)
    assert model.output_shape == (None, 10)
    encoders = [layer for layer in model.layers if isinstance(layer, layers.TransformerEncoder)]
    assert len(encoders) == 2 and all(e.normalize_first for e in encoders)
    assert tuple(encoders[0].attention_layer.alignment.shape) == (16, 16)


def test_bad_num_classes():
    with pytest.raises(ValueError, match=r"`num_classes`.*Received: num_classes=1"):
        models.vit_classifier("standard", (8, 8, 1), 4, num_classes=1)


@pytest.mark.slow
@pytest.mark.parametrize("attention", ["standard", "super", "mha"])
def test_models_save_and_load(tmp_path, rng, attention):
    text = models.text_classifier(attention, 100, 16, num_classes=3, mask_zero=True)
    vit = models.vit_classifier(attention, (8, 8, 3), 4, num_classes=5, num_layers=1)
    inputs = {
        "text": rng.integers(0, 100, size=(2, 16)).astype("int32"),
        "vit": rng.random((2, 8, 8, 3)).astype("float32"),
    }
    for name, model in (("text", text), ("vit", vit)):
        path = tmp_path / f"{name}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(loaded(inputs[name])),
            keras.ops.convert_to_numpy(model(inputs[name])),
            atol=1e-6,
        )


def test_cosine_schedule_spans_exactly_the_training_steps():
    config = dict(learning_rate=1e-3, epochs=3, batch_size=10, validation_split=0.1, loss="mse")
    # fit() trains on int(105 * 0.9) = 94 samples: 10 steps per epoch, 30 in all.
    cosine = experiments.TrainingConfig(**config, learning_rate_schedule="cosine")
    optimizer = experiments.adam(cosine, train_samples=105)
    schedule = keras.optimizers.schedules.deserialize(optimizer.get_config()["learning_rate"])
    assert schedule.decay_steps == 30
    np.testing.assert_allclose([float(schedule(step)) for step in (0, 15, 30)], [1e-3, 5e-4, 0.0], atol=1e-9)
    constant = experiments.adam(experiments.TrainingConfig(**config), train_samples=105)
    assert float(keras.ops.convert_to_numpy(constant.learning_rate)) == pytest.approx(1e-3)


def test_unknown_learning_rate_schedule():
    with pytest.raises(ValueError, match=r"`learning_rate_schedule`.*Received: learning_rate_schedule='step'"):
        experiments.TrainingConfig(1, 8, 1e-3, "mse", learning_rate_schedule="step")
