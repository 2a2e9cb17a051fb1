"""compare_variants: seeds, the choice of the best run, checkpoints, settings."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_superattn import models
from keras_superattn import training
from keras_superattn.training import callbacks
from keras_superattn.training import runs as training_runs
from tests.helpers import ROOT

pytestmark = pytest.mark.slow  # trains, converts or spawns processes

SETTINGS = dict(
    epochs=2, batch_size=16, learning_rate=1e-2, loss="binary_crossentropy", validation_split=0.25, verbose=0
)
CONFIG = training.TrainingConfig(**SETTINGS)


def tiny_text(variant):
    return models.text_classifier(variant, 30, 6, embedding_dim=8, num_heads=2, intermediate_dim=8, hidden_dim=0)


@pytest.fixture(scope="module")
def tiny_data():
    rng = np.random.default_rng(0)
    x = rng.integers(1, 30, (96, 6)).astype("int32")
    y = (x[:, 0] > 15).astype("float32")  # learnable: the first token decides
    return (x[:64], y[:64]), (x[64:], y[64:])


@pytest.fixture(scope="module")
def results(tmp_path_factory, tiny_data):
    out = tmp_path_factory.mktemp("compare")
    seeds = (seed for seed in (0, 1, 2))  # a generator, used once
    variants = ["standard", "efficient"]
    return out, training.compare_variants(tiny_text, tiny_data, variants, seeds, out, CONFIG, int8=False)


def test_every_variant_gets_every_seed(results):
    _, results = results
    assert results["seeds"] == [0, 1, 2]
    assert {variant: len(runs) for variant, runs in results["runs"].items()} == {"standard": 3, "efficient": 3}


def test_best_run_is_chosen_by_validation_accuracy(results):
    out, results = results
    for variant, runs in results["runs"].items():
        best = max(runs, key=lambda run: run["validation_accuracy"])
        assert results["summary"][variant]["best_checkpoint"] == best["checkpoint"]
        assert all(0 <= run["validation_accuracy"] <= 1 for run in runs)
    with open(out / "results.json") as f:
        assert json.load(f)["summary"] == results["summary"]


def test_checkpoint_rescores_to_the_reported_accuracy(results, tiny_data):
    out, results = results
    run = results["runs"]["efficient"][1]
    model = keras.saving.load_model(out / run["checkpoint"])
    model.compile(loss="binary_crossentropy", metrics=["accuracy"])
    (_, _), (x_test, y_test) = tiny_data
    assert model.evaluate(x_test, y_test, verbose=0)[1] == pytest.approx(run["test_accuracy"], abs=1e-6)


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model = tiny_text("standard")
    path = tmp_path / "best.keras"
    callbacks.save_model_atomically(model, path)
    good = path.read_bytes()

    def interrupted(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as f:
            f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        callbacks.save_model_atomically(model, path)
    assert path.read_bytes() == good and os.listdir(tmp_path) == ["best.keras"]


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(epochs=0), r"`epochs` must be a positive integer"),
        (dict(batch_size=0), r"`batch_size` must be a positive integer"),
        (dict(validation_split=0.0), r"`validation_split` must be in \(0, 1\)"),
        (dict(learning_rate=-1.0), r"`learning_rate` must be positive"),
    ],
)
def test_bad_settings_are_refused_when_the_config_is_made(change, match):
    with pytest.raises(ValueError, match=match):
        training.TrainingConfig(**dict(SETTINGS, **change))


def test_empty_seeds_missing_settings_and_an_untyped_config(tmp_path):
    with pytest.raises(ValueError, match=r"`seeds` must not be empty"):
        training.compare_variants(tiny_text, None, ["standard"], iter([]), tmp_path, CONFIG)
    with pytest.raises(TypeError, match=r"missing 1 required positional argument: 'loss'"):
        training.TrainingConfig(**{k: v for k, v in SETTINGS.items() if k != "loss"})
    with pytest.raises(TypeError, match=r"`config` must be a TrainingConfig. Received: config=\{"):
        training.compare_variants(tiny_text, None, ["standard"], [0], tmp_path, SETTINGS)


def test_the_record_lists_every_setting_but_verbosity():
    config = training.TrainingConfig(**SETTINGS, record=dict(patch_size=4))
    assert config.as_record() == dict(
        {k: v for k, v in SETTINGS.items() if k != "verbose"},
        learning_rate_schedule="constant", title="results", patch_size=4,
    )


@pytest.mark.parametrize("flag, value", [("--seeds", "0"), ("--batch-size", "0"), ("--epochs", "-1")])
def test_tutorials_refuse_bad_counts_before_loading_data(flag, value):
    run = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tutorials", "vit_mnist.py"), flag, value, "--data-dir", "/nonexistent"],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 2
    assert f"{flag}: must be a positive integer, got '{value}'" in run.stderr


class Interrupted(Exception):
    """Stands for the process dying."""


def test_an_interrupted_comparison_resumes_where_it_stopped(tmp_path, tiny_data, monkeypatch):
    config = training.TrainingConfig(**dict(SETTINGS, epochs=3))
    epochs_run = []
    original_backup = keras.callbacks.BackupAndRestore

    class CountingTimer(callbacks.EpochTimer):
        def on_epoch_begin(self, epoch, logs=None):
            epochs_run.append(epoch)
            super().on_epoch_begin(epoch, logs)

    class DiesAfterEfficientsFirstEpoch(original_backup):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)  # the backup of epoch 0 is written
            if "efficient" in self.backup_dir and epoch == 0:
                raise Interrupted

    def compare():
        return training.compare_variants(
            tiny_text, tiny_data, ["standard", "efficient"], [0], tmp_path, config, int8=False
        )

    monkeypatch.setattr(training_runs, "EpochTimer", CountingTimer)
    monkeypatch.setattr(keras.callbacks, "BackupAndRestore", DiesAfterEfficientsFirstEpoch)
    with pytest.raises(Interrupted):
        compare()
    assert epochs_run == [0, 1, 2, 0]
    assert sorted(os.listdir(tmp_path / "runs")) == ["config.json", "standard_seed0.json"]
    assert (tmp_path / "backup" / "efficient_seed0").is_dir()
    with open(tmp_path / "runs" / "standard_seed0.json") as f:
        standard = json.load(f)

    monkeypatch.setattr(keras.callbacks, "BackupAndRestore", original_backup)
    epochs_run.clear()
    results = compare()
    # Standard was not trained again; Efficient went on from its second epoch.
    assert epochs_run == [1, 2]
    assert results["runs"]["standard"] == [standard]
    assert not (tmp_path / "backup" / "efficient_seed0").exists()
    assert not list((tmp_path / "models").glob("*.best.json"))
    (efficient,) = results["runs"]["efficient"]
    model = keras.saving.load_model(tmp_path / efficient["checkpoint"])
    model.compile(loss="binary_crossentropy", metrics=["accuracy"])
    (_, _), (x_test, y_test) = tiny_data
    assert model.evaluate(x_test, y_test, verbose=0)[1] == pytest.approx(efficient["test_accuracy"], abs=1e-6)

    other = training.TrainingConfig(**dict(SETTINGS, epochs=2))
    with pytest.raises(ValueError, match=r"trained with another config.*Recorded: \{.*'epochs': 3.*received: \{"):
        training.compare_variants(tiny_text, tiny_data, ["standard"], [0], tmp_path, other, int8=False)


def test_a_resumed_run_keeps_its_best_epoch(tmp_path, tiny_data):
    # A resumed run starts from the best value recorded beside the checkpoint,
    # so a worse epoch after the restart does not replace the best one.
    model = tiny_text("standard")
    path = str(tmp_path / "best.keras")
    first = callbacks.BestCheckpoint(path, monitor="val_loss")
    first.set_model(model)
    first.on_epoch_end(0, {"val_loss": 0.5})
    resumed = callbacks.BestCheckpoint(path, monitor="val_loss", resume=True)
    fresh = callbacks.BestCheckpoint(path, monitor="val_loss")
    assert (resumed.best, fresh.best) == (0.5, np.inf)
    resumed.set_model(model)
    saved = os.path.getmtime(path)
    resumed.on_epoch_end(1, {"val_loss": 0.6})
    assert os.path.getmtime(path) == saved
    resumed.on_train_end()
    assert os.listdir(tmp_path) == ["best.keras"]


def test_tutorials_take_attention_arguments_as_a_json_object():
    command = [sys.executable, os.path.join(ROOT, "tutorials", "vit_mnist.py"), "--data-dir", "/nonexistent"]
    run = subprocess.run([*command, "--attention-kwargs", "[1]"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "--attention-kwargs: must be a JSON object, got '[1]'" in run.stderr
    ablation = [sys.executable, os.path.join(ROOT, "tutorials", "alignment_ablation.py"), "--data-dir", "/nonexistent"]
    run = subprocess.run([*ablation, "--attention-kwargs", '{"use_bias": false}'], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 1 and "--attention-kwargs: the ablation sets the attention arguments per arm" in run.stderr


def test_tensorflow_xla_compiles_the_training_step_and_is_recorded_when_set(tmp_path, tiny_data):
    assert "tensorflow_xla" not in CONFIG.as_record()  # records made before the setting still resume
    config = training.TrainingConfig(**SETTINGS, tensorflow_xla=True)
    assert config.as_record()["tensorflow_xla"] is True
    built = []

    def build(variant):
        built.append(tiny_text(variant))
        return built[-1]

    for run_config in (CONFIG, config):
        out = tmp_path / str(len(built))
        (out / "models").mkdir(parents=True)
        run = training.train_one(build, tiny_data, "super", 0, run_config, out)
        assert 0 <= run["test_accuracy"] <= 1
    backend = keras.backend.backend()
    # Keras' own choice without it: JAX compiles, TensorFlow on a CPU and PyTorch do not.
    assert [model.jit_compile for model in built] == [backend == "jax", backend in ("jax", "tensorflow")]
