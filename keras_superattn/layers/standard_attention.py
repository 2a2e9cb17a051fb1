"""Standard Attention: scaled dot-product attention, the baseline (arXiv 2403.01643)."""

import keras

from keras_superattn.layers.base_attention import BaseAttention


@keras.saving.register_keras_serializable(package="keras_superattn")
class StandardAttention(BaseAttention):
    """Standard multi-head scaled dot-product attention (SDPA), the baseline.

    Queries, keys and values each get a learned `(d, d)` projection; every
    head has width `d / num_heads`. This is `keras.layers.MultiHeadAttention`
    with `key_dim = d // num_heads`, and with the same weights it computes the
    same numbers. Attention parameters: `4 d^2` (+ `4 d` biases).

    Args: see `BaseAttention`; `num_heads` is required.

    Call arguments, Returns: see `BaseAttention`.

    Example:

    ```python
    x = keras.random.normal((2, 16, 64))
    y = StandardAttention(num_heads=8)(x)  # self-attention, y.shape == (2, 16, 64)
    ```

    Reference:
        Vaswani et al., "Attention Is All You Need", 2017.
    """

    # A cache keeps the projected keys and values.
    cache_streams = 2
