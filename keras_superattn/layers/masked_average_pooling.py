"""Average pooling over the sequence that is defined for all-padding rows."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_superattn")
class MaskedAveragePooling(keras.layers.GlobalAveragePooling1D):
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

    def __init__(self, **kwargs):
        super().__init__(data_format="channels_last", **kwargs)

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.mean(inputs, axis=1)  # (B, d)
        mask = ops.cast(mask, "bool")[:, :, None]  # (B, l, 1)
        total = ops.sum(ops.where(mask, inputs, 0), axis=1)  # (B, d)
        one, zero = ops.ones((), inputs.dtype), ops.zeros((), inputs.dtype)
        count = ops.sum(ops.where(mask, one, zero), axis=1)  # (B, 1), no float cast of the mask
        return total / ops.maximum(count, 1)  # (B, d)

    def get_config(self):
        config = super().get_config()
        config.pop("data_format")
        config.pop("keepdims")
        return config
