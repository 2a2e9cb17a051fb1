"""The tutorials' --quick runs on real data, on the active backend."""

import functools
import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_superattn import datasets
from keras_superattn import distribution
from tests.helpers import ROOT

pytestmark = pytest.mark.slow  # trains, converts or spawns processes



def run_tutorial(name, out, data_dir, *extra, env=None, timeout=600):
    run = subprocess.run(
        [
            sys.executable, os.path.join(ROOT, "tutorials", name),
            "--quick", "--out", str(out), "--data-dir", data_dir, *extra,
        ],
        env=dict(os.environ, **(env or {})), capture_output=True, text=True, timeout=timeout,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    with open(out / "results.json") as f:
        return json.load(f), run.stdout


def quick_test_split(tutorial, data_dir):
    """The 256 test samples a --quick run scores, prepared as the tutorial does."""
    if tutorial == "sentiment_imdb.py":
        _, (x_test, y_test) = datasets.imdb_sequences(20000, 32, data_dir)
    else:
        load = datasets.load_mnist if tutorial == "vit_mnist.py" else datasets.load_cifar10
        _, (x_test, y_test) = load(data_dir)
        x_test = datasets.images_as_floats(x_test)
    return x_test[:256], y_test[:256]


# A classification tutorial's quick run tests the harness end to end, which
# is the same code on every backend and for every variant: each runs on one
# backend, so that every backend runs one, with one or two variants (every
# variant once over the three, with test_a_rerun_tutorial_takes_its_recorded_runs
# on PyTorch), and checks the checkpoints that backend saved; one
# adds a quantization-aware fine-tune (the layers' QAT is tested per backend
# in test_quantization). The layers and models are tested for every variant
# on every backend elsewhere.
@pytest.mark.parametrize(
    "tutorial, variants, backend, qat_epochs",
    [
        ("sentiment_imdb.py", ["super", "mha"], "tensorflow", 1),
        ("vit_mnist.py", ["optimized", "efficient"], "jax", 0),
        ("vit_cifar10.py", ["standard"], "torch", 0),
    ],
)
def test_quick_run_reports_its_variants(tmp_path, data_dir, tutorial, variants, backend, qat_epochs):
    from keras_superattn import deploy
    from keras_superattn import training

    if keras.backend.backend() != backend:
        pytest.skip(f"the quick run of {tutorial} is tested on {backend}")
    qat = ["--qat-epochs", str(qat_epochs)] if qat_epochs else []
    results, stdout = run_tutorial(tutorial, tmp_path, data_dir, "--variants", ",".join(variants), *qat)
    assert results["backend"] == keras.backend.backend()
    assert list(results["summary"]) == variants
    x_test, y_test = quick_test_split(tutorial, data_dir)
    for variant, summary in results["summary"].items():
        # --quick trains one seed, so its run is the best run and the mean.
        assert summary["test_accuracy_mean"] == summary["best_test_accuracy"]
        assert summary["test_accuracy_std"] == 0.0
        assert summary["batch_latency_ms"] > 0 and summary["epoch_seconds_mean"] > 0
        model = keras.saving.load_model(tmp_path / summary["best_checkpoint"])
        assert summary["attention_params"] == training.attention_params(model)
        _, accuracy = model.evaluate(x_test, y_test, verbose=0)
        assert accuracy == pytest.approx(summary["test_accuracy_mean"], abs=1e-6)
        # The int8 file scores what the report says on the quick test split.
        int8 = deploy.TFLiteModel(tmp_path / "tflite" / f"{variant}_int8.tflite")
        assert int8.evaluate(x_test, y_test) == pytest.approx(summary["best_int8_test_accuracy"], abs=1e-9)
        assert 0.0 < summary["best_int8_agreement"] <= 1.0
        if qat_epochs and variant == "mha":  # Keras' layer has no quantization-aware form: skipped, said
            assert "qat_epochs" not in summary and "--- mha: no quantization-aware fine-tune" in stdout
        elif qat_epochs:
            assert summary["qat_epochs"] == qat_epochs
            qat = deploy.TFLiteModel(tmp_path / "tflite" / f"{variant}_qat_int8.tflite")
            assert qat.evaluate(x_test, y_test) == pytest.approx(summary["best_qat_int8_test_accuracy"], abs=1e-9)
            assert 0.5 < summary["best_qat_int8_agreement"] <= 1.0
        assert f"| {variant} |" in stdout  # the final table
    assert ("quantization-aware int8" in stdout) == bool(qat_epochs)
    for name in ("results.md", "results.png"):
        assert (tmp_path / name).stat().st_size > 0


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="the harness; resuming is tested per backend in "
                    "test_experiments")
def test_a_rerun_tutorial_takes_its_recorded_runs(tmp_path, data_dir):
    first, _ = run_tutorial("vit_mnist.py", tmp_path, data_dir, "--variants", "efficient,super")
    (tmp_path / "runs" / "super_seed0.json").unlink()  # as if it had died before super's run ended
    mtimes = {v: (tmp_path / "models" / f"{v}_seed0.keras").stat().st_mtime for v in ("efficient", "super")}
    again, stdout = run_tutorial("vit_mnist.py", tmp_path, data_dir, "--variants", "efficient,super")
    assert "--- efficient, seed 0: recorded in" in stdout and "--- super, seed 0 ---" in stdout
    assert (tmp_path / "models" / "efficient_seed0.keras").stat().st_mtime == mtimes["efficient"]
    assert (tmp_path / "models" / "super_seed0.keras").stat().st_mtime > mtimes["super"]  # trained again
    assert again["runs"]["efficient"] == first["runs"]["efficient"]
    assert set(again["runs"]["super"][0]) == set(first["runs"]["super"][0])
    assert (tmp_path / "runs" / "super_seed0.json").is_file()


def test_data_parallel_on_two_host_devices(tmp_path, data_dir):
    if keras.backend.backend() != "jax":
        with pytest.raises(ValueError, match=r"needs the JAX backend.*KERAS_BACKEND="):
            distribution.use_data_parallel()
        return
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    results, _ = run_tutorial("vit_mnist.py", tmp_path, data_dir, "--variants", "efficient", "--data-parallel", env=env)
    assert results["config"]["devices"] == 2
    assert np.isfinite(results["summary"]["efficient"]["test_loss_mean"])


# A quick generative run of every variant takes 4-8 minutes (several
# conversions, decoding; up to 15 on a loaded machine, hence the longer
# timeout); CI runs them once, on TensorFlow, with one variant each, whose
# caches differ (the harness is the same code for every variant), and the
# translator's with quantization-aware fine-tuning (the step the two
# tutorials share). Their layers, models, conversions (also from JAX and
# PyTorch) and decoding are tested for every variant on every backend elsewhere.
on_tensorflow_only = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="the generative tutorials' quick runs are tested on TensorFlow"
)


@on_tensorflow_only
def test_quick_translation_reports_what_its_files_do(tmp_path, data_dir):
    from keras_superattn import deploy
    from keras_superattn import generation
    from keras_superattn import text

    variants = ["super"]
    results, stdout = run_tutorial("translation_spa_eng.py", tmp_path, data_dir, "--qat-epochs", "1",
                                   "--variants", ",".join(variants), timeout=1800)
    assert list(results["summary"]) == variants
    # The quick test split, prepared as the tutorial prepares it.
    _, _, test = datasets.load_spa_eng(data_dir)
    english = text.SubwordTokenizer.load(tmp_path / "english.model", 24)
    spanish = text.SubwordTokenizer.load(tmp_path / "spanish.model", 25)
    source = english([e for e, _ in test[:32]])
    references = [s for _, s in test[:32]]
    prompt = np.zeros((32, 24), "int32")
    prompt[:, 0] = spanish.token_id(text.START)
    end = spanish.token_id(text.END)
    for variant, summary in results["summary"].items():
        model = keras.saving.load_model(tmp_path / summary["best_checkpoint"])
        keras_ids = generation.decode(
            lambda target, model=model: model.predict({"source": source, "target": target}, verbose=0), prompt, 1,
            stop_id=end,
        )
        assert summary["bleu_std"] == 0.0 and summary["bleu_mean"] == summary["best_run"]["bleu"]
        assert len(summary["best_run"]["examples"]) == 5
        assert list(summary["best_run"]["validation_bleu_per_epoch"]) == ["1"]  # the learning curve
        # The int8 files, post-training (full integer and for phone CPUs),
        # quantization-aware, and with a cached decoding step, translate as the report says.
        int8, translations = summary["int8"], {}
        files = (("int8", int8), ("int8_xnnpack", int8["xnnpack"]), ("qat_int8", int8["qat"]),
                 ("cached_int8", int8["cached"]))
        for name, scores in files:
            path = tmp_path / "tflite" / f"{variant}_{name}.tflite"
            assert deploy.inspect(path)["full_integer"] == (name != "int8_xnnpack")
            ids, _ = deploy.generate_greedy(path, prompt, 1, stop_id=end, source=source)
            translations[name] = ids
            bleu = generation.corpus_bleu(spanish.decode(ids[:, 1:], stop_at=text.END), references)
            assert bleu == pytest.approx(scores["bleu"], abs=1e-9)
            # A quick model's BLEU is near 0 for every file; agreement with Keras tells the files apart.
            assert generation.sequence_agreement(ids, keras_ids) == pytest.approx(scores["greedy_agreement"], abs=1e-9)
            assert scores["ms_per_token"] > 0
        agreement = generation.sequence_agreement(translations["cached_int8"], translations["int8"])
        assert agreement == pytest.approx(int8["cached"]["greedy_agreement_with_int8_file"], abs=1e-9)
        assert 0 <= int8["cached"]["greedy_agreement_full_length"] <= 1
        cached = deploy.inspect(tmp_path / "tflite" / f"{variant}_cached_int8.tflite")
        assert set(cached["signatures"]) == {"prefill", "decode"}
        streams = 1 if variant == "efficient" else 2  # Efficient's keys are its values
        assert summary["int8"]["cached"]["cache_bytes_per_token"] == streams * 128  # 1 decoder block, d = 128
        assert f"| {variant} |" in stdout
    assert "quantization-aware int8: bleu" in stdout and "int8_xnnpack: bleu" in stdout
    for name in ("results.md", "results.png"):
        assert (tmp_path / name).stat().st_size > 0


@on_tensorflow_only
def test_quick_language_model_scores_what_the_report_says(tmp_path, data_dir):
    from keras_superattn import deploy
    from keras_superattn import generation
    from keras_superattn import text

    variants = ["efficient"]
    results, _ = run_tutorial("language_model.py", tmp_path, data_dir, "--variants", ",".join(variants), timeout=1800)
    assert list(results["summary"]) == variants
    _, test_reviews = datasets.load_imdb_text(data_dir)
    tokenizer = text.SubwordTokenizer.load(tmp_path / "subwords.model", 65)
    inputs, labels = text.windows(tokenizer.encode(test_reviews[:64]), 64)
    characters = tokenizer.character_count(labels)
    # Bits per character and perplexity measure the same loss: they must agree.
    for run in results["runs"].values():
        loss = math.log(run[0]["perplexity"]) * int((labels != 0).sum())
        assert run[0]["bits_per_character"] == pytest.approx(loss / (math.log(2) * characters), rel=1e-6)
    for variant, summary in results["summary"].items():
        model = keras.saving.load_model(tmp_path / summary["best_checkpoint"])
        predict = functools.partial(model.predict, verbose=0)
        best = summary["best_run"]
        assert generation.perplexity(predict, inputs, labels) == pytest.approx(best["perplexity"], rel=1e-4)
        bits = generation.bits_per_character(predict, inputs, labels, characters)
        assert bits == pytest.approx(best["bits_per_character"], rel=1e-4)
        cached = deploy.inspect(tmp_path / "tflite" / f"{variant}_cached_int8.tflite")
        assert set(cached["signatures"]) == {"prefill", "decode"} and cached["full_integer"]
        streams = 1 if variant == "efficient" else 2  # Efficient's keys are its values
        assert summary["int8"]["cached"]["cache_bytes_per_token"] == 2 * streams * 128  # 2 blocks, d = 128, int8
        assert 0 <= summary["int8"]["cached"]["greedy_agreement"] <= 1 and summary["int8"]["cached"]["ms_per_token"] > 0
        for name, scores in (("int8", summary["int8"]), ("int8_xnnpack", summary["int8"]["xnnpack"])):
            file = deploy.TFLiteModel(tmp_path / "tflite" / f"{variant}_{name}.tflite")
            int8_perplexity = generation.perplexity(file.predict, inputs[:200], labels[:200])
            assert int8_perplexity == pytest.approx(scores["perplexity"], rel=1e-9)
            # int8 costs little: within 5% of the float model on the same sequences.
            assert int8_perplexity == pytest.approx(summary["int8"]["float_perplexity_same_sequences"], rel=0.05)
        assert len(summary["best_run"]["examples"]) == 5
