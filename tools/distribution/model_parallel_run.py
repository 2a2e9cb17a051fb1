"""Trains a ViT and a language model a few steps on one device and under
ModelParallel with `distribution.layout_map`; prints the losses and the
weights' shardings as JSON. Run by test_distribution.py in a process of its
own, with XLA_FLAGS forcing two CPU devices (JAX counts devices once)."""

import json

import keras
import numpy as np

from keras_superattn import distribution
from keras_superattn import models

STEPS, BATCH = 3, 8


def builders():
    return {
        "vit": lambda: models.vit_classifier("super", (8, 8, 1), 2, 4, num_layers=1, dropout=0.0),
        "language_model": lambda: models.language_model("super", 64, 8, num_layers=1, dropout=0.0),
    }


def data(name):
    rng = np.random.default_rng(0)
    if name == "vit":
        return rng.random((STEPS * BATCH, 8, 8, 1)).astype("float32"), rng.integers(0, 4, STEPS * BATCH)
    ids = rng.integers(1, 64, (STEPS * BATCH, 9)).astype("int32")
    return ids[:, :-1], ids[:, 1:]


def losses(model, name):
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=name == "language_model"))
    x, y = data(name)
    history = model.fit(x, y, batch_size=BATCH, epochs=STEPS, shuffle=False, verbose=0)
    return history.history["loss"]


def main():
    keras.utils.set_random_seed(0)
    single = {name: build() for name, build in builders().items()}
    weights = {name: model.get_weights() for name, model in single.items()}
    result = {"devices": len(keras.distribution.list_devices())}
    result["single"] = {name: losses(model, name) for name, model in single.items()}
    mesh = keras.distribution.DeviceMesh((1, 2), ["batch", "model"], keras.distribution.list_devices())
    keras.distribution.set_distribution(
        keras.distribution.ModelParallel(layout_map=distribution.layout_map(mesh), batch_dim_name="batch")
    )
    result["sharded"], result["specs"] = {}, {}
    for name, build in builders().items():
        model = build()
        model.set_weights(weights[name])
        result["specs"][name] = {w.path: [str(axis) for axis in w.value.sharding.spec] for w in model.weights}
        result["sharded"][name] = losses(model, name)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
