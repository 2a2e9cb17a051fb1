"""The machinery shared by every attention variant."""

import keras
from keras import ops

from keras_superattn._keras_compat import clone_initializer
from keras_superattn._keras_compat import get_keras_mask
from keras_superattn._keras_compat import set_keras_mask
from keras_superattn._validation import check_positive_int
from keras_superattn._validation import check_rate
from keras_superattn.layers._attention_inputs import and_masks
from keras_superattn.layers._attention_inputs import check_cache
from keras_superattn.layers._attention_inputs import check_masks
from keras_superattn.layers._attention_inputs import check_shapes
from keras_superattn.layers._attention_inputs import combine_masks
from keras_superattn.layers._attention_inputs import is_zero
from keras_superattn.layers._attention_inputs import sequence_length
from keras_superattn.layers._attention_inputs import streams_of
from keras_superattn.layers.export_mode import current as export_mode
from keras_superattn.layers.fake_quant import PROBABILITY_RANGE
from keras_superattn.layers.fake_quant import QuantizationAware

# A masked key's score is set this far below the smallest score of its row:
# its weight, at most e^-30 (1e-13) of every allowed key's, vanishes in
# float32 sums and is exactly 0 in int8. A fixed fill such as -1e9 is exact
# in float too, but it sets the int8 range of the scores: in a causal model
# their int8 step was 3.9e6, every real score rounded to the same value, and
# the int8 file attended uniformly.
_MASK_MARGIN = 30.0
# The int8 forms (a file, and the quantization-aware model that simulates it)
# set a masked key this far below the highest allowed score of its row
# instead: its weight, at most e^-16 (1e-7) of the top key's, is still 0 in
# int8, and the fill stretches the scores' int8 range less (a translator's
# masked scores, step 0.19-0.23 with the float form, 0.12-0.13 with this).
_INT8_MASK_MARGIN = 16.0

# The attention core is chosen per backend by measurement (BENCHMARKS.md,
# "Attention core" and "Where the time goes"; benchmarks/attention_core.py at 3495e53):
# PyTorch's fused SDPA kernel beats an explicit matmul-softmax-matmul (which
# takes 1.9x its time forward, 2.1x forward + backward); TensorFlow's and
# JAX's CPU `dot_product_attention` is not fused, and the explicit form takes
# 0.84 / 0.56 of its time forward and 0.72 / 0.78 forward + backward. On JAX
# the explicit form is faster again (about half the core's time) when the
# weights are normalised after the weighted sum, on the `(B, h, l, d_k)`
# output instead of the `(B, h, l, s)` weights; TensorFlow's fused softmax
# kernel beats that form, and a converted file needs the softmax (an int8
# kernel of its own), so TensorFlow, which every conversion runs on, keeps it.
_FUSED_CORE = keras.backend.backend() == "torch"
_NORMALISE_AFTER_SUM = keras.backend.backend() == "jax"



@keras.saving.register_keras_serializable(package="keras_superattn")
class BaseAttention(QuantizationAware, keras.layers.Layer):
    """Multi-head scaled dot-product attention with pluggable projections.

    The variants of arXiv 2403.01643 differ only in which inputs get a learned
    `(d, d)` projection before the heads are split and in how the values are
    formed. Queries and the output always have a projection.

    Per head the layer computes `softmax(q k^T / sqrt(d_k)) v`, with
    `d_k = d / num_heads` and `d` the last dimension of the query; the heads
    are merged and projected by `attention_output`.

    A new variant is a subclass that states, and a registry entry
    (`layers.registry.VARIANTS`):

    - `projects_key`, `projects_value` (class attributes, default True):
      which inputs get a projection; `costs` counts from them.
    - `cache_streams` (class attribute): the tensors of width `d` a cache
      keeps per token for decoding: 2 (keys, then values), or 1 when the
      values are the keys (neither projected). None (the default): the
      variant cannot decode with a cache, and a call with one is refused.
    - `_form_values(value, source_mask, use_causal_mask)`: the values
      `(B, s, d)` from the value input, if they are not its projection.
    - `_cache_entries(value, cached_keys, index, source_mask,
      use_causal_mask)`: the new tokens' cache entries, to override when a
      token's value depends on other tokens (Super's `W_A` mixing).
    - `_quantized_tensors`: further tensors it passes through
      `self._fake_quant(name, x)`, so that quantization-aware training
      simulates their int8 ranges.
    - `get_config` / `compute_output_spec`, when it adds arguments or
      checks.

    Where a converter needs another form of the same numbers, the variant
    reads `export_mode.current()` (Super's `W_A X`); nothing sets flags on a
    layer from outside.

    Args:
        num_heads: int. Number of attention heads; must divide the query width.
        dropout: float in `[0, 1)`. Dropout rate on the attention weights.
        use_bias: bool. Whether the projections have a bias.
        kernel_initializer: initializer of the projection kernels.
        bias_initializer: initializer of the projection biases.
        kernel_regularizer: optional regularizer of the projection kernels.
        bias_regularizer: optional regularizer of the projection biases.
        activity_regularizer: optional regularizer of the output.
        kernel_constraint: optional constraint on the projection kernels.
        bias_constraint: optional constraint on the projection biases.
        seed: optional int, seed of the attention dropout.
        quantization_aware: bool. Fake-quantize to int8 every tensor that an
            int8 file quantizes (projections, scaled queries, scores,
            weights, heads), for quantization-aware training; set by
            `keras_superattn.quantization.quantize_model`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        query: tensor of shape `(B, l, d)`.
        value: optional tensor of shape `(B, s, d)`; defaults to `query`, so
            the layer is a self-attention layer when called on one tensor.
        key: optional tensor of shape `(B, s, d)`; defaults to `value`.
        query_mask, value_mask, key_mask: optional boolean masks of shapes
            `(B, l)`, `(B, s)` and `(B, s)`, `True` for real tokens. Keras masks
            (e.g. from `Embedding(mask_zero=True)`) are used when these are
            not given, and the query mask is propagated to the output.
        attention_mask: optional boolean tensor of shape `(B, l, s)`, or
            `(1, l, s)` / `(l, s)` for one mask shared by the batch; `True`
            where a query may attend to a key. A query that may attend to no
            key (a padded query) weighs every key alike, so its output means
            nothing; the output's Keras mask marks padded queries. (Keras'
            `MultiHeadAttention` gives such a row zero weights instead.)
        return_attention_scores: bool. Also return the attention weights.
        training: bool. Whether dropout is active.
        use_causal_mask: bool. Forbid each position to attend to later ones.
        cache: optional tensor `(B, cache_streams, S, d)` of keys and values
            computed earlier, for decoding one token at a time (keras-hub's
            convention): stream 0 holds the keys, stream -1 the values
            (`cache_streams` says how many a variant needs). A tuple of
            `cache_streams` tensors `(B, S, d)` works alike and comes back a
            tuple (an int8 file gives each its own scale). Keys and values
            then come from one input: `key` must not be given, and
            `value_mask` / `key_mask` cover the `S` cached positions.
        cache_update_index: optional int or scalar tensor. With a `cache`,
            the position of the query's first token: the keys and values of
            the `value` input (the query when not given) are written there,
            and a causal mask lets query row `i` see positions up to
            `cache_update_index + i`. None uses the cache as it is, e.g. the
            keys and values of an encoder sequence in cross-attention.

    Returns:
        A tensor of the query's shape, and with `return_attention_scores=True`
        also the attention weights of shape `(B, num_heads, l, s)`. With a
        `cache`, the pair `(output, updated cache)`.
    """

    projects_key = True
    projects_value = True
    cache_streams = None
    # The tensors of the attention core that an int8 file quantizes, beyond
    # the projections' outputs (fake-quantized when `quantization_aware`).
    _quantized_tensors = ("scaled_query", "scores", "floor", "masked_scores", "weights", "heads")

    def __init__(
        self,
        num_heads,
        dropout=0.0,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        seed=None,
        quantization_aware=False,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self._init_quantization(quantization_aware)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.dropout = check_rate("dropout", dropout)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.seed = seed
        self.supports_masking = True

    def build(self, query_shape, value_shape=None, key_shape=None):
        value_shape = query_shape if value_shape is None else value_shape
        key_shape = value_shape if key_shape is None else key_shape
        width = check_shapes(self.num_heads, query_shape, value_shape, key_shape)
        self.head_dim = width // self.num_heads
        self.query_dense = self._dense("query", query_shape)
        self.key_dense = self._dense("key", key_shape) if self.projects_key else None
        self.value_dense = self._dense("value", value_shape) if self.projects_value else None
        self.output_dense = self._dense("attention_output", query_shape)
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, seed=self.seed, dtype=self.dtype_policy
        )
        self._build_quantizers(self._quantized_tensors, fixed={"weights": PROBABILITY_RANGE})

    def _dense(self, name, input_shape):
        layer = self._layer_class(keras.layers.Dense)(
            input_shape[-1],
            use_bias=self.use_bias,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            kernel_regularizer=self.kernel_regularizer,
            bias_regularizer=self.bias_regularizer,
            kernel_constraint=self.kernel_constraint,
            bias_constraint=self.bias_constraint,
            dtype=self.dtype_policy,
            name=name,
        )
        layer.build(input_shape)
        return layer

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.cache_streams not in (None, 1, 2):
            raise TypeError(f"{cls.__name__}.cache_streams must be None, 1 or 2. Received: {cls.cache_streams!r}")
        if cls.cache_streams == 1 and (cls.projects_key or cls.projects_value):
            raise TypeError(
                f"{cls.__name__}.cache_streams=1 caches the keys alone, which serve as values only when neither "
                f"is projected. Received: projects_key={cls.projects_key}, projects_value={cls.projects_value}"
            )

    def empty_cache(self, batch_size, length):
        """A zero cache `(batch_size, cache_streams, length, d)` to fill."""
        width = self.num_heads * self.head_dim
        return ops.zeros((batch_size, self.cache_streams, length, width), self.compute_dtype)

    def _cache_entries(self, value, cached_keys, index, source_mask, use_causal_mask):
        """The cache entries of the `value` tokens, which go to positions
        `index...`: a tuple of `cache_streams` tensors `(B, l, d)`.
        `cached_keys (B, S, d)` is the cache's key stream and `source_mask`
        the `(B, S)` mask of the cache's positions, or None."""
        keys = self.key_dense(value) if self.key_dense else value  # (B, l, d)
        if self.cache_streams == 1:
            return (keys,)
        return keys, self._form_values(value, None, use_causal_mask)

    def _form_values(self, value, source_mask, use_causal_mask):
        """Maps the value input `(B, s, d)` to the values before the split.

        `source_mask` is the `(B, s)` padding mask of the key/value positions
        (value and key masks combined), or None.
        """
        return self.value_dense(value) if self.value_dense else value

    def call(
        self,
        query,
        value=None,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
        use_causal_mask=False,
        cache=None,
        cache_update_index=None,
    ):
        self_attention = value is None
        value = query if self_attention else value
        if cache is not None:
            check_cache(self, cache, key, return_attention_scores)
        key = value if key is None else key
        query_mask = get_keras_mask(query) if query_mask is None else query_mask
        if value_mask is None and cache is None:
            value_mask = query_mask if self_attention else get_keras_mask(value)
        if key_mask is None and key is not value:
            key_mask = get_keras_mask(key)
        source_length = sequence_length(value) if cache is None else sequence_length(streams_of(cache)[0])
        check_masks(query, source_length, query_mask, value_mask, key_mask, attention_mask)
        offset = 0 if cache_update_index is None else cache_update_index
        mask = combine_masks(
            query, source_length, query_mask, value_mask, key_mask, attention_mask, use_causal_mask, offset
        )  # (B | 1, l, s) or None
        source_mask = and_masks(value_mask, key_mask)  # (B, s) or None

        q = self._split_heads(self.query_dense(query))  # (B, l, h, d_k)
        if cache is None:
            k = self.key_dense(key) if self.key_dense else key  # (B, s, d)
            v = self._form_values(value, source_mask, use_causal_mask)  # (B, s, d)
        elif cache_update_index is None:
            k, v = streams_of(cache)[0], streams_of(cache)[-1]  # (B, S, d)
        else:
            k, v, mask, cache = self._attend_to_cache(
                query, value, cache, cache_update_index, mask, source_mask, use_causal_mask
            )
        k_heads = self._split_heads(k)  # (B, s, h, d_k)
        # Efficient Attention's keys are its values: split (and transpose) once.
        v_heads = k_heads if v is k else self._split_heads(v)  # (B, s, h, d_k)
        heads, weights = self._attend(q, k_heads, v_heads, mask, training, return_attention_scores)
        output = self.output_dense(
            ops.reshape(heads, (-1, sequence_length(heads), self.num_heads * self.head_dim))
        )  # (B, l, d)
        if query_mask is not None:
            set_keras_mask(output, query_mask)
        if cache is not None:
            return output, cache
        return (output, weights) if return_attention_scores else output

    def _attend_to_cache(self, query, value, cache, index, mask, source_mask, use_causal_mask):
        """Keys `(B, s, d)`, values and mask `(B | 1, l, s)` of the cached
        positions before `index` followed by the `value` tokens, and the
        cache with those tokens written (or only their entries, in an
        `ExportMode` with `cache_returns_entries`).

        The new tokens are attended to as computed, not read back from the
        updated cache: in an int8 file the cache update (a dynamic update
        slice) has no integer kernel, a concatenation has.
        """
        streams = streams_of(cache)  # (B, S, d) each
        length, cached = sequence_length(value), sequence_length(streams[0])
        entries = [
            ops.cast(entry, streams[0].dtype)
            for entry in self._cache_entries(value, streams[0], index, source_mask, use_causal_mask)
        ]  # (B, l, d) each
        keys, values = entries[0], entries[-1]  # (B, l, d)
        if mask is None:
            mask = ops.ones((1, 1, cached), "bool")
        rows = ops.shape(mask)[:2]  # (B | 1, l_q | 1)
        new = ops.slice(mask, (0, 0, index), (*rows, length))  # (B | 1, l_q | 1, l)
        if not is_zero(index):  # earlier positions hold tokens
            written = ops.arange(cached)[None, None, :] < index  # (1, 1, S)
            keys = ops.concatenate([streams[0], keys], axis=1)  # (B, S + l, d)
            values = ops.concatenate([streams[-1], values], axis=1)  # (B, S + l, d)
            new = ops.concatenate([ops.logical_and(mask, written), new], axis=-1)  # (B | 1, l, S + l)
        if not export_mode().cache_returns_entries:
            entries = [ops.slice_update(stream, (0, index, 0), entry) for stream, entry in zip(streams, entries)]
        if isinstance(cache, (tuple, list)):
            return keys, values, new, tuple(entries)
        return keys, values, new, ops.stack(entries, axis=1)  # (B, n, S | l, d)

    def _split_heads(self, x):
        # (B, l, d) -> (B, l, h, d_k): head i owns columns i*d_k:(i+1)*d_k.
        return ops.reshape(x, (-1, sequence_length(x), self.num_heads, self.head_dim))

    def _attend(self, q, k, v, mask, training, return_weights):
        """Attention per head on `(B, l, h, d_k)` tensors; returns the same layout."""
        mask = None if mask is None else mask[:, None]  # (B | 1, 1, l, s)
        # The fused kernel and the division after the sum compute in the
        # input dtype; under mixed precision the explicit softmax is kept in
        # float32, so the result does not depend on `return_attention_scores`.
        # A quantization-aware layer simulates the converted graph's core.
        explicit = self.compute_dtype != "float32" or return_weights or self.quantization_aware
        if _FUSED_CORE and not explicit and not (training and self.dropout > 0):
            return ops.dot_product_attention(q, k, v, mask=mask), None
        q = self._fake_quant("scaled_query", q * (self.head_dim**-0.5))
        q = ops.transpose(q, (0, 2, 1, 3))  # (B, h, l, d_k), scaled
        k_heads = ops.transpose(k, (0, 2, 1, 3))  # (B, h, s, d_k)
        v_heads = k_heads if v is k else ops.transpose(v, (0, 2, 1, 3))  # (B, h, s, d_k)
        scores = ops.cast(ops.matmul(q, ops.transpose(k_heads, (0, 1, 3, 2))), "float32")  # (B, h, l, s)
        scores = self._fake_quant("scores", scores)
        if mask is not None:
            lowest = ops.min(scores, axis=-1, keepdims=True)  # (B, h, l, 1)
            if self.quantization_aware or export_mode().tflite:
                top_allowed = ops.max(ops.where(mask, scores, lowest), axis=-1, keepdims=True)  # (B, h, l, 1)
                floor = self._fake_quant("floor", top_allowed - _INT8_MASK_MARGIN)
            else:
                floor = lowest - _MASK_MARGIN
            scores = self._fake_quant("masked_scores", ops.where(mask, scores, floor))  # (B, h, l, s)
        if _NORMALISE_AFTER_SUM and not explicit:
            # Dropout scales each weight alone, so it commutes with the
            # division by the row sum. The row maximum only keeps exp in
            # range: its gradient, zero in sum, is not worth computing.
            peak = ops.stop_gradient(ops.max(scores, axis=-1, keepdims=True))  # (B, h, l, 1)
            unnormalised = ops.exp(scores - peak)  # (B, h, l, s)
            weights = self.dropout_layer(unnormalised, training=training)
            heads = ops.matmul(weights, v_heads) / ops.sum(unnormalised, axis=-1, keepdims=True)  # (B, h, l, d_k)
            return ops.transpose(heads, (0, 2, 1, 3)), None  # (B, l, h, d_k)
        weights = ops.cast(self._fake_quant("weights", ops.softmax(scores, axis=-1)), v.dtype)  # (B, h, l, s)
        heads = ops.matmul(self.dropout_layer(weights, training=training), v_heads)  # (B, h, l, d_k)
        heads = self._fake_quant("heads", heads)
        return ops.transpose(heads, (0, 2, 1, 3)), weights  # (B, l, h, d_k)

    def compute_output_shape(self, query_shape, value_shape=None, key_shape=None):
        value_shape = query_shape if value_shape is None else value_shape
        key_shape = value_shape if key_shape is None else key_shape
        check_shapes(self.num_heads, query_shape, value_shape, key_shape)
        return tuple(query_shape)

    def compute_output_spec(
        self, query, value=None, key=None, return_attention_scores=False, cache=None, **kwargs
    ):
        value = query if value is None else value
        if cache is not None:
            check_cache(self, cache, key, return_attention_scores)
        key = value if key is None else key
        check_shapes(self.num_heads, query.shape, value.shape, key.shape)
        masks = ("query_mask", "value_mask", "key_mask", "attention_mask")
        source_length = value.shape[1] if cache is None else streams_of(cache)[0].shape[1]
        check_masks(query, source_length, *(kwargs.get(name) for name in masks))
        output = keras.KerasTensor(query.shape, dtype=self.compute_dtype)
        if cache is not None:
            return output, keras.tree.map_structure(lambda c: keras.KerasTensor(c.shape, dtype=c.dtype), cache)
        if not return_attention_scores:
            return output
        weights_shape = (query.shape[0], self.num_heads, query.shape[1], value.shape[1])
        return output, keras.KerasTensor(weights_shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
                "bias_constraint": keras.constraints.serialize(self.bias_constraint),
                "seed": self.seed,
                "quantization_aware": self.quantization_aware,
            }
        )
        return config

