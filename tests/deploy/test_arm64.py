"""The committed int8 models on emulated arm64 (Cortex-A76) match x86."""

import json
import os

import numpy as np
import pytest

from keras_superattn import datasets
from keras_superattn import deploy
from keras_superattn.deploy import arm64
from tests.helpers import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.backend_independent]

FOLDER = os.path.join(ROOT, "tflite_models")
# Emulated arm64 and x86 both run XNNPACK, whose kernels round differently per
# CPU. Nearly every output value must agree within a few int8 steps (1/256 of
# probability); a sample near a decision boundary may move further (17 steps
# measured on one of 200 MNIST test samples, 0.45 vs 0.51 for the top class
# of the Super ViT, decision unchanged), but no decision may change. A
# systematic fault, such as qemu's -cpu max (140+ steps), fails all three.
CLOSE_STEPS, CLOSE_SHARE, MAX_STEPS = 3, 0.99, 24
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


def generative_samples(data_dir, manifest):
    """Test inputs of the committed translators and language models, as ids."""
    from keras_superattn import text

    translator = manifest["translation_standard_int8.tflite"]
    lengths = translator["sequence_lengths"]
    english_file, spanish_file = (os.path.join(FOLDER, name) for name in translator["vocabularies"])
    english = text.SubwordTokenizer.load(english_file, lengths["source"])
    spanish = text.SubwordTokenizer.load(spanish_file, lengths["target"] + 1)  # start + target, or target + end
    _, _, pairs = datasets.load_spa_eng(data_dir)
    _, reviews = datasets.load_imdb_text(data_dir)
    language_model = manifest["language_model_standard_int8.tflite"]
    language_model_length = deploy.TFLiteModel(
        os.path.join(FOLDER, "language_model_standard_int8.tflite")).inputs["tokens"]["shape"][1]
    return {
        "translation": {
            "source": english([e for e, _ in pairs[:SAMPLES]]),
            "target": spanish([s for _, s in pairs[:SAMPLES]], start=True, end=True)[:, :-1],
        },
        "language_model": text.SubwordTokenizer.load(
            os.path.join(FOLDER, language_model["vocabularies"][0]), language_model_length + 1)(
            reviews[:SAMPLES])[:, :-1],
    }


def test_committed_models_match_x86_on_arm64(emulator, data_dir, imdb_test_sequences):
    with open(os.path.join(FOLDER, "manifest.json")) as f:
        manifest = json.load(f)["models"]
    # One signature each; the cached generator files' two are checked below.
    names = sorted(name for name, entry in manifest.items() if "signatures" not in entry)
    _, (images, _) = datasets.load_mnist(data_dir)
    samples = {
        "imdb": imdb_test_sequences[0][:SAMPLES],
        "mnist": datasets.images_as_floats(images[:SAMPLES]),
        **generative_samples(data_dir, manifest),
    }
    jobs = {}
    for name in names:
        path = os.path.join(FOLDER, name)
        model = deploy.TFLiteModel(path)
        task = next(task for task in samples if name.startswith(f"{task}_"))
        inputs = samples[task]
        jobs[path] = (
            {key: model.quantize(value, key) for key, value in inputs.items()} if isinstance(inputs, dict)
            else model.quantize(inputs)
        )
    outputs, x86 = arm64.run_on_arm64(jobs, emulator), arm64.run_on_host(jobs)
    for path in jobs:
        name = os.path.basename(path)
        arm, ref = outputs[path].astype(int), x86[path].astype(int)
        steps = np.abs(arm - ref)
        assert steps.max() <= MAX_STEPS, f"{name}: {steps.max()} int8 steps from x86"
        assert np.mean(steps <= CLOSE_STEPS) >= CLOSE_SHARE, f"{name}: {np.mean(steps <= CLOSE_STEPS):.3f} close"
        decisions = (lambda o: o.argmax(-1)) if ref.shape[-1] > 1 else (lambda o: o[:, 0] > 0)
        if ref.ndim == 2:  # a classifier: no decision may change
            np.testing.assert_array_equal(decisions(arm), decisions(ref), err_msg=name)
        else:
            # Next-token logits: 4,000-way int8 argmaxes have ties and near-ties that a step breaks
            # (the subword language models, at perplexity ~90: 1.1-2.2 % of decisions differ, each
            # within 2 steps of x86's best), so every arm64 choice must be a near-tie on x86.
            chosen = np.take_along_axis(ref, decisions(arm)[..., None], axis=-1)[..., 0]
            assert (ref.max(axis=-1) - chosen).max() <= CLOSE_STEPS, name
            assert np.mean(decisions(arm) == decisions(ref)) >= 0.97, name


def test_cached_generator_file_matches_x86_on_arm64(emulator, tmp_path):
    # Both signatures of a cached int8 language model (briefly trained on
    # counting), the decoding step at several positions from real caches.
    from keras_superattn import models
    from tests.helpers import VOCABULARY
    from tests.helpers import counting_sequences
    from tests.helpers import trained

    sequences = counting_sequences(np.random.default_rng(0), 512, 10)
    inputs = sequences[:, :-1]
    model = trained(lambda: models.language_model("super", VOCABULARY, inputs.shape[1], embedding_dim=32), inputs,
                    sequences[:, 1:])
    path = str(tmp_path / "cached_int8.tflite")
    deploy.convert_generator(model, path, representative_data=inputs[:64], verbose=False)
    generator = deploy.TFLiteGenerator(path)
    decode = {"token": [], "index": []}
    for row in inputs[300 : 300 + SAMPLES // 4]:
        caches = generator.prefill(tokens=row[None])
        caches.pop("logits")
        for position in (1, 4, len(row) - 1):
            decode["token"].append(row[None, position : position + 1])
            decode["index"].append(position)
            for name, cache in caches.items():
                decode.setdefault(name, []).append(cache)
    decode = {name: np.array(values, np.int32) if name == "index" else np.stack(values) for name, values in
              decode.items()}
    jobs = {(path, "prefill", "logits"): {"tokens": inputs[300 : 300 + SAMPLES, None]},
            (path, "decode", "logits"): decode}
    arm, ref = arm64.run_on_arm64(jobs, emulator), arm64.run_on_host(jobs)
    for job in jobs:
        steps = np.abs(arm[job].astype(int) - ref[job].astype(int))
        assert steps.max() <= MAX_STEPS and np.mean(steps <= CLOSE_STEPS) >= CLOSE_SHARE, (job, steps.max())
        np.testing.assert_array_equal(arm[job].argmax(-1), ref[job].argmax(-1))
