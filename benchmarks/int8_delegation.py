"""Which int8 ops LiteRT's XNNPACK delegate takes, measured one op at a time.

Each probe is a tiny Keras model `Dense -> op -> Dense` on `(16, 32)` inputs,
converted to full int8 with `deploy.convert`. XNNPACK takes both Dense layers;
if it also takes the op in between, the whole graph is one delegate
partition, otherwise the op runs on LiteRT's own kernels between two
partitions. The table is the evidence behind the int8 latency notes in
BENCHMARKS.md.

    KERAS_BACKEND=tensorflow python benchmarks/int8_delegation.py
"""

import collections
import os
import tempfile
import warnings

import keras
import numpy as np
from keras import ops

from keras_superattn import deploy
from keras_superattn import layers

LENGTH, WIDTH = 16, 32


class Probe(keras.layers.Layer):
    def __init__(self, function, **kwargs):
        super().__init__(**kwargs)
        self.function = function

    def call(self, x):
        return self.function(x)


def probe(function):
    return lambda x: Probe(function)(x)


PROBES = {
    "none (Dense, Dense)": lambda x: x,
    "TRANSPOSE": probe(lambda t: ops.transpose(t, (0, 2, 1))),
    "MEAN, SUB": probe(lambda t: t - ops.mean(t, axis=-1, keepdims=True)),
    "MUL, ADD": probe(lambda t: t * t + t),
    "RSQRT": probe(lambda t: ops.rsqrt(ops.relu(t) + 1.0)),
    "SOFTMAX": probe(lambda t: ops.softmax(t, axis=-1)),
    "GELU": probe(keras.activations.gelu),
    "BATCH_MATMUL (two activations)": probe(lambda t: ops.matmul(ops.matmul(t, ops.transpose(t, (0, 2, 1))), t)),
    "LayerNormalization (keras_superattn)": lambda x: layers.LayerNormalization()(x),
    "SuperAttention (W_A X, BATCH_MATMUL, SOFTMAX)": lambda x: layers.SuperAttention(num_heads=4)(x),
}


def probe_model(name):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((LENGTH, WIDTH))
    x = PROBES[name](keras.layers.Dense(WIDTH)(inputs))
    return keras.Model(inputs, keras.layers.Dense(WIDTH)(x))


def partitions(path):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=1)
    interpreter.allocate_tensors()
    # Private, but the only view LiteRT's Python API gives of the delegated graph.
    counts = collections.Counter(op["op_name"] for op in interpreter._get_ops_details())
    return counts.pop("DELEGATE", 0), counts


def main():
    data = np.random.default_rng(0).normal(size=(64, LENGTH, WIDTH)).astype("float32")
    print("| op between two Dense layers | int8 ops in the file | XNNPACK partitions |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # untrained probes: agreement is not the point
        for name in PROBES:
            path = os.path.join(folder, "probe.tflite")
            deploy.convert(probe_model(name), path, representative_data=data, verbose=False)
            count, ops_in_file = partitions(path)
            listed = ", ".join(f"{op} {n}" for op, n in sorted(ops_in_file.items()))
            print(f"| {name} | {listed} | {count} |", flush=True)


if __name__ == "__main__":
    main()
