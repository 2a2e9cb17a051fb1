"""Greedy decoding with a `.tflite` next-token model (translator or language model)."""

import time

import numpy as np

from keras_superattn.deploy.runtime import TFLiteModel
from keras_superattn.generation import decode


def decode_greedy(model, ids, start, stop_id=None, inputs=None, ids_name=None):
    """Greedy decoding on LiteRT, one invocation per generated token.

    The file has static shapes, so each step scores the whole (padded)
    sequence; with a causal model the padding after the current position
    changes nothing before it.

    Args:
        model: a `TFLiteModel` or the path of a `.tflite` file whose output
            is next-token logits `(batch, T, V)`.
        ids: int array `(N, T)`, the prompt in its first `start` columns.
        start, stop_id: as in `generation.decode`.
        inputs: optional dict of the file's other inputs, `(N, ...)` each,
            e.g. `{"source": source_ids}` for a translator.
        ids_name: the input that takes `ids`; default: the only input not
            in `inputs`.

    Returns:
        `(ids, seconds per step)`: the filled `(N, T)` ids, and the mean
        wall time of one step per sequence (one generated token).
    """
    model = model if isinstance(model, TFLiteModel) else TFLiteModel(model)
    inputs = dict(inputs or {})
    if ids_name is None:
        free = [name for name in model.inputs if name not in inputs]
        if len(free) != 1:
            raise ValueError(
                f"Pass `ids_name`: the inputs of {model.path} not given in `inputs` are {free}. "
                f"Received: inputs with keys {list(inputs)}"
            )
        (ids_name,) = free
    calls = []

    def predict(batch):
        began = time.perf_counter()
        logits = model.predict({**inputs, ids_name: batch})
        calls.append(time.perf_counter() - began)
        return logits

    filled = decode(predict, ids, start, stop_id=stop_id)
    return filled, float(np.sum(calls)) / max(1, len(calls) * len(filled))
