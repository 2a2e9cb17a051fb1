"""Optimized Attention: no value projection (arXiv 2403.01643)."""

import keras

from keras_superattn.layers.base_attention import BaseAttention


@keras.saving.register_keras_serializable(package="keras_superattn")
class OptimizedAttention(BaseAttention):
    """Optimized Attention: SDPA without the value projection.

    The values are the heads of the value input itself; the value projection
    is folded into the output projection. One fewer matrix multiplication per
    head and 25% fewer parameters than SDPA: `3 d^2` (+ `3 d` biases).

    Args: see `BaseAttention`; `num_heads` is required.

    Call arguments, Returns: see `BaseAttention`.

    Example:

    ```python
    x = keras.random.normal((2, 16, 64))
    y = OptimizedAttention(num_heads=8)(x)  # self-attention, y.shape == (2, 16, 64)
    ```

    Reference:
        Hosseini et al., "Cost-Effective Attention Mechanisms for Low Resource
        Settings: Necessity & Sufficiency of Linear Transformations",
        arXiv:2403.01643 v3, 2025.
    """

    projects_value = False
    # A cache keeps the projected keys and the value input.
    cache_streams = 2
