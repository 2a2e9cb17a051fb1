"""A causal transformer decoder block with a choice of attention."""

import keras

from keras_superattn._keras_compat import get_keras_mask
from keras_superattn.layers.registry import attention_factory
from keras_superattn.layers.registry import attention_name
from keras_superattn.layers.transformer_block import TransformerBlock


@keras.saving.register_keras_serializable(package="keras_superattn")
class TransformerDecoder(TransformerBlock):
    """One transformer decoder block: causal self-attention, optional
    cross-attention to an encoder sequence, and a feed-forward network.

    Each sub-block has dropout, a residual connection and a layer
    normalization, after (post-norm) or before it (pre-norm). The
    self-attention is always causal: with Super Attention that also makes
    the alignment kernel lower-triangular, so no token sees a later one
    through the softmax or through `W_A`; unless `attention_kwargs` says
    otherwise, its `W_A` starts as the identity (`SuperAttention`'s
    `causal_defaults`). The cross-attention sub-block
    exists when the block is first called with an `encoder_sequence`
    (encoder-decoder models); without one it is a decoder-only (GPT) block.
    The signature follows keras-hub's `TransformerDecoder`, plus
    `attention` and `cross_attention`.

    Args:
        intermediate_dim: int. Hidden width of the feed-forward network.
        num_heads: int. Attention heads of both attentions; must divide the
            input width.
        attention: the causal self-attention: `"standard"`, `"optimized"`,
            `"efficient"`, `"super"`, `"mha"` or a registered attention class,
            as in `TransformerEncoder`.
        cross_attention: the attention over the encoder sequence, chosen
            like `attention`; None (default) uses the same as `attention`.
            A Super cross-attention's `W_A` mixes the encoder sequence, so it
            is sized by the encoder's length.
        dropout: float. Dropout on the outputs of every sub-block.
        attention_dropout: float. Dropout on the attention weights.
        activation: activation of the feed-forward hidden layer.
        layer_norm_epsilon: float. Epsilon of the layer normalizations.
        normalize_first: bool. Pre-norm when True, post-norm when False.
        kernel_initializer, bias_initializer: of every dense kernel and bias;
            each weight gets its own clone.
        attention_kwargs: optional dict of further arguments of every
            attention layer of the block, e.g.
            `{"alignment_initializer": "glorot_uniform"}` for Super Attention.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        decoder_sequence: tensor `(B, l, d)`, the sequence generated so far.
        encoder_sequence: optional tensor `(B, s, d)`; required when the
            block was built with one, refused when it was built without.
        decoder_padding_mask: optional boolean `(B, l)`, `True` for real
            tokens; the Keras mask of `decoder_sequence` when not given.
        encoder_padding_mask: optional boolean `(B, s)`; the Keras mask of
            `encoder_sequence` when not given.
        training: bool. Whether dropout is active.

    Returns:
        A tensor of the shape of `decoder_sequence`.

    Example:

    ```python
    decoder = TransformerDecoder(intermediate_dim=64, num_heads=4, attention="super")
    target = keras.random.normal((2, 10, 32))
    source = keras.random.normal((2, 12, 32))
    y = decoder(target, source)  # (2, 10, 32)
    ```
    """

    def __init__(self, intermediate_dim, num_heads, attention="standard", cross_attention=None, **kwargs):
        super().__init__(intermediate_dim, num_heads, attention=attention, **kwargs)
        self.cross_attention = cross_attention
        self.cross_attention_factory = (
            self.attention_factory if cross_attention is None else attention_factory(cross_attention, "cross_attention")
        )

    def build(self, decoder_sequence_shape, encoder_sequence_shape=None):
        width = self._check_sequence("decoder_sequence", decoder_sequence_shape)
        self.self_attention_layer = self._attention(
            self.attention_factory, "self_attention", decoder_sequence_shape, decoder_sequence_shape, causal=True
        )
        self.self_attention_norm = self._norm("self_attention_norm", decoder_sequence_shape)
        self.cross_attention_layer = None
        if encoder_sequence_shape is not None:
            if self._check_sequence("encoder_sequence", encoder_sequence_shape) != width:
                raise ValueError(
                    "`encoder_sequence` must have the width of `decoder_sequence`. Received: "
                    f"encoder_sequence.shape={tuple(encoder_sequence_shape)}, "
                    f"decoder_sequence.shape={tuple(decoder_sequence_shape)}"
                )
            self.cross_attention_layer = self._attention(
                self.cross_attention_factory, "cross_attention", decoder_sequence_shape, encoder_sequence_shape
            )
            self.cross_attention_norm = self._norm("cross_attention_norm", decoder_sequence_shape)
        self._build_feedforward(decoder_sequence_shape)

    @property
    def attention_layers(self):
        return [layer for layer in (self.self_attention_layer, self.cross_attention_layer) if layer is not None]

    def call(
        self,
        decoder_sequence,
        encoder_sequence=None,
        decoder_padding_mask=None,
        encoder_padding_mask=None,
        training=None,
    ):
        has_cross_attention = self.cross_attention_layer is not None
        if has_cross_attention != (encoder_sequence is not None):
            raise ValueError(
                "TransformerDecoder must be called with `encoder_sequence` exactly when it was built with one "
                f"(it was built {'with' if has_cross_attention else 'without'} one). Received: "
                f"encoder_sequence={'None' if encoder_sequence is None else 'a tensor'}"
            )
        if decoder_padding_mask is None:
            decoder_padding_mask = get_keras_mask(decoder_sequence)
        x = decoder_sequence
        y = self._sublayer_input(x, self.self_attention_norm)  # (B, l, d)
        y = self.self_attention_layer(
            y, y, query_mask=decoder_padding_mask, value_mask=decoder_padding_mask,
            use_causal_mask=True, training=training,
        )
        x = self._add_residual(x, y, self.self_attention_norm, training)
        if has_cross_attention:
            if encoder_padding_mask is None:
                encoder_padding_mask = get_keras_mask(encoder_sequence)
            y = self._sublayer_input(x, self.cross_attention_norm)  # (B, l, d)
            y = self.cross_attention_layer(
                y, encoder_sequence, query_mask=decoder_padding_mask, value_mask=encoder_padding_mask,
                training=training,
            )
            x = self._add_residual(x, y, self.cross_attention_norm, training)
        return self._feedforward(x, training)

    def compute_output_shape(self, decoder_sequence_shape, encoder_sequence_shape=None):
        return tuple(decoder_sequence_shape)

    def get_config(self):
        config = super().get_config()
        config["cross_attention"] = attention_name(self.cross_attention)
        return config
