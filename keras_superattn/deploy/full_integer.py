"""The check that an integer file computes in integers only, naming the Keras layer behind each float op."""

import keras

from keras_superattn.deploy import flatbuffer


def check_full_integer(tflite_bytes, allowed=(), model=None):
    """Raises `ValueError` naming every op of the graph (of every signature)
    that computes in float, apart from the ops named in `allowed` and the
    (de)quantize steps around them.

    With the Keras `model` the file came from, the message also names the
    model's layer behind each such op and, for the layers with a known
    integer-clean replacement, the change to make."""
    graph = flatbuffer.read_model(tflite_bytes)
    offenders = [
        op
        for subgraph in range(len(graph.subgraphs))
        for op in flatbuffer.float_ops(flatbuffer.operators(graph, subgraph))
    ]
    if allowed:
        offenders = [op for op in offenders if op.name not in (*allowed, "QUANTIZE", "DEQUANTIZE")]
    if not offenders:
        return
    layers = {}
    listed = []
    for op in offenders:
        layer = _source_layer(op, model)
        if layer is not None:
            layers[layer.name] = layer
        origin = f" in layer {layer.name!r} ({type(layer).__name__})" if layer is not None else ""
        listed.append(f"#{op.index} {op.name} {sorted(op.types())}{origin}")
    advice = [_REPLACEMENTS[type(layer)] for layer in layers.values() if type(layer) in _REPLACEMENTS] or [
        "Use keras.ops rather than custom float code."
    ]
    raise ValueError(
        f"The integer conversion is not fully integer: these ops compute in float: {', '.join(listed)}. "
        + " ".join(dict.fromkeys(advice))
    )


# Keras layers whose graph has float-only ops in int8, with what to use instead.
_REPLACEMENTS = {
    keras.layers.LayerNormalization: (
        "Use keras_superattn.layers.LayerNormalization instead of keras.layers.LayerNormalization "
        "(same numbers, int8 kernels only)."
    ),
    keras.layers.GlobalAveragePooling1D: (
        "Average a masked sequence with keras_superattn.layers.MaskedAveragePooling() instead of "
        "keras.layers.GlobalAveragePooling1D() (same numbers; Keras' layer casts the mask to float)."
    ),
}


def _source_layer(op, model):
    """The top-level layer of `model` whose TensorFlow name scope produced
    `op`, or None. The traced serving function gives each scope a `_<n>`
    suffix (layer `dense` -> scope `dense_1`), so the name less its suffix is
    tried first."""
    if model is None:
        return None
    layers = {layer.name: layer for layer in model.layers}
    for name in op.output_names:
        for scope in name.split(";")[0].split("/")[:-1]:
            for candidate in (scope.rpartition("_")[0], scope):
                if candidate in layers:
                    return layers[candidate]
    return None
