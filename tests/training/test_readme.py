"""Every Python example of README.md runs as written.

The examples run in order in one namespace, in a folder laid out as the
README assumes (`../shared/data`, `tflite_models/`, a trained checkpoint under
`runs/`). Names an example leaves to the reader (`texts`, `prompt_ids`, ...)
get small stand-in values. The example model converts to full-integer int8
and int8_xnnpack after brief training.
"""

import os
import re

import keras
import numpy as np
import pytest

from keras_superattn import datasets
from keras_superattn import deploy
from keras_superattn import models
from keras_superattn import text
from tests.helpers import ROOT

with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
    EXAMPLES = re.findall(r"```python\n(.*?)```", f.read(), flags=re.DOTALL)

pytestmark = [
    pytest.mark.slow,
    # One backend is enough for the prose; the distribution example needs JAX.
    pytest.mark.skipif(keras.backend.backend() != "jax", reason="README's examples run once, on JAX"),
    pytest.mark.filterwarnings("ignore:The int8(_xnnpack)? file"),
]


@pytest.fixture
def readme_folder(tmp_path, data_dir, monkeypatch):
    """A working folder beside `shared/data`, with the committed files and a checkpoint."""
    work = tmp_path / "work"
    (tmp_path / "shared").mkdir()
    os.symlink(data_dir, tmp_path / "shared" / "data")
    work.mkdir()
    os.symlink(os.path.join(ROOT, "tflite_models"), work / "tflite_models")
    checkpoint = work / "runs" / "sentiment_imdb" / "models"
    checkpoint.mkdir(parents=True)
    keras.utils.set_random_seed(0)
    models.text_classifier("super", 20000, 32).save(checkpoint / "super_seed0.keras")
    monkeypatch.chdir(work)
    return work


def stand_ins(data_dir):
    rng = np.random.default_rng(0)
    train, _, _ = datasets.load_spa_eng(data_dir)
    prompts = np.zeros((2, 24), "int32")
    prompts[:, 0] = 2
    return {
        "texts": ["i liked this film a lot", "a long and dull film", "the best film of the year"] * 4,
        "prompt_ids": rng.integers(1, 5000, (2, 48)).astype("int32"),
        "inputs": rng.integers(1, 5000, (2, 48)).astype("int32"),
        "labels": rng.integers(1, 5000, (2, 48)).astype("int32"),
        "hypotheses": ["el gato está aquí"],
        "references": ["el gato está en casa"],
        "train_texts": [spanish for _, spanish in train],
        "prompts": prompts,
        "end_id": 3,
        "source_ids": rng.integers(1, 4000, (2, 24)).astype("int32"),
    }


def test_every_python_example_runs(readme_folder, data_dir):
    assert len(EXAMPLES) >= 8
    namespace = stand_ins(data_dir)
    for index, example in enumerate(EXAMPLES):
        try:
            exec(compile(example, f"README.md example {index}", "exec"), namespace)
        finally:
            keras.distribution.set_distribution(None)
    assert os.path.isfile("imdb_super.tflite")  # the deploy example wrote its file
    assert isinstance(namespace["spanish"], text.SubwordTokenizer)


def test_the_example_model_converts_to_int8(readme_folder, data_dir):
    namespace = {}
    exec(compile(EXAMPLES[0], "README.md example 0", "exec"), namespace)
    model = namespace["model"]
    (x_train, y_train), (x_test, y_test) = datasets.imdb_sequences(data_dir=data_dir)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=128, epochs=1, verbose=0)
    for quantization in ("int8", "int8_xnnpack"):
        path = f"example_{quantization}.tflite"
        deploy.convert(model, path, quantization, representative_data=x_train[:256], verbose=False)
        if quantization == "int8":  # int8_xnnpack keeps some ops in float by design
            assert deploy.inspect(path)["full_integer"]
        file = deploy.TFLiteModel(path)
        agreement = np.mean((file.predict(x_test[:512]) > 0.5) == (model.predict(x_test[:512], verbose=0) > 0.5))
        assert agreement >= 0.98, (quantization, agreement)  # measured: 99.6 % for both
