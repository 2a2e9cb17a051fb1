"""Average pooling over the sequence that is defined for all-padding rows."""

import keras
from keras import ops

from keras_superattn.layers.fake_quant import QuantizationAware


@keras.saving.register_keras_serializable(package="keras_superattn")
class MaskedAveragePooling(QuantizationAware, keras.layers.GlobalAveragePooling1D):
    """`keras.layers.GlobalAveragePooling1D` whose masked mean never divides by zero.

    Keras' layer divides the masked sum by the number of real tokens, so a
    sequence that is all padding gives 0 / 0 = NaN, and one such sample in a
    batch turns every weight into NaN during `fit`. Here such a sequence pools
    to zeros. Without a mask, or with real tokens, the numbers are Keras'.
    Only the channels-last layout `(B, l, d)` is supported.

    It also converts to a full-integer int8 `.tflite` file, which Keras'
    layer does not with a mask: Keras counts the real tokens by casting the
    boolean mask to float, a CAST that no int8 kernel computes; here the
    count is a select between 1 and 0. So a masked text classifier
    (`Embedding(..., mask_zero=True)`) converts with this layer in place of
    `GlobalAveragePooling1D`.

    Args:
        quantization_aware: bool. Fake-quantize the sum, the count and the
            mean to int8, for quantization-aware training.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: tensor of shape `(B, l, d)`.
        mask: optional boolean `(B, l)`, `True` for real tokens; the Keras
            mask of `inputs` is used when not given.

    Returns:
        A tensor of shape `(B, d)`.

    Example:

    ```python
    x = keras.ops.ones((2, 4, 8))
    pooled = MaskedAveragePooling()(x, mask=keras.ops.zeros((2, 4), "bool"))  # zeros
    ```
    """

    def __init__(self, quantization_aware=False, **kwargs):
        super().__init__(data_format="channels_last", **kwargs)
        self._init_quantization(quantization_aware)

    def build(self, input_shape):
        # The selected constants need an int8 range too: one that holds 0 and 1.
        self._build_quantizers(("total", "indicator", "count", "output"), fixed={"indicator": (0.0, 1.0)})

    def call(self, inputs, mask=None):
        if mask is None:
            return self._fake_quant("output", ops.mean(inputs, axis=1))  # (B, d)
        mask = ops.cast(mask, "bool")[:, :, None]  # (B, l, 1)
        total = self._fake_quant("total", ops.sum(ops.where(mask, inputs, 0), axis=1))  # (B, d)
        one, zero = (self._fake_quant("indicator", ops.full((), value, inputs.dtype)) for value in (1, 0))
        count = ops.sum(ops.where(mask, one, zero), axis=1)  # (B, 1), no float cast of the mask
        count = self._fake_quant("count", ops.maximum(count, 1))
        return self._fake_quant("output", total / count)  # (B, d)

    def get_config(self):
        config = super().get_config()
        config.pop("data_format")
        config.pop("keepdims")
        config["quantization_aware"] = self.quantization_aware
        return config
