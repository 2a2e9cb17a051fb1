"""Analytic parameter and FLOP counts of one attention layer (docs/paper.md).

A product of an `(a, b)` and a `(b, c)` matrix counts `2 a b c` FLOPs;
softmax, scaling and bias additions are not counted. Self-attention over a
sequence of length `l` with model width `d`.
"""

import dataclasses

from keras_superattn._validation import check_positive_int
from keras_superattn.layers.base_attention import BaseAttention
from keras_superattn.layers.registry import VARIANTS
from keras_superattn.layers.super_attention import SuperAttention


@dataclasses.dataclass(frozen=True)
class AttentionCost:
    params: int
    forward_flops: int

    @property
    def training_flops(self):
        """Forward plus backward, about three times the forward pass."""
        return 3 * self.forward_flops


def attention_cost(variant, sequence_length, model_dim, num_heads, use_bias=True):
    """Parameters and FLOPs of one attention layer applied to one sequence.

    Args:
        variant: a name in `keras_superattn.layers.VARIANTS` (`"standard"`,
            `"optimized"`, `"efficient"`, `"super"`) or a `BaseAttention`
            subclass; the counts follow from its `projects_key` and
            `projects_value` flags (and Super's alignment kernel).
        sequence_length: int, `l` (for Super also the `L` of its kernel).
        model_dim: int, `d`.
        num_heads: int, `h`; must divide `d`. It changes no count, since the
            heads split the same products, but an impossible setting is refused.
        use_bias: bool. Whether the projections have biases.

    Returns:
        An `AttentionCost` with `params`, `forward_flops`, `training_flops`.
    """
    layer_class = VARIANTS.get(variant) if isinstance(variant, str) else variant
    if not (isinstance(layer_class, type) and issubclass(layer_class, BaseAttention)):
        raise ValueError(
            f"Argument `variant` must be one of {tuple(VARIANTS)} or a BaseAttention subclass. "
            f"Received: variant={variant!r}"
        )
    check_positive_int("sequence_length", sequence_length)
    check_positive_int("model_dim", model_dim)
    check_positive_int("num_heads", num_heads)
    if model_dim % num_heads:
        raise ValueError(
            "Argument `model_dim` must be a multiple of `num_heads`. "
            f"Received: model_dim={model_dim}, num_heads={num_heads}"
        )
    # Learned (d, d) projections: query and output always, key and value by flag.
    l, d, n = sequence_length, model_dim, 2 + layer_class.projects_key + layer_class.projects_value
    params = n * d * d + (n * d if use_bias else 0)
    # Each projection: (l, d) x (d, d). Scores q k^T and weights x v: 2 l^2 d each.
    flops = n * 2 * l * d * d + 4 * l * l * d
    if issubclass(layer_class, SuperAttention):
        params += l * l
        flops += 2 * l * l * d  # W_A X: (l, l) x (l, d)
    return AttentionCost(params=params, forward_flops=flops)
