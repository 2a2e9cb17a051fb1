"""A transformer encoder block with a choice of attention."""

import keras

from keras_superattn._keras_compat import clone_initializer
from keras_superattn._keras_compat import get_keras_mask
from keras_superattn._validation import check_positive_int
from keras_superattn._validation import check_rate
from keras_superattn.layers.layer_normalization import LayerNormalization
from keras_superattn.layers.registry import attention_factory
from keras_superattn.layers.registry import attention_name


@keras.saving.register_keras_serializable(package="keras_superattn")
class TransformerEncoder(keras.layers.Layer):
    """One transformer encoder block with a choice of attention.

    Attention and a two-layer feed-forward network, each with dropout, a
    residual connection and layer normalization, after (post-norm, the
    original transformer) or before (pre-norm, as in ViT) each sub-block.
    The signature follows keras-hub's `TransformerEncoder`, plus `attention`.

    Args:
        intermediate_dim: int. Hidden width of the feed-forward network.
        num_heads: int. Attention heads; must divide the input width.
        attention: `"standard"`, `"optimized"`, `"efficient"`, `"super"`,
            `"mha"` (`keras.layers.MultiHeadAttention` with `key_dim = d / h`)
            or an attention layer class taking `num_heads`; to save, the
            class must be registered with
            `keras.saving.register_keras_serializable`.
        dropout: float. Dropout on the outputs of both sub-blocks.
        attention_dropout: float. Dropout on the attention weights.
        activation: activation of the feed-forward hidden layer.
        layer_norm_epsilon: float. Epsilon of the layer normalizations.
        normalize_first: bool. Pre-norm when True, post-norm when False.
        kernel_initializer, bias_initializer: of every dense kernel and bias;
            each weight gets its own clone, so none start out equal.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: tensor of shape `(B, l, d)`.
        padding_mask: optional boolean `(B, l)`, `True` for real tokens; the
            Keras mask of `inputs` is used when not given.
        attention_mask: optional boolean `(B, l, l)` (or `(l, l)`).
        use_causal_mask: bool. Causal self-attention.
        return_attention_scores: bool. Also return the attention weights.
        training: bool. Whether dropout is active.

    Returns:
        A tensor of the input's shape, and with `return_attention_scores=True`
        also the attention weights, `(B, num_heads, l, l)`.

    Example:

    ```python
    block = TransformerEncoder(intermediate_dim=64, num_heads=4, attention="super")
    y = block(keras.random.normal((2, 16, 32)))  # (2, 16, 32)
    ```
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
        **kwargs,
    ):
        super().__init__(**kwargs)
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
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                "TransformerEncoder expects inputs of rank 3, (batch, sequence, features). "
                f"Received: input_shape={tuple(input_shape)}"
            )
        width = input_shape[-1]
        if width is None or width % self.num_heads:
            raise ValueError(
                "The last dimension of the inputs must be a multiple of `num_heads`. "
                f"Received: input_shape={tuple(input_shape)}, num_heads={self.num_heads}"
            )
        self.attention_layer = self.attention_factory(
            width, num_heads=self.num_heads, dropout=self.attention_dropout, name="attention", **self._common()
        )
        self.attention_layer.build(input_shape, input_shape)
        self.attention_norm = self._norm("attention_norm", input_shape)
        self.feedforward_norm = self._norm("feedforward_norm", input_shape)
        self.intermediate_dense = keras.layers.Dense(
            self.intermediate_dim, activation=self.activation, name="intermediate", **self._common()
        )
        self.intermediate_dense.build(input_shape)
        self.output_dense = keras.layers.Dense(width, name="output", **self._common())
        self.output_dense.build((*input_shape[:-1], self.intermediate_dim))
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)

    def _common(self):
        """Arguments of each weighted sub-layer; each gets its own initializers."""
        return dict(
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
        )

    def _norm(self, name, input_shape):
        norm = LayerNormalization(epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name)
        norm.build(input_shape)
        return norm

    def call(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        training=None,
    ):
        padding_mask = get_keras_mask(inputs) if padding_mask is None else padding_mask
        x = self.attention_norm(inputs) if self.normalize_first else inputs
        x = self.attention_layer(
            x, x,
            query_mask=padding_mask, value_mask=padding_mask,
            attention_mask=attention_mask, use_causal_mask=use_causal_mask,
            return_attention_scores=return_attention_scores, training=training,
        )
        if return_attention_scores:
            x, scores = x
        x = inputs + self.dropout_layer(x, training=training)
        x = x if self.normalize_first else self.attention_norm(x)

        y = self.feedforward_norm(x) if self.normalize_first else x
        y = self.output_dense(self.intermediate_dense(y))
        y = x + self.dropout_layer(y, training=training)
        y = y if self.normalize_first else self.feedforward_norm(y)
        return (y, scores) if return_attention_scores else y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(self, inputs, return_attention_scores=False, **kwargs):
        output = keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return output
        length = inputs.shape[1]
        scores = (inputs.shape[0], self.num_heads, length, length)
        return output, keras.KerasTensor(scores, dtype=self.compute_dtype)

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
            }
        )
        return config

