"""The attention layers by name: the one list a new variant joins.

`TransformerEncoder(attention=...)`, the cost model (`keras_superattn.costs`),
the models, tutorials, benchmarks and tests all take their variants from
here. A new variant is a `BaseAttention` subclass in its own file plus one
entry in `VARIANTS`; its costs follow from its `projects_key` /
`projects_value` flags.
"""

import keras

from keras_superattn.layers.efficient_attention import EfficientAttention
from keras_superattn.layers.fake_quant import NoQuantizationAwareForm
from keras_superattn.layers.optimized_attention import OptimizedAttention
from keras_superattn.layers.standard_attention import StandardAttention
from keras_superattn.layers.super_attention import SuperAttention

# The variants of arXiv 2403.01643, in the paper's order.
VARIANTS = {
    "standard": StandardAttention,
    "optimized": OptimizedAttention,
    "efficient": EfficientAttention,
    "super": SuperAttention,
}


def multi_head_attention(width, num_heads, quantization_aware=False, **kwargs):
    """Keras' own `MultiHeadAttention`, the outside reference, with
    `key_dim = width / num_heads` so that it matches the variants' heads."""
    if quantization_aware:
        raise NoQuantizationAwareForm(
            "Keras' MultiHeadAttention (attention='mha') has no quantization-aware form: quantization-aware "
            "training needs the package's attention layers. Received: attention='mha', quantization_aware=True"
        )
    if width % num_heads:
        raise ValueError(
            "MultiHeadAttention needs a width that `num_heads` divides. "
            f"Received: width={width}, num_heads={num_heads}"
        )
    return keras.layers.MultiHeadAttention(num_heads, key_dim=width // num_heads, **kwargs)


def _from_class(layer_class):
    """A factory for a layer class that reads the width from its inputs."""

    def factory(width, **kwargs):
        return layer_class(**kwargs)

    return factory


# Every name `attention=` accepts, with a factory `(width, num_heads=...,
# **layer_kwargs) -> attention layer`.
ATTENTION_LAYERS = {
    **{name: _from_class(layer_class) for name, layer_class in VARIANTS.items()},
    "mha": multi_head_attention,
}

# Classes that save under a registry name (Keras' layer needs its factory).
_CLASS_NAMES = {
    **{layer_class: name for name, layer_class in VARIANTS.items()},
    keras.layers.MultiHeadAttention: "mha",
}


def attention_factory(attention, argument="attention"):
    """The factory for `attention` (the value of `argument`): a name in `ATTENTION_LAYERS`, a name
    registered with `keras.saving.register_keras_serializable`, or a Layer
    class taking `num_heads`."""
    if isinstance(attention, type):
        attention = _CLASS_NAMES.get(attention, attention)
    if isinstance(attention, str) and attention in ATTENTION_LAYERS:
        return ATTENTION_LAYERS[attention]
    layer_class = keras.saving.get_registered_object(attention) if isinstance(attention, str) else attention
    if isinstance(layer_class, type) and issubclass(layer_class, keras.layers.Layer):
        return _from_class(layer_class)
    raise ValueError(
        f"Argument `{argument}` must be one of {sorted(ATTENTION_LAYERS)}, a registered "
        f"name or a keras Layer class. Received: {argument}={attention!r}"
    )


def attention_name(attention):
    """The name under which `attention` saves: a registry name, or the Keras
    registered name of a class, which `attention_factory` resolves on loading."""
    if not isinstance(attention, type):
        return attention
    if attention in _CLASS_NAMES:
        return _CLASS_NAMES[attention]
    name = keras.saving.get_registered_name(attention)
    if keras.saving.get_registered_object(name) is not attention:
        raise ValueError(
            f"A transformer block cannot save `attention={attention.__name__}`: the class is not registered, so "
            "it could not be found when loading. Decorate it with "
            "`@keras.saving.register_keras_serializable()`, or pass a name from "
            f"{sorted(ATTENTION_LAYERS)}."
        )
    return name
