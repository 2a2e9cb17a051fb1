"""Layer normalization in a form that converts to a pure int8 graph."""

import keras
from keras import ops

from keras_superattn.layers.fake_quant import QuantizationAware


@keras.saving.register_keras_serializable(package="keras_superattn")
class LayerNormalization(QuantizationAware, keras.layers.Layer):
    """Layer normalization over the last axis that quantizes to pure int8.

    The same numbers as `keras.layers.LayerNormalization(axis=-1)` (and the
    same `gamma` / `beta` weights), written as `(x - mean) * rsqrt(var + eps)
    * gamma + beta`. Keras' own layer leaves a float `NEG` op in a full-int8
    TFLite graph without any error; this form converts to SUB, MEAN,
    RSQRT, MUL and ADD only, all int8 (and int16) kernels.

    Args:
        epsilon: float. Added to the variance.
        center: bool. Whether to add the learned offset `beta`.
        scale: bool. Whether to multiply by the learned scale `gamma`.
        quantization_aware: bool. Fake-quantize to int8 `gamma`, `beta` and
            the output of each op above, as an int8 file computes them.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: tensor of shape `(..., d)`.

    Returns:
        A tensor of the input's shape.

    Example:

    ```python
    y = LayerNormalization(epsilon=1e-6)(keras.random.normal((2, 16, 64)))
    ```
    """

    def __init__(self, epsilon=1e-3, center=True, scale=True, quantization_aware=False, **kwargs):
        super().__init__(**kwargs)
        self._init_quantization(quantization_aware)
        if not epsilon > 0:
            raise ValueError(f"Argument `epsilon` must be positive. Received: epsilon={epsilon!r}")
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        self.supports_masking = True

    def build(self, input_shape):
        width = input_shape[-1]
        if width is None:
            raise ValueError(
                "The last dimension of the input must be known. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.gamma = self.add_weight(name="gamma", shape=(width,), initializer="ones") if self.scale else None
        self.beta = self.add_weight(name="beta", shape=(width,), initializer="zeros") if self.center else None
        self._build_quantizers(
            ("mean", "centered", "squared", "variance", "shifted_variance", "inverse_deviation", "normalized")
            + ("scaled",) * self.scale + ("shifted",) * self.center
        )

    def call(self, inputs):
        # Low-precision inputs are normalized in float32, as Keras does.
        quantize = self._fake_quant
        x = ops.cast(inputs, "float32")
        centered = quantize("centered", x - quantize("mean", ops.mean(x, axis=-1, keepdims=True)))
        # `c * c`, not `square(c)`: the converter turns the latter into
        # SQUARED_DIFFERENCE, which has no int16 kernel (int16x8 files).
        variance = quantize("variance", ops.mean(quantize("squared", centered * centered), axis=-1, keepdims=True))
        shifted = quantize("shifted_variance", variance + self.epsilon)
        if self.quantization_aware:
            # A row of small variance rounds to 0 on the int8 grid, and its
            # rsqrt to inf, which training turns into NaN everywhere. At least
            # one step of the grid, a value the file holds exactly (a MAXIMUM).
            shifted = ops.maximum(shifted, self.activation_quantizers["shifted_variance"].smallest_step())
        deviation = quantize("inverse_deviation", ops.rsqrt(shifted))
        x = quantize("normalized", centered * deviation)
        if self.scale:
            x = quantize("scaled", x * self._fake_quant_weights(ops.cast(self.gamma, "float32")))
        if self.center:
            x = quantize("shifted", x + self._fake_quant_weights(ops.cast(self.beta, "float32")))
        return ops.cast(x, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "epsilon": self.epsilon,
                "center": self.center,
                "scale": self.scale,
                "quantization_aware": self.quantization_aware,
            }
        )
        return config
