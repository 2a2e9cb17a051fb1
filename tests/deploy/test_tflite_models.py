"""Every committed .tflite model against its manifest entry, on real test data."""

import hashlib
import json
import os

import numpy as np
import pytest

from keras_superattn import datasets
from keras_superattn import deploy
from keras_superattn.deploy.options import XNNPACK_FLOAT_OPS
from tests.helpers import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.backend_independent]

FOLDER = os.path.join(ROOT, "tflite_models")
with open(os.path.join(FOLDER, "manifest.json")) as f:
    MANIFEST = json.load(f)
CLASSIFIERS = sorted(name for name in MANIFEST["models"] if name.startswith(("imdb_", "mnist_")))
TRANSLATORS = sorted(name for name in MANIFEST["models"] if name.startswith("translation_"))
LANGUAGE_MODELS = sorted(name for name in MANIFEST["models"] if name.startswith("language_model_"))


@pytest.fixture(scope="module")
def mnist_test(data_dir):
    _, (x_test, y_test) = datasets.load_mnist(data_dir)
    n = MANIFEST["subset_size"]
    return datasets.images_as_floats(x_test[:n]), y_test[:n]


def check_file(name, signature):
    """The file is the one the manifest describes: hash, static, batch 1, full
    integer, or for an int8_xnnpack file float only in the ops XNNPACK takes
    only in float, so that XNNPACK runs more of the graph, in fewer pieces,
    than in the full-integer file."""
    path = os.path.join(FOLDER, name)
    with open(path, "rb") as f:
        content = f.read()
    assert hashlib.sha256(content).hexdigest() == MANIFEST["models"][name]["sha256"]
    report = deploy.inspect(path)
    assert report["builtin_only"] and report["static_shapes"] and report["batch_one"]
    if name.endswith("_int8_xnnpack.tflite"):
        full_integer = deploy.inspect(path.replace("_int8_xnnpack.tflite", "_int8.tflite"))
        assert not report["full_integer"] and report["xnnpack_partitions"] < full_integer["xnnpack_partitions"]
        deploy.check_full_integer(content, allowed=XNNPACK_FLOAT_OPS)
    else:
        assert report["full_integer"]
    assert {key: sorted(value) for key, value in report["signatures"]["serving_default"].items()} == signature
    return path


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_committed_model_matches_its_manifest(name, request):
    entry = MANIFEST["models"][name]
    want = {"inputs": ["tokens"], "outputs": ["probability"]} if name.startswith("imdb") else {
        "inputs": ["images"], "outputs": ["probabilities"]}
    path = check_file(name, want)
    if name.startswith("imdb"):
        x, y = request.getfixturevalue("imdb_test_sequences")
        x, y = x[: MANIFEST["subset_size"]], y[: MANIFEST["subset_size"]]
    else:
        x, y = request.getfixturevalue("mnist_test")
    for xnnpack in (True, False):
        accuracy = deploy.TFLiteModel(path, use_xnnpack=xnnpack).evaluate(x, y)
        assert accuracy == pytest.approx(entry["int8_subset_accuracy"], abs=0.005)
    # Measured by build.py on the full test set: the int8 file loses at most
    # 0.24 accuracy points (MNIST Standard; its int8_xnnpack file 0.17, the
    # others 0.12 or less) and takes the Keras model's decision on >= 99% of samples.
    assert entry["float_test_accuracy"] - entry["int8_test_accuracy"] <= 0.0025
    assert entry["int8_agreement_with_keras"] >= 0.99
    assert entry["calibration"]["statistic"] == "minmax"


def translate(name, data_dir):
    """BLEU of a committed translator file's greedy translations of the test
    sentences build.py scored (the first `subset_size`), cased references."""
    from keras_superattn import generation
    from keras_superattn import text

    entry = MANIFEST["models"][name]
    lengths, count = entry["sequence_lengths"], entry["subset_size"]
    english, spanish = (text.SubwordTokenizer.load(os.path.join(FOLDER, vocabulary), length)
                        for vocabulary, length in zip(entry["vocabularies"], (lengths["source"], lengths["target"])))
    _, _, test = datasets.load_spa_eng(data_dir)
    source = english([e for e, _ in test[:count]])
    prompt = np.zeros((count, lengths["target"]), "int32")
    prompt[:, 0] = spanish.token_id(text.START)
    end = spanish.token_id(text.END)
    ids, _ = deploy.generate_greedy(os.path.join(FOLDER, name), prompt, 1, stop_id=end, source=source)
    return generation.corpus_bleu(spanish.decode(ids[:, 1:], stop_at=text.END), [s for _, s in test[:count]])


@pytest.mark.parametrize("name", [name for name in TRANSLATORS if "_cached_" not in name])
def test_committed_translator_translates_as_its_manifest_says(name, data_dir):
    entry = MANIFEST["models"][name]
    check_file(name, {"inputs": ["source", "target"], "outputs": ["logits"]})
    assert translate(name, data_dir) == pytest.approx(entry["int8_subset_bleu"], abs=0.5)
    # Measured by the tutorial on 1,000 test sentences: int8 costs under a
    # BLEU point, and the file's greedy translation is the Keras model's on
    # most sentences (a near-tie changes one word, and the rest follows),
    # taking its next-token decision on over 97 % of positions.
    assert entry["float_bleu"] - entry["int8_bleu"] <= 1.0
    assert entry["int8_greedy_agreement"] >= 0.65 and entry["int8_token_agreement_with_keras"] >= 0.97


def check_cached_file(name):
    """The cached generator file the manifest describes: hash, the two
    signatures, full integer."""
    path = os.path.join(FOLDER, name)
    with open(path, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == MANIFEST["models"][name]["sha256"]
    report = deploy.inspect(path)
    assert sorted(report["signatures"]) == ["decode", "prefill"] and report["full_integer"]
    return path


@pytest.mark.parametrize("name", [name for name in TRANSLATORS if "_cached_" in name])
def test_committed_cached_translator_translates_as_its_manifest_says(name, data_dir):
    entry = MANIFEST["models"][name]
    check_cached_file(name)
    assert translate(name, data_dir) == pytest.approx(entry["int8_subset_bleu"], abs=0.5)
    # Measured by the tutorial on 1,000 test sentences: as close to the Keras
    # model as the uncached int8 file, several times faster per token.
    uncached = MANIFEST["models"][name.replace("_cached_int8", "_int8")]
    assert entry["float_bleu"] - entry["int8_bleu"] <= 1.0
    assert entry["int8_greedy_agreement"] >= uncached["int8_greedy_agreement"] - 0.03
    assert entry["speedup_over_full_sequence_file"] >= 3


@pytest.fixture(scope="module")
def language_model_windows(data_dir):
    """build.py's subset: the first window of each of the first test reviews,
    ids `(N, length + 1)`, inputs and targets shifted by one."""
    from keras_superattn import text

    name = "language_model_standard_int8.tflite"
    entry = MANIFEST["models"][name]
    length = deploy.TFLiteModel(os.path.join(FOLDER, name)).inputs["tokens"]["shape"][1]
    tokenizer = text.SubwordTokenizer.load(os.path.join(FOLDER, entry["vocabularies"][0]), length + 1)
    _, reviews = datasets.load_imdb_text(data_dir)
    return tokenizer(reviews[: entry["subset_size"]])


@pytest.mark.parametrize("name", [name for name in LANGUAGE_MODELS if "_cached_" not in name])
def test_committed_language_model_scores_as_its_manifest_says(name, language_model_windows):
    from keras_superattn import generation

    entry = MANIFEST["models"][name]
    path = check_file(name, {"inputs": ["tokens"], "outputs": ["logits"]})
    for xnnpack in (True, False):
        file = deploy.TFLiteModel(path, use_xnnpack=xnnpack)
        perplexity = generation.perplexity(file.predict, language_model_windows[:, :-1], language_model_windows[:, 1:])
        assert perplexity == pytest.approx(entry["int8_subset_perplexity"], rel=0.01)
    # Measured by the tutorial on the windows of 200 test reviews: int8 adds
    # 0.3 % perplexity (under 2 % is the bound) and takes the Keras model's
    # next-token decision on 93.8-94.3 % of positions (4,000-way decisions of
    # a model at perplexity ~90 have many near-ties).
    assert entry["int8_perplexity"] <= 1.02 * entry["float_perplexity_same_sequences"]
    assert entry["int8_token_agreement_with_keras"] >= 0.93


@pytest.mark.parametrize("name", [name for name in LANGUAGE_MODELS if "_cached_" in name])
def test_committed_cached_language_model_continues_as_its_manifest_says(name, language_model_windows):
    entry = MANIFEST["models"][name]
    pieces = entry["prompt_pieces"]
    prompt = language_model_windows[: entry["subset_size"], :-1].copy()
    prompt[:, pieces:] = 0
    ids, _ = deploy.generate_greedy(check_cached_file(name), prompt, pieces)
    # Each piece the cached file chose against the full-sequence file's decision on the same prefix.
    uncached = name.replace("_cached_int8", "_int8")
    logits = deploy.TFLiteModel(os.path.join(FOLDER, uncached)).predict(ids)
    agreement = np.mean(logits[:, pieces - 1 : -1].argmax(-1) == ids[:, pieces:])
    assert agreement == pytest.approx(entry["int8_subset_decision_agreement_with_int8_file"], abs=0.01)
    assert agreement >= 0.93
    # Measured by the tutorial on 200 test prompts, each continued by 48
    # pieces: the whole continuation is the Keras model's as often as the
    # uncached int8 file's is (one changed piece changes all that follows),
    # and 4.5-6.6 times faster per token.
    assert entry["int8_greedy_agreement"] >= MANIFEST["models"][uncached]["int8_greedy_agreement"] - 0.03
    assert entry["speedup_over_full_sequence_file"] >= 3


def test_every_variant_is_committed():
    variants = {(e["tutorial"], e["variant"]) for e in MANIFEST["models"].values()}
    tutorials = ("sentiment_imdb", "vit_mnist", "translation_spa_eng", "language_model")
    for tutorial in (f"tutorials/{name}.py" for name in tutorials):
        assert {v for t, v in variants if t == tutorial} == {"standard", "optimized", "efficient", "super"}
    assert all(np.isfinite(e["latency_relative_to_standard"]) for e in MANIFEST["models"].values())


@pytest.mark.parametrize("name", [name for name in CLASSIFIERS if name.endswith("_int8.tflite")])
def test_every_classifier_has_a_file_for_phone_cpus(name):
    # README: the full-integer file for NPUs and the Edge TPU, the int8_xnnpack
    # file for phone CPUs, where build.py measured it faster (XNNPACK, 1 thread).
    full_integer = MANIFEST["models"][name]
    phone = MANIFEST["models"][name.replace("_int8.tflite", "_int8_xnnpack.tflite")]
    assert phone["quantization"] == "int8_xnnpack" and full_integer["quantization"] == "int8"
    assert phone["checkpoint"] == full_integer["checkpoint"]
    assert phone["latency_ms_1_thread"] < full_integer["latency_ms_1_thread"]
