"""ModelParallel with `distribution.layout_map`, on JAX with two forced CPU devices."""

import json
import os
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
