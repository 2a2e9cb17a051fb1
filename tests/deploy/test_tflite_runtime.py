"""Every committed .tflite file on `tflite-runtime` 2.14 (Coral, Raspberry Pi)
against ai-edge-litert, through the same `TFLiteModel`.

The environment is made by tools/tflite_runtime/setup.sh; its Python is
$KERAS_SUPERATTN_TFLITE_RUNTIME_PYTHON. CI sets it and requires the test.
"""

import json
import os
import subprocess

import numpy as np
import pytest

from keras_superattn import datasets
from keras_superattn import deploy
from keras_superattn.deploy.runtime import decisions
from tests.helpers import ROOT

FOLDER = os.path.join(ROOT, "tflite_models")
with open(os.path.join(FOLDER, "manifest.json")) as f:
    # The files `TFLiteModel` runs: one signature (not the cached generators').
    MODELS = sorted(name for name, entry in json.load(f)["models"].items() if "signatures" not in entry)
# Images and reviews; a generative file's sample is a whole sequence (24-48
# positions of next-token logits), so fewer of them check as many numbers.
SAMPLES, SEQUENCES = 64, 16
# Measured on 500 test samples per file: the two releases' kernels round
# differently in places, and over a ViT's four blocks that adds up to at most
# 47 int8 steps on an output value (mnist_super_int8_xnnpack, XNNPACK on; 25
# with the reference kernels, and none for the int8_xnnpack files, whose float
# reference kernels agree exactly), while 98.9 % or more of the values of every
# file are within 3 steps; the decisions differ on at most 2 of 500, near ties.
MAX_STEPS, CLOSE_STEPS, CLOSE_SHARE = 48, 3, 0.98
ENV = "KERAS_SUPERATTN_TFLITE_RUNTIME_PYTHON"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.backend_independent,
]


@pytest.fixture(scope="module")
def python():
    path = os.environ.get(ENV)
    if not path or not os.path.isfile(path):
        message = f"no tflite-runtime environment: run tools/tflite_runtime/setup.sh and set {ENV}"
        if os.environ.get("KERAS_SUPERATTN_REQUIRE_TFLITE_RUNTIME") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def inputs_of(name, data_dir):
    """Real test inputs for the classifiers; token ids in every vocabulary for the generative files."""
    if name.startswith("imdb_"):
        _, (x, _) = datasets.imdb_sequences(data_dir=data_dir)
        return x[:SAMPLES]
    if name.startswith("mnist_"):
        _, (x, _) = datasets.load_mnist(data_dir)
        return datasets.images_as_floats(x[:SAMPLES])
    model = deploy.TFLiteModel(os.path.join(FOLDER, name))
    rng = np.random.default_rng(0)
    return {key: rng.integers(1, 4000, (SEQUENCES, *details["shape"][1:])).astype(details["dtype"])
            for key, details in model.inputs.items()}


def test_every_committed_file_runs_on_tflite_runtime_as_on_litert(python, data_dir, tmp_path):
    jobs = []
    for index, name in enumerate(MODELS):
        inputs = inputs_of(name, data_dir)
        path = tmp_path / f"in{index}.{'npz' if isinstance(inputs, dict) else 'npy'}"
        np.savez(path, **inputs) if isinstance(inputs, dict) else np.save(path, inputs)
        # An int8_xnnpack file is made for XNNPACK (its float reference kernels
        # agreed exactly when measured); the full-integer files run both ways.
        for xnnpack in (True,) if name.endswith("_int8_xnnpack.tflite") else (True, False):
            jobs.append({"model": os.path.join(FOLDER, name), "use_xnnpack": xnnpack, "inputs": str(path),
                         "outputs": str(tmp_path / f"out{index}_{xnnpack}.npy"), "name": name, "given": inputs})
    with open(tmp_path / "jobs.json", "w") as f:
        json.dump([{k: v for k, v in job.items() if k not in ("name", "given")} for job in jobs], f)
    script = os.path.join(ROOT, "tools", "tflite_runtime", "run_jobs.py")
    run = subprocess.run([python, script, str(tmp_path / "jobs.json")], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["interpreter"].startswith("tflite_runtime") and report["tflite_runtime"] == "2.14.0"
    assert report["numpy"].startswith("1.") and report["models"] == len(jobs)
    for job in jobs:
        litert = deploy.TFLiteModel(job["model"], use_xnnpack=job["use_xnnpack"])
        want, got = litert.predict(job["given"]), np.load(job["outputs"])
        scale = litert.output["quantization"][0]
        difference = np.abs(got - want)
        steps = difference / scale
        assert steps.max() <= MAX_STEPS and np.mean(steps <= CLOSE_STEPS) >= CLOSE_SHARE, (job["name"], steps.max())
        # The same decisions, but where the sample's own rounding differences
        # explain a flip: two scores that each moved by at most `moved` can
        # swap only if LiteRT's were within twice that (a sigmoid's within
        # `moved` of 0.5).
        chosen, moved = decisions(got), difference.max(axis=-1)
        if want.shape[-1] == 1:
            ties = np.abs(want[..., 0] - 0.5) <= moved
        else:
            best = want.max(axis=-1)
            ties = best - np.take_along_axis(want, chosen[..., None], axis=-1)[..., 0] <= 2 * moved
        assert np.all((chosen == decisions(want)) | ties), job["name"]
