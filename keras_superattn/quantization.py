"""Quantization-aware training: models that train as their int8 file computes.

`quantize_model` returns a copy of a model (same architecture, same weights)
in which every tensor that a full-integer int8 file quantizes is rounded to
its int8 grid in the forward pass, with straight-through gradients: the
weights (per tensor, symmetric), each activation (per tensor, over a range
measured on calibration data and then tracked during training), and inside
the package's layers the attention core (scaled queries, scores, softmax
output, heads, Super's mixed values) and each op of its LayerNormalization.
Fine-tuned with `fit`, on any backend, it learns weights that suit int8;
`deploy.convert` then writes its int8 file from the trained ranges, without
calibration data, and the file computes what the Keras model computes.

This differs from Keras' `model.quantize("int8")`, which quantizes only the
weights of Dense / EinsumDense / Embedding layers after training, for faster
Keras inference; it makes no LiteRT file.
"""

import keras

from keras_superattn.layers.fake_quant import QUANTIZED_LAYERS
from keras_superattn.layers.fake_quant import ActivationQuantizer
from keras_superattn.layers.fake_quant import NoQuantizationAwareForm
from keras_superattn.layers.fake_quant import QuantizationAware

__all__ = ["ActivationQuantizer", "NoQuantizationAwareForm", "calibrate", "is_quantization_aware", "quantize_model"]

# Layers whose output has the int8 scale of their input: no range of their own.
_SCALE_PRESERVING = (
    keras.layers.Dropout,
    keras.layers.Flatten,
    keras.layers.Reshape,
    keras.layers.Permute,
    keras.layers.InputLayer,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
)


def quantize_model(model, calibration_data, batch_size=32):
    """A quantization-aware copy of `model`, its ranges calibrated.

    Layers of the package are rebuilt with `quantization_aware=True`; Keras'
    `Dense`, `Embedding` and `Conv2D` become `QuantizedDense`,
    `QuantizedEmbedding` and `QuantizedConv2D`; the float inputs and the
    outputs of every other layer get an `ActivationQuantizer`. The weights
    are copied; the ranges start at the minimum and maximum over
    `calibration_data`, measured in float, and then follow each training
    batch's at a momentum of 0.99.

    Args:
        model: a functional or Sequential `keras.Model` (a Sequential one comes
            back functional). Its attention layers must be the package's.
        calibration_data: inputs as the model takes them (an array, or a dict
            keyed by input name), a few hundred typical samples.
        batch_size: int. Batch size of the calibration pass.

    Returns:
        The quantization-aware `keras.Model`, to compile and `fit`, save as
        `.keras`, and convert with `deploy.convert(model, path)`.

    Example:

    ```python
    qat = quantization.quantize_model(model, x_train[:512])
    qat.compile(optimizer=keras.optimizers.Adam(1e-4), loss=..., metrics=...)
    qat.fit(x_train, y_train, epochs=1)
    deploy.convert(qat, "model_int8.tflite", validation_data=x_test[:200])
    ```
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "inputs") or not model.inputs:
        raise ValueError(
            "Argument `model` must be a built functional or Sequential keras.Model. "
            f"Received: {type(model).__name__}"
        )
    if is_quantization_aware(model):
        raise ValueError(f"Argument `model` is already quantization-aware: {model.name!r}")
    source = _as_functional(model)
    input_quantizers = {}

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, QuantizationAware):
            return type(layer).from_config({**config, "quantization_aware": True})
        if type(layer) in QUANTIZED_LAYERS:
            return QUANTIZED_LAYERS[type(layer)].from_config(config)
        if isinstance(layer, keras.layers.MultiHeadAttention):
            raise NoQuantizationAwareForm(
                "quantize_model needs the package's attention layers, which simulate the int8 attention core. "
                f"Received: a keras.layers.MultiHeadAttention ({layer.name!r}); use StandardAttention"
            )
        return type(layer).from_config(config)

    def call(layer, *args, **kwargs):
        args = keras.tree.map_structure(lambda x: _quantize_input(x, input_quantizers), args)
        outputs = layer(*args, **kwargs)
        if isinstance(layer, (QuantizationAware, *QUANTIZED_LAYERS.values(), *_SCALE_PRESERVING)):
            return outputs
        quantizer = ActivationQuantizer(name=f"{layer.name}_output_quantizer")
        return keras.tree.map_structure(lambda x: quantizer(x) if _is_float(x) else x, outputs)

    quantized = keras.models.clone_model(source, clone_function=clone, call_function=call)
    _copy_weights(source, quantized)
    calibrate(quantized, calibration_data, batch_size)
    return quantized


def calibrate(model, data, batch_size=32):
    """Sets the range of every tracked `ActivationQuantizer` of `model` to the
    minimum and maximum, in float, over `data` (inputs as the model takes them)."""
    quantizers = _quantizers(model)
    if not quantizers:
        raise ValueError(f"Argument `model` has no activation quantizers to calibrate: {model.name!r}")
    count = len(keras.tree.flatten(data)[0])
    if count == 0:
        raise ValueError("Argument `data` must hold at least one sample. Received: 0 samples")
    for quantizer in quantizers:
        quantizer.range_min.assign(0.0)
        quantizer.range_max.assign(0.0)
        quantizer.calibrating = True
    try:
        for start in range(0, count, batch_size):
            batch = slice(start, start + batch_size)
            model(keras.tree.map_structure(lambda x, batch=batch: x[batch], data), training=False)
    finally:
        for quantizer in quantizers:
            quantizer.calibrating = False


def is_quantization_aware(model):
    """Whether `model` holds fake quantization (made by `quantize_model`)."""
    return any(isinstance(layer, ActivationQuantizer) for layer in model._flatten_layers())


def _quantizers(model):
    return [
        layer
        for layer in model._flatten_layers()
        if isinstance(layer, ActivationQuantizer) and layer.fixed_range is None
    ]


def _as_functional(model):
    """`model`, a Sequential one rebuilt as the functional model of its layers."""
    if not isinstance(model, keras.Sequential):
        return model
    inputs = keras.Input(batch_shape=model.inputs[0].shape, dtype=model.inputs[0].dtype)
    x = inputs
    for layer in model.layers:
        x = layer(x)
    return keras.Model(inputs, x, name=model.name)


def _quantize_input(x, quantizers):
    """A float model input behind its quantizer (one per input); anything else as it is."""
    if not isinstance(x, keras.KerasTensor) or not _is_float(x):
        return x
    history = getattr(x, "_keras_history", None)
    if history is None or not isinstance(history.operation, keras.layers.InputLayer):
        return x
    if id(x) not in quantizers:
        quantizers[id(x)] = ActivationQuantizer(name=f"{history.operation.name}_quantizer")(x)
    return quantizers[id(x)]


def _is_float(x):
    return "float" in str(x.dtype)


def _copy_weights(source, target):
    """Copies every weight of `source` to the weight of `target` at the same
    path; the quantizers' ranges are the only weights `target` adds. (A
    Sequential model's weights carry its name in their paths.)"""
    weights = {_relative(variable.path, target): variable for variable in target.weights}
    missing = [variable.path for variable in source.weights if _relative(variable.path, source) not in weights]
    if missing:
        raise ValueError(f"The quantization-aware copy lacks the weights {missing}")
    for variable in source.weights:
        weights[_relative(variable.path, source)].assign(variable)


def _relative(path, model):
    return path.removeprefix(f"{model.name}/")
