import os

import keras
import numpy as np
import pytest

from keras_superattn import layers

# Set by tools/run_all_backends.py: the one backend that runs the tests marked
# `backend_independent` (committed files, LiteRT runtimes, emulators). A plain
# pytest run, on any backend, runs them.
ONCE_ON = "KERAS_SUPERATTN_BACKEND_INDEPENDENT_ON"


def pytest_collection_modifyitems(config, items):
    once_on = os.environ.get(ONCE_ON)
    if not once_on or once_on == keras.backend.backend():
        return
    skip = pytest.mark.skip(reason=f"backend-independent: this run of every backend runs it on {once_on}")
    for item in items:
        if item.get_closest_marker("backend_independent"):
            item.add_marker(skip)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(params=list(layers.VARIANTS))
def variant(request):
    return request.param


@pytest.fixture(scope="session")
def data_dir():
    """The shared datasets: $KERAS_SUPERATTN_DATA, else ../shared/data.

    Skips where they are missing, unless KERAS_SUPERATTN_REQUIRE_DATA=1 (CI).
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.environ.get("KERAS_SUPERATTN_DATA") or os.path.join(root, "..", "shared", "data")
    if not os.path.isfile(os.path.join(path, "mnist.npz")):
        message = f"the datasets are not in {path}; set KERAS_SUPERATTN_DATA (see README.md)"
        if os.environ.get("KERAS_SUPERATTN_REQUIRE_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def imdb_test_sequences(data_dir):
    """The IMDB reference encoding (20,000 words, length 32), test split only."""
    from keras_superattn import datasets

    _, test = datasets.imdb_sequences(20000, 32, data_dir)
    return test


@pytest.fixture(scope="session")
def reversing_translator():
    """`helpers.train_reversing_translator()`'s model, inputs, source and
    target: trained once, for the modules that convert it."""
    from tests.helpers import train_reversing_translator

    return train_reversing_translator()


@pytest.fixture(scope="session")
def translator_file(reversing_translator, tmp_path_factory):
    """The reversing translator as a full-sequence int8 file: the model, the
    file's path, its `Conversion`, and the held-out source and target rows."""
    from keras_superattn import deploy

    model, inputs, source, target = reversing_translator
    path = tmp_path_factory.mktemp("translator") / "translator_int8.tflite"
    conversion = deploy.convert(
        model, path, representative_data={name: x[:200] for name, x in inputs.items()},
        validation_data={name: x[800:] for name, x in inputs.items()}, verbose=False,
    )
    return model, path, conversion, source[800:], target[800:]
