"""keras.distribution on JAX: ModelParallel with `distribution.layout_map` on two forced CPU
devices, and DataParallel across two processes."""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_superattn import distribution
from tests.helpers import ROOT

pytestmark = pytest.mark.skipif(keras.backend.backend() != "jax", reason="keras.distribution runs on JAX")


@pytest.fixture(scope="module")
def run():
    process = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "distribution", "model_parallel_run.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2"),
    )
    assert process.returncode == 0, process.stderr[-3000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_weights_are_sharded_as_the_map_says(run):
    assert run["devices"] == 2
    vit, language_model = run["specs"]["vit"], run["specs"]["language_model"]
    assert vit["encoder_0/attention/query/kernel"] == ["None", "model"]
    assert vit["encoder_0/attention/attention_output/kernel"] == ["model", "None"]
    assert vit["encoder_0/attention/alignment"] == ["model", "None"]
    assert vit["encoder_0/intermediate/kernel"] == ["None", "model"]
    assert vit["encoder_0/output/kernel"] == ["model", "None"]
    assert vit["encoder_0/attention_norm/gamma"] == ["None"]  # replicated
    assert language_model["embedding/token_embedding/embeddings"] == ["None", "model"]
    assert language_model["decoder_0/self_attention/alignment"] == ["model", "None"]
    assert language_model["logits/kernel"] == ["None", "model"]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["vit", "language_model"])
def test_sharded_training_follows_the_single_device_run(run, model):
    single, sharded = np.array(run["single"][model]), np.array(run["sharded"][model])
    assert single[-1] < single[0]  # it trains
    np.testing.assert_allclose(sharded, single, rtol=1e-5)


def test_the_model_axis_must_be_in_the_mesh():
    mesh = keras.distribution.DeviceMesh((1,), ["batch"], keras.distribution.list_devices()[:1])
    with pytest.raises(ValueError, match=r"`model_axis` must name an axis of the device mesh \['batch'\]"):
        distribution.layout_map(mesh)


def data_parallel_run(*arguments):
    """A `tools/distribution/data_parallel_run.py` process, started."""
    return subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tools", "distribution", "data_parallel_run.py"), *arguments],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, KERAS_BACKEND="jax", XLA_FLAGS=""),
    )


def result(process):
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_two_processes_train_as_one():
    with socket.socket() as probe:  # a free port for the coordinator
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    single = data_parallel_run()
    ranks = [data_parallel_run(address, "2", str(rank)) for rank in range(2)]
    one, *two = [result(process) for process in (single, *ranks)]
    assert one["devices"] == 1 and all(run["devices"] == 2 for run in two)
    for run in two:
        np.testing.assert_allclose(run["losses"], one["losses"], rtol=1e-5)
    assert one["losses"][-1] != one["losses"][0]  # it trained: the steps moved the weights


@pytest.mark.parametrize(
    "arguments, match",
    [
        (("localhost", 2, 0), r"`coordinator_address` must be 'host:port'"),
        (("127.0.0.1:1234", 0, 0), r"`num_processes` must be an int >= 1"),
        (("127.0.0.1:1234", 2, 2), r"`process_id` must be an int in \[0, 2\)"),
    ],
)
def test_bad_process_settings_are_refused(arguments, match):
    with pytest.raises(ValueError, match=match):
        distribution.initialize_processes(*arguments)
