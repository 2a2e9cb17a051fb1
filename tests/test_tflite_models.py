"""Every committed .tflite model against its manifest entry, on real test data."""

import hashlib
import json
import os

import numpy as np
import pytest

from keras_superattn import datasets
from keras_superattn import deploy

pytestmark = pytest.mark.slow  # trains, converts or spawns processes

FOLDER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tflite_models")
with open(os.path.join(FOLDER, "manifest.json")) as f:
    MANIFEST = json.load(f)


@pytest.fixture(scope="module")
def mnist_test(data_dir):
    _, (x_test, y_test) = datasets.load_mnist(data_dir)
    n = MANIFEST["subset_size"]
    return datasets.images_as_floats(x_test[:n]), y_test[:n]


@pytest.mark.parametrize("name", sorted(MANIFEST["models"]))
def test_committed_model_matches_its_manifest(name, request):
    entry = MANIFEST["models"][name]
    path = os.path.join(FOLDER, name)
    with open(path, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == entry["sha256"]
    report = deploy.inspect(path)
    assert report["full_integer"] and report["builtin_only"] and report["static_shapes"] and report["batch_one"]
    want = {"inputs": ["tokens"], "outputs": ["probability"]} if name.startswith("imdb") else {
        "inputs": ["images"], "outputs": ["probabilities"]}
    assert report["signatures"]["serving_default"] == want
    if name.startswith("imdb"):
        x, y = request.getfixturevalue("imdb_test_sequences")
        x, y = x[: MANIFEST["subset_size"]], y[: MANIFEST["subset_size"]]
    else:
        x, y = request.getfixturevalue("mnist_test")
    for xnnpack in (True, False):
        accuracy = deploy.TFLiteModel(path, use_xnnpack=xnnpack).evaluate(x, y)
        assert accuracy == pytest.approx(entry["int8_subset_accuracy"], abs=0.005)
    # Measured by build.py on the full test set: the int8 file loses at most
    # 0.2 accuracy points and takes the Keras model's decision on >= 99% of samples.
    assert entry["float_test_accuracy"] - entry["int8_test_accuracy"] <= 0.002
    assert entry["int8_agreement_with_keras"] >= 0.99
    assert entry["calibration"]["statistic"] == "minmax"


def test_every_variant_is_committed():
    variants = {(e["tutorial"], e["variant"]) for e in MANIFEST["models"].values()}
    for tutorial in ("tutorials/sentiment_imdb.py", "tutorials/vit_mnist.py"):
        assert {v for t, v in variants if t == tutorial} == {"standard", "optimized", "efficient", "super"}
    assert all(np.isfinite(e["latency_relative_to_standard"]) for e in MANIFEST["models"].values())
