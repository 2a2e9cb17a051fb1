"""A transformer encoder block with a choice of attention."""

import keras

from keras_superattn._keras_compat import get_keras_mask
from keras_superattn.layers.transformer_block import TransformerBlock


@keras.saving.register_keras_serializable(package="keras_superattn")
class TransformerEncoder(TransformerBlock):
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
        attention_kwargs: optional dict of further arguments of every
            attention layer of the block, e.g.
            `{"alignment_initializer": "glorot_uniform"}` for Super Attention.
        quantization_aware: bool. Fake-quantize to int8 every tensor of the
            block that an int8 file quantizes (the sub-layers' and each
            residual sum), for quantization-aware training; set by
            `keras_superattn.quantization.quantize_model`.
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

    def build(self, input_shape):
        self._check_sequence("inputs", input_shape)
        self.attention_layer = self._attention(self.attention_factory, "attention", input_shape, input_shape)
        self.attention_norm = self._norm("attention_norm", input_shape)
        self._build_feedforward(input_shape)
        self._build_residual_quantizers()

    @property
    def attention_layers(self):
        return [self.attention_layer]

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
        x = self._sublayer_input(inputs, self.attention_norm)
        y = self.attention_layer(
            x, x,
            query_mask=padding_mask, value_mask=padding_mask,
            attention_mask=attention_mask, use_causal_mask=use_causal_mask,
            return_attention_scores=return_attention_scores, training=training,
        )
        y, scores = y if return_attention_scores else (y, None)
        x = self._add_residual(inputs, y, self.attention_norm, training)
        x = self._feedforward(x, training)
        return (x, scores) if return_attention_scores else x

    def compute_output_spec(self, inputs, return_attention_scores=False, **kwargs):
        output = keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return output
        length = inputs.shape[1]
        scores = (inputs.shape[0], self.num_heads, length, length)
        return output, keras.KerasTensor(scores, dtype=self.compute_dtype)
