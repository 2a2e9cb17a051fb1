import os

import keras
import numpy as np
import pytest

from keras_superattn import layers

# Set by tests/run_all_backends.py: the one backend that runs the tests marked
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
