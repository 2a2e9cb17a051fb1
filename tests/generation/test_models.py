"""Model builders: pinned sizes, the reference setting, saving."""

import keras
import numpy as np
import pytest

from keras_superattn import layers
from keras_superattn import models
from keras_superattn import training

# IMDB reference setting (docs/paper.md): vocabulary 20,000, l = d = 32, 4 heads.
# 640,000 token + 1,024 position embedding; attention; 2 x 64 layer norm;
# FFN 2 x 1,056; head 198 + 7.
IMDB_TOTAL = {"standard": 647693, "optimized": 646637, "efficient": 645581, "super": 646605, "mha": 647693}
IMDB_ATTENTION = {"standard": 4224, "optimized": 3168, "efficient": 2112, "super": 3136, "mha": 4224}


@pytest.mark.parametrize("attention", list(IMDB_TOTAL))
def test_imdb_reference_setting(attention):
    model = models.text_classifier(attention, vocabulary_size=20000, sequence_length=32)
    assert model.count_params() == IMDB_TOTAL[attention]
    assert training.attention_params(model) == IMDB_ATTENTION[attention]
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
    cosine = training.TrainingConfig(**config, learning_rate_schedule="cosine")
    optimizer = training.adam(cosine, train_samples=105)
    schedule = keras.optimizers.schedules.deserialize(optimizer.get_config()["learning_rate"])
    assert schedule.decay_steps == 30
    np.testing.assert_allclose([float(schedule(step)) for step in (0, 15, 30)], [1e-3, 5e-4, 0.0], atol=1e-9)
    constant = training.adam(training.TrainingConfig(**config), train_samples=105)
    assert float(keras.ops.convert_to_numpy(constant.learning_rate)) == pytest.approx(1e-3)


def test_unknown_learning_rate_schedule():
    with pytest.raises(ValueError, match=r"`learning_rate_schedule`.*Received: learning_rate_schedule='step'"):
        training.TrainingConfig(1, 8, 1e-3, "mse", learning_rate_schedule="step")


# The tutorials' generative settings: d = 64, 4 heads, FFN 128. One attention
# with biases is 4 * 64^2 + 4 * 64 = 16,640 for SDPA (3/4, 1/2 of the kernels
# for Optimized / Efficient; Super: 8,320 + l^2 with l = 16 or 32).
TRANSLATOR_ATTENTION = {"standard": 3 * 16640, "optimized": 3 * 12480, "efficient": 3 * 8320, "super": 3 * 8576}
# Translator: 2 embeddings of 4000 x 64 + 16 x 64; encoder block (FFN 16,576,
# 2 norms) and decoder block (FFN, 3 norms); 2 final norms; logits 64 x 4000 + 4000.
TRANSLATOR_OTHERS = 2 * 257024 + (16576 + 256) + (16576 + 384) + 256 + 260000
LANGUAGE_MODEL_ATTENTION = {"standard": 2 * 16640, "optimized": 2 * 12480, "efficient": 2 * 8320, "super": 2 * 9344}
# LM: embedding 4000 x 64 + 32 x 64; 2 decoder blocks (FFN, 2 norms); final norm; logits.
LANGUAGE_MODEL_OTHERS = 258048 + 2 * (16576 + 256) + 128 + 260000


@pytest.mark.parametrize("attention", list(layers.VARIANTS))
def test_generative_model_sizes(attention):
    translator = models.translator(attention, 4000, 4000, source_length=16, target_length=16)
    assert training.attention_params(translator) == TRANSLATOR_ATTENTION[attention]
    assert translator.count_params() == TRANSLATOR_ATTENTION[attention] + TRANSLATOR_OTHERS
    assert translator.output_shape == (None, 16, 4000)
    language_model = models.language_model(attention, 4000, sequence_length=32)
    assert training.attention_params(language_model) == LANGUAGE_MODEL_ATTENTION[attention]
    assert language_model.count_params() == LANGUAGE_MODEL_ATTENTION[attention] + LANGUAGE_MODEL_OTHERS


def briefly_trained(model, inputs, labels):
    """A few steps of training, so that no weight is still at its initial value."""
    from keras_superattn import generation

    keras.utils.set_random_seed(0)
    model.compile(keras.optimizers.Adam(0.01), generation.token_crossentropy)
    model.fit(inputs, labels, epochs=3, batch_size=16, verbose=0)
    return model


@pytest.mark.slow
@pytest.mark.parametrize("attention", list(layers.VARIANTS))
def test_language_model_does_not_see_the_future(rng, attention):
    ids = rng.integers(1, 50, size=(32, 12)).astype("int32")
    model = briefly_trained(models.language_model(attention, 50, 12, embedding_dim=16), ids, np.roll(ids, -1, 1))
    logits = model.predict(ids, verbose=0)
    for t in (0, 5, 10):
        changed = ids.copy()
        changed[:, t + 1 :] = rng.integers(1, 50, size=(32, 11 - t))
        got = model.predict(changed, verbose=0)
        np.testing.assert_allclose(got[:, : t + 1], logits[:, : t + 1], atol=1e-5)
        assert not np.allclose(got[:, t + 1 :], logits[:, t + 1 :], atol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("attention", list(layers.VARIANTS))
def test_translator_hides_the_source_padding_and_saves(tmp_path, rng, attention):
    source = rng.integers(1, 40, size=(32, 10)).astype("int32")
    source[:, 6:] = 0
    target = rng.integers(1, 30, size=(32, 8)).astype("int32")
    inputs = {"source": source, "target": target}
    model = briefly_trained(
        models.translator(attention, 40, 30, 10, 8, embedding_dim=16), inputs, np.roll(target, -1, 1)
    )
    logits = model.predict(inputs, verbose=0)
    # Whatever the padding embeds to, no real token may see it.
    table = model.get_layer("source_embedding").token_embedding.embeddings
    table.assign(np.concatenate([rng.normal(size=(1, 16)) * 100, keras.ops.convert_to_numpy(table)[1:]]))
    np.testing.assert_allclose(model.predict(inputs, verbose=0), logits, atol=1e-4)
    changed = dict(inputs, source=np.where(source > 0, (source % 39) + 1, 0))
    assert not np.allclose(model.predict(changed, verbose=0), logits, atol=1e-3)  # the real source counts
    model.save(tmp_path / "translator.keras")
    loaded = keras.saving.load_model(tmp_path / "translator.keras")
    np.testing.assert_allclose(loaded.predict(inputs, verbose=0), logits, atol=1e-4)


def alignments(model):
    """`{layer path: W_A}` of every Super Attention layer of a model."""
    return {w.path: keras.ops.convert_to_numpy(w) for w in model.weights if w.path.endswith("/alignment")}


def test_super_starts_as_the_identity_everywhere():
    model = models.translator("super", 50, 60, source_length=7, target_length=5)
    kernels = alignments(model)
    assert sorted(kernels) == [
        "decoder_0/cross_attention/alignment", "decoder_0/self_attention/alignment", "encoder_0/attention/alignment"
    ]
    np.testing.assert_array_equal(kernels["decoder_0/self_attention/alignment"], np.eye(5))
    for path in ("decoder_0/cross_attention/alignment", "encoder_0/attention/alignment"):
        np.testing.assert_array_equal(kernels[path], np.eye(7))


@pytest.mark.parametrize(
    "build",
    [
        lambda kwargs: models.language_model("super", 50, 6, num_layers=1, attention_kwargs=kwargs),
        lambda kwargs: models.translator("super", 50, 60, 6, 6, attention_kwargs=kwargs),
        lambda kwargs: models.text_classifier("super", 50, 6, attention_kwargs=kwargs),
        lambda kwargs: models.vit_classifier("super", (8, 8, 1), 4, 3, num_layers=1, attention_kwargs=kwargs),
    ],
)
def test_builders_pass_the_attention_arguments_to_every_attention(build):
    model = build({"alignment_initializer": "ones", "use_bias": False})
    kernels = alignments(model)
    assert kernels and all(np.all(kernel == 1.0) for kernel in kernels.values())
    assert not [w.path for w in model.weights if "attention" in w.path and w.path.endswith("/bias")]


def test_the_old_initialisation_stays_reachable_and_saves(tmp_path):
    keras.utils.set_random_seed(0)
    model = models.language_model(
        "super", 50, 6, num_layers=1, attention_kwargs={"alignment_initializer": "glorot_uniform"}
    )
    (kernel,) = alignments(model).values()
    assert not np.allclose(kernel, np.eye(6))
    model.save(tmp_path / "lm.keras")
    loaded = keras.saving.load_model(tmp_path / "lm.keras")
    assert loaded.get_layer("decoder_0").attention_kwargs == {"alignment_initializer": "glorot_uniform"}
    np.testing.assert_array_equal(next(iter(alignments(loaded).values())), kernel)


def test_attention_kwargs_may_not_set_what_the_block_sets():
    with pytest.raises(ValueError, match=r"`attention_kwargs` must not set \['dropout', 'num_heads'\].*Received"):
        layers.TransformerDecoder(8, 2, attention_kwargs={"num_heads": 4, "dropout": 0.1})


def test_a_trained_generative_model_loads_after_importing_the_package(tmp_path):
    # Its compile config names the package's loss, registered in `generation`;
    # a bare `import keras_superattn` must be enough to load it (a tutorial's
    # checkpoint did not load that way).
    import os
    import subprocess
    import sys

    from keras_superattn import generation

    model = models.language_model("efficient", 30, 8, embedding_dim=16, num_heads=2)
    model.compile(optimizer="adam", loss=generation.token_crossentropy)
    model.save(tmp_path / "language_model.keras")
    loader = "import sys, keras, keras_superattn; keras.saving.load_model(sys.argv[1]); print('loaded')"
    run = subprocess.run([sys.executable, "-c", loader, str(tmp_path / "language_model.keras")],
                         env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "loaded" in run.stdout, run.stderr[-2000:]
