"""The committed int8 models on emulated arm64 (Cortex-A76) match x86."""

import json
import os

import numpy as np
import pytest

from keras_superattn import datasets
from keras_superattn import deploy
from keras_superattn.deploy import arm64

FOLDER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tflite_models")
# Emulated arm64 and x86 both run XNNPACK, whose kernels differ by CPU; a few
# int8 steps of the output (1/256 for probabilities) is the agreed bound.
MAX_STEPS = 8
SAMPLES = 20


@pytest.fixture(scope="module")
def emulator():
    root = arm64.emulator_root()
    if root is None:
        message = f"no arm64 emulator: run tools/arm64/setup.sh and set {arm64.ROOT_ENV}"
        if os.environ.get("KERAS_SUPERATTN_REQUIRE_ARM64") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return root


def test_committed_models_match_x86_on_arm64(emulator, data_dir, imdb_test_sequences):
    with open(os.path.join(FOLDER, "manifest.json")) as f:
        names = sorted(json.load(f)["models"])
    _, (images, _) = datasets.load_mnist(data_dir)
    samples = {"imdb": imdb_test_sequences[0][:SAMPLES], "mnist": datasets.images_as_floats(images[:SAMPLES])}
    jobs, x86 = {}, {}
    for name in names:
        path = os.path.join(FOLDER, name)
        model = deploy.TFLiteModel(path)
        jobs[path] = model.quantize(samples[name.split("_")[0]])
        x86[path] = np.stack([model.predict_raw(sample[None])[0] for sample in jobs[path]])
    outputs = arm64.run_on_arm64(jobs, emulator)
    for path in jobs:
        steps = np.abs(outputs[path].astype(int) - x86[path].astype(int)).max()
        assert steps <= MAX_STEPS, f"{os.path.basename(path)}: {steps} int8 steps from x86"
