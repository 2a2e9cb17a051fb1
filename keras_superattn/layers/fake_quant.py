"""Fake int8 quantization: the pieces of quantization-aware training.

A fake-quantized tensor is rounded to the int8 grid that the converted file
will use and mapped back to float, with straight-through gradients
(`keras.quantizers.fake_quant_with_min_max_vars`). On TensorFlow the op is a
`FakeQuantWithMinMaxVars`, from which `TFLiteConverter` takes the tensor's
int8 scale: a model whose every float tensor is fake-quantized converts to
full-integer int8 without calibration data, and computes what its file
computes.

Weights are quantized per tensor, symmetric, narrow range (`[-127, 127]`):
the converter rejects per-channel fake quantization of a dense kernel ("'tfl.transpose' op
has mismatched quantized axes": the kernel is transposed into its
FULLY_CONNECTED layout after quantization), and per tensor is also what
`tensorflow-model-optimization` quantizes a Dense kernel with.
"""

import keras
from keras import ops
from keras.quantizers import fake_quant_with_min_max_vars

# The int8 range that TFLite's SOFTMAX and LOGISTIC kernels produce (scale
# 1/256, zero point -128): a probability is fake-quantized to exactly it.
PROBABILITY_RANGE = (0.0, 255.0 / 256.0)


def fake_quant_weights(weights):
    """`weights` on the symmetric int8 grid of their largest magnitude."""
    bound = ops.maximum(ops.stop_gradient(ops.max(ops.abs(weights))), 1e-12)
    return fake_quant_with_min_max_vars(weights, -bound, bound, num_bits=8, narrow_range=True)


@keras.saving.register_keras_serializable(package="keras_superattn")
class ActivationQuantizer(keras.layers.Layer):
    """Fake int8 quantization of an activation over a tracked range.

    The range is set by `keras_superattn.quantization.calibrate` (the minimum
    and maximum over calibration batches) and then, in training, follows an
    exponential moving average of each batch's minimum and maximum. A
    `fixed_range` is used as it is (the output of a softmax or a sigmoid).

    Args:
        momentum: float in `[0, 1)`. Weight of the old range in the average.
        fixed_range: optional `(min, max)`; no variables are kept then.
        **kwargs: base layer arguments such as `name`.

    Call arguments:
        inputs: a float tensor.
        training: bool. Whether the range follows the batch.

    Returns:
        `inputs` rounded to the int8 grid of the range (unchanged while
        calibrating).
    """

    def __init__(self, momentum=0.99, fixed_range=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum < 1:
            raise ValueError(f"Argument `momentum` must be a float in [0, 1). Received: momentum={momentum!r}")
        if fixed_range is not None and not (len(fixed_range) == 2 and fixed_range[0] <= 0 <= fixed_range[1]):
            raise ValueError(
                f"Argument `fixed_range` must be (min, max) with min <= 0 <= max. Received: fixed_range={fixed_range!r}"
            )
        self.momentum = float(momentum)
        self.fixed_range = None if fixed_range is None else tuple(float(v) for v in fixed_range)
        # Set by `quantization.calibrate` while it measures the ranges.
        self.calibrating = False
        self.supports_masking = True

    def build(self, input_shape=None):
        if self.fixed_range is not None:
            return
        self.range_min = self.add_weight(name="range_min", shape=(), initializer="zeros", trainable=False)
        self.range_max = self.add_weight(name="range_max", shape=(), initializer="zeros", trainable=False)

    def call(self, inputs, training=None):
        x = ops.cast(inputs, "float32")
        if self.fixed_range is not None:
            low, high = self.fixed_range
        else:
            if self.calibrating or training:
                self._track(ops.stop_gradient(x))
            if self.calibrating:
                return inputs
            low, high = self.range_min, self.range_max
        return ops.cast(fake_quant_with_min_max_vars(x, low, high, num_bits=8), inputs.dtype)

    def _track(self, x):
        low, high = ops.minimum(ops.min(x), 0.0), ops.maximum(ops.max(x), 0.0)
        if self.calibrating:  # the union over the calibration batches
            low, high = ops.minimum(self.range_min, low), ops.maximum(self.range_max, high)
        else:
            low = self.momentum * self.range_min + (1 - self.momentum) * low
            high = self.momentum * self.range_max + (1 - self.momentum) * high
        self.range_min.assign(low)
        self.range_max.assign(high)

    def smallest_step(self):
        """The int8 grid's step (its smallest positive value for a range
        starting at 0)."""
        low, high = self.fixed_range if self.fixed_range is not None else (self.range_min, self.range_max)
        return ops.divide(ops.subtract(high, low), 255.0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"momentum": self.momentum, "fixed_range": self.fixed_range})
        return config


class NoQuantizationAwareForm(ValueError):
    """Raised for a layer that has no quantization-aware form, such as
    `keras.layers.MultiHeadAttention`."""


class QuantizationAware:
    """Mixin of the package's layers that can fake-quantize their inner tensors.

    A subclass takes `quantization_aware` in its constructor (stored by
    `_init_quantization`), creates its quantizers in `build` with
    `_build_quantizers(names)` and passes each tensor that the int8 file
    quantizes through `_fake_quant(name, x)`, which does nothing when the
    layer is not quantization-aware. Sub-layers get the flag from their
    parent.
    """

    def _init_quantization(self, quantization_aware):
        if not isinstance(quantization_aware, bool):
            raise ValueError(
                f"Argument `quantization_aware` must be a bool. Received: quantization_aware={quantization_aware!r}"
            )
        self.quantization_aware = quantization_aware

    def _build_quantizers(self, names, fixed=None):
        """Quantizers for the tensors `names`; `fixed` maps some to a fixed range."""
        if not self.quantization_aware:
            return
        fixed = fixed or {}
        self.activation_quantizers = {}
        for name in names:
            quantizer = ActivationQuantizer(fixed_range=fixed.get(name), name=f"{name}_quantizer")
            quantizer.build()
            self.activation_quantizers[name] = quantizer

    def _fake_quant(self, name, x):
        return self.activation_quantizers[name](x) if self.quantization_aware else x

    def _fake_quant_weights(self, weights):
        return fake_quant_weights(weights) if self.quantization_aware else weights

    def _layer_class(self, keras_class):
        """`keras_class` (Dense, Embedding, Conv2D), or its quantized subclass."""
        return QUANTIZED_LAYERS[keras_class] if self.quantization_aware else keras_class


def _output_range(activation):
    """The fixed int8 range of an activation's output, if TFLite fixes one."""
    fixed = (keras.activations.softmax, keras.activations.sigmoid)
    return PROBABILITY_RANGE if activation in fixed else None


@keras.saving.register_keras_serializable(package="keras_superattn")
class QuantizedDense(keras.layers.Dense):
    """`keras.layers.Dense` with int8 fake quantization of its kernel and of
    its output (before and, for a nonlinear activation, after the activation).
    Same arguments and weights as `Dense`; bias-free or not."""

    def build(self, input_shape):
        super().build(input_shape)
        self.output_quantizer = ActivationQuantizer(name="output_quantizer")
        self.output_quantizer.build()
        self.activation_quantizer = None
        if self.activation is not keras.activations.linear:
            self.activation_quantizer = ActivationQuantizer(
                fixed_range=_output_range(self.activation), name="activation_quantizer"
            )
            self.activation_quantizer.build()

    def call(self, inputs, training=None):
        x = ops.matmul(inputs, ops.cast(fake_quant_weights(self.kernel), inputs.dtype))
        if self.use_bias:
            x = ops.add(x, self.bias)
        x = self.output_quantizer(x, training=training)
        if self.activation_quantizer is None:
            return x
        return self.activation_quantizer(self.activation(x), training=training)


@keras.saving.register_keras_serializable(package="keras_superattn")
class QuantizedEmbedding(keras.layers.Embedding):
    """`keras.layers.Embedding` whose table is fake-quantized to int8 (a
    GATHER keeps the table's scale, so the output needs no range of its own)."""

    def call(self, inputs):
        if inputs.dtype != "int32" and inputs.dtype != "int64":
            inputs = ops.cast(inputs, "int32")
        return ops.take(fake_quant_weights(self.embeddings), inputs, axis=0)


@keras.saving.register_keras_serializable(package="keras_superattn")
class QuantizedConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` (channels last, no activation) with int8 fake
    quantization of its kernel and output."""

    def build(self, input_shape):
        if self.data_format != "channels_last" or self.activation is not keras.activations.linear:
            raise ValueError(
                "QuantizedConv2D supports data_format='channels_last' without an activation. Received: "
                f"data_format={self.data_format!r}, activation={keras.activations.serialize(self.activation)!r}"
            )
        super().build(input_shape)
        self.output_quantizer = ActivationQuantizer(name="output_quantizer")
        self.output_quantizer.build()

    def call(self, inputs, training=None):
        x = self.convolution_op(inputs, ops.cast(fake_quant_weights(self.kernel), inputs.dtype))
        if self.use_bias:
            x = ops.add(x, self.bias)
        return self.output_quantizer(x, training=training)


# Keras layers and their quantization-aware subclasses (same config, same weights).
QUANTIZED_LAYERS = {
    keras.layers.Dense: QuantizedDense,
    keras.layers.Embedding: QuantizedEmbedding,
    keras.layers.Conv2D: QuantizedConv2D,
}
