"""Efficient Attention: no key or value projection (arXiv 2403.01643)."""

import keras

from keras_superattn.layers.base_attention import BaseAttention


@keras.saving.register_keras_serializable(package="keras_superattn")
class EfficientAttention(BaseAttention):
    """Efficient Attention: SDPA without the key and value projections.

    Keys and values are the heads of the key/value input itself; the key
    projection is folded into the query projection and the value projection
    into the output projection. Two fewer matrix multiplications per head and
    50% fewer parameters than SDPA: `2 d^2` (+ `2 d` biases).

    Args: see `BaseAttention`; `num_heads` is required.

    Call arguments, Returns: see `BaseAttention`.

    Example:

    ```python
    x = keras.random.normal((2, 16, 64))
    y = EfficientAttention(num_heads=8)(x)  # self-attention, y.shape == (2, 16, 64)
    ```

    Reference:
        Hosseini et al., "Cost-Effective Attention Mechanisms for Low Resource
        Settings: Necessity & Sufficiency of Linear Transformations",
        arXiv:2403.01643 v3, 2025.
    """

    projects_key = False
    projects_value = False
    # The values are the keys: a cache keeps one stream, half the bytes.
    cache_streams = 1
