"""Config round trips and `.keras` files across processes and backends."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_superattn import layers
from tests.helpers import VARIANTS
from tests.helpers import B
from tests.helpers import D
from tests.helpers import H
from tests.helpers import L

BACKENDS = ("tensorflow", "jax", "torch")

LOADER = """
import sys
import keras
import numpy as np
import keras_superattn  # registers the layers

folder = sys.argv[1]
outputs = {}
with np.load(f"{folder}/inputs.npz") as inputs:
    for name in inputs.files:
        model = keras.saving.load_model(f"{folder}/{name}.keras", compile=False)
        x = [inputs[name][:, :5], inputs[name]] if name == "functional" else inputs[name]
        outputs[name] = keras.ops.convert_to_numpy(model(x))
np.savez(f"{folder}/outputs_{keras.backend.backend()}.npz", **outputs)
"""


def test_config_round_trip(variant, rng):
    layer = VARIANTS[variant](
        num_heads=H, dropout=0.1, use_bias=False, kernel_regularizer="l2", seed=5
    )
    x = rng.normal(size=(B, L, D)).astype("float32")
    want = layer(x)
    config = layer.get_config()
    clone = VARIANTS[variant].from_config(config)
    assert clone.get_config() == config
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(clone(x)), keras.ops.convert_to_numpy(want), atol=1e-6
    )
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == f"keras_superattn>{type(layer).__name__}"


def sequential(variant):
    return keras.Sequential(
        [
            keras.Input((L,), dtype="int32"),
            keras.layers.Embedding(50, D, mask_zero=True),
            VARIANTS[variant](num_heads=H),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(1),
        ]
    )


def functional():
    query, source = keras.Input((5, D)), keras.Input((L, D))
    x = layers.StandardAttention(num_heads=H)(query, source)
    x = layers.OptimizedAttention(num_heads=H)(x, source)
    x = layers.EfficientAttention(num_heads=H)(x, use_causal_mask=True)
    x = layers.SuperAttention(num_heads=H, max_length=L)(x, source, use_causal_mask=True)
    return keras.Model([query, source], x)


@pytest.mark.slow
def test_saved_models_load_in_fresh_processes_of_the_other_backends(tmp_path, rng):
    models = {variant: sequential(variant) for variant in VARIANTS}
    models["functional"] = functional()
    inputs, want = {}, {}
    for name, model in models.items():
        if name == "functional":
            x = rng.normal(size=(B, L, D)).astype("float32")
            feed, target = [x[:, :5], x], np.zeros((B, 5, D), "float32")
        else:
            x = rng.integers(0, 50, size=(B, L)).astype("int32")
            x[0, -2:] = 0
            feed, target = x, np.zeros((B, 1), "float32")
        model.compile(optimizer="adam", loss="mse")
        model.fit(feed, target, epochs=1, verbose=0)  # saves optimizer state too
        model.save(tmp_path / f"{name}.keras")
        inputs[name], want[name] = x, keras.ops.convert_to_numpy(model(feed))
        loaded = keras.saving.load_model(tmp_path / f"{name}.keras")  # this backend, here
        np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(feed)), want[name], atol=1e-6, err_msg=name)
    np.savez(tmp_path / "inputs.npz", **inputs)

    # Fresh processes of the other backends (this one loaded them above).
    for backend in sorted(set(BACKENDS) - {keras.backend.backend()}):
        env = dict(os.environ, KERAS_BACKEND=backend)
        run = subprocess.run(
            [sys.executable, "-c", LOADER, str(tmp_path)],
            env=env, capture_output=True, text=True, timeout=300,
        )
        assert run.returncode == 0, f"{backend}:\n{run.stderr[-3000:]}"
        with np.load(tmp_path / f"outputs_{backend}.npz") as got:
            for name in models:
                np.testing.assert_allclose(
                    got[name], want[name], atol=1e-5, err_msg=f"{name} under {backend}"
                )
