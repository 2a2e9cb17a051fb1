"""A causal transformer decoder block with a choice of attention."""

import keras

from keras_superattn._keras_compat import get_keras_mask
from keras_superattn.layers.base_attention import BaseAttention
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
    through the softmax or through `W_A`. The cross-attention sub-block
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
        quantization_aware: bool. Fake-quantize to int8 every tensor of the
            block that an int8 file quantizes (the sub-layers' and each
            residual sum), for quantization-aware training; set by
            `keras_superattn.quantization.quantize_model`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        decoder_sequence: tensor `(B, l, d)`, the sequence generated so far.
        encoder_sequence: optional tensor `(B, s, d)`; required when the
            block was built with one, refused when it was built without.
        decoder_padding_mask: optional boolean `(B, l)`, `True` for real
            tokens; the Keras mask of `decoder_sequence` when not given.
        encoder_padding_mask: optional boolean `(B, s)`; the Keras mask of
            `encoder_sequence` when not given.
        self_attention_cache: optional tensor `(B, n, T, d)` (or tuple of
            `n` tensors `(B, T, d)`), the keys and values of the
            self-attention (see `BaseAttention`'s `cache`; `n` is its
            `cache_streams`), for decoding token by token as
            keras-hub's `TransformerDecoder`. `decoder_sequence` is then the
            tokens from `self_attention_cache_update_index` on; earlier
            positions come from the cache, whose padding is not masked
            (generation pads only after the real tokens, which the causal
            mask hides).
        self_attention_cache_update_index: int or scalar tensor, the position
            of the first token of `decoder_sequence`; its keys and values are
            written there.
        cross_attention_cache: optional tensor `(B, n, s, d)` of the keys
            and values of the encoder sequence; with it `encoder_sequence`
            may be None. `encoder_padding_mask` must then be given.
        cross_attention_cache_update_index: None to use the cross-attention
            cache as it is, 0 to fill it from `encoder_sequence`.
        training: bool. Whether dropout is active.

    Returns:
        A tensor of the shape of `decoder_sequence`. With a
        `self_attention_cache`, the tuple `(output, self_attention_cache)`,
        or `(output, self_attention_cache, cross_attention_cache)` in a block
        with cross-attention.

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
            self.attention_factory, "self_attention", decoder_sequence_shape, decoder_sequence_shape
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
        self._build_residual_quantizers()

    @property
    def attention_layers(self):
        return [layer for layer in (self.self_attention_layer, self.cross_attention_layer) if layer is not None]

    def call(
        self,
        decoder_sequence,
        encoder_sequence=None,
        decoder_padding_mask=None,
        encoder_padding_mask=None,
        self_attention_cache=None,
        self_attention_cache_update_index=None,
        cross_attention_cache=None,
        cross_attention_cache_update_index=None,
        training=None,
    ):
        has_cross_attention = self.cross_attention_layer is not None
        has_encoder = encoder_sequence is not None or cross_attention_cache is not None
        if has_cross_attention != has_encoder:
            raise ValueError(
                "TransformerDecoder must be called with `encoder_sequence` (or a `cross_attention_cache`) exactly "
                f"when it was built with one (it was built {'with' if has_cross_attention else 'without'} one). "
                f"Received: encoder_sequence={'None' if encoder_sequence is None else 'a tensor'}"
            )
        cached = self_attention_cache is not None
        if cross_attention_cache is not None and not cached:
            raise ValueError(
                "A `cross_attention_cache` needs a `self_attention_cache`: cached decoding caches both. "
                "Received: self_attention_cache=None"
            )
        if cached:
            self._check_cacheable(self.self_attention_layer, "attention")
        if cached and self_attention_cache_update_index is None:
            raise ValueError(
                "Argument `self_attention_cache_update_index` must be given with a `self_attention_cache`: the "
                "position of the first token of `decoder_sequence`. Received: None"
            )
        if decoder_padding_mask is None:
            decoder_padding_mask = get_keras_mask(decoder_sequence)
        x = decoder_sequence
        y = self._sublayer_input(x, self.self_attention_norm)  # (B, l, d)
        y = self.self_attention_layer(
            y, y, query_mask=decoder_padding_mask, value_mask=None if cached else decoder_padding_mask,
            use_causal_mask=True, training=training,
            **_cache_arguments(self_attention_cache, self_attention_cache_update_index),
        )
        if cached:
            y, self_attention_cache = y
        x = self._add_residual(x, y, self.self_attention_norm, training)
        if has_cross_attention:
            if encoder_padding_mask is None and encoder_sequence is not None:
                encoder_padding_mask = get_keras_mask(encoder_sequence)
            y = self._sublayer_input(x, self.cross_attention_norm)  # (B, l, d)
            if cross_attention_cache is not None:
                self._check_cacheable(self.cross_attention_layer, "cross_attention")
            y = self.cross_attention_layer(
                y, encoder_sequence, query_mask=decoder_padding_mask, value_mask=encoder_padding_mask,
                training=training, **_cache_arguments(cross_attention_cache, cross_attention_cache_update_index),
            )
            if cross_attention_cache is not None:
                y, cross_attention_cache = y
            x = self._add_residual(x, y, self.cross_attention_norm, training)
        x = self._feedforward(x, training)
        if not cached:
            return x
        return (x, self_attention_cache, cross_attention_cache) if has_cross_attention else (x, self_attention_cache)

    @staticmethod
    def _check_cacheable(layer, argument):
        if not isinstance(layer, BaseAttention):
            raise ValueError(
                "Cached decoding needs attention layers that take a `cache` (the package's variants). Received: "
                f"a {type(layer).__name__} as `{argument}`"
            )

    def compute_output_shape(self, decoder_sequence_shape, encoder_sequence_shape=None):
        return tuple(decoder_sequence_shape)

    def get_config(self):
        config = super().get_config()
        config["cross_attention"] = attention_name(self.cross_attention)
        return config


def _cache_arguments(cache, index):
    return {} if cache is None else {"cache": cache, "cache_update_index": index}
