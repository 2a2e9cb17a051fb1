"""What the transformer encoder and decoder blocks share."""

import keras

from keras_superattn._keras_compat import clone_initializer
from keras_superattn._validation import check_positive_int
from keras_superattn._validation import check_rate
from keras_superattn.layers.fake_quant import QuantizationAware
from keras_superattn.layers.layer_normalization import LayerNormalization
from keras_superattn.layers.registry import attention_factory
from keras_superattn.layers.registry import attention_name


class TransformerBlock(QuantizationAware, keras.layers.Layer):
    """Base of `TransformerEncoder` and `TransformerDecoder`: the stored
    config, the residual sub-blocks and the feed-forward network.

    Each sub-block (an attention or the feed-forward network) is wrapped in
    dropout, a residual connection and a layer normalization, before
    (`normalize_first=True`, pre-norm) or after it (post-norm). Subclasses
    build their attention layers with `_attention` and the feed-forward
    network with `_build_feedforward`, and wrap each sub-block in `_sublayer_input` and
    `_add_residual`. A quantization-aware block (`quantization_aware=True`)
    gives the flag to its sub-layers and fake-quantizes each residual sum;
    subclasses build those quantizers with `_build_residual_quantizers`.
    """

    def __init__(
        self,
        intermediate_dim,
        num_heads,
        attention="standard",
        dropout=0.0,
        attention_dropout=0.0,
        activation="relu",
        layer_norm_epsilon=1e-5,
        normalize_first=False,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        attention_kwargs=None,
        quantization_aware=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._init_quantization(quantization_aware)
        self.attention_factory = attention_factory(attention)
        self.attention = attention
        self.intermediate_dim = check_positive_int("intermediate_dim", intermediate_dim)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.dropout = check_rate("dropout", dropout)
        self.attention_dropout = check_rate("attention_dropout", attention_dropout)
        self.activation = keras.activations.get(activation)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.normalize_first = normalize_first
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.attention_kwargs = _check_attention_kwargs(attention_kwargs)
        self.supports_masking = True

    @property
    def attention_layers(self):
        """The block's built attention layers."""
        raise NotImplementedError

    def _check_sequence(self, argument, shape):
        """Validates a `(B, l, d)` input shape; returns its width `d`."""
        if len(shape) != 3:
            raise ValueError(
                f"{type(self).__name__} expects `{argument}` of rank 3, (batch, sequence, features). "
                f"Received: {argument}.shape={tuple(shape)}"
            )
        width = shape[-1]
        if width is None or width % self.num_heads:
            raise ValueError(
                f"The last dimension of `{argument}` must be a multiple of `num_heads`. "
                f"Received: {argument}.shape={tuple(shape)}, num_heads={self.num_heads}"
            )
        return width

    def _attention(self, factory, name, query_shape, value_shape):
        quantization = {"quantization_aware": True} if self.quantization_aware else {}
        layer = factory(
            query_shape[-1], num_heads=self.num_heads, dropout=self.attention_dropout, name=name,
            **{**self._common(), **self.attention_kwargs, **quantization},
        )
        if self.quantization_aware and not getattr(layer, "quantization_aware", False):
            raise ValueError(
                f"A quantization-aware {type(self).__name__} needs attention layers of the package (a "
                f"BaseAttention). Received: {type(layer).__name__} as `{name}`"
            )
        layer.build(query_shape, value_shape)
        return layer

    def _common(self):
        """Arguments of each weighted sub-layer; each gets its own initializers."""
        return dict(
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
        )

    def _norm(self, name, input_shape):
        norm = LayerNormalization(
            epsilon=self.layer_norm_epsilon, quantization_aware=self.quantization_aware,
            dtype=self.dtype_policy, name=name,
        )
        norm.build(input_shape)
        return norm

    def _build_feedforward(self, input_shape):
        width = input_shape[-1]
        self.feedforward_norm = self._norm("feedforward_norm", input_shape)
        self.intermediate_dense = self._layer_class(keras.layers.Dense)(
            self.intermediate_dim, activation=self.activation, name="intermediate", **self._common()
        )
        self.intermediate_dense.build(input_shape)
        self.output_dense = self._layer_class(keras.layers.Dense)(width, name="output", **self._common())
        self.output_dense.build((*input_shape[:-1], self.intermediate_dim))
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)

    def _sublayer_input(self, x, norm):
        """What a sub-block sees: `x`, normalized first in a pre-norm block."""
        return norm(x) if self.normalize_first else x

    def _build_residual_quantizers(self):
        """Quantizers of the residual sums, one per sub-block's norm."""
        self._build_quantizers(
            [_residual(norm) for norm in self._flatten_layers(include_self=False, recursive=False)
             if isinstance(norm, LayerNormalization)]
        )

    def _add_residual(self, x, y, norm, training):
        """`x + dropout(y)`, normalized after in a post-norm block."""
        y = self._fake_quant(_residual(norm), x + self.dropout_layer(y, training=training))
        return y if self.normalize_first else norm(y)

    def _feedforward(self, x, training):
        y = self._sublayer_input(x, self.feedforward_norm)
        y = self.output_dense(self.intermediate_dense(y))
        return self._add_residual(x, y, self.feedforward_norm, training)

    def compute_output_shape(self, input_shape, *args, **kwargs):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "intermediate_dim": self.intermediate_dim,
                "num_heads": self.num_heads,
                "attention": attention_name(self.attention),
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "activation": keras.activations.serialize(self.activation),
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "normalize_first": self.normalize_first,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "attention_kwargs": self.attention_kwargs,
                "quantization_aware": self.quantization_aware,
            }
        )
        return config


def _residual(norm):
    """The name of the residual sum that `norm` normalizes."""
    return norm.name.removesuffix("_norm") + "_residual"


def _check_attention_kwargs(attention_kwargs):
    """`attention_kwargs` as a dict that leaves the block's own arguments alone."""
    attention_kwargs = dict(attention_kwargs or {})
    taken = sorted(set(attention_kwargs) & {"num_heads", "dropout", "name", "dtype", "causal"})
    if taken:
        raise ValueError(
            f"Argument `attention_kwargs` must not set {taken}: the block sets them (use `num_heads`, "
            f"`attention_dropout`, `dtype`). Received: attention_kwargs={attention_kwargs}"
        )
    return attention_kwargs
